"""Files under the repo root, reached without ever following a symbolic link.

Every path is walked one component at a time from a handle on the root (openat with O_NOFOLLOW), so a
link anywhere on the way, planted before or during a run, is refused instead of followed. Reads take
regular files only, bounded in size, and never block (a FIFO is refused, not opened for reading).
Writes go to a new temporary file with an unpredictable name, created exclusively, then renamed over
the target within the same folder; a new folder is written whole under such a name, then renamed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import stat
from collections.abc import Iterator

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
MAX_NAME_BYTES = 255  # one path component, on every file system kompile runs on
MAX_PATH_BYTES = 4000
MAX_DEPTH = 32  # folders below a staged folder kompile removes
TEMP = re.compile(r"\.kompile-[0-9a-f]{16}\.tmp")


class Refused(Exception):
    """A path kompile will not read or write; `why` says why in words a user can act on."""

    def __init__(self, rel: str, why: str, missing: bool = False) -> None:
        super().__init__(f"{rel}: {why}")
        self.rel = rel
        self.why = why
        self.missing = missing


def path_problem(rel: str) -> str | None:
    """Why rel is not a normalised relative path under the root (None when it is). Pure."""
    if not isinstance(rel, str) or not rel:
        return "the path is empty"
    if "\x00" in rel:
        return "the path contains a NUL byte"
    if "\\" in rel:
        return "the path contains a backslash"
    if rel.startswith("/"):
        return "the path is absolute"
    if len(rel.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
        return f"the path is longer than {MAX_PATH_BYTES} bytes"
    for part in rel.split("/"):
        if part in ("", ".", ".."):
            return "the path is not normalised (an empty, '.' or '..' component)"
        if len(part.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
            return f"a component of the path is longer than {MAX_NAME_BYTES} bytes"
    return None


def _parts(rel: str) -> list[str]:
    problem = path_problem(rel)
    if problem:
        raise Refused(rel, problem)
    return rel.split("/")


class Root:
    """A handle on the repo root. Use as a context manager; folder handles are cached a few at a time."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.path = os.fspath(root)
        self.fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))
        self._folders: dict[str, int] = {}
        self._salt, self._staged = secrets.token_hex(4), 0

    def __enter__(self) -> Root:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        for fd in self._folders.values():
            os.close(fd)
        self._folders.clear()
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    # -- folders -------------------------------------------------------------------------------

    def folder(self, rel: str, create: bool = False, created: list[str] | None = None) -> int:
        """A handle on the folder rel ("" for the root), owned by this Root. Refused when a component is a
        link or not a folder, or (without create) missing. Folders made are appended to `created`."""
        cached = self._folders.pop(rel, None)
        if cached is not None:
            self._folders[rel] = cached  # (now the most recently used)
            return cached
        if not rel:
            return self._keep(rel, os.dup(self.fd))
        parts = _parts(rel)
        # From the nearest folder already open (a build writes folder after folder of one tree): the
        # walk opens only what is new, and keeps each folder it opens on the way.
        start, fd = 0, self.fd
        for index in range(len(parts) - 1, 0, -1):
            above = self._folders.get("/".join(parts[:index]))
            if above is not None:
                start, fd = index, above
                break
        for index in range(start, len(parts)):
            name = "/".join(parts[: index + 1])
            fd = self._keep(name, self._step(fd, parts[index], name, create, created))
        return fd

    def _keep(self, rel: str, fd: int) -> int:
        """Cache a folder handle, closing the least recently used beyond a few (a build touches thousands
        of folders, one after another; the top folders stay, being used all along)."""
        if len(self._folders) >= 32:
            os.close(self._folders.pop(next(iter(self._folders))))
        self._folders[rel] = fd
        return fd

    def _step(self, fd: int, part: str, rel: str, create: bool, created: list[str] | None) -> int:
        """The handle of `part` inside the folder fd (which stays open: the caller owns it)."""
        try:
            return os.open(part, DIR_FLAGS, dir_fd=fd)
        except FileNotFoundError:
            if not create:
                raise Refused(rel, "no such folder", missing=True) from None
            try:
                os.mkdir(part, 0o777, dir_fd=fd)
            except FileExistsError:
                pass  # made meanwhile: opened below like any other
            except OSError as exc:
                raise Refused(rel, f"cannot create the folder: {exc.strerror}") from None
            if created is not None:
                created.append(rel)
            try:
                return os.open(part, DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                raise Refused(rel, _why(exc, rel, "folder")) from None
        except OSError as exc:
            why = _why(exc, rel, "folder")
            try:
                if stat.S_ISLNK(os.stat(part, dir_fd=fd, follow_symlinks=False).st_mode):
                    why = "it is a symbolic link; kompile never follows links"
            except OSError:
                pass
            raise Refused(rel, why) from None

    def forget(self, rel: str) -> None:
        """Drop a cached folder handle (after the folder was removed)."""
        fd = self._folders.pop(rel, None)
        if fd is not None:
            os.close(fd)

    # -- entries --------------------------------------------------------------------------------

    def lstat(self, rel: str) -> os.stat_result | None:
        """The entry itself (a link is not followed), or None when there is none (or its folder is missing)."""
        folder, _, name = rel.rpartition("/")
        try:
            return os.stat(name, dir_fd=self.folder(folder), follow_symlinks=False)
        except FileNotFoundError:
            return None
        except Refused as exc:
            if exc.missing:
                return None
            raise

    def read(self, rel: str, limit: int) -> bytes:
        """The bytes of a regular file, at most `limit` of them. Refused for links, folders, devices, FIFOs
        and larger files; Refused(missing=True) when there is no such file."""
        return self.read_stat(rel, limit)[0]

    def read_stat(self, rel: str, limit: int) -> tuple[bytes, os.stat_result]:
        """read(), and the file's status as it was opened: the identity of the bytes read (an index that
        remembers it can tell later whether the file is still the one read)."""
        folder, _, name = rel.rpartition("/")
        _parts(rel)
        info = self.lstat(rel)
        if info is None:
            raise Refused(rel, "no such file", missing=True)
        _regular(info, rel)
        try:
            fd = os.open(name, _READ_FLAGS, dir_fd=self.folder(folder))
        except OSError as exc:
            raise Refused(rel, _why(exc, rel, "file"), missing=exc.errno == errno.ENOENT) from None
        try:
            info = os.fstat(fd)
            _regular(info, rel)
            if info.st_size > limit:
                raise Refused(rel, f"it is {info.st_size} bytes; the limit is {limit}")
            data = b""
            while len(data) <= limit:
                chunk = os.read(fd, limit + 1 - len(data))
                if not chunk:
                    break
                data += chunk
        finally:
            os.close(fd)
        if len(data) > limit:
            raise Refused(rel, f"it is larger than {limit} bytes")
        return data, info

    def listdir(self, rel: str) -> Iterator[os.DirEntry]:
        """The entries of a folder (none when it is missing); links are listed, never followed."""
        try:
            fd = self.folder(rel)
        except Refused as exc:
            if exc.missing:
                return iter(())
            raise
        return iter(list(os.scandir(fd)))

    def walk_files(self, rel: str) -> Iterator[str]:
        """Every entry under a folder that is not a folder, as paths relative to the root, sorted; links are
        yielded (for the caller to refuse), not followed."""
        # (A stack, not recursion: a folder may hold folders thousands deep.)
        stack = [(rel, iter(sorted(self.listdir(rel), key=_name)))]
        while stack:
            folder, entries = stack[-1]
            entry = next(entries, None)
            if entry is None:
                stack.pop()
                continue
            path = f"{folder}/{entry.name}" if folder else entry.name
            if entry.is_dir(follow_symlinks=False):
                stack.append((path, iter(sorted(self.listdir(path), key=_name))))
            else:
                yield path

    # -- writing --------------------------------------------------------------------------------

    def stage(self, rel: str, data: bytes, created: list[str] | None = None) -> str:
        """Write data to a new temporary file in rel's folder (made as needed); returns its name there."""
        folder, _, _ = rel.rpartition("/")
        fd = self.folder(folder, create=True, created=created)
        self._staged += 1  # (a random half per Root, a count: unpredictable, one random draw per run)
        temporary = f".kompile-{self._salt}{self._staged & 0xFFFFFFFF:08x}.tmp"
        out = os.open(temporary, _CREATE_FLAGS, 0o666, dir_fd=fd)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(out, view) :]
        except BaseException:
            os.close(out)
            os.unlink(temporary, dir_fd=fd)
            raise
        os.close(out)
        return temporary

    def stage_folder(self, rel: str, created: list[str] | None = None) -> str:
        """A new, empty temporary folder beside rel (a folder not there yet), its parent made as needed:
        rel's files are written into it, then it is renamed to rel (commit_folder). Returns its path."""
        parent, _, _ = rel.rpartition("/")
        fd = self.folder(parent, create=True, created=created)
        self._staged += 1
        temporary = f".kompile-{self._salt}{self._staged & 0xFFFFFFFF:08x}.tmp"
        os.mkdir(temporary, 0o777, dir_fd=fd)  # (fails on anything already there, a link included)
        return f"{parent}/{temporary}" if parent else temporary

    def commit_folder(self, rel: str, temporary: str) -> None:
        """Rename a staged folder to rel, every file in it at once. Where rel has appeared meanwhile, only
        an empty folder is replaced; anything else (files, a link, a file) makes it fail."""
        parent, _, name = rel.rpartition("/")
        fd = self.folder(parent)
        os.rename(temporary.rpartition("/")[2], name, src_dir_fd=fd, dst_dir_fd=fd)

    def remove_temporary(self, rel: str) -> None:
        """Remove a temporary file, or a staged folder and everything in it (links removed, never
        followed), reached from its parent by name: never through a handle kept from before a rename."""
        parent, _, name = rel.rpartition("/")
        try:
            fd = self.folder(parent)
        except Refused as exc:
            if exc.missing:
                return
            raise
        self.forget_under(rel)
        _remove_entry(fd, name)

    def forget_under(self, rel: str) -> None:
        """Drop the cached handles of a folder and of every folder inside it."""
        for folder in [f for f in self._folders if f == rel or f.startswith(rel + "/")]:
            os.close(self._folders.pop(folder))

    def commit(self, rel: str, temporary: str) -> None:
        """Rename a staged temporary file over rel, in one step: readers see the old bytes or the new."""
        folder, _, name = rel.rpartition("/")
        fd = self.folder(folder)
        os.replace(temporary, name, src_dir_fd=fd, dst_dir_fd=fd)

    def discard(self, rel_folder: str, temporary: str) -> None:
        with contextlib.suppress(FileNotFoundError, Refused):
            os.unlink(temporary, dir_fd=self.folder(rel_folder))

    def write(self, rel: str, data: bytes) -> None:
        """Stage and commit one file (the staged file removed when it cannot be renamed into place)."""
        temporary = self.stage(rel, data)
        try:
            self.commit(rel, temporary)
        except BaseException:
            self.discard(rel.rpartition("/")[0], temporary)
            raise

    def create(self, rel: str, data: bytes) -> os.stat_result:
        """Write a new file (its folders made as needed); FileExistsError when there is one (or a link)
        already. Returns the file's status once written."""
        folder, _, name = rel.rpartition("/")
        fd = self.folder(folder, create=True)
        out = os.open(name, _CREATE_FLAGS, 0o666, dir_fd=fd)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(out, view) :]
            return os.fstat(out)
        finally:
            os.close(out)

    def unlink(self, rel: str) -> None:
        """Remove a regular file (never a link's target: a link itself is removed, as unlink does)."""
        folder, _, name = rel.rpartition("/")
        try:
            os.unlink(name, dir_fd=self.folder(folder))
        except FileNotFoundError:
            pass
        except Refused as exc:
            if not exc.missing:
                raise

    def rmdir(self, rel: str) -> bool:
        """Remove an empty folder; False when it is not empty (or not there)."""
        parent, _, name = rel.rpartition("/")
        self.forget(rel)
        try:
            os.rmdir(name, dir_fd=self.folder(parent))
            return True
        except (OSError, Refused):
            return False


