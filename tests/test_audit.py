"""An audit of what clusters receive: every golden overlay, as `kubectl kustomize` builds it, checked
with kompile's hardening rules (kompile/hardening.py) and the PSS "restricted" basics, object by object.
(tests/test_checkov.py runs checkov over the same overlays.)"""

from __future__ import annotations

import pytest
import yaml

from kompile.hardening import check_object, plaintext_findings
from kompile.k8s.transformers import pod_spec

from conftest import GOLDEN, golden_overlays, kustomize_build

OVERLAYS = golden_overlays()


@pytest.mark.parametrize(("case", "env"), OVERLAYS, ids=[f"{c}/{e}" for c, e in OVERLAYS])
def test_what_kustomize_builds_keeps_the_hardening(case: str, env: str):
    objects = [o for o in yaml.safe_load_all(kustomize_build(GOLDEN / case / "expected" / "overlays" / env)) if o]
    api_access = any(o["kind"] == "Role" for o in objects)
    assert not [o for o in objects if o["kind"] == "Secret"]
    namespaces = [o for o in objects if o["kind"] == "Namespace"]
    assert len(namespaces) == 1
    deny = [o for o in objects if o["kind"] == "NetworkPolicy" and o["spec"].get("podSelector") == {}
            and set(o["spec"].get("policyTypes", ())) == {"Ingress", "Egress"} and not o["spec"].get("ingress")
            and not o["spec"].get("egress")]
    assert deny, "a default-deny policy for ingress and egress"
    pods = 0
    for obj in objects:
        assert check_object(obj, api_access) == [], f"{obj['kind']}/{obj['metadata']['name']}"
        assert plaintext_findings(obj) == []
        pod = pod_spec(obj)
        if pod is not None:
            pods += 1
            assert not any("hostPath" in v for v in pod.get("volumes", ()))
            assert not any(c.get("securityContext", {}).get("privileged") for c in pod["containers"])
    assert pods >= 1
