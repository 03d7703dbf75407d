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
