"""The README stays true: its quick start is two commands and CI runs its test command; its spec
reference is the one spec.py describes (refreshed only with --update-golden, and the run still fails)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kompile.spec.doc import reference_markdown

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
START, END = "<!-- spec-reference:start -->\n", "<!-- spec-reference:end -->"


def test_quick_start_is_two_commands_and_ci_runs_the_test_command():
    text = README.read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    commands = [line for line in block.splitlines() if line.strip()]
    assert len(commands) == 2
    assert "kompile build" in commands[0] and "pip install" in commands[0]
    test_command = commands[1].rsplit("&& ", 1)[1]
    assert "'.[test]'" in commands[1] and test_command.startswith(".venv/bin/python -m pytest")
    ci = (REPO / ".ci/run").read_text()
    assert test_command in ci and "-e '.[test]'" in ci


def test_spec_reference_is_current(update_golden: bool):
    text = README.read_text()
    head, rest = text.split(START, 1)
    current, tail = rest.split(END, 1)
    expected = reference_markdown()
    if current != expected:
        if update_golden:
            README.write_text(head + START + expected + END + tail)
            pytest.fail("README spec reference rewritten: review `git diff README.md`, then commit")
        pytest.fail(
            "README's spec reference is out of date with kompile/spec.py; "
            "run `python -m pytest tests/test_readme.py --update-golden` and review the diff"
        )


def test_schema_markdown_prints_the_readme_reference():
    """`kompile schema --format markdown` prints the reference the README holds."""
    from conftest import run_kompile

    result = run_kompile("schema", "--format", "markdown")
    assert result.returncode == 0, result.stderr
    assert result.stdout == reference_markdown()
    assert result.stdout.strip() in (Path(__file__).resolve().parent.parent / "README.md").read_text()
