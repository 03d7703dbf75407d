"""The record of what kompile generated: every output path with the hash of its bytes, and the inputs
(with their hashes) and kompile version it was built from.

It is committed with the output, in two parts: `.kompile-manifest.json` lists the inputs, the
environments and the files outside an environment's folders (bases/, gitops/), and
`.kompile-manifest/<env>.json` the files of each environment's folders (overlays/<env>/ and
rendered/<env>/). A build of one environment reads and writes its own record, not every environment's,
and two pull requests about different environments change different records. It is how kompile knows
which files it owns (it never touches others), notices a generated file edited by hand, and answers
`check` without recompiling when neither the inputs nor the outputs changed.

Format 1 (one file for everything, kompile 0.4) is read as well: the next build writes format 2.
"""

from __future__ import annotations

import hashlib
import json
import re
from json.encoder import encode_basestring_ascii as _string  # type: ignore[attr-defined]
from pathlib import Path

from kompile import __version__
from kompile.errors import Code, Diagnostic, KompileError, Severity, Span
from kompile.names import OUTPUT_FOLDERS
from kompile.safefs import TEMP, Refused, Root, path_problem

MANIFEST = ".kompile-manifest.json"
RECORDS = ".kompile-manifest"  # <env>.json: the files of one environment's folders
FORMAT = 2
ENVIRONMENT_FOLDERS = ("overlays", "rendered")  # <folder>/<env>/...: listed in <env>'s record
_RECORD_NAME = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?").fullmatch  # an environment's name


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def record_of(path: str) -> str | None:
    """The environment whose record lists this path (<env> of overlays/<env>/... or rendered/<env>/...);
    None for the rest, listed in MANIFEST."""
    top, _, rest = path.partition("/")
    if top in ENVIRONMENT_FOLDERS:
        name, slash, _ = rest.partition("/")
        if slash and _RECORD_NAME(name):
            return name
    return None


def record_path(name: str) -> str:
    return f"{RECORDS}/{name}.json"


Files = dict[str, tuple[str, ...]]


