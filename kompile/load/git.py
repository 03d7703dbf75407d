"""The little kompile asks of git: is the output committed, and what were the specs at a revision."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

from kompile.names import OUTPUT_FOLDERS
from kompile.safefs import TEMP, Refused, Root, path_problem


def _git(root: Path, *args: str, text: bool = True) -> subprocess.CompletedProcess | None:
    # Text as file names are decoded (a folder named in bytes that are not UTF-8 is no error).
    decoding = {"encoding": sys.getfilesystemencoding(), "errors": "surrogateescape"} if text else {}
    try:
        return subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, timeout=60, check=False, **decoding
        )
    except (OSError, subprocess.TimeoutExpired):
        return None


# Past this many folders, git is asked about the output folders whole: one walk of the tree costs less
# than a command line of thousands of folders, and a build writing that many spends longer on them.
FOLDERS_ASKED = 512
# Literal pathspecs: a folder name is never a pattern. No optional locks: a warning never rewrites the
# index under a user's concurrent git command. -z: names as they are, never quoted.
_STATUS = (
    "--literal-pathspecs",
    "--no-optional-locks",
    "status",
    "--porcelain",
    "-z",
    "--untracked-files=all",
)


class Status:
    """`git status` of some output folders, started when made and read when asked: a build of a few
    environments asks about their folders on the other core while it compiles them. Leaving the `with`
    block stops git if it still runs."""

    def __init__(self, root: Path, folders: Iterable[str]) -> None:
        self.root, self.folders = root, frozenset(folders)
        self._process: subprocess.Popen | None = None
        if self.folders:
            with contextlib.suppress(OSError):  # (no git: nothing to warn about)
                self._process = subprocess.Popen(
                    ["git", "-C", str(root), *_STATUS, "--", *sorted(self.folders)],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                )

    def __enter__(self) -> Status:
        return self

    def __exit__(self, *_) -> None:
        # Never read (the build changed nothing), or read too late: git is stopped and its pipe closed.
        if self._process is not None and self._process.returncode is None:
            if self._process.poll() is None:
                self._process.kill()
            self._process.communicate()

    def files(self) -> list[str]:
        """The files git reports changed or untracked (both names of a rename), relative to root, but
        kompile's own staged files; empty outside a git repo."""
        if self._process is None:
            return []
        try:
            out, _ = self._process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.__exit__()
            return []
        if self._process.returncode != 0:
            return []
        names, entries = [], iter(out.split(b"\0"))
        for entry in entries:
            if len(entry) > 3:
                names.append(os.fsdecode(entry[3:]))
                if b"R" in entry[:2] or b"C" in entry[:2]:  # (either column) its source follows it
                    names.append(os.fsdecode(next(entries, b"")))
        # The files this build staged are not anyone's uncommitted work.
        names = [name for name in names if name and not any(TEMP.fullmatch(part) for part in name.split("/"))]
        if not names:
            return []
        # Porcelain names are relative to the repository's top, which may be above root.
        prefix = folder_in_repo(self.root) or ""
        return [
            name[len(prefix) + 1 :] if prefix and name.startswith(f"{prefix}/") else name for name in names
        ]


def uncommitted_outputs(root: Path, touched: Iterable[str], early: Status | None = None) -> list[str]:
    """Output files with uncommitted changes in the folders of `touched` (the output files a build
    replaces or deletes); empty outside a git repo or without git.

    Only the folders holding them are asked about: an environment's overlay folder, an app's base, a
    GitOps tool's folder. git then stats those files alone, not every file of a 100,000-file tree, for
    a build of one environment.
    `early`, a Status started before, answers when it asked about every one of those folders."""
    folders = {_folder(path) for path in touched}
    folders.discard(None)
    if not folders:
        return []
    scope = frozenset(folders) if len(folders) <= FOLDERS_ASKED else frozenset(OUTPUT_FOLDERS)
    if early is not None and scope <= early.folders:
        return [path for path in early.files() if _within(path, scope)]
    with Status(root, scope) as status:
        return status.files()


