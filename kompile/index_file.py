"""The index file (.kompile-cache/index, local to the checkout, never committed): its format, reading
it, and which inputs changed since it was written. What kompile/index.py does with it needs the
compiler; this does not, so a build of a few environments reads it in a forked process while the
parent imports the compiler (parallel.ahead).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import stat
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import jsonpatch
import tzdata
import yaml

from kompile import __version__
from kompile.errors import Diagnostic, KompileError
from kompile.load.listing import spec_files
from kompile.safefs import CACHE_DIR, Refused, Root, file_identity, write_cache_file

if TYPE_CHECKING:
    from kompile.validate.clusters import Placement

INDEX_FILE = f"{CACHE_DIR}/index"
MAX_INDEX_BYTES = 256 << 20  # (any file of the cache)


@functools.cache
def index_format() -> str:
    """The first words of an index: its format, and what checking a spec depends on besides the spec:
    kompile's version and the identity of its own code (a checkout of kompile changed without a new
    version number checks with other rules), Python's, and the libraries whose answers the rules take
    (libyaml's parsing, jsonpatch's patching, tzdata's list of time zones)."""
    package = Path(__file__).resolve().parent
    code = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        info = path.stat()
        code.update(f"{path.relative_to(package)} {info.st_size} {info.st_mtime_ns}\n".encode())
    code.update(f"python {sys.version} libyaml {getattr(yaml, '__with_libyaml__', False)}\n".encode())
    # (Their own version attributes: importlib.metadata would cost more than the rest of this.)
    code.update(
        f"PyYAML {yaml.__version__} jsonpatch {jsonpatch.__version__} tzdata {tzdata.__version__}\n".encode()
    )
    return f"kompile-index 2 {__version__} {code.hexdigest()[:16]}"


class Damaged(ValueError):
    """An entry of the index that kompile would not have written: the index is not used."""


@dataclass
class Index:
    """The index as read: each environment's entry stays text until a command needs it (a command about
    one environment parses its own, and the others' only when the rules across environments must run)."""

    app: str  # the App's file
    app_reads: tuple[str, ...]  # the files the App's own settings' rules read
    files: dict[str, tuple[str, str]]  # input -> (identity when read, or "" when too young; sha256)
    environments: dict[str, str]  # name -> its entry: [inputs its check read, placement] as JSON
    readers: dict[str, str]  # input -> the environments whose check read it, separated by spaces
    key: str = field(default="", compare=False)  # the SHA-256 of the file it was read from
    _parsed: dict[str, tuple[tuple[str, ...], Placement]] = field(
        default_factory=dict, compare=False, repr=False
    )

    def entry(self, name: str) -> tuple[tuple[str, ...], Placement]:
        """(the inputs its check read, its placement); Damaged for anything kompile would not write."""
        parsed = self._parsed.get(name)
        if parsed is None:
            from kompile.validate.clusters import Placement  # (the parent's: a worker never parses entries)

            try:
                inputs, where = json.loads(self.environments[name])
                parsed = (tuple(inputs), Placement.from_json(name, where))
            except (ValueError, TypeError, RecursionError) as exc:
                raise Damaged(f"entry of {name}") from exc
            if not all(type(rel) is str and rel in self.files for rel in parsed[0]):
                raise Damaged(f"inputs of {name}")
            self._parsed[name] = parsed
        return parsed

    def inputs_of(self, name: str) -> tuple[str, ...]:
        return self.entry(name)[0]

    def placement_of(self, name: str) -> Placement:
        return self.entry(name)[1]

    def read_by(self, rels) -> set[str]:
        """The environments whose check read any of these files."""
        found: set[str] = set()
        for rel in rels:
            found.update(self.readers.get(rel, "").split())
        return found


def write_sealed(root: Path, name: str, data: bytes) -> None:
    """.kompile-cache/<name>: a first line of index_format() and the SHA-256 of the rest, then data."""
    write_cache_file(root, name, f"{index_format()} {hashlib.sha256(data).hexdigest()}\n", data)


def read_sealed(root: Path, name: str) -> tuple[str, bytes] | None:
    """(the SHA-256, the data) of what write_sealed wrote, by this kompile; None for anything else
    (missing, not a file, damaged, another kompile or library version)."""
    rel = f"{CACHE_DIR}/{name}"
    with Root(root) as disk:
        info = disk.lstat(rel)
        if info is None or not stat.S_ISREG(info.st_mode):
            return None
        header, _, data = disk.read(rel, MAX_INDEX_BYTES).partition(b"\n")
    key = hashlib.sha256(data).hexdigest()
    return (key, data) if header.decode("utf-8", "replace") == f"{index_format()} {key}" else None


_last_read: tuple[str, Index] | None = None  # the last index read, by its hash: parsed once per command
NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?").fullmatch  # an environment's name: no space, no tab


def read_index(root: Path) -> Index | None:
    """The index, or None when there is none this kompile can use. Its first line is the format and the
    hash of the rest, so a damaged or hand-made index is ignored (never half believed).

    It is text, one line per input and per environment (as git's index has one entry per path), so the
    lines of ten thousand environments are split, not decoded: `app <path>`, `read <path>` for each file
    the App's rules read, `file <identity> <sha256> <path>`, `env <name> <inputs> <placement>` (JSON, read
    when needed) and `readers <path> <names>`, tab-separated, each path as a JSON string."""
    global _last_read
    try:
        sealed = read_sealed(root, "index")
        if sealed is None:
            return None
        key, data = sealed
        if _last_read is not None and _last_read[0] == key:
            return _last_read[1]
        app, reads = None, []
        files: dict[str, tuple[str, str]] = {}
        environments: dict[str, str] = {}
        readers: dict[str, str] = {}
        for line in data.decode("utf-8").split("\n"):
            kind, _, rest = line.partition("\t")
            if kind == "file":
                ident, sha, quoted = rest.split("\t")
                files[_unquoted(quoted)] = (ident, sha)
            elif kind == "env":
                name, entry = rest.split("\t")
                environments[name] = entry
            elif kind == "readers":
                quoted, names = rest.split("\t")
                readers[_unquoted(quoted)] = names
            elif kind == "app" and app is None:
                app = _unquoted(rest)
            elif kind == "read":
                reads.append(_unquoted(rest))
            elif line:
                return None
        if not (
            app in files
            and all(rel in files for rel in reads)
            and all(map(NAME, environments))
            and all(rel in files for rel in readers)
        ):
            return None
        index = Index(app, tuple(reads), files, environments, readers, key)
        _last_read = (key, index)
        return index
    except (OSError, Refused, ValueError, TypeError, KeyError, AttributeError, RecursionError):
        return None


def _unquoted(quoted: str) -> str:
    """A path written as a JSON string: most are plain (quotes added); the rest are decoded."""
    if quoted[:1] == '"' == quoted[-1:] and len(quoted) > 1 and "\\" not in quoted:
        inner = quoted[1:-1]
        if '"' not in inner:
            return inner
    rel = json.loads(quoted)
    if type(rel) is not str:
        raise ValueError("not a path")
    return rel


def changed_inputs(root: Path, index: Index, specs: list[str]) -> set[str]:
    """The inputs whose identity is not the one recorded (changed, gone, replaced, or never trusted),
    and the spec files the index does not know."""
    changed = {rel for rel in specs if rel not in index.files}
    with Root(root) as disk:
        for rel, (recorded, _) in index.files.items():
            folder, _, name = rel.rpartition("/")
            try:
                info = os.stat(name, dir_fd=disk.folder(folder), follow_symlinks=False)
            except (OSError, Refused, ValueError):  # (ValueError: a NUL in a name kompile never wrote)
                changed.add(rel)
                continue
            if not recorded or not stat.S_ISREG(info.st_mode) or file_identity(info) != recorded:
                changed.add(rel)
    return changed


@dataclass
class Changes:
    """What changed since the index whose hash is `key` was written: the spec files (and the problems of
    their names) and the inputs whose identity is not the one recorded. Small enough to send from a
    forked process."""

    key: str
    paths: list[str]
    problems: list[Diagnostic]
    changed: set[str]


@dataclass
class Seen:
    """What a command about some environments looks at before it checks any: the index, and what changed
    since it was written."""

    index: Index
    changes: Changes


def changes_since_index(root: Path) -> Changes | None:
    """What changed since the index was written (None: no index this kompile can use, or the spec files
    cannot be listed: loading everything says why)."""
    index = read_index(root)
    return None if index is None else _changes(root, index)


def inputs_seen(root: Path, ahead: Callable[[], Changes | None] | None = None) -> Seen | None:
    """The index and what changed since it was written, as changes_since_index says, where `ahead` gives
    what it gave in a forked process (taken when it saw this same index)."""
    index = read_index(root)
    if index is None:
        return None
    changes = ahead() if ahead is not None else None
    if changes is None or changes.key != index.key:
        changes = _changes(root, index)
    return None if changes is None else Seen(index, changes)


def _changes(root: Path, index: Index) -> Changes | None:
    try:
        paths, problems = spec_files(root)
        return Changes(index.key, paths, problems, changed_inputs(root, index, paths))
    except (KompileError, OSError, Refused):
        return None
