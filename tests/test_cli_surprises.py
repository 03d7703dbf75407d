"""The command line never says "no changes" when it means "no such thing", finds its repo from any
subfolder, and never lets an environment disappear silently."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import copy_example, run_kompile


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = copy_example(tmp_path / "repo")
    assert run_kompile("build", "--root", str(root)).returncode == 0
    return root


def test_kompile_finds_the_repo_from_any_subfolder(repo: Path):
    deep = repo / "secrets" / "dev"
    result = run_kompile("validate", cwd=deep)
    assert result.returncode == 0 and "ok: app shop" in result.stdout, result.stderr
    assert run_kompile("check", cwd=repo / "overlays" / "dev").returncode == 0


def test_with_no_spec_anywhere_above_it_says_so_and_suggests_init(tmp_path: Path):
    empty = tmp_path / "nothing" / "here"
    empty.mkdir(parents=True)
    result = run_kompile("build", cwd=empty)
    assert result.returncode == 2
    assert "no environments/ folder" in result.stderr and "kompile init" in result.stderr
    assert list(empty.iterdir()) == []


@pytest.mark.parametrize(
    "command",
    [
        ["build", "--env", "Dev"],
        ["diff", "--env", "Dev"],
        ["render", "Dev"],
        ["explain", "Dev"],
        ["set-image", "Dev", "--tag", "1.0.0"],
        ["promote", "dev", "Prod"],
        ["diff", "--env", "qa"],
    ],
)
def test_an_unknown_environment_is_an_error_with_a_suggestion(repo: Path, command: list[str]):
    before = {p: p.read_bytes() for p in repo.rglob("*") if p.is_file()}
    result = run_kompile(*command, "--root", str(repo))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "error[K310]" in result.stderr
    wanted = command[-1] if command[0] != "set-image" else "Dev"
    if wanted.lower() in ("dev", "prod"):
        assert f"did you mean '{wanted.lower()}'?" in result.stderr
    assert "no changes" not in result.stdout
    assert {p: p.read_bytes() for p in repo.rglob("*") if p.is_file()} == before


def test_removing_an_environment_names_everything_it_removes(repo: Path):
    (repo / "environments/staging.yaml").unlink()
    check = run_kompile("check", "--root", str(repo))
    assert check.returncode == 1 and check.stdout.startswith("REMOVED  environment 'staging'"), check.stdout
    diff = run_kompile("diff", "--root", str(repo))
    assert diff.returncode == 1 and diff.stdout.split()[:4] == ["staging", "(the", "whole", "environment)"], (
        diff.stdout
    )
    markdown = run_kompile("diff", "--root", str(repo), "--format", "markdown")
    assert "**Removed environment: staging.**" in markdown.stdout
    build = run_kompile("build", "--root", str(repo))
    assert build.returncode == 0, build.stderr
    assert "removed environment 'staging'" in build.stderr
    for path in ("overlays/staging/kustomization.yaml", "gitops/argocd/application-shop-staging.yaml"):
        assert f"removed  {path}" in build.stderr
        assert not (repo / path).exists()


def test_removing_a_production_environment_needs_an_explicit_flag(repo: Path):
    (repo / "environments/prod.yaml").unlink()
    before = {p: p.read_bytes() for p in repo.rglob("*") if p.is_file()}
    refused = run_kompile("build", "--root", str(repo))
    assert refused.returncode == 2 and "error[K313]" in refused.stderr and "--remove prod" in refused.stderr
    assert {p: p.read_bytes() for p in repo.rglob("*") if p.is_file()} == before
    check = run_kompile("check", "--root", str(repo))
    assert (
        "REMOVED  environment 'prod' (tier: production)" in check.stdout and "--remove prod" in check.stdout
    )
    done = run_kompile("build", "--root", str(repo), "--remove", "prod", "--format", "json")
    assert done.returncode == 0 and json.loads(done.stdout)["removed_environments"] == ["prod"]
    assert not (repo / "overlays/prod").exists()
    assert run_kompile("check", "--root", str(repo)).returncode == 0


@pytest.mark.parametrize(
    "command", [["validate"], ["build", "--env", "dev"], ["check", "--fast"], ["render", "dev"]]
)
def test_a_command_imports_only_what_it_uses(repo: Path, command: list[str]):
    """Start-up is most of a small command's time: no command loads pydantic (typer 0.29 builds an adapter
    per option with it, 0.12 to 0.15 s a command: pyproject keeps typer below it), and only diff loads
    deepdiff."""
    import subprocess
    import sys

    probe = (
        "import sys, runpy\n"
        f"sys.argv = ['kompile', *{command!r}, '--root', {str(repo)!r}]\n"
        "try:\n"
        "    runpy.run_module('kompile', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in ('pydantic', 'deepdiff') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stdout + result.stderr
