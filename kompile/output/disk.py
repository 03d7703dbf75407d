"""What is in the output folders, read with one listing per folder and never through a link: the
bytes a build compares with, obstacles, and temporary files of an interrupted build."""

from __future__ import annotations

import os

from kompile.errors import Code, Diagnostic, Span
from kompile.output.manifest import MANIFEST
from kompile.safefs import TEMP, Refused, Root, file_identity

LEGACY_TEMP_SUFFIX = ".kompile-tmp"  # what builds before 0.2 left behind when interrupted
MAX_OUTPUT_BYTES = 16 << 20  # larger files in the output folders are not kompile's


REFUSED = object()  # a path kompile will not read or write (reported as a problem)


class Disk:
    """What is on disk, read with one listing per folder, never through a link."""

    def __init__(self, handle: Root, problems: list[Diagnostic]) -> None:
        self.handle = handle
        self.problems = problems
        self.listings: dict[str, dict[str, os.DirEntry] | None] = {}
        self.identities: dict[str, str] = {}  # each file read -> its identity as read (safefs.file_identity)

    def listing(self, folder: str) -> dict[str, os.DirEntry] | None:
        """The folder's entries ({} when it does not exist yet); None when it is refused (reported once)."""
        if folder not in self.listings:
            parent, _, name = folder.rpartition("/")
            # A folder its parent's listing lacks is not there (a cold build asks about thousands): {}
            # without walking to it. Only as deep as kompile's folders go (a forged manifest may name a
            # path a thousand folders deep), and below the top ones (the root's listing is not worth it).
            above = self.listing(parent) if parent and folder.count("/") <= 4 else None
            if above is not None and name not in above:
                self.listings[folder] = {}
                return self.listings[folder]
            try:
                self.listings[folder] = {entry.name: entry for entry in self.handle.listdir(folder)}
            except Refused as exc:
                self.listings[folder] = None
                self.problems.append(
                    Diagnostic(
                        Code.FOREIGN_FILE,
                        f"{exc.rel}: {exc.why}",
                        Span(exc.rel),
                        "kompile writes only into folders of the repo: move it away, then build again",
                    )
                )
            except OSError as exc:
                self.listings[folder] = None
                self.problems.append(
                    Diagnostic(Code.WRITE, f"cannot read {folder}: {exc.strerror}", Span(folder))
                )
        return self.listings[folder]

    def read(self, path: str):
        """The file's bytes, None when there is none, or REFUSED (with a problem reported)."""
        folder, _, name = path.rpartition("/")
        entries = self.listing(folder)
        if entries is None:
            return REFUSED
        entry = entries.get(name)
        if entry is None:
            return None
        if entry.is_symlink() or not entry.is_file(follow_symlinks=False):
            what = (
                "a symbolic link"
                if entry.is_symlink()
                else "a folder"
                if entry.is_dir(follow_symlinks=False)
                else "not a regular file"
            )
            self.problems.append(
                Diagnostic(
                    Code.FOREIGN_FILE,
                    f"{path} is {what}, not a file kompile generated",
                    Span(path),
                    "move it away, then build again",
                )
            )
            return REFUSED
        try:
            data, info = self.handle.read_stat(path, MAX_OUTPUT_BYTES)
            self.identities[path] = file_identity(info)
            return data
        except Refused as exc:
            if exc.missing:
                return None
            self.problems.append(
                Diagnostic(
                    Code.FOREIGN_FILE, f"{path}: {exc.why}", Span(path), "move it away, then build again"
                )
            )
        except OSError as exc:
            self.problems.append(
                Diagnostic(Code.FOREIGN_FILE, f"cannot read {path}: {exc.strerror}", Span(path))
            )
        return REFUSED

    def stray_temporaries(self, owned: tuple[str, ...]) -> list[str]:
        """Temporary files of an interrupted build in folders this build did not read (those of an
        environment whose spec is gone since): every folder under the owned ones is looked at once."""
        found, stack = [], list(owned)
        while stack:
            folder = stack.pop()
            entries = self.listing(folder) if folder in self.listings else folder_entries(self.handle, folder)
            for name, entry in (entries or {}).items():
                path = f"{folder}/{name}"
                if entry.is_dir(follow_symlinks=False) and not TEMP.fullmatch(name):
                    stack.append(path)
                elif folder not in self.listings and temporary_entry(folder, name, entry):
                    found.append(path)
        return found

    def leftovers(self) -> list[str]:
        """Temporary files an interrupted build left in the folders this build looked at (and at the top,
        beside the manifest)."""
        self.listing("")
        found = []
        for folder, entries in self.listings.items():
            for name, entry in (entries or {}).items():
                legacy = (
                    name == MANIFEST + LEGACY_TEMP_SUFFIX
                    if folder == ""
                    else name.endswith(LEGACY_TEMP_SUFFIX)
                )
                if legacy and entry.is_file(follow_symlinks=False) or temporary_entry(folder, name, entry):
                    found.append(f"{folder}/{name}" if folder else name)
        return sorted(found)


def temporary_entry(folder: str, name: str, entry: os.DirEntry) -> bool:
    """A file staged by an interrupted build, or a folder it staged whole (removed with what it holds):
    kompile stages folders, and older builds their *.kompile-tmp files, only inside the output folders:
    at the root, beside them, only its own temporary names are its (and MANIFEST's old one: leftovers)."""
    if TEMP.fullmatch(name):
        return entry.is_file(follow_symlinks=False) or bool(folder) and entry.is_dir(follow_symlinks=False)
    return bool(folder) and name.endswith(LEGACY_TEMP_SUFFIX) and entry.is_file(follow_symlinks=False)


def temporaries(handle: Root, folders: tuple[str, ...]) -> list[str]:
    """What interrupted builds left under these folders (files, and folders staged whole), sorted."""
    found, stack = [], list(folders)
    while stack:
        folder = stack.pop()
        for name, entry in (folder_entries(handle, folder) or {}).items():
            path = f"{folder}/{name}"
            if temporary_entry(folder, name, entry):
                found.append(path)
            elif entry.is_dir(follow_symlinks=False):
                stack.append(path)
    return sorted(found)


def folder_entries(handle: Root, folder: str) -> dict[str, os.DirEntry] | None:
    try:
        return {entry.name: entry for entry in handle.listdir(folder)}
    except (Refused, OSError):
        return None  # a link or an unreadable folder: not kompile's to clean
