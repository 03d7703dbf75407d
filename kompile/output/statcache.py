"""What `kompile check --fast` remembers between runs, as git's index does: each input and output file's
identity (inode, size, modification and change times) when its bytes were last verified, in
.kompile-cache/ (local to the checkout: the folder ignores itself in git, like .pytest_cache).

When every file still has the identity it had, the fast check answers without reading a byte; any
difference (a file touched, replaced, added to the manifest, the manifest itself rewritten) sends it
back to reading and hashing, which records the identities again. A file changed within the clock's
resolution of being recorded could keep its identity ("racily clean" in git's terms): entries younger
than RACY_SECONDS are not recorded, so they are always read. The cache is plain text, bounded in size,
read without following links; a line that does not parse invalidates the whole cache.
"""

from __future__ import annotations

import json
import os
import stat
import time
from collections import defaultdict
from pathlib import Path

from kompile import __version__
from kompile.output.manifest import MANIFEST, RECORDS
from kompile.parallel import cores, in_workers, job
from kompile.safefs import (
    CACHE_DIR,
    DIR_FLAGS,
    RACY_SECONDS,
    Refused,
    Root,
    file_identity,
    path_problem,
    write_cache_file,
)

CACHE_FILE = f"{CACHE_DIR}/check"
MAX_CACHE_BYTES = 64 << 20
_HEADER = f"kompile-check-cache 2 {__version__}\n"


def _walk(disk: Root, folders: list[str]):
    """(folder, handle or None) for each folder, in order: each opened once from its parent without
    following links (as safefs does); None when it cannot be (missing, a link, not a folder)."""
    stack: list[tuple[str, int | None]] = [("", os.dup(disk.fd))]
    try:
        for folder in folders:
            while len(stack) > 1 and not (folder == stack[-1][0] or folder.startswith(stack[-1][0] + "/")):
                fd = stack.pop()[1]
                if fd is not None:
                    os.close(fd)
            current, fd = stack[-1]
            rest = folder[len(current) :].strip("/")
            for part in rest.split("/") if rest else []:
                current = f"{current}/{part}" if current else part
                child = None
                if fd is not None and part not in (".", "..") and not path_problem(current):
                    try:
                        child = os.open(part, DIR_FLAGS, dir_fd=fd)
                    except OSError:
                        child = None
                stack.append((current, child))
                fd = child
            yield folder, fd
    finally:
        for _, fd in stack:
            if fd is not None:
                os.close(fd)


def _identity_at(fd: int | None, name: str) -> str | None:
    if fd is None or name in ("", ".", "..") or "/" in name or "\0" in name:
        return None
    try:
        info = os.stat(name, dir_fd=fd, follow_symlinks=False)
    except OSError:
        return None
    return file_identity(info) if stat.S_ISREG(info.st_mode) else None


def still_current(root: Path, specs: set[str]) -> list[dict] | None:
    """The warnings the verified manifest recorded, when every file the cache lists still has the
    identity it was verified with (the manifest among them, so a rebuilt or edited manifest is never
    taken for the one verified) and the specs are the ones it lists; else None. The listing is grouped
    by folder ("/<folder>" lines, then "<identity> <name>" lines); the first difference ends it."""
    try:
        with Root(root) as disk:
            info = disk.lstat(CACHE_FILE)
            if info is None or not stat.S_ISREG(info.st_mode):
                return None
            text = disk.read(CACHE_FILE, MAX_CACHE_BYTES).decode("utf-8")
            if not text.startswith(_HEADER):
                return None
            warnings_line, _, listing = text[len(_HEADER) :].partition("\n")
            warnings = json.loads(warnings_line)
            if not isinstance(warnings, list) or not all(isinstance(w, dict) for w in warnings):
                return None
            root_files, spec_lines = _group(listing, ""), _group(listing, "environments")
            if root_files is None or not any(line.endswith(f" {MANIFEST}") for line in root_files):
                return None
            listed_specs = {f"environments/{line.rsplit(' ', 1)[-1]}" for line in spec_lines or ()}
            if listed_specs != specs or (listing and not listing.startswith("/")):
                return None
            # At 10,000 environments, a stat of a hundred thousand files: spread over the cores, each
            # worker reading its own part of the listing (cut where a folder's lines begin).
            folders = listing.count("\n/") + 1
            workers = cores(folders)
            cuts = _cuts(listing, workers * 8 if workers else 1)
            shared = (disk, listing, cuts)
            if workers:
                verified: list[bool] = []
                in_workers(workers, shared, _verify, len(cuts), verified.append)
            else:
                verified = _verify((0, len(cuts)), shared)
            if not all(verified):
                return None
    except (OSError, ValueError, Refused):
        return None
    return warnings


