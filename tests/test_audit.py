"""An audit of what clusters receive: every golden overlay, as `kubectl kustomize` builds it (not as
kompile models it), goes through kompile's policy gate, and keeps the PSS "restricted" basics checked
here independently of the gate, object by object. (tests/test_checkov.py runs checkov over the same
overlays.)"""

from __future__ import annotations

from functools import cache

import pytest
import yaml

from kompile.compiler import Output, compile_project
from kompile.k8s.kinds import classify
from kompile.model import GitOpsTool, Tier
from kompile.policy.gate import Scope, check_stream
from kompile.policy.pods import pod_specs

from conftest import GOLDEN, golden_overlays, kustomize_build

OVERLAYS = golden_overlays()
pytestmark = pytest.mark.kubectl


@cache
def output(case: str) -> Output:
    return compile_project(GOLDEN / case / "input")


@pytest.mark.parametrize(("case", "env"), OVERLAYS, ids=[f"{c}/{e}" for c, e in OVERLAYS])
def test_what_kustomize_builds_keeps_the_hardening(case: str, env: str):
    objects = [
        o for o in yaml.safe_load_all(kustomize_build(GOLDEN / case / "expected" / "overlays" / env)) if o
    ]
    model = output(case).environments[env].env
    # kompile's own objects of delegating kinds (its ScaledObjects, ExternalSecrets) are its shape: the golden
    # cases patch none of them.
    extra = {
        (o.body["apiVersion"].rpartition("/")[0], o.body["kind"], o.body["metadata"]["name"])
        for o in model.extra_objects
    }
    own = (
        frozenset((o["apiVersion"].rpartition("/")[0], o["kind"], o["metadata"]["name"]) for o in objects)
        - extra
    )
    scope = Scope(
        namespace=model.namespace,
        production=model.tier is Tier.PRODUCTION,
        api_accounts=frozenset(a.name for a in model.accounts if a.api_access),
        default_deny=f"{model.app}-default-deny",
        declared=model.declared_kinds,
        own=own,
        decrypts_sops=model.gitops is not None and model.gitops.tool is GitOpsTool.FLUX,
    )
    findings = [
        f
        for _, f in check_stream(objects, scope)
        if f.rule is None or not any(a.covers(f.rule, f.object) for a in model.security.allow)
    ]
    assert findings == []
    # The basics, without the gate:
    assert not [o for o in objects if o["kind"] == "Secret" and not (scope.decrypts_sops and "sops" in o)]
    namespaces = [o for o in objects if o["kind"] == "Namespace"]
    assert len(namespaces) == 1
    assert all(
        namespaces[0]["metadata"]["labels"][f"pod-security.kubernetes.io/{m}"] == "restricted"
        for m in ("enforce", "audit", "warn")
    )
    deny = [
        o
        for o in objects
        if o["kind"] == "NetworkPolicy"
        and o["spec"].get("podSelector") == {}
        and set(o["spec"].get("policyTypes", ())) == {"Ingress", "Egress"}
        and not o["spec"].get("ingress")
        and not o["spec"].get("egress")
    ]
    assert deny, "a default-deny policy for ingress and egress"
    pods = 0
    for obj in objects:
        for pod, _ in pod_specs(obj, classify(obj["apiVersion"], obj["kind"]))[0]:
            pods += 1
            assert not any("hostPath" in v for v in pod.get("volumes", ()))
            assert not any(pod.get(k) for k in ("hostNetwork", "hostPID", "hostIPC"))
            for c in [*pod["containers"], *pod.get("initContainers", ())]:
                context = c.get("securityContext", {})
                assert not context.get("privileged") and context.get("allowPrivilegeEscalation") is False
                assert context["capabilities"]["drop"] == ["ALL"] and not context["capabilities"].get("add")
    assert pods >= 1
