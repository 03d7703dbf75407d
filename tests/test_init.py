"""kompile init starts a repo that validates and builds as it is, never overwrites a spec, and points
editors at the JSON Schema; the schema published in this repo is the one kompile prints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator

from kompile.spec import json_schema

from conftest import kustomize_build, run_kompile

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.kubectl
@pytest.mark.parametrize("gitops", ["argocd", "flux"])
def test_a_new_repo_validates_and_builds_as_it_is(tmp_path: Path, gitops: str):
    root = tmp_path / "orders"
    root.mkdir()
    assert run_kompile("init", "--root", str(root), "--gitops", gitops).returncode == 0
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) == [
        ".gitattributes",
        "environments/app.yaml",
        "environments/dev.yaml",
        "environments/prod.yaml",
        "environments/staging.yaml",
        "kompile.schema.json",
    ]
    assert yaml.safe_load((root / "environments/app.yaml").read_text())["metadata"]["name"] == "orders"
    validate = run_kompile("validate", "--root", str(root))
    assert validate.returncode == 0, validate.stderr
    assert run_kompile("build", "--root", str(root)).returncode == 0
    assert run_kompile("check", "--root", str(root)).returncode == 0
    for env in ("dev", "staging", "prod"):
        assert kustomize_build(root / "overlays" / env)
    assert (root / f"gitops/{gitops}/kustomization.yaml").exists()


def test_the_scaffold_points_editors_at_a_schema_that_accepts_it(tmp_path: Path):
    assert run_kompile("init", "--root", str(tmp_path), "--app", "shop", "--env", "dev,prod").returncode == 0
    schema = json.loads((tmp_path / "kompile.schema.json").read_text())
    validator = Draft202012Validator(schema)
    for spec in (tmp_path / "environments").glob("*.yaml"):
        text = spec.read_text()
        assert text.startswith("# yaml-language-server: $schema=../kompile.schema.json\n")
        assert not list(validator.iter_errors(yaml.safe_load(text))), spec.name


def test_init_refuses_to_overwrite_a_spec(tmp_path: Path):
    (tmp_path / "environments").mkdir()
    (tmp_path / "environments/app.yaml").write_text("# mine\n")
    result = run_kompile("init", "--root", str(tmp_path))
    assert result.returncode == 2 and "K701" in result.stderr
    assert (tmp_path / "environments/app.yaml").read_text() == "# mine\n"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["app.yaml", "environments"]


def test_init_rejects_bad_names(tmp_path: Path):
    result = run_kompile("init", "--root", str(tmp_path), "--app", "Shop_App", "--env", "dev,Prod")
    assert result.returncode == 2 and result.stderr.count("K205") == 2
    assert not list(tmp_path.iterdir())


def test_the_published_schema_is_current(update_golden: bool):
    published = REPO / "kompile.schema.json"
    current = json.dumps(json_schema(), indent=2) + "\n"
    if published.read_text() != current:
        if update_golden:
            published.write_text(current)
            pytest.fail("kompile.schema.json rewritten: review the diff, then commit")
        pytest.fail("kompile.schema.json is out of date; run pytest tests/test_init.py --update-golden")