class Manifest:
    """Every output path with the hashes of its acceptable contents: one normally; old and new while a
    build is writing, so a build killed half way leaves a record that still owns every file it may have
    touched. An environment's record is read from disk when first asked for (`recorded`, `under`), so a
    build of one environment never reads the others'; `files` reads them all."""

    def __init__(
        self,
        generator: str = f"kompile {__version__}",
        inputs: dict[str, str] | None = None,
        files: Files | None = None,
        warnings: tuple[dict, ...] = (),
        environments: dict[str, str] | None = None,
    ) -> None:
        self.generator = generator
        self.inputs = dict(inputs or {})
        # The opt-outs the build listed (as Diagnostic.as_dict()), so `check` can list them without compiling.
        self.warnings = tuple(warnings)
        # Each environment built, with its tier ("" for none): what removing one means is known from this.
        self.environments = dict(environments or {})
        self.format = FORMAT  # (the format it was read in)
        self.top: Files = {}  # the files MANIFEST lists
        self.records: dict[str, Files | None] = {}  # environment -> its files (None: on disk, not read yet)
        self.reader: _Records | None = None  # reads the records on disk
        for path, hashes in (files or {}).items():
            self._listing(path, create=True)[path] = tuple(hashes)

    def _record(self, name: str, create: bool = False) -> Files:
        files = self.records.get(name)
        if files is None:
            if name in self.records and self.reader is not None:
                files = self.records[name] = self.reader.read([name])[name]
            elif create:
                files = self.records[name] = {}
            else:
                return {}
        return files

    def _listing(self, path: str, create: bool = False) -> Files:
        name = record_of(path)
        return self.top if name is None else self._record(name, create)

    def read_all(self) -> None:
        """Read every environment's record not read yet."""
        unread = [name for name, files in self.records.items() if files is None]
        if unread and self.reader is not None:
            self.records.update(self.reader.read(unread))

    @property
    def files(self) -> Files:
        """Every path (reading every record), in no particular order."""
        self.read_all()
        merged = dict(self.top)
        for files in self.records.values():
            merged.update(files or {})
        return merged

    def recorded(self, path: str) -> tuple[str, ...]:
        """The hashes recorded for a path (none when it is not kompile's)."""
        return self._listing(path).get(path, ())

    def owns(self, path: str, data: bytes) -> bool:
        return digest(data) in self.recorded(path)

    def under(self, folders: tuple[str, ...]) -> list[str]:
        """The recorded paths inside these folders or naming one, in path order: a build of one
        environment reads its own record, not every environment's."""
        found: set[str] = set()
        for folder in dict.fromkeys(folders):
            inside = folder + "/"
            name = record_of(inside)
            if name is not None:
                if folder in self.top:  # (a file of that name is outside every record)
                    found.add(folder)
                listings = [self._record(name)]
            else:
                every = folder in ENVIRONMENT_FOLDERS or any(
                    f.startswith(inside) for f in ENVIRONMENT_FOLDERS
                )
                if every:
                    self.read_all()
                listings = [self.top, *(self.records.values() if every else ())]
            for listing in listings:
                found.update(path for path in listing or () if path == folder or path.startswith(inside))
        return sorted(found)

    def replaced(
        self, owned: tuple[str, ...], digests: dict[str, str], inputs, warnings, environments
    ) -> Manifest:
        """The record of a build that wrote `digests` and owns the folders `owned`: this one's files
        elsewhere are kept, the environments' records it did not touch carried over unread."""
        new = Manifest(inputs=inputs, warnings=warnings, environments=environments)
        dropped = set(self.under(owned))
        new.reader = self.reader
        new.top = {path: hashes for path, hashes in self.top.items() if path not in dropped}
        for name, files in self.records.items():
            new.records[name] = (
                None if files is None else {p: hashes for p, hashes in files.items() if p not in dropped}
            )
        for path, hashed in digests.items():
            new._listing(path, create=True)[path] = (hashed,)
        return new

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Manifest):
            return NotImplemented
        if (self.format, self.generator, self.inputs, self.warnings, self.environments, self.top) != (
            other.format,
            other.generator,
            other.inputs,
            other.warnings,
            other.environments,
            other.top,
        ):
            return False
        for name in self.records.keys() | other.records.keys():
            mine, theirs = self.records.get(name, {}), other.records.get(name, {})
            if mine is None and theirs is None and self.reader is other.reader:
                continue  # the same record on disk, read by neither
            if self._record(name) != other._record(name):
                return False
        return True

    __hash__ = None  # type: ignore[assignment]

    def to_bytes(self) -> bytes:
        """MANIFEST's bytes."""
        body = {
            "format": FORMAT,
            "generator": self.generator,
            "inputs": dict(sorted(self.inputs.items())),
            "files": _FILES,  # (a placeholder: the listing is written apart)
        }
        if self.warnings:
            body["warnings"] = list(self.warnings)
        if self.environments:
            body["environments"] = dict(sorted(self.environments.items()))
        return _with_listing(body, self.top)

    def record_bytes(self, name: str) -> bytes:
        """An environment's record's bytes."""
        return _with_listing({"files": _FILES}, self._record(name))

    def records_removed(self, written: set[str] = frozenset()) -> list[str]:
        """The records on disk (listed when read, or `written` since) this one no longer has: an
        environment's files all gone."""
        listed = self.reader.listed if self.reader is not None else set()
        return [record_path(name) for name in sorted(listed | written) if self.records.get(name, {}) == {}]

    def with_hashes(self, paths, other: Manifest | None) -> Manifest:
        """A copy where each of `paths` has its hashes here and in `other` (a build's intent: it owns
        both the old and the new content of every file it touches, and the environments of both with
        their tiers: a build killed while removing one leaves it known for what it is). Without other,
        this manifest itself (never changed after)."""
        if other is None:
            return self  # (a first build: nothing old to own besides the new)
        environments = {**other.environments, **self.environments}
        new = Manifest(self.generator, self.inputs, None, self.warnings, environments)
        new.reader, new.top, new.records = self.reader, dict(self.top), dict(self.records)
        copied: set[str] = set()  # (the records a path is added to are copies; the others are shared)
        for path in paths:
            before = other.recorded(path)
            name = record_of(path)
            if name is not None and name not in copied:
                new.records[name] = dict(self._record(name))
                copied.add(name)
            listing = new._listing(path, create=True)
            listing[path] = tuple(dict.fromkeys((*before, *self.recorded(path))))
        return new


def record_changes(old: Manifest | None, new: Manifest) -> tuple[list[str], list[str], list[str]]:
    """(added, changed, removed) record files between what is committed and what a build would write.
    What MANIFEST says of the inputs is only a cache key: it is not compared."""
    if old is None:
        new.read_all()
        return [*(record_path(name) for name, files in new.records.items() if files), MANIFEST], [], []
    added, changed, removed = [], [], []
    if old.format != FORMAT or old.top != new.top or old.warnings != new.warnings:
        changed.append(MANIFEST)
    old.read_all()
    new.read_all()
    before = old.records if old.format == FORMAT else {}  # (format 1 had no record files)
    for name in sorted(before.keys() | new.records.keys()):
        was, now = before.get(name) or {}, new.records.get(name) or {}
        if was != now:
            (added if not was else removed if not now else changed).append(record_path(name))
    return added, changed, removed


