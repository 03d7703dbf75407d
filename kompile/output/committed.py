"""What the last full build left in bases/ and overlays/, remembered in .kompile-cache/ so that `kompile
diff` compiles only the environments whose committed overlay may no longer be what their specs give.

A full build records each file it owns there with its identity on disk (as git's index does) and its
digest, and for each environment the digest of the inputs it was built from (the index's hashes of
every file its check read). An environment is unchanged for diff when its inputs are the ones it was
built from, every one of its files still has its identity, and its folder holds no other file; a file
whose identity is "racily clean" (modified within RACY_SECONDS of the record) is read and hashed
instead. Anything the record cannot vouch for (no record, another kompile, the base's files touched)
sends diff back to compiling everything. The record never vouches for `check`: a committed manifest can
lie, a local record of what this machine wrote cannot be pushed.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from kompile.index_file import Damaged, Index, changed_inputs, read_index, read_sealed, write_sealed
from kompile.load.listing import spec_files
from kompile.output.manifest import Manifest, digest
from kompile.parallel import cores, job, started
from kompile.safefs import DIR_FLAGS, RACY_SECONDS, TEMP, Refused, Root, file_identity

FOLDERS = ("bases", "overlays")  # what diff compares (rendered/ and gitops/ follow from them)


def inputs_digest(index: Index, name: str) -> str:
    """One digest of every input an environment's check read, as the index has them."""
    inputs = index.inputs_of(name)
    listing = "".join(f"{rel} {index.files[rel][1]}\n" for rel in sorted(inputs))
    return hashlib.sha256(listing.encode()).hexdigest()


def record_outputs(
    root: Path,
    manifest: Manifest,
    index: Index | None,
    written: dict[str, str] | None = None,
    read: tuple[dict[str, str], int] | None = None,
) -> None:
    """After a full build: each base and overlay file the manifest lists (as written, so as compiled),
    with its identity now, and what each environment was built from. Best effort. The identities the
    build already knows are taken from `written` (files written into folders new to disk) and `read`
    (files found unchanged, with when the build started reading), which are emptied; the other files
    are looked at."""
    written = {} if written is None else written
    read_identities, read_since = ({}, 0) if read is None else read
    if index is None:
        return
    now = time.time_ns()
    racy_after = now - RACY_SECONDS * 1e9
    # An identity taken when read may have been taken long before now: a write in the same clock tick
    # after the read keeps it, so it is racily clean from RACY_SECONDS before the reading started.
    read_racy_after = min(read_since, now) - RACY_SECONDS * 1e9
    folders: dict[str, dict[str, str | list[str]]] = defaultdict(dict)
    # In path order, listing by listing (MANIFEST's bases/, then each environment's overlays/): no copy
    # of a hundred thousand entries to sort.
    manifest.read_all()
    listings = (manifest.top, *(files or {} for _, files in sorted(manifest.records.items())))
    try:
        with Root(root) as disk:
            for path, hashes in ((p, listing[p]) for listing in listings for p in sorted(listing)):
                if not path.startswith(("bases/", "overlays/")):
                    continue
                folder, _, name = path.rpartition("/")
                if len(hashes) != 1:
                    return  # a build that did not finish: record nothing
                since = racy_after
                identity = written.pop(path, None)
                if identity is None:
                    identity, since = read_identities.pop(path, None), read_racy_after
                if identity is None:
                    info = os.stat(name, dir_fd=disk.folder(folder), follow_symlinks=False)
                    if not stat.S_ISREG(info.st_mode):
                        return
                    identity, since = file_identity(info), racy_after
                # The digest only where the identity cannot vouch (the file is racily clean).
                racy = max(map(int, identity.split(" ")[2:])) >= since
                folders[folder][name] = [identity, hashes[0]] if racy else identity
    except (OSError, Refused):
        return
    finally:
        written.clear()  # (their tables freed before the peak below)
        read_identities.clear()
    try:
        built = {name: inputs_digest(index, name) for name in sorted(index.environments)}
    except Damaged:
        return
    text = json.dumps(
        {"app": index.files[index.app][1], "built": built, "folders": folders}, separators=(",", ":")
    )
    del folders  # (a hundred thousand entries: gone before the text is encoded, the peak of a build's memory)
    write_sealed(root, "outputs", text.encode())


