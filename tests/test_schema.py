"""`kompile schema`: a JSON Schema (2020-12) that editors and CI can use, and that agrees with kompile."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from typer.testing import CliRunner

from kompile.cli import app
from kompile.errors import Collector, KompileError
from kompile.source import parse_document, plain
from kompile.spec import API_VERSION, check_document

from conftest import EXAMPLE
from strategies import mutate

EXAMPLE_SPECS = sorted(p.relative_to(EXAMPLE).as_posix() for p in (EXAMPLE / "environments").glob("*.yaml"))


@pytest.fixture(scope="module")
def schema() -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "kompile", "schema"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def validator(schema) -> Draft202012Validator:
    return Draft202012Validator(schema)


def load(rel: str) -> dict:
    return yaml.safe_load((EXAMPLE / rel).read_text(encoding="utf-8"))


def messages(validator: Draft202012Validator, doc) -> list[str]:
    return [error.message for error in validator.iter_errors(doc)]


def test_the_schema_is_a_valid_draft_2020_12_schema(schema):
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert set(schema["$defs"]) == {"App", "Environment"}


def test_the_cli_writes_the_same_schema_to_a_file(tmp_path: Path, schema):
    target = tmp_path / "kompile.schema.json"
    result = CliRunner().invoke(app, ["schema", "--output", str(target)])
    assert result.exit_code == 0, result.output
    assert json.loads(target.read_text(encoding="utf-8")) == schema


@pytest.mark.parametrize("rel", EXAMPLE_SPECS)
def test_every_file_of_the_example_validates(validator, rel: str):
    assert messages(validator, load(rel)) == []


def test_the_example_has_an_app_and_environments():
    kinds = sorted(load(rel)["kind"] for rel in EXAMPLE_SPECS)
    assert kinds.count("App") == 1 and kinds.count("Environment") >= 3


def app_doc() -> dict:
    return load("environments/app.yaml")


def prod_doc() -> dict:
    return load("environments/prod.yaml")


@pytest.mark.parametrize(
    "edit",
    [
        lambda d: d["spec"]["components"]["web"].update(replcias=2),  # typo'd key in a component
        lambda d: d["spec"].update(componets=d["spec"]["components"]),  # typo'd key in spec
        lambda d: d["metadata"].update(nmae="x"),  # typo'd key in metadata
        lambda d: d.update(specs={}),  # typo'd key at the top
        lambda d: d["spec"]["network"]["egress"][0].update(prot=5432),  # typo'd key in a list item
    ],
)
def test_a_typo_in_a_key_is_rejected(validator, edit):
    doc = app_doc()
    edit(doc)
    errors = messages(validator, doc)
    assert errors, "the schema accepted an unknown key"


def test_a_typo_in_an_environment_is_rejected(validator):
    doc = prod_doc()
    doc["spec"]["components"]["web"]["replcias"] = 3
    assert messages(validator, doc)


@pytest.mark.parametrize(
    "edit",
    [
        lambda d: d["spec"]["components"]["web"].update(port="8000"),  # string where an integer goes
        lambda d: d["spec"]["components"]["web"].update(port=70000),  # out of range
        lambda d: d["spec"].update(env=["A=1"]),  # list where a mapping goes
        lambda d: d["spec"]["components"]["web"].update(type="cron"),  # not one of the types
        lambda d: d["spec"]["components"]["web"]["probes"]["http"].update(path=3),
        lambda d: d["spec"]["secrets"][0].update(name="Shop_Django"),  # not a DNS name
        lambda d: d["spec"]["components"]["worker"].pop("type"),  # missing required field
        lambda d: d["spec"]["components"]["web"]["probes"]["http"].pop(
            "path"
        ),  # missing nested required field
        lambda d: d.update(kind="Application"),
        lambda d: d.update(apiVersion="kompile.dev/v1"),
        lambda d: d["spec"].pop("image"),
    ],
)
def test_wrong_types_and_values_in_the_app_are_rejected(validator, edit):
    doc = app_doc()
    edit(doc)
    assert messages(validator, doc)


def test_an_environment_may_leave_out_what_the_app_sets_and_null_what_it_inherits(validator):
    doc = {
        "apiVersion": API_VERSION,
        "kind": "Environment",
        "metadata": {"name": "preview"},
        "spec": {
            "extends": "dev",
            "components": {"web": {"probes": {"http": None, "exec": {"command": ["true"]}}}, "beat": None},
            "env": {"DJANGO_ALLOWED_HOSTS": None},
            "ingress": None,
        },
    }
    assert messages(validator, doc) == []


def test_an_environment_still_needs_its_envelope(validator):
    assert messages(validator, {"apiVersion": API_VERSION, "kind": "Environment", "spec": {}})
    assert messages(validator, {"apiVersion": API_VERSION, "kind": "Environment", "metadata": {}, "spec": {}})


def test_the_schema_does_not_accept_a_wrong_type_in_an_environment(validator):
    doc = prod_doc()
    doc["spec"]["components"]["web"]["autoscaling"]["minReplicas"] = "3"
    assert messages(validator, doc)


# ---------------------------------------------------------------------------------------------
# The schema and kompile's own check agree: whatever kompile accepts, the schema accepts, for App and
# for Environment files (whose schema, like kompile's per-file check, requires nothing inside spec and
# lets any setting be null). The converse does not hold and is not tested: kompile also checks what a
# JSON Schema cannot say (a CIDR's host bits, exactly one of http/exec, unique secret names, the tag
# `latest`, a trailing newline in a name, which jsonschema's re.search lets through `$`).


def kompile_accepts(doc: dict) -> tuple[bool | None, dict]:
    """Whether check_document finds nothing wrong (None: not an App or Environment of this apiVersion, which
    is decided before check_document runs), and the document as kompile read it."""
    text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
    try:
        loaded = parse_document(text, "environments/x.yaml")
    except KompileError:
        return False, {}
    kind = loaded.get("kind")
    if kind not in ("App", "Environment") or loaded.get("apiVersion") != API_VERSION:
        return None, {}
    out = Collector()
    check_document(loaded, kind, out)
    return not out.items, plain(loaded)


PROPERTY = settings(
    max_examples=int(os.environ.get("KOMPILE_FUZZ_EXAMPLES", "150")),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@pytest.mark.parametrize("rel", EXAMPLE_SPECS)
@PROPERTY
@given(data=st.data())
def test_what_kompile_accepts_the_schema_accepts(validator, rel: str, data):
    doc = load(rel)
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        doc = mutate(doc, data)
    accepted, loaded = kompile_accepts(doc)
    assume(accepted is not None)
    if accepted:
        assert messages(validator, loaded) == [], (
            f"kompile accepts this {loaded.get('kind')} but the schema does not"
        )


def test_the_agreement_property_can_fail():
    # A guard for the property: documents kompile refuses are found, so the property is not vacuous.
    doc = copy.deepcopy(app_doc())
    doc["spec"]["components"]["web"]["port"] = "8000"
    assert kompile_accepts(doc)[0] is False
    assert kompile_accepts(app_doc())[0] is True