def _within(path: str, folders: frozenset[str]) -> bool:
    parts = path.split("/")
    return any("/".join(parts[:depth]) in folders for depth in range(1, len(parts)))


def _folder(path: str) -> str | None:
    """The folder of an output file that a build owns as a whole: its first two levels
    (overlays/<environment>, bases/<app>, gitops/<tool>), or the file's own folder when shallower."""
    parts = path.split("/")
    if parts[0] not in OUTPUT_FOLDERS or len(parts) < 2:
        return None
    return "/".join(parts[: min(2, len(parts) - 1)])


def remote_urls(root: Path) -> list[str]:
    """The URLs of the repo's remotes (empty outside a git repo)."""
    result = _git(root, "config", "--get-regexp", r"^remote\..*\.url$")
    if result is None or result.returncode != 0:
        return []
    return [line.split(" ", 1)[1] for line in result.stdout.splitlines() if " " in line]


def folder_in_repo(root: Path) -> str | None:
    """root's path inside its git repository ("" at the top), or None outside one."""
    result = _git(root, "rev-parse", "--show-prefix")
    if result is None or result.returncode != 0:
        return None
    return result.stdout.strip().rstrip("/")


def same_repository(a: str, b: str) -> bool:
    """Two ways of writing one repository's URL: https or ssh, with or without .git, a user, a port."""

    def key(url: str) -> str:
        url = url.strip().lower().removesuffix("/").removesuffix(".git")
        url = url.split("://", 1)[1] if "://" in url else url.replace(":", "/", 1)
        host, _, path = url.rpartition("@")[2].partition("/")
        return f"{host.split(':')[0]}/{path}"

    return key(a) == key(b)


class GitError(Exception):
    pass


def export_revision(
    root: Path, revision: str, destination: Path, skip: tuple[str, ...] = OUTPUT_FOLDERS
) -> None:
    """The files under root as they were at `revision`, written to destination (output folders left out).

    The archive is streamed, and written member by member under a handle on destination: files and
    folders as they are, symbolic links as links (never followed; reading one is refused as in a
    working tree), anything else skipped. A member that would leave destination is refused."""
    import tarfile

    prefix = _git(root, "rev-parse", "--show-prefix")
    top = _git(root, "rev-parse", "--show-toplevel")
    if prefix is None or prefix.returncode != 0 or top is None:
        raise GitError(f"{root} is not inside a git repository")
    verify = _git(root, "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}")
    if verify is None or verify.returncode != 0:
        raise GitError(f"unknown revision '{revision}'")
    tree = f"{revision}:{prefix.stdout.strip()}"
    # From the top: in a subfolder, git archive would also filter by the working directory.
    try:
        process = subprocess.Popen(
            ["git", "-C", top.stdout.strip(), "archive", "--format=tar", tree],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
    except OSError as exc:
        raise GitError(f"cannot run git: {exc.strerror}") from None
    try:
        with tarfile.open(fileobj=process.stdout, mode="r|") as tar, Root(destination) as out:
            for member in tar:
                _extract(tar, member, out, skip)
    except (tarfile.TarError, OSError, Refused) as exc:
        process.kill()
        raise GitError(f"cannot read {tree}: {exc}") from None
    finally:
        error = process.stderr.read().decode(errors="replace").strip() if process.stderr else ""
        code = process.wait()
    if code != 0:
        raise GitError(f"cannot read {tree}: {error or 'git archive failed'}")


MAX_EXPORTED_BYTES = 16 << 20  # larger files cannot be specs (1 MiB) or anything a spec names


def _extract(tar, member, out: Root, skip: tuple[str, ...]) -> None:
    name = member.name.rstrip("/")
    if not name or name == "." or path_problem(name) or name.split("/", 1)[0] in skip:
        return
    if member.isdir():
        out.folder(name, create=True)
    elif member.isfile() and member.size <= MAX_EXPORTED_BYTES:
        source = tar.extractfile(member)
        out.write(name, source.read() if source is not None else b"")
    elif member.issym():
        folder, _, base = name.rpartition("/")
        os.symlink(member.linkname, base, dir_fd=out.folder(folder, create=True))