def _name(entry: os.DirEntry) -> str:
    return entry.name


def _remove_entry(fd: int, name: str, depth: int = 0) -> None:
    """Remove name inside the folder fd: a file or a link unlinked, a folder emptied (opened without
    following a link) and removed. Gone already: nothing to do. (kompile stages folders a few levels
    deep: one deeper than MAX_DEPTH is not its own, and is left, so its parents cannot be removed.)"""
    try:
        info = os.stat(name, dir_fd=fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(info.st_mode):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=fd)
        return
    if depth > MAX_DEPTH:
        return
    inner = os.open(name, DIR_FLAGS, dir_fd=fd)
    try:
        for entry in os.listdir(inner):
            _remove_entry(inner, entry, depth + 1)
    finally:
        os.close(inner)
    with contextlib.suppress(FileNotFoundError):
        os.rmdir(name, dir_fd=fd)


def _regular(info: os.stat_result, rel: str) -> None:
    if stat.S_ISLNK(info.st_mode):
        raise Refused(rel, "it is a symbolic link; kompile never follows links")
    if stat.S_ISDIR(info.st_mode):
        raise Refused(rel, "it is a folder, not a file")
    if not stat.S_ISREG(info.st_mode):
        raise Refused(rel, "it is not a regular file (a device, FIFO or socket)")


