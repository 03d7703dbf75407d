"""The record of what kompile generated: every output path with the hash of its bytes, and the inputs
(with their hashes) and kompile version it was built from.

It is committed with the output. It is how kompile knows which files it owns (it never touches
others), notices a generated file edited by hand, and answers `check` without recompiling when
neither the inputs nor the outputs changed.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import re
from dataclasses import dataclass, field
from json.encoder import encode_basestring_ascii as _string  # type: ignore[attr-defined]
from pathlib import Path

from kompile import __version__
from kompile.errors import Code, Diagnostic, KompileError, Severity, Span
from kompile.names import OUTPUT_FOLDERS
from kompile.safefs import Refused, Root, path_problem

MANIFEST = ".kompile-manifest.json"
FORMAT = 1


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Manifest:
    generator: str = f"kompile {__version__}"
    inputs: dict[str, str] = field(default_factory=dict)
    # path -> the hashes of its acceptable contents: one normally; old and new while a build is writing,
    # so a build killed half way leaves a record that still owns every file it may have touched.
    files: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # The opt-outs the build listed (as Diagnostic.as_dict()), so `check` can list them without compiling.
    warnings: tuple[dict, ...] = ()
    # Each environment built, with its tier ("" for none): what removing one means is known from this.
    environments: dict[str, str] = field(default_factory=dict)

    def owns(self, path: str, data: bytes) -> bool:
        return digest(data) in self.files.get(path, ())

    def under(self, folders: tuple[str, ...]) -> list[str]:
        """The recorded paths inside these folders or naming one, found by bisecting the sorted paths:
        a build of one environment looks at its own files, not at every environment's."""
        paths = sorted(self.files)  # (already in order when read: one pass)
        found: list[str] = []
        for folder in dict.fromkeys(folders):
            at = bisect.bisect_left(paths, folder)
            if at < len(paths) and paths[at] == folder:
                found.append(folder)
            # Inside the folder: from "<folder>/" up to "<folder>0" ("0" follows "/" in every encoding).
            found += paths[bisect.bisect_left(paths, folder + "/") : bisect.bisect_left(paths, folder + "0")]
        return sorted(set(found))  # (once each, should one folder hold another; in path order)

    def to_bytes(self) -> bytes:
        body = {
            "format": FORMAT,
            "generator": self.generator,
            "inputs": dict(sorted(self.inputs.items())),
            "files": _FILES,  # (a placeholder: the listing is most of the record, and written apart)
        }
        if self.warnings:
            body["warnings"] = list(self.warnings)
        if self.environments:
            body["environments"] = dict(sorted(self.environments.items()))
        head, _, tail = indented_json(body).partition(_string(_FILES))
        return (head + _listing(self.files) + tail + "\n").encode()


_FILES = "\0files"  # (a string no manifest holds: _string quotes it as \u0000files)
_QUOTED_AS_IS = re.compile(r"[ !#-\[\]-~\n]*").fullmatch  # printable ASCII but " and \ (and line breaks)


def _listing(files: dict[str, tuple[str, ...]]) -> str:
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
    it: a forged manifest can make kompile refuse, never read or delete outside the output folders."""
    try:
        with Root(root) as handle:
            data = handle.read(MANIFEST, MAX_MANIFEST_BYTES)
    except Refused as exc:
        if exc.missing:
            return None
        raise _unreadable(exc.why) from None
    except OSError as exc:
        raise _unreadable(exc.strerror or str(exc)) from None
    try:
        body = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise _unreadable(f"not JSON ({exc})") from None
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        raise _unreadable(f"of an unknown format {body.get('format') if isinstance(body, dict) else None!r}")
    files, inputs = body.get("files"), body.get("inputs") or {}
    if not isinstance(files, dict) or not isinstance(inputs, dict):
        raise _unreadable("missing its files or inputs")
    checked = _usual(files) or {}
    for path, hashes in () if checked else files.items():
        hashes = (hashes,) if isinstance(hashes, str) else hashes
        problem = entry_problem(path, hashes)
        if problem:
            raise _unreadable(
                f"listing {path!r}, which kompile never writes ({problem})", _line_of(data, path)
            )
        checked[path] = tuple(hashes)
    for path, recorded in inputs.items():
        problem = path_problem(path) or (
            None if isinstance(recorded, str) and _HASH.fullmatch(recorded) else "not a hash"
        )
        if problem:
            raise _unreadable(
                f"listing the input {path!r}, which kompile never reads ({problem})", _line_of(data, path)
            )
    warnings = body.get("warnings") or []
    if not isinstance(warnings, list) or not all(
        isinstance(w, dict) and all(isinstance(v, str | int | None) for v in w.values()) for w in warnings
    ):
        raise _unreadable("listing warnings that are not diagnostics")
    environments = body.get("environments") or {}
    if not isinstance(environments, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in environments.items()
    ):
        raise _unreadable("listing environments that are not names and tiers")
    return Manifest(
        generator=str(body.get("generator", "")),
        inputs=dict(inputs),
        files=checked,
        warnings=tuple(warnings),
        environments=dict(environments),
    )


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
    found: dict[str, str | None] = {
        path.split("/")[1]: None
        for path in manifest.files
        if path.startswith("overlays/") and path.count("/") >= 2
    }
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


def _unreadable(problem: str, line: int = 0) -> KompileError:
    return KompileError(
        [
            Diagnostic(
                Code.MANIFEST,
                f"{MANIFEST} is {problem}"
                if not problem.startswith("listing")
                else f"{MANIFEST} is refused: it is {problem}",
                Span(MANIFEST, line, 1 if line else 0),
                f"restore it from git (git checkout -- {MANIFEST}); kompile uses it to know which files it owns",
            )
        ]
    )