_FILES = "\0files"  # (a string no manifest holds: _string quotes it as \u0000files)
_QUOTED_AS_IS = re.compile(r"[ !#-\[\]-~\n]*").fullmatch  # printable ASCII but " and \ (and line breaks)


def _with_listing(body: dict, files: Files) -> bytes:
    head, _, tail = indented_json(body).partition(_string(_FILES))
    return (head + _listing(files) + tail + "\n").encode()


def _listing(files: Files) -> str:
    """indented_json of the files (one digest as a string, several as a list), sorted by path: a hundred
    thousand entries in one pass. Paths that JSON quotes as they are (every path kompile writes) and hex
    digests are quoted by adding the quotes; any other path goes through the encoder."""
    if not files:
        return "{}"
    items = sorted(files.items())
    joined = "\n".join(files)
    if _QUOTED_AS_IS(joined) is None or joined.count("\n") != len(files) - 1:
        items = [(_string(path)[1:-1], hashes) for path, hashes in items]
    entries = [
        f'"{path}": "{hashes[0]}"'
        if len(hashes) == 1
        else f'"{path}": [\n   "' + '",\n   "'.join(hashes) + '"\n  ]'
        for path, hashes in items
    ]
    return "{\n  " + ",\n  ".join(entries) + "\n }"


def indented_json(value) -> str:
    """json.dumps(value, indent=1), the same text, written without the pure-Python encoder that indenting
    falls back to (several times slower on a manifest of a hundred thousand files). Strings, integers,
    booleans, null, lists and string-keyed maps: what a manifest holds."""
    parts: list[str] = []
    _encode(value, "\n", parts)
    return "".join(parts)


def _encode(value, newline: str, parts: list[str]) -> None:
    if isinstance(value, str):
        parts.append(_string(value))
    elif isinstance(value, dict):
        if not value:
            parts.append("{}")
            return
        inner = newline + " "
        if all(type(item) is str for item in value.values()):  # paths and hashes: one join
            lines = (f"{inner}{_string(key)}: {_string(item)}" for key, item in value.items())
            parts.append("{" + ",".join(lines) + newline + "}")
            return
        parts.append("{")
        for index, (key, item) in enumerate(value.items()):
            parts.append(("," if index else "") + inner + _string(key) + ": ")
            if type(item) is str:  # (most of a record a build is writing: one hash, some two)
                parts.append(_string(item))
            else:
                _encode(item, inner, parts)
        parts.append(newline + "}")
    elif isinstance(value, list | tuple):
        if not value:
            parts.append("[]")
            return
        inner = newline + " "
        parts.append("[")
        for index, item in enumerate(value):
            parts.append(("," if index else "") + inner)
            _encode(item, inner, parts)
        parts.append(newline + "]")
    else:
        parts.append(json.dumps(value))  # a number, a boolean or null


_HASH = re.compile(r"[0-9a-f]{64}")
# The usual listing, checked in a few passes over all its paths (and all its digests) joined by line
# breaks: plain ASCII, each line one output folder and at least one more component, none empty, "." or
# "..", no line longer than 256 characters (so no component over MAX_NAME_BYTES, no path over
# MAX_PATH_BYTES). What passes, entry_problem would pass; anything else goes entry by entry.
_PLAIN_CHARACTERS = re.compile(r"[A-Za-z0-9._/\n-]*").fullmatch
_DOT_COMPONENT = re.compile(r"/\.\.?(?=/|\n|\Z)").search
_HEX_LINES = re.compile(r"[0-9a-f\n]*").fullmatch
_LONGEST_PLAIN_LINE = 256
MAX_MANIFEST_BYTES = 64 << 20