def _why(exc: OSError, rel: str, what: str) -> str:
    if exc.errno in (errno.ELOOP, errno.EMLINK):
        return "it is a symbolic link; kompile never follows links"
    if exc.errno == errno.ENOTDIR:
        return (
            f"it is a file where kompile needs a {what}"
            if what == "folder"
            else "a component of it is not a folder"
        )
    if exc.errno == errno.ENAMETOOLONG:
        return "the name is too long for the file system"
    if exc.errno == errno.ENOENT:
        return f"no such {what}"
    return exc.strerror or str(exc)


# ---------------------------------------------------------------------------------------------
# kompile's local cache: .kompile-cache/ beside environments/, ignoring itself in git (as .pytest_cache).

CACHE_DIR = ".kompile-cache"


def file_identity(info: os.stat_result) -> str:
    """A file's identity as git's index keeps it: same inode, size and times, same bytes (unless written
    again within the clock's resolution of being read: a cache never trusts those, see RACY_SECONDS)."""
    return f"{info.st_ino} {info.st_size} {info.st_mtime_ns} {info.st_ctime_ns}"


# A file modified this near a moment may be rewritten within the same clock tick and keep its identity
# (inode, size, times): git calls it "racily clean". Caches never vouch for one.
RACY_SECONDS = 2.0


