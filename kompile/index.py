"""The index: what the last check of every environment found, remembered in .kompile-cache/ (local to
the checkout, never committed) so that a command about one environment (`build --env`, `render`,
`diff`) reads and checks only the environments whose files changed since, as a build tool on a large
monorepo does.

For each input it holds the file's identity when read (inode, size, modification and change times, as
git's index does) and the hash of its bytes; for each environment, every input its check read (the App,
the environments it extends, the sealed secrets, extra resources and patches it names) and its
placement, which the rules across environments read. An environment none of whose inputs changed is
known to pass its own checks again (the same kompile on the same bytes); only the cross-environment
rules run over every one, on placements. The index never vouches for the output: it only saves
reading and checking specs that did not change.

Anything unusual sends the command back to loading and checking every environment: no index, another
kompile version, the App's file changed, a file whose identity cannot be trusted (modified within
RACY_SECONDS of being read, where a rewrite in the same clock tick would keep its identity).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import stat
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from json.encoder import encode_basestring_ascii as _string  # type: ignore[attr-defined]
from pathlib import Path

import jsonpatch
import tzdata
import yaml

from kompile import __version__
from kompile.errors import Collector, KompileError
from kompile.load.listing import spec_files
from kompile.load.project import (
    Project,
    SpecFile,
    Specs,
    load_spec,
    require_environments,
)
from kompile.safefs import CACHE_DIR, RACY_SECONDS, Refused, Root, file_identity, write_cache_file
from kompile.validate import validate_project
from kompile.validate.clusters import Placement
from kompile.validate.resolved import Resolved

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
    _parsed: dict[str, tuple[tuple[str, ...], Placement]] = field(
        default_factory=dict, compare=False, repr=False
    )

    def entry(self, name: str) -> tuple[tuple[str, ...], Placement]:
        """(the inputs its check read, its placement); Damaged for anything kompile would not write."""
        parsed = self._parsed.get(name)
        if parsed is None:
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
_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?").fullmatch  # an environment's name: no space, no tab


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
            and all(map(_NAME, environments))
            and all(rel in files for rel in readers)
        ):
            return None
        index = Index(app, tuple(reads), files, environments, readers)
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


def write_index(
    root: Path, project: Project, resolved: Sequence[Resolved], started_ns: int, old: Index | None = None
) -> Index | None:
    """Remember what this run checked: every environment of `resolved` (and, from `old`, the others,
    unchanged: their entries are copied as text). Files modified within RACY_SECONDS before the run
    started are recorded without an identity, so they are read again next time. Best effort: an index
    that cannot be written only makes the next command check everything."""
    environments = dict(old.environments) if old else {}
    gone: list[tuple[str, str]] = []  # (input, environment) pairs no longer read
    came: list[tuple[str, str]] = []
    try:
        for name in [n for n in environments if n not in project.environments] + [
            item.name for item in resolved if item.placement is not None and item.name in environments
        ]:
            gone += [(rel, name) for rel in old.inputs_of(name)]  # type: ignore[union-attr]
            del environments[name]
    except Damaged:
        return None
    for item in resolved:
        if item.placement is not None:
            inputs = (*item.sources, *item.reads)
            environments[item.name] = json.dumps([inputs, item.placement.as_json()], separators=(",", ":"))
            came += [(rel, item.name) for rel in inputs]
    readers = _readers(old.readers if old else {}, gone, came)
    used = {project.app.rel, *project.app_reads, *project.environments.rels.values()}
    used.update(readers)
    files: dict[str, tuple[str, str]] = {}
    for rel in sorted(used):
        if rel in project.identities and rel in project.inputs:
            files[rel] = (_trusted(project.identities[rel], started_ns), project.inputs[rel])
        elif old is not None and rel in old.files:
            files[rel] = old.files[rel]
        else:
            return None  # an input whose identity is unknown: record nothing rather than something wrong
    if not all(map(_NAME, environments)):
        return None
    new = Index(
        project.app.rel,
        tuple(project.app_reads),
        files,
        dict(sorted(environments.items())),
        dict(sorted(readers.items())),
    )
    if new == old:
        return old  # nothing to add: the file stays as it is
    lines = [f"app\t{_string(new.app)}", *(f"read\t{_string(rel)}" for rel in new.app_reads)]
    lines += [f"file\t{ident}\t{sha}\t{_string(rel)}" for rel, (ident, sha) in files.items()]
    lines += [f"env\t{name}\t{entry}" for name, entry in new.environments.items()]
    lines += [f"readers\t{_string(rel)}\t{names}" for rel, names in new.readers.items()]
    write_sealed(root, "index", "\n".join(lines).encode())
    return new


def _readers(old: dict[str, str], gone: list[tuple[str, str]], came: list[tuple[str, str]]) -> dict[str, str]:
    """The readers of each input, with these pairs taken out and added: only the inputs they name are
    split and joined again (the App's file lists every environment)."""
    touched: dict[str, set[str]] = {}
    for rel, name in gone:
        touched.setdefault(rel, set(old.get(rel, "").split())).discard(name)
    for rel, name in came:
        touched.setdefault(rel, set(old.get(rel, "").split())).add(name)
    readers = dict(old)
    for rel, names in touched.items():
        if names:
            readers[rel] = " ".join(sorted(names))
        else:
            readers.pop(rel, None)
    return readers


def _trusted(ident: str, started_ns: int) -> str:
    """The identity, unless the file changed too near the run's start for it to tell a rewrite apart."""
    _, _, mtime, ctime = ident.split()
    return "" if max(int(mtime), int(ctime)) >= started_ns - RACY_SECONDS * 1e9 else ident


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


def checked_incrementally(
    root: Path, only: Sequence[str], keep_settings: bool
) -> tuple[Project, list[Resolved], Index] | None:
    """The project, `only` checked with every environment whose inputs changed since the index was
    written (the others' placements from the index), and the index; None when the index cannot serve,
    and the caller loads and checks everything. Raises what checking everything would raise about
    these files."""
    index = read_index(root)
    if index is None:
        return None
    try:
        paths, problems = spec_files(root)
        changed = changed_inputs(root, index, paths)
    except (KompileError, OSError, Refused):
        return None
    if problems or index.app in changed or index.app not in paths:
        return None
    project = _project(root, index, paths, changed)
    if project is None or not project.environments:
        return None  # (loading everything says what is missing)
    affected = {name for name, rel in project.environments.rels.items() if rel in changed}
    affected.update(name for name in index.read_by(changed) if name in project.environments)
    affected.update(name for name in only if name in project.environments)
    affected.update(name for name in project.environments if name not in index.environments)
    others = [name for name in index.environments if name in project.environments and name not in affected]

    def placed_before(where: Placement) -> bool:
        # The rules across environments read only placements, and the index holds a set of them that
        # passed together: when the environments checked now are placed as they were then, what they
        # form with the others is that set, or a part of it, and passes as well.
        return where.name in index.environments and where.deploys_as(index.placement_of(where.name))

    try:
        resolved = validate_project(
            project,
            keep_settings,
            sorted(affected),
            (index.placement_of(name) for name in others),
            placed_before,
        )
    except Damaged:
        return None
    require_environments(project, only)  # after the checks, as when every environment is checked
    return project, resolved, index


def _project(root: Path, index: Index, paths: list[str], changed: set[str]) -> Project | None:
    """A project whose changed spec files are read and checked now (their problems raised, as loading
    every file would) and whose other environments are read when first asked for. None when a changed
    file is an App (a second one, or the App moved): loading everything says what that means."""
    inputs = {rel: sha for rel, (_, sha) in index.files.items() if rel not in changed}
    identities: dict[str, str] = {}
    out = Collector()
    fresh: dict[str, SpecFile] = {}
    for rel in paths:
        if rel in changed:
            loaded = load_spec(root, rel, inputs, identities, out)
            if loaded is not None:
                if loaded.kind != "Environment":
                    return None
                fresh[loaded.name] = loaded
    out.raise_if_any()
    app = load_spec(root, index.app, inputs, identities, out)
    if app is None or app.kind != "App":
        return None

    def load(rel: str) -> SpecFile:
        problems = Collector()
        loaded = load_spec(root, rel, inputs, identities, problems)
        problems.raise_if_any()  # (a file is None only with its problems said)
        return loaded  # type: ignore[return-value]

    rels = {rel.rpartition("/")[2].rpartition(".")[0]: rel for rel in paths if rel != index.app}
    specs = Specs(dict(sorted(rels.items())), load, fresh)
    return Project(root=root, app=app, environments=specs, inputs=inputs, identities=identities)
