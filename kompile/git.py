"""The little kompile asks of git: is the output committed, and what were the specs at a revision."""

from __future__ import annotations

import subprocess
from pathlib import Path

OUTPUT_FOLDERS = ("bases", "overlays", "gitops")


def _git(root: Path, *args: str, text: bool = True) -> subprocess.CompletedProcess | None:
    try:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=text, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None


def uncommitted_outputs(root: Path) -> list[str]:
    """Output files with uncommitted changes; empty outside a git repo or without git."""
    result = _git(root, "status", "--porcelain", "--untracked-files=all", "--", *OUTPUT_FOLDERS)
    if result is None or result.returncode != 0:
        return []
    return [line[3:] for line in result.stdout.splitlines() if line.strip()]


class GitError(Exception):
    pass


def export_revision(root: Path, revision: str, destination: Path, skip: tuple[str, ...] = OUTPUT_FOLDERS) -> None:
    """The files under root as they were at `revision`, written to destination (output folders left out)."""
    import io
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
    archive = _git(Path(top.stdout.strip()), "archive", "--format=tar", tree, text=False)
    if archive is None or archive.returncode != 0:
        message = archive.stderr.decode(errors="replace").strip() if archive is not None else "git not found"
        raise GitError(f"cannot read {tree}: {message}")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        members = [m for m in tar.getmembers() if m.name.split("/", 1)[0] not in skip]
        tar.extractall(destination, members=members, filter="data")
