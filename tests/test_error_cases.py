"""Invalid inputs as files: each case under tests/errors/<case>/ is the canonical example with some
files replaced or added (and those in `_delete.txt` removed), and `expected.txt` pins the exact
diagnostics it must give, in order: `<code> <file>:<line>:<col>` (or `<code> <file>` without a position),
then the message and the hint, each on an indented line. Lines starting with `#` are comments.
`pytest tests/test_error_cases.py --update-golden` rewrites them (and fails, so the diff is reviewed).
Every case must also leave the output folders untouched: nothing is written on invalid input."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kompile.compiler import compile_project
from kompile.errors import KompileError

from conftest import copy_example

CASES = Path(__file__).parent / "errors"
META = {"expected.txt", "_delete.txt", "README.md"}


def case_names() -> list[str]:
    return sorted(p.name for p in CASES.iterdir() if p.is_dir())


def materialise(case: Path, destination: Path) -> Path:
    root = copy_example(destination)
    deletions = case / "_delete.txt"
    if deletions.exists():
        for rel in deletions.read_text().split():
            target = root / rel
            shutil.rmtree(target) if target.is_dir() else target.unlink()
    for source in sorted(case.rglob("*")):
        rel = source.relative_to(case).as_posix()
        if rel in META or source.is_dir():
            continue
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            target.unlink(missing_ok=True)
            target.symlink_to(source.readlink())
        else:
            target.write_bytes(source.read_bytes())
    return root


def expected(case: Path) -> str:
    lines = (case / "expected.txt").read_text().splitlines()
    return "\n".join(line for line in lines if not line.startswith("#")).strip() + "\n"


def actual(exc: KompileError, root: Path | None = None) -> str:
    """Every diagnostic as expected.txt writes it; the temporary root is written as <root>."""
    out = []
    for d in exc.diagnostics:
        where = (
            f"{d.span.path}:{d.span.line}:{d.span.col}"
            if d.span and d.span.line
            else (d.span.path if d.span else "-")
        )
        out.append(f"{d.code.value} {where}")
        out.append(f"    {d.message}")
        if d.hint:
            out.append(f"    hint: {d.hint}")
    text = "\n".join(out) + "\n"
    return text.replace(str(root), "<root>") if root is not None else text


def test_there_are_enough_cases():
    assert len(case_names()) >= 30


@pytest.mark.parametrize("name", case_names())
def test_error_case(name: str, tmp_path: Path, update_golden: bool):
    case = CASES / name
    root = materialise(case, tmp_path / "repo")
    with pytest.raises(KompileError) as caught:
        compile_project(root)
    for d in caught.value.diagnostics:
        assert d.message and d.span is not None, d
    found = actual(caught.value, root)
    if update_golden and found != expected(case):
        comments = [line for line in (case / "expected.txt").read_text().splitlines() if line.startswith("#")]
        (case / "expected.txt").write_text("".join(f"{c}\n" for c in comments) + found)
        pytest.fail(f"rewrote {case.name}/expected.txt: review the diff")
    assert found == expected(case)


@pytest.mark.parametrize("name", case_names()[:3])
def test_cli_exits_2_and_writes_nothing(name: str, tmp_path: Path):
    root = materialise(CASES / name, tmp_path / "repo")
    before = sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))
    result = subprocess.run(
        [sys.executable, "-m", "kompile", "build", "--root", str(root)], capture_output=True, text=True
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*")) == before