def _group(listing: str, folder: str) -> list[str] | None:
    """The lines of one folder's group; None when it is not there once."""
    header = f"/{folder}\n"
    start = 0 if listing.startswith(header) else listing.find(f"\n{header}") + 1
    if (not start and not listing.startswith(header)) or listing.find(f"\n{header}", start) >= 0:
        return None
    start += len(header)
    end = listing.find("\n/", start - 1)
    return _lines(listing[start : end + 1 if end >= 0 else len(listing)])


def _lines(text: str) -> list[str]:
    """Lines as record() writes them: ended by "\n" only (splitlines would also end one at "\r",
    "\x1c" or "\u2028", and a name holding one would read as a folder's line)."""
    return text.removesuffix("\n").split("\n") if text else []


def _cuts(listing: str, parts: int) -> list[tuple[int, int]]:
    """The listing in about this many parts, each beginning with a folder's line."""
    starts = [0]
    for part in range(1, parts):
        at = listing.find("\n/", max(starts[-1], part * len(listing) // parts))
        if at < 0:
            break
        starts.append(at + 1)
    return list(zip(starts, [*starts[1:], len(listing)], strict=True))


def _verify(bounds: tuple[int, int], shared: tuple | None = None) -> list[bool]:
    """[whether every file these parts of the listing name still has its identity] (the first
    difference ends it)."""
    disk, listing, cuts = job() if shared is None else shared
    groups: list[tuple[str, list[str]]] = []
    for start, end in cuts[bounds[0] : bounds[1]]:
        for line in _lines(listing[start:end]):
            if line.startswith("/"):
                groups.append((line[1:], []))
            elif groups:
                groups[-1][1].append(line)
            else:
                return [False]
    try:
        for (folder, fd), (_, lines) in zip(_walk(disk, [f for f, _ in groups]), groups, strict=True):
            for line in lines:
                identity, _, name = line.rpartition(" ")
                if _identity_at(fd, name) != identity:
                    return [False]
            if folder == RECORDS and (fd is None or len(os.listdir(fd)) != len(lines)):
                return [False]  # a record added beside the ones verified
    except (OSError, ValueError):
        return [False]  # (an exception of a worker may not survive the trip back)
    return [True]


def record(root: Path, paths: list[str], warnings: list[dict]) -> None:
    """Remember the identities of these files, just verified (the manifest among them), and the
    warnings the manifest recorded. Best effort: a cache that cannot be written only makes the next fast
    check read the files."""
    by_folder: dict[str, list[str]] = defaultdict(list)
    for path in paths:
        folder, _, name = path.rpartition("/")
        by_folder[folder].append(name)
    now = time.time_ns()
    lines = []
    try:
        with Root(root) as disk:
            for folder, fd in _walk(disk, sorted(by_folder)):
                lines.append(f"/{folder}\n")
                for name in sorted(by_folder[folder]):
                    identity = _identity_at(fd, name)
                    if identity is None:
                        return  # something moved meanwhile: record nothing
                    mtime, ctime = (int(part) for part in identity.split()[2:])
                    if now - max(mtime, ctime) < RACY_SECONDS * 1e9:
                        return  # too young to vouch for: the next check reads the files (and records)
                    lines.append(f"{identity} {name}\n")
    except (OSError, Refused):
        return
    write_cache_file(root, "check", _HEADER + json.dumps(warnings, sort_keys=True) + "\n" + "".join(lines))
