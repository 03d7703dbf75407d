"""Input files under the repo root: paths that stay inside it, a size cap, UTF-8, and never a link."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from kompile.errors import Code, Diagnostic, KompileError, Span
from kompile.safefs import Refused, Root

MAX_FILE_BYTES = 1 << 20


# ---------------------------------------------------------------------------------------------
# Paths: everything kompile reads lives under the repo root.


def check_relative_path(text: str) -> str | None:
    """Why a path written in a spec is not acceptable, or None. Pure: no file system access."""
    if not text:
        return "the path is empty"
    if "\x00" in text:
        return "the path contains a NUL byte"
    if "\\" in text:
        return "use '/' to separate folders"
    if text.startswith("/") or (len(text) > 1 and text[1] == ":"):
        return "the path is absolute; write it relative to the repo root"
    if ".." in PurePosixPath(text).parts:
        return "the path climbs out with '..'; write it relative to the repo root"
    return None


PATH_HINT = "write paths relative to the repo root (the folder that holds environments/), e.g. secrets/prod/shop-django.yaml"
LINK_HINT = (
    "kompile reads only files inside the repo, and never through a symbolic link; copy the file in instead"
)


def normalised(rel: str) -> str:
    """A checked relative path without '.' components or doubled slashes (secrets/./a.yaml -> secrets/a.yaml)."""
    return PurePosixPath(rel).as_posix()


_local = threading.local()  # .roots: the roots a `reading` block of this thread holds open, by path


@contextmanager
def reading(root: Path) -> Iterator[None]:
    """Within the block, reads under root share one handle on it: loading ten thousand specs walks to
    environments/ once, not once per file. (Each read is still walked and checked from that handle.)"""
    key = os.fspath(root)
    roots = _roots()
    if key in roots:
        yield
        return
    try:
        handle = Root(root)
    except OSError:  # (no such folder, or not one: the first read says so, as it would without the block)
        yield
        return
    with handle:
        roots[key] = handle
        try:
            yield
        finally:
            del roots[key]


def _roots() -> dict[str, Root]:
    if not hasattr(_local, "roots"):
        _local.roots = {}
    return _local.roots


def read_bytes(root: Path, rel: str, span: Span | None = None) -> bytes:
    """A regular file under root, never through a link at any component, at most 1 MiB."""
    return read_stat(root, rel, span)[0]


def read_stat(root: Path, rel: str, span: Span | None = None) -> tuple[bytes, os.stat_result]:
    """read_bytes(), and the file's status when it was opened."""
    where = span or Span(rel)
    problem = check_relative_path(rel)
    if problem:
        raise KompileError(
            [Diagnostic(Code.PATH_OUTSIDE_ROOT, f"path '{rel}' is refused: {problem}", where, PATH_HINT)]
        )
    try:
        shared = _roots().get(os.fspath(root))
        if shared is not None:
            return shared.read_stat(normalised(rel), MAX_FILE_BYTES)
        with Root(root) as handle:
            return handle.read_stat(normalised(rel), MAX_FILE_BYTES)
    except Refused as exc:
        raise KompileError([refusal(rel, exc, where)]) from None
    except OSError as exc:
        raise KompileError(
            [Diagnostic(Code.UNREADABLE, f"cannot read '{rel}': {exc.strerror}", where)]
        ) from None


def refusal(rel: str, exc: Refused, where: Span) -> Diagnostic:
    """What a refused read means to the person who named the path."""
    if exc.missing:
        return Diagnostic(Code.UNREADABLE, f"file '{rel}' does not exist", where, PATH_HINT)
    if "symbolic link" in exc.why:
        return Diagnostic(
            Code.PATH_OUTSIDE_ROOT, f"path '{rel}' is refused: {exc.rel} is a symbolic link", where, LINK_HINT
        )
    if "limit" in exc.why or "larger" in exc.why:
        return Diagnostic(
            Code.UNREADABLE,
            f"'{rel}' is larger than 1 MiB",
            where,
            "split it, or move what is not configuration out of the repo",
        )
    return Diagnostic(
        Code.UNREADABLE,
        f"cannot read '{rel}': {exc.why}",
        where,
        "point at a YAML file, not a folder or a device",
    )


def decode_utf8(data: bytes, rel: str) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise KompileError(
            [
                Diagnostic(
                    Code.NOT_UTF8,
                    f"'{rel}' is UTF-16; kompile reads UTF-8 only",
                    Span(rel, 1, 1),
                    "save the file as UTF-8",
                )
            ]
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        # Columns count characters, as YAML positions do; what precedes the bad byte on its line may be UTF-8.
        col = len(data[line_start : exc.start].decode("utf-8", "replace")) + 1
        raise KompileError(
            [
                Diagnostic(
                    Code.NOT_UTF8,
                    f"'{rel}' is not valid UTF-8 (byte 0x{data[exc.start]:02x})",
                    Span(rel, line, col),
                    "save the file as UTF-8",
                )
            ]
        ) from None
    return text[1:] if text.startswith("\ufeff") else text
