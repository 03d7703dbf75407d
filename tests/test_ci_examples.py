"""The ready-made CI: the GitHub Actions example validates against GitHub's published workflow schema,
and every pre-commit hook's entry runs and answers as documented."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def test_github_workflows_match_the_schema():
    tool = BIN / "check-jsonschema"
    assert tool.exists(), "check-jsonschema is part of the test extra"
    for workflow in sorted((REPO / "examples/ci").glob("*.yml")):
        result = subprocess.run(
            [str(tool), "--builtin-schema", "vendor.github-workflows", str(workflow)],
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, workflow.name + result.stdout + result.stderr


def test_bot_branches_are_built_and_hydrated_branches_pushed():
    workflow = yaml.safe_load((REPO / "examples/ci/bots-and-hydration.yml").read_text())
    runs = {name: [step.get("run", "") for step in job["steps"]] for name, job in workflow["jobs"].items()}
    assert any(run.startswith("kompile build") for run in runs["build-bot-branch"])
    assert any("git push" in run for run in runs["build-bot-branch"])
    assert any("kompile hydrate" in run and "user.email" in run for run in runs["hydrate"])
    assert any("refs/notes/hydrator.metadata" in run and "git push" in run for run in runs["hydrate"])


def test_github_workflow_runs_check_and_posts_the_diff():
    workflow = yaml.safe_load((REPO / "examples/ci/github-actions.yml").read_text())
    runs = [step.get("run", "") for job in workflow["jobs"].values() for step in job["steps"]]
    assert any(run.startswith("kompile check") for run in runs)
    assert any("kompile diff --base" in run and "--format markdown" in run for run in runs)
    assert any("gh pr comment" in run for run in runs)
    assert workflow["jobs"]["diff"]["permissions"]["pull-requests"] == "write"
    # Untrusted text never lands in a shell script: expressions go through env.
    assert not any("${{" in run for run in runs)


def test_pre_commit_hooks_run_as_documented(example: Path):
    hooks = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    assert [h["id"] for h in hooks] == ["kompile-check", "kompile-build"]
    for hook in hooks:
        assert {"id", "name", "entry", "language"} <= hook.keys()
        assert hook["language"] == "python" and hook["pass_filenames"] is False
    kompile = shutil.which("kompile", path=str(BIN)) or str(BIN / "kompile")

    def run(hook_id: str) -> int:
        entry = shlex.split(next(h["entry"] for h in hooks if h["id"] == hook_id))
        assert entry[0] == "kompile"
        return subprocess.run([kompile, *entry[1:]], cwd=example, capture_output=True).returncode

    assert run("kompile-check") == 1  # nothing built yet
    assert run("kompile-build") == 0
    assert run("kompile-check") == 0