@dataclass(frozen=True)
class Stale:
    """What diff must compile: environments whose overlay may differ from what their specs give now."""

    environments: frozenset[str]  # with a spec, and an overlay that may differ (or none)
    removed: frozenset[str]  # an overlay on disk, no spec
    unchanged: frozenset[str]  # with a spec and an overlay that is what the spec gives


def stale_environments(root: Path) -> Stale | None:
    """Which environments' committed overlays may differ from their specs, from the index and the
    record of the last full build; None when they cannot say (diff then compiles everything)."""
    try:
        record = _read_record(root)
        if record is None:
            return None
        # The overlay folders are compared with the record on the other cores meanwhile (at 10,000
        # environments, a stat of a hundred thousand files: the largest part of a diff after one change).
        with _scanning(root, record) as scanned:
            index = read_index(root)
            if index is None or record["app"] != index.files[index.app][1]:
                return None
            paths, problems = spec_files(root)
            if problems:
                return None
            changed = changed_inputs(root, index, paths)
            if index.app in changed or index.app not in paths:
                return None
            names = {rel.rpartition("/")[2].rpartition(".")[0] for rel in paths if rel != index.app}
            built = record["built"]
            stale = {name for name in names if name not in index.environments or name not in built}
            stale.update(name for name in index.read_by(changed) if name in names)
            stale.update(
                name
                for name in index.environments
                if name in names and built.get(name) != inputs_digest(index, name)
            )
            found = scanned()
    except (OSError, Refused, ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return None  # (Damaged among them)
    if found is None or not names:
        return None  # (compiling everything says what that means)
    on_disk, overlays = found
    stale |= on_disk & names
    removed = frozenset(overlays - names)
    return Stale(frozenset(stale), removed, frozenset(names - stale))


def _read_record(root: Path) -> dict | None:
    """The record, when this kompile wrote it and its shape is the one record_outputs writes."""
    sealed = read_sealed(root, "outputs")
    if sealed is None:
        return None
    record = json.loads(sealed[1])
    built, folders = record.get("built"), record.get("folders")
    if not (
        isinstance(record.get("app"), str)
        and isinstance(built, dict)
        and all(isinstance(digest, str) for digest in built.values())
        and isinstance(folders, dict)
        and all(isinstance(files, dict) for files in folders.values())
    ):
        return None
    return record


@contextmanager
def _scanning(root: Path, record: dict) -> Iterator[Callable[[], tuple[set[str], set[str]] | None]]:
    """Starts comparing the overlay folders with the record (in forked workers from 200 environments
    up), and yields what waits for the answer: the environments whose overlay folder is not as
    recorded (a file added, gone, or with other bytes), and those with an overlay (a folder holding
    YAML, as diff reads the committed output); None when the base's folder is not as recorded (every
    environment would differ) or a folder cannot be read as diff needs."""
    recorded: dict[str, dict[str, str | list[str]]] = record["folders"]
    by_env: dict[str, dict[str, dict]] = defaultdict(dict)
    for folder, files in recorded.items():
        parts = folder.split("/", 2)
        if parts[0] == "overlays" and len(parts) > 1:
            by_env[parts[1]][folder] = files
    with Root(root) as disk:
        bases = _walk(disk, "bases")
        expected = {folder: files for folder, files in recorded.items() if folder.split("/")[0] == "bases"}
        if not _same(disk, bases, expected):
            yield lambda: None
            return
        folders = sorted(_walk(disk, "overlays", depth=0)[""])  # (its own files left out)
        shared = (disk, folders, by_env)
        workers = cores(len(folders))
        if not workers:
            yield lambda: _found(folders, by_env, _scan_chunk((0, len(folders)), shared))
            return
        with started(workers, shared, _scan_chunk, len(folders)) as states:
            yield lambda: _found(folders, by_env, states())


def _found(
    folders: list[str], by_env: dict[str, dict], states: list[tuple[bool, bool] | None]
) -> tuple[set[str], set[str]] | None:
    if None in states:
        return None  # something diff's full reading will name (a link, a file too large)
    differing = {name for name, (_, same) in zip(folders, states, strict=True) if not same}
    differing.update(set(by_env) - set(folders))  # recorded, gone from disk
    overlays = {
        name
        for name, (has_yaml, _) in zip(folders, states, strict=True)
        if has_yaml and not TEMP.fullmatch(name)  # (a folder an interrupted build staged)
    }
    return differing, overlays


def _scan_chunk(bounds: tuple[int, int], shared: tuple | None = None) -> list[tuple[bool, bool] | None]:
    """For each environment folder in bounds: whether it holds YAML, and whether it is as recorded
    (None when it cannot be read as diff needs)."""
    disk, folders, by_env = job() if shared is None else shared
    out: list[tuple[bool, bool] | None] = []
    for name in folders[bounds[0] : bounds[1]]:
        try:
            found = _walk(disk, f"overlays/{name}")
            has_yaml = any(file.endswith(".yaml") for files in found.values() for file in files)
            out.append((has_yaml, _same(disk, found, by_env.get(name, {}))))
        except (OSError, Refused, ValueError):
            out.append(None)  # (an exception of a worker may not survive the trip back)
    return out


def _same(disk: Root, found: dict[str, dict[str, str]], recorded: dict[str, dict]) -> bool:
    """Every folder found holds the files recorded, each with its identity (or, racily clean then, its
    bytes), and every folder recorded is found."""
    for folder in found.keys() | recorded.keys():
        entries, expected = found.get(folder, {}), recorded.get(folder, {})
        if entries == expected:
            continue  # every file with the identity recorded (the usual case: one comparison)
        if entries.keys() != expected.keys() or not all(
            _unchanged(disk, f"{folder}/{name}", ident, expected[name]) for name, ident in entries.items()
        ):
            return False
    return True


def _walk(disk: Root, top: str, depth: int | None = None) -> dict[str, dict[str, str]]:
    """{folder: {name: identity}} for every file under top, each folder opened from its parent without
    following a link (a link or anything else that is not a file: ValueError, and diff's full reading
    says what it is). With depth 0, top's own files and, under "", the names of its folders."""
    out: dict[str, dict[str, str]] = {"": {}} if depth == 0 else {}
    try:
        pending = [(top, os.dup(disk.folder(top)))]
    except Refused as exc:
        if exc.missing:
            return out
        raise
    try:
        while pending:
            folder, fd = pending.pop()
            try:
                files = out.setdefault(folder, {})
                with os.scandir(fd) as entries:  # (their stat() reads through fd: it stays open until done)
                    for entry in entries:
                        if entry.is_dir(follow_symlinks=False):
                            if depth == 0:
                                out.setdefault("", {})[entry.name] = ""
                                continue
                            child = os.open(entry.name, DIR_FLAGS, dir_fd=fd)
                            pending.append((f"{folder}/{entry.name}", child))
                            continue
                        info = entry.stat(follow_symlinks=False)
                        if not stat.S_ISREG(info.st_mode):
                            raise ValueError(f"{folder}/{entry.name} is not a file")
                        files[entry.name] = file_identity(info)
            finally:
                os.close(fd)
    finally:
        for _, fd in pending:
            os.close(fd)
    return out


def _unchanged(disk: Root, path: str, identity: str, recorded: str | list[str]) -> bool:
    """The file has the identity recorded and, when it was racily clean then, the bytes too."""
    ident, hashed = (recorded, None) if isinstance(recorded, str) else recorded
    if identity != ident:
        return False
    return hashed is None or digest(disk.read(path, 64 << 20)) == hashed