def read_manifest(root: Path) -> Manifest | None:
    """The committed manifest, or None when there is none. Every entry is checked before anything acts on
    it: a forged manifest can make kompile refuse, never read or delete outside the output folders. The
    environments' records are listed now and each read (and checked) when first asked for."""
    try:
        with Root(root) as handle:
            listed, leftovers = _listed_records(handle)
            data = handle.read(MANIFEST, MAX_MANIFEST_BYTES)
    except Refused as exc:
        if exc.missing and exc.rel == MANIFEST:
            if listed:  # (a first build writes MANIFEST before any record)
                raise _unreadable(
                    RECORDS,
                    f"holding records ({record_path(min(listed))}, ...) without {MANIFEST}",
                    hint=f"restore {MANIFEST} from git; or, to start again, remove {RECORDS}/ and every output folder",
                ) from None
            return None
        raise _unreadable(exc.rel, exc.why) from None
    except OSError as exc:
        raise _unreadable(MANIFEST, exc.strerror or str(exc)) from None
    body = _json(MANIFEST, data)
    if body.get("format") not in (1, FORMAT):
        raise _unreadable(MANIFEST, f"of an unknown format {body.get('format')!r}")
    files, inputs = body.get("files"), body.get("inputs") or {}
    if not isinstance(files, dict) or not isinstance(inputs, dict):
        raise _unreadable(MANIFEST, "missing its files or inputs")
    checked = _checked(MANIFEST, data, files)
    for path, recorded in inputs.items():
        problem = path_problem(path) or (
            None if isinstance(recorded, str) and _HASH.fullmatch(recorded) else "not a hash"
        )
        if problem:
            raise _unreadable(
                MANIFEST,
                f"listing the input {path!r}, which kompile never reads ({problem})",
                _line_of(data, path),
            )
    warnings = body.get("warnings") or []
    if not isinstance(warnings, list) or not all(
        isinstance(w, dict) and all(isinstance(v, str | int | None) for v in w.values()) for w in warnings
    ):
        raise _unreadable(MANIFEST, "listing warnings that are not diagnostics")
    environments = body.get("environments") or {}
    if not isinstance(environments, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in environments.items()
    ):
        raise _unreadable(MANIFEST, "listing environments that are not names and tiers")
    manifest = Manifest(
        str(body.get("generator", "")), dict(inputs), None, tuple(warnings), dict(environments)
    )
    manifest.format = body["format"]
    manifest.reader = _Records(root, listed, leftovers)
    if manifest.format == 1:  # everything in one file; records on disk are a killed build's, not yet owned
        for path, hashes in checked.items():
            manifest._listing(path, create=True)[path] = hashes
        return manifest
    for path in checked:
        name = record_of(path)
        if name is not None:
            raise _unreadable(
                MANIFEST, f"listing {path!r}, which {record_path(name)} lists", _line_of(data, path)
            )
    manifest.top = checked
    manifest.records = dict.fromkeys(sorted(listed))
    return manifest


class _Records:
    """Reads environments' records from disk, checking each entry."""

    def __init__(self, root: Path, listed: set[str], leftovers: list[str]) -> None:
        self.root, self.listed, self.leftovers = root, listed, leftovers

    def read(self, names: list[str]) -> dict[str, Files]:
        out = {}
        with Root(self.root) as handle:
            for name in names:
                rel = record_path(name)
                try:
                    data = handle.read(rel, MAX_MANIFEST_BYTES)
                except Refused as exc:
                    raise _unreadable(rel, exc.why) from None
                except OSError as exc:
                    raise _unreadable(rel, exc.strerror or str(exc)) from None
                body = _json(rel, data)
                files = body.get("files")
                if not isinstance(files, dict) or set(body) != {"files"}:
                    raise _unreadable(rel, "not a record of files")
                checked = _checked(rel, data, files)
                for path in checked:
                    if record_of(path) != name:
                        raise _unreadable(
                            rel,
                            f"listing {path!r}, which is not in overlays/{name}/ or rendered/{name}/",
                            _line_of(data, path),
                        )
                out[name] = checked
        return out


_RECORD_NAMES = re.compile(r"(?:[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?\.json(?:\n|\Z))*").fullmatch


def _listed_records(handle: Root) -> tuple[set[str], list[str]]:
    """The environments with a record in RECORDS/, and a killed build's temporary files there. Anything
    else there is refused: kompile keeps its records in that folder, and nothing else. (Ten thousand
    names are checked as one text; reading a record refuses one that is not a regular file.)"""
    entries = list(handle.listdir(RECORDS))
    joined = "\n".join(entry.name for entry in entries)
    if joined.count("\n") == len(entries) - 1 and _RECORD_NAMES(joined):
        return {entry.name[: -len(".json")] for entry in entries}, []
    names, leftovers = set(), []
    for entry in entries:
        name = entry.name.removesuffix(".json")
        if TEMP.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
            leftovers.append(f"{RECORDS}/{entry.name}")
        elif entry.name.endswith(".json") and _RECORD_NAME(name):
            names.add(name)
        else:
            raise _unreadable(
                f"{RECORDS}/{entry.name}",
                "not a record kompile writes (<environment>.json files)",
                hint=f"move it out of {RECORDS}/: kompile keeps its records there, and nothing else",
            )
    return names, sorted(leftovers)


