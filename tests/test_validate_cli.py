"""`kompile validate` as users run it: exit codes, `file:line:col: error[Kxxx]: message`, the source line with
a caret under the column, a hint, the same as JSON with --format json, and never a traceback."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kompile.cli import app

from conftest import copy_example, run_kompile
from test_error_cases import CASES, case_names, materialise

HEADLINE = re.compile(
    r"^(?P<file>[^\s:]+):(?P<line>\d+):(?P<col>\d+): error\[(?P<code>K\d{3})\]: (?P<message>.+)$"
)
JSON_KEYS = {"file", "line", "column", "code", "message", "hint"}


def edit(root: Path, rel: str, old: str, new: str) -> None:
    path = root / rel
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, (rel, old)
    path.chmod(0o644)
    path.write_text(text.replace(old, new), encoding="utf-8")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = copy_example(tmp_path / "repo")
    for path in root.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return root


def test_validate_on_the_example_exits_0(repo: Path):
    result = run_kompile("validate", "--root", str(repo))
    assert result.returncode == 0, result.stderr
    assert "ok: app shop, 3 environments (dev, prod, staging)" in result.stdout
    assert result.stderr == ""


def test_validate_on_the_example_as_json_is_an_empty_list(repo: Path):
    result = run_kompile("validate", "--root", str(repo), "--format", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_validate_writes_nothing(repo: Path):
    before = sorted(p.relative_to(repo).as_posix() for p in repo.rglob("*"))
    run_kompile("validate", "--root", str(repo))
    assert sorted(p.relative_to(repo).as_posix() for p in repo.rglob("*")) == before


def test_an_invalid_spec_exits_2_with_position_source_caret_and_hint(repo: Path):
    edit(
        repo,
        "environments/prod.yaml",
        "      autoscaling: {minReplicas: 3",
        "      replcias: 3\n      autoscaling: {minReplicas: 3",
    )
    result = run_kompile("validate", "--root", str(repo))
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0] == "environments/prod.yaml:15:7: error[K201]: unknown key 'replcias' in components.web"
    assert lines[1] == "   15 |       replcias: 3"
    caret = lines[2]
    # the caret sits under the first letter of the key: column 7 of the source line
    assert caret.index("^") - caret.index("|") == lines[1].index("replcias") - lines[1].index("|")
    assert lines[3] == "hint: did you mean 'replicas'?"
    assert lines[-1] == "1 problem found; nothing was written."


def test_the_caret_points_at_a_value_in_a_flow_mapping(repo: Path):
    edit(
        repo,
        "environments/staging.yaml",
        "{minReplicas: 2, maxReplicas: 4",
        "{minReplicas: 6, maxReplicas: 4",
    )
    result = run_kompile("validate", "--root", str(repo))
    assert result.returncode == 2
    head, source, caret = result.stderr.splitlines()[:3]
    match = HEADLINE.match(head)
    assert match and match["code"] == "K401" and match["file"] == "environments/staging.yaml"
    col = int(match["col"])
    assert source.split("| ", 1)[1][col - 1 :].startswith("6, maxReplicas")
    assert caret.index("^") == source.index("| ") + 2 + col - 1


def test_every_problem_is_listed_with_its_own_position(repo: Path):
    edit(repo, "environments/app.yaml", "      port: 8000\n", "      port: 80000\n")
    edit(repo, "environments/dev.yaml", "  namespace: shop-dev", "  namespace: Shop_Dev")
    edit(
        repo,
        "environments/staging.yaml",
        "    className: nginx",
        "    className: nginx\n    className: traefik",
    )
    result = run_kompile("validate", "--root", str(repo))
    assert result.returncode == 2
    heads = [HEADLINE.match(line) for line in result.stderr.splitlines() if HEADLINE.match(line)]
    assert [(m["file"], m["line"], m["col"], m["code"]) for m in heads] == [
        ("environments/app.yaml", "18", "13", "K204"),
        ("environments/dev.yaml", "6", "14", "K205"),
        ("environments/staging.yaml", "18", "5", "K104"),
    ]
    assert result.stderr.count("hint: ") >= 2
    assert result.stderr.splitlines()[-1] == "3 problems found; nothing was written."


def test_json_gives_the_same_diagnostics_as_objects(repo: Path):
    edit(repo, "environments/app.yaml", "      port: 8000\n", "      port: 80000\n")
    edit(
        repo,
        "environments/prod.yaml",
        "      autoscaling: {minReplicas: 3",
        "      replcias: 3\n      autoscaling: {minReplicas: 3",
    )
    text = run_kompile("validate", "--root", str(repo))
    result = run_kompile("validate", "--root", str(repo), "--format", "json")
    assert result.returncode == 2
    items = json.loads(result.stdout)
    assert isinstance(items, list) and len(items) == 2
    for item in items:
        assert set(item) >= JSON_KEYS, item
        assert isinstance(item["line"], int) and isinstance(item["column"], int)
    assert [(i["file"], i["line"], i["column"], i["code"]) for i in items] == [
        ("environments/app.yaml", 18, 13, "K204"),
        ("environments/prod.yaml", 15, 7, "K201"),
    ]
    assert items[1]["message"] == "unknown key 'replcias' in components.web"
    assert items[1]["hint"] == "did you mean 'replicas'?"
    # the text report says the same things
    for item in items:
        assert (
            f"{item['file']}:{item['line']}:{item['column']}: error[{item['code']}]: {item['message']}"
            in text.stderr
        )


def test_a_whole_file_problem_has_no_position_in_json(repo: Path):
    (repo / "environments" / "qa.yaml").write_bytes(b"#" * (1 << 20) + b"\n")
    result = run_kompile("validate", "--root", str(repo), "--format", "json")
    assert result.returncode == 2
    [item] = json.loads(result.stdout)
    assert (item["file"], item["code"], item["line"], item["column"]) == (
        "environments/qa.yaml",
        "K101",
        0,
        0,
    )


def test_a_missing_environments_folder_exits_2(tmp_path: Path):
    result = run_kompile("validate", "--root", str(tmp_path))
    assert result.returncode == 2
    assert "error[K308]" in result.stderr and "hint: " in result.stderr


@pytest.mark.parametrize(
    "command", [["validate"], ["render", "dev"], ["build"], ["check"], ["check", "--fast"]]
)
def test_a_root_that_does_not_exist_is_k308_for_every_command(tmp_path: Path, command: list[str]):
    """--root naming nothing: exit 2 with K308 (in --format json's output where the command has one)."""
    result = run_kompile(*command, "--root", str(tmp_path / "missing"))
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "error[K308]" in result.stderr and "hint: " in result.stderr, result.stderr
    if command[0] == "validate":
        result = run_kompile(*command, "--root", str(tmp_path / "missing"), "--format", "json")
        assert result.returncode == 2 and "K308" in result.stdout, (result.stdout, result.stderr)


def test_broken_bytes_and_yaml_never_end_in_a_traceback(repo: Path):
    (repo / "environments" / "a.yaml").write_bytes(b"\xff\xfe" + "kind: App\n".encode("utf-16-le"))
    (repo / "environments" / "b.yaml").write_bytes(b"kind: [\x00\n")
    (repo / "environments" / "c.yaml").write_bytes(b"a: &a [*a, *a]\n")
    (repo / "environments" / "d.yaml").symlink_to("/etc/passwd")
    (repo / "environments" / "e.yaml").mkdir()
    (repo / "environments" / "f.yaml").write_bytes(b"b: !!python/object:os.system {}\n")
    result = run_kompile("validate", "--root", str(repo))
    assert result.returncode == 2
    assert re.findall(r"^(\S+): error\[(K\d+)\]", result.stderr, re.MULTILINE) == [
        ("environments/a.yaml:1:1", "K102"),
        ("environments/b.yaml:1:8", "K103"),
        ("environments/c.yaml:1:4", "K106"),
        ("environments/d.yaml", "K305"),
        ("environments/e.yaml", "K101"),
        ("environments/f.yaml:1:4", "K105"),
    ]


def test_an_unknown_environment_for_build_is_k310_and_nothing_is_written(repo: Path):
    before = sorted(p.relative_to(repo).as_posix() for p in repo.rglob("*"))
    result = run_kompile("build", "--root", str(repo), "--env", "qa", "--format", "json")
    assert result.returncode == 2
    [item] = json.loads(result.stdout)
    assert item["code"] == "K310" and "did you mean" not in (item["message"] or "")
    assert "dev" in item["hint"]
    assert sorted(p.relative_to(repo).as_posix() for p in repo.rglob("*")) == before


def test_building_one_environment_still_validates_them_all(repo: Path):
    # A broken prod must not slip through a `--env dev` build: validation does not depend on --env.
    edit(
        repo, "environments/prod.yaml", "minReplicas: 3, maxReplicas: 12", "minReplicas: 30, maxReplicas: 12"
    )
    before = sorted(p.relative_to(repo).as_posix() for p in repo.rglob("*"))
    result = run_kompile("build", "--root", str(repo), "--env", "dev")
    assert result.returncode == 2
    assert "environments/prod.yaml:15:34: error[K401]" in result.stderr
    assert sorted(p.relative_to(repo).as_posix() for p in repo.rglob("*")) == before


@pytest.mark.parametrize("name", case_names())
def test_every_error_case_exits_2_through_the_cli(name: str, tmp_path: Path):
    root = materialise(CASES / name, tmp_path / "repo")
    before = {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }
    result = CliRunner().invoke(app, ["build", "--root", str(root), "--format", "json"])
    assert result.exit_code == 2, (result.output, result.exception)
    after = {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }
    assert after == before, "nothing may be written on invalid input"
    items = json.loads(result.stdout)
    assert items and all(set(item) >= JSON_KEYS for item in items)
    expected = [
        line.split()[0]
        for line in (CASES / name / "expected.txt").read_text().splitlines()
        if line.strip() and not line.startswith(("#", " "))
    ]
    assert [item["code"] for item in items] == expected
