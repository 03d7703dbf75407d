"""Golden trees: each tests/golden/<case>/input is a repo, and expected/ holds exactly the files
compile_project builds from it (bases/, overlays/ and gitops/; the .kompile-manifest.json that
`kompile build` adds is not part of it). Compared by path set, then byte for byte, with a unified diff on mismatch.

`pytest --update-golden` rewrites expected/ from the current compiler and still fails, so a refresh is
always a reviewed change (`git diff tests/golden`), never a silent one.
"""

from __future__ import annotations

import difflib
import filecmp
import shutil
from pathlib import Path

import pytest

from kompile.compiler import compile_project

from conftest import EXAMPLE, EXAMPLE_FOLDERS, GOLDEN, REPO, copy_golden_input, golden_cases, write_files

REFRESH = "run pytest --update-golden to refresh, then review `git diff tests/golden`"
OUTPUT_FOLDERS = ("bases", "overlays", "gitops", "rendered")


def read_tree(root: Path, folders: tuple[str, ...] = (".",)) -> dict[str, bytes]:
    """{path relative to root: bytes} of every file under the given folders of root."""
    files = {}
    for folder in folders:
        for path in sorted((root / folder).rglob("*")):
            if path.is_file():
                files[path.relative_to(root).as_posix()] = path.read_bytes()
    return files


def tree_differences(actual: dict[str, bytes], expected: dict[str, bytes]) -> str:
    """'' when equal; else the missing and unexpected paths, then a unified diff of each changed file."""
    report = []
    missing = sorted(expected.keys() - actual.keys())
    extra = sorted(actual.keys() - expected.keys())
    if missing:
        report.append("expected but not generated:\n" + "".join(f"  {p}\n" for p in missing))
    if extra:
        report.append("generated but not expected:\n" + "".join(f"  {p}\n" for p in extra))
    for path in sorted(actual.keys() & expected.keys()):
        if actual[path] != expected[path]:
            diff = difflib.unified_diff(
                expected[path].decode("utf-8", "replace").splitlines(keepends=True),
                actual[path].decode("utf-8", "replace").splitlines(keepends=True),
                fromfile=f"expected/{path}",
                tofile=f"generated/{path}",
            )
            report.append("".join(diff))
    return "\n".join(report)


def test_there_are_golden_cases():
    assert {"shop", "web-only", "extends-and-escape-hatches", "files-secrets-rbac", "flux"} <= set(
        golden_cases()
    )


@pytest.mark.parametrize("case", golden_cases())
def test_golden(case: str, tmp_path: Path, update_golden: bool):
    root = copy_golden_input(case, tmp_path / "repo")
    generated = compile_project(root).files
    expected_dir = GOLDEN / case / "expected"
    if update_golden:
        shutil.rmtree(expected_dir, ignore_errors=True)
        write_files(expected_dir, generated)
        pytest.fail(
            f"rewrote {expected_dir.relative_to(REPO)}; review `git diff tests/golden`, then run without --update-golden"
        )
    assert expected_dir.is_dir(), f"tests/golden/{case}/expected does not exist: {REFRESH}"
    expected = read_tree(expected_dir)
    differences = tree_differences(generated, expected)
    assert not differences, (
        f"golden case '{case}' differs from tests/golden/{case}/expected ({REFRESH}):\n{differences}"
    )


@pytest.mark.parametrize("case", golden_cases())
def test_a_second_build_changes_nothing(case: str, tmp_path: Path):
    """As Black's assert_stable: build a case with `kompile build`, then build again; the second build
    plans no write, `check` says up to date and every file keeps its bytes."""
    from kompile import api

    root = copy_golden_input(case, tmp_path / "repo")
    api.build(root)
    first = read_tree(root, OUTPUT_FOLDERS)
    again = api.build(root)
    assert again.plan.is_noop and not again.plan.added and not again.plan.changed and not again.plan.deletes
    assert read_tree(root, OUTPUT_FOLDERS) == first
    assert api.check(root).up_to_date


def test_tree_differences_reports_paths_and_lines():
    """The comparison itself can fail, and says where."""
    expected = {"bases/a.yaml": b"x: 1\n", "bases/gone.yaml": b""}
    actual = {"bases/a.yaml": b"x: 2\n", "bases/new.yaml": b""}
    report = tree_differences(actual, expected)
    assert "expected but not generated:\n  bases/gone.yaml" in report
    assert "generated but not expected:\n  bases/new.yaml" in report
    assert "-x: 1\n+x: 2\n" in report
    assert tree_differences(expected, dict(expected)) == ""


def test_shop_case_is_the_canonical_example():
    """The shop case is the repo's own example (environments/ and secrets/) as it is: if one changes, so must the other."""
    shop = GOLDEN / "shop" / "input"
    problems = [f"{shop}/{p.name}" for p in shop.iterdir() if p.name not in EXAMPLE_FOLDERS]
    pending = [filecmp.dircmp(EXAMPLE / folder, shop / folder) for folder in EXAMPLE_FOLDERS]
    while pending:
        current = pending.pop()
        problems += [
            f"{current.left}/{name}" for name in current.left_only + current.right_only + current.diff_files
        ]
        _, mismatch, errors = filecmp.cmpfiles(
            current.left, current.right, current.common_files, shallow=False
        )
        problems += [f"{current.left}/{name}" for name in mismatch + errors]
        pending.extend(current.subdirs.values())
    assert not problems, (
        "tests/golden/shop/input differs from the repo's environments/ and secrets/: "
        + ", ".join(sorted(set(problems)))
    )


def test_committed_output_is_current():
    """The repo's own output (compiled from environments/, the example) is what kompile builds now."""
    generated = compile_project(REPO).files
    differences = tree_differences(
        generated, read_tree(REPO, tuple(f for f in OUTPUT_FOLDERS if (REPO / f).is_dir()))
    )
    assert not differences, (
        f"the committed output is stale: run `kompile build --root .` and commit:\n{differences}"
    )


def test_render_problems_are_collected_across_environments(tmp_path: Path):
    """As validation does, rendering reports every environment's problems in one run, not the first."""
    from kompile.errors import KompileError

    from conftest import copy_example

    root = copy_example(tmp_path / "repo")
    patch = "  patches:\n    - target: {kind: Deployment, name: nothing-here}\n      patch: [{op: add, path: /x, value: 1}]\n"
    for env in ("dev", "prod"):
        path = root / "environments" / f"{env}.yaml"
        path.write_text(path.read_text() + patch)
    with pytest.raises(KompileError) as caught:
        compile_project(root)
    files = {d.span.path for d in caught.value.diagnostics if d.code.value == "K407"}
    assert files == {"environments/dev.yaml", "environments/prod.yaml"}, caught.value.diagnostics