def _json(rel: str, data: bytes) -> dict:
    try:
        body = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise _unreadable(rel, f"not JSON ({exc})") from None
    if not isinstance(body, dict):
        raise _unreadable(rel, "not a JSON object")
    return body


def _checked(rel: str, data: bytes, files: dict) -> Files:
    """The listing, each entry checked: the usual one at a glance, anything else entry by entry."""
    checked = _usual(files) or {}
    for path, hashes in () if checked else files.items():
        hashes = (hashes,) if isinstance(hashes, str) else hashes
        problem = entry_problem(path, hashes)
        if problem:
            raise _unreadable(
                rel, f"listing {path!r}, which kompile never writes ({problem})", _line_of(data, path)
            )
        checked[path] = tuple(hashes)
    return checked


def entry_problem(path, hashes) -> str | None:
    """Why a manifest entry is not one kompile writes: a normalised path under an output folder, and one
    or more SHA-256 hex digests (None when it is)."""
    problem = path_problem(path) or (
        f"it is not under {', '.join(f + '/' for f in OUTPUT_FOLDERS)}"
        if path.split("/", 1)[0] not in OUTPUT_FOLDERS or "/" not in path
        else None
    )
    if problem is None and not (
        isinstance(hashes, list | tuple)
        and hashes
        and all(isinstance(h, str) and _HASH.fullmatch(h) for h in hashes)
    ):
        problem = "its hashes are not SHA-256 hex digests"
    return problem


def _usual(files: dict) -> dict[str, tuple[str, ...]] | None:
    """The usual listing at a glance: every path plain and every value one digest, decided by a few passes
    over all of them joined by line breaks (none inside: the count says so). None sends the listing the
    long way, entry by entry, where anything unusual is named."""
    hashes = list(files.values())
    count = len(hashes)
    if not count or not all(type(h) is str for h in hashes):
        return None
    digests = "\n".join(hashes)  # 64 hex digits, a line break, 64 more ...
    if (
        len(digests) != 65 * count - 1
        or digests.count("\n") != count - 1
        or digests[64::65] != "\n" * (count - 1)
        or not _HEX_LINES(digests)
    ):
        return None
    paths = "\n".join(files)
    lines = paths.split("\n")
    starts = "\n" + paths  # every line starts with an output folder and a slash
    if (
        len(lines) != count
        or max(map(len, lines)) > _LONGEST_PLAIN_LINE
        or not _PLAIN_CHARACTERS(paths)
        or sum(starts.count(f"\n{folder}/") for folder in OUTPUT_FOLDERS) != count
        or "//" in paths
        or "/\n" in paths
        or paths.endswith("/")
        or _DOT_COMPONENT(paths)
    ):
        return None
    return {path: (hashed,) for path, hashed in files.items()}


def recorded_environments(manifest: Manifest) -> dict[str, str | None]:
    """The environments a manifest's build wrote, with their tiers (None when an older kompile did not record it)."""
    found: dict[str, str | None] = dict.fromkeys(
        name for name, files in sorted(manifest.records.items()) if files is None or files
    )
    found.update(
        (path.split("/")[1], None)
        for path in manifest.top
        if path.startswith("overlays/") and path.count("/") >= 2
    )
    found.update(manifest.environments)
    return found


def warning_diagnostics(manifest: Manifest) -> list[Diagnostic]:
    """The opt-outs a manifest recorded, as the build reported them."""
    out = []
    for item in manifest.warnings:
        path, line, column = item.get("file"), item.get("line"), item.get("column")
        span = Span(str(path), int(line or 0), int(column or 0)) if isinstance(path, str) else None
        out.append(
            Diagnostic(Code.OPT_OUT, str(item.get("message", "")), span, item.get("hint"), Severity.WARNING)
        )
    return out


def _line_of(data: bytes, path) -> int:
    needle = json.dumps(path).encode()
    index = data.find(needle)
    return data.count(b"\n", 0, index) + 1 if index >= 0 else 0


def _unreadable(rel: str, problem: str, line: int = 0, hint: str | None = None) -> KompileError:
    return KompileError(
        [
            Diagnostic(
                Code.MANIFEST,
                f"{rel} is {problem}"
                if not problem.startswith("listing")
                else f"{rel} is refused: it is {problem}",
                Span(rel, line, 1 if line else 0),
                hint
                or f"restore it from git (git checkout -- {MANIFEST} {RECORDS}); kompile uses them to know which "
                "files it owns",
            )
        ]
    )
