"""kompile installs into a team's own config repo the ways the README says: a wheel built with pip, pip
from the Git repository at a tag, and the pre-commit hooks at a tag. Each in a fresh virtual environment,
then `kompile --version` and a build of the example. (Slow: each installs kompile's dependencies.)"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kompile import __version__

from conftest import REPO, copy_example

pytestmark = pytest.mark.slow
TAG = f"v{__version__}"
GIT_ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@t",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@t",
}


def run(
    *args, cwd: Path | None = None, env: dict | None = None, timeout: int = 600
) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, f"{' '.join(map(str, args))}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def kompile_repo(tmp_path_factory) -> Path:
    """kompile's sources as a Git repository with the release tag (a stand-in for its public repository)."""
    clone = tmp_path_factory.mktemp("kompile-src") / "kompile"
    ignore = shutil.ignore_patterns(
        ".venv", ".git", "__pycache__", "*.egg-info", ".pytest_cache", ".hypothesis", "build", "dist"
    )
    shutil.copytree(
        REPO, clone, ignore=ignore, symlinks=True
    )  # links as links: tests/errors holds one to /dev/zero
    run("git", "init", "-q", cwd=clone)
    run("git", "add", "-A", cwd=clone)
    run("git", "commit", "-qm", "release", cwd=clone, env=GIT_ENV)
    run("git", "tag", TAG, cwd=clone)
    return clone


def fresh_venv(path: Path) -> Path:
    run(sys.executable, "-m", "venv", path)
    return path / "bin"


def builds_the_example(bin_dir: Path, tmp_path: Path) -> None:
    assert run(bin_dir / "kompile", "--version").stdout.strip() == f"kompile {__version__}"
    root = copy_example(tmp_path / "config-repo")
    run(bin_dir / "kompile", "build", "--root", root)
    run(bin_dir / "kompile", "check", "--root", root)
    assert (root / "overlays/prod/kustomization.yaml").is_file()


def test_a_wheel_built_with_pip_installs_and_builds(kompile_repo: Path, tmp_path: Path):
    run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--quiet",
        "--no-deps",
        "--wheel-dir",
        tmp_path / "dist",
        kompile_repo,
    )
    [wheel] = (tmp_path / "dist").glob("kompile-*.whl")
    bin_dir = fresh_venv(tmp_path / "venv")
    run(bin_dir / "pip", "install", "--quiet", wheel)
    builds_the_example(bin_dir, tmp_path)


def test_pip_installs_a_pinned_git_tag(kompile_repo: Path, tmp_path: Path):
    bin_dir = fresh_venv(tmp_path / "venv")
    # file://localhost/...: pip before 24 refuses a file URL without a host in "name @ url" form
    run(bin_dir / "pip", "install", "--quiet", f"kompile @ git+file://localhost{kompile_repo}@{TAG}")
    builds_the_example(bin_dir, tmp_path)


def test_the_pre_commit_hooks_run_from_a_pinned_tag(kompile_repo: Path, tmp_path: Path):
    pre_commit = shutil.which("pre-commit", path=str(Path(sys.executable).parent))
    assert pre_commit, "pre-commit is part of the test extra"
    root = copy_example(tmp_path / "config-repo")
    (root / ".pre-commit-config.yaml").write_text(
        f"repos:\n  - repo: file://{kompile_repo}\n    rev: {TAG}\n    hooks:\n      - id: kompile-build\n      - id: kompile-check\n"
    )
    run("git", "init", "-q", cwd=root)
    run("git", "add", "-A", cwd=root)
    env = {**GIT_ENV, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-cache")}
    first = subprocess.run(
        [pre_commit, "run", "--all-files"], cwd=root, env=env, capture_output=True, text=True, timeout=600
    )
    # kompile-build writes the output (pre-commit reports files changed by a hook as a failure), then
    # kompile-check passes; a second run changes nothing and passes.
    assert (root / "overlays/dev/kustomization.yaml").is_file(), first.stdout + first.stderr
    run("git", "add", "-A", cwd=root)
    run(pre_commit, "run", "--all-files", cwd=root, env=env)