def write_cache_file(root: str | os.PathLike, name: str, *parts: str | bytes) -> None:
    """Replace .kompile-cache/<name> with these parts, one after the other (the folder made, ignoring
    itself in git). Best effort: a cache that cannot be written is only slower next time."""
    try:
        with Root(root) as disk:
            fd = disk.folder(CACHE_DIR, create=True)
            _write(fd, ".gitignore", "# kompile's local cache: never committed\n*\n")
            _write(fd, name, *parts)
    except (OSError, Refused):
        pass


def _write(folder_fd: int, name: str, *parts: str | bytes) -> None:
    """Replace a cache file whole (a temporary of this process beside it, then a rename): a reader sees
    old or new. What killed writers left beside it goes too."""
    temporary = f".{name}.{os.getpid()}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644, dir_fd=folder_fd)
    try:
        for part in parts:
            data = memoryview(part.encode("utf-8") if isinstance(part, str) else part)
            while data:
                data = data[os.write(fd, data) :]
    finally:
        os.close(fd)
    os.replace(temporary, name, src_dir_fd=folder_fd, dst_dir_fd=folder_fd)
    for leftover in os.listdir(folder_fd):
        if leftover.startswith(f".{name}.") and leftover.endswith(".tmp"):
            with contextlib.suppress(OSError):  # (another writer's, just renamed)
                os.unlink(leftover, dir_fd=folder_fd)
