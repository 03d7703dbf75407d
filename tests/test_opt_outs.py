"""A spec may weaken the hardening only in plain sight: security.allow names the rule, the object and a
reason, and `kompile validate` lists every such opt-out (K604) each time it runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kompile.compiler import compile_project
from kompile.errors import Code, KompileError

from conftest import run_kompile

PATCH = """  patches:
    - target: {kind: Deployment, name: shop-web}
      patch:
        - {op: replace, path: /spec/template/spec/containers/0/securityContext/readOnlyRootFilesystem, value: false}
"""


def patched(root: Path, allow: str = "") -> Path:
    dev = root / "environments/dev.yaml"
    dev.write_text(dev.read_text() + PATCH + allow)
    return root


def test_a_weakening_patch_is_refused(example: Path):
    with pytest.raises(KompileError) as caught:
        compile_project(patched(example))
    assert [(d.code, d.span.path, d.span.line) for d in caught.value.diagnostics] == [
        (Code.HARDENING, "environments/dev.yaml", 22)
    ]
    assert (
        "security: {allow: [{rule: read-only-root, object: Deployment/shop-web"
        in caught.value.diagnostics[0].hint
    )


def test_an_opt_out_for_another_object_does_not_cover_it(example: Path):
    allow = "  security:\n    allow:\n      - {rule: read-only-root, object: Deployment/shop-worker, reason: the worker unpacks wheels at start}\n"
    with pytest.raises(KompileError):
        compile_project(patched(example, allow))


def test_an_opt_out_with_a_reason_builds_and_is_listed_every_time(example: Path):
    allow = (
        "  security:\n    allow:\n      - rule: read-only-root\n        object: Deployment/shop-web\n"
        "        reason: the legacy image writes its bytecode cache next to the code\n"
    )
    output = compile_project(patched(example, allow))
    web = next(
        o
        for o in output.environments["dev"].objects
        if o["kind"] == "Deployment" and o["metadata"]["name"] == "shop-web"
    )
    assert (
        web["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is False
    )
    text = run_kompile("validate", "--root", str(example))
    assert text.returncode == 0
    assert (
        "warning[K604]: environment 'dev' opts out of read-only-root for Deployment/shop-web" in text.stderr
    )
    assert "the legacy image writes its bytecode cache" in text.stderr
    assert "1 hardening opt-out" in text.stdout
    listed = json.loads(run_kompile("validate", "--root", str(example), "--format", "json").stdout)
    assert [(w["code"], w["severity"], w["file"], w["line"]) for w in listed] == [
        ("K604", "warning", "environments/dev.yaml", 27)
    ]


def test_an_opt_out_needs_a_known_rule_and_a_real_reason(example: Path):
    allow = "  security:\n    allow:\n      - {rule: read-only-rot, reason: ok}\n"
    with pytest.raises(KompileError) as caught:
        compile_project(patched(example, allow))
    assert sorted(d.code.value for d in caught.value.diagnostics) == ["K204", "K204"]
