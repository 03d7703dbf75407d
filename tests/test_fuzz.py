"""The whole pipeline under random, often hostile, changes of the example: every run either builds an
output that keeps the hardening, or fails with positioned diagnostics and writes nothing. Never
another exception, never a partial write.

A few hundred examples run in the suite. For a long hunt:

    KOMPILE_FUZZ_EXAMPLES=100000 python -m pytest tests/test_fuzz.py -p no:cacheprovider -q
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from kompile.compiler import compile_project
from kompile.errors import KompileError
from kompile.k8s.kinds import KINDS
from kompile.model import Tier
from kompile.output.manifest import MANIFEST
from kompile.output.overlay import read_overlay
from kompile.output.write import plan_write, write_tree
from kompile.policy.gate import Scope, check_stream

from conftest import copy_example
from strategies import mutate, tweak

EXAMPLES = int(os.environ.get("KOMPILE_FUZZ_EXAMPLES", "250"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SPECS = [
    "environments/app.yaml",
    "environments/dev.yaml",
    "environments/staging.yaml",
    "environments/prod.yaml",
]
OUTPUTS = ("bases", "overlays", "gitops", MANIFEST)

# What a hostile spec author might try to slip in through the escape hatches.
CONTAINER = "/spec/template/spec/containers/0"
HOSTILE_OPS = [
    ("Deployment", "shop-web", {"op": "remove", "path": f"{CONTAINER}/securityContext"}),
    (
        "Deployment",
        "shop-web",
        {"op": "replace", "path": f"{CONTAINER}/securityContext/privileged", "value": True},
    ),
    (
        "Deployment",
        "shop-worker",
        {"op": "replace", "path": f"{CONTAINER}/securityContext/runAsUser", "value": 0},
    ),
    (
        "Deployment",
        "shop-worker",
        {"op": "add", "path": f"{CONTAINER}/securityContext/capabilities/add", "value": ["SYS_ADMIN"]},
    ),
    ("Deployment", "shop-beat", {"op": "add", "path": "/spec/template/spec/hostNetwork", "value": True}),
    (
        "Deployment",
        "shop-beat",
        {
            "op": "add",
            "path": "/spec/template/spec/volumes/-",
            "value": {"name": "node", "hostPath": {"path": "/"}},
        },
    ),
    (
        "Job",
        "shop-migrate",
        {"op": "replace", "path": "/spec/template/spec/automountServiceAccountToken", "value": True},
    ),
    ("Job", "shop-migrate", {"op": "remove", "path": f"{CONTAINER}/resources/limits"}),
    ("NetworkPolicy", "shop-web", {"op": "add", "path": "/spec/egress/-", "value": {}}),
    (
        "NetworkPolicy",
        "shop-default-deny",
        {"op": "replace", "path": "/spec/policyTypes", "value": ["Ingress"]},
    ),
    (
        "Namespace",
        "shop-dev",
        {
            "op": "replace",
            "path": "/metadata/labels/pod-security.kubernetes.io~1enforce",
            "value": "baseline",
        },
    ),
    (
        "ConfigMap",
        "shop-config",
        {"op": "add", "path": "/data/DATABASE_URL", "value": "postgres://u:hunter2@db/shop"},
    ),
    (
        "Deployment",
        "shop-web",
        {
            "op": "add",
            "path": f"{CONTAINER}/env",
            "value": [{"name": "API_TOKEN", "value": "not-a-placeholder-0123"}],
        },
    ),
    # Harmless ones, so that the patched path also succeeds.
    ("Deployment", "shop-web", {"op": "replace", "path": "/spec/revisionHistoryLimit", "value": 3}),
    ("ConfigMap", "shop-config", {"op": "add", "path": "/data/FEATURE_FLAGS", "value": "search,checkout"}),
]


# Extra resources a hostile author might add: a pod spec, hardened or not, wrapped in a built-in workload,
# a List, or a custom resource kompile knows (Rollout, ScaledJob) or does not (Knative, anything).
HARDENED_POD = {
    "automountServiceAccountToken": False,
    "securityContext": {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "seccompProfile": {"type": "RuntimeDefault"},
    },
    "containers": [
        {
            "name": "main",
            "image": "ghcr.io/acme/tool:1.0",
            "securityContext": {
                "allowPrivilegeEscalation": False,
                "capabilities": {"drop": ["ALL"]},
                "readOnlyRootFilesystem": True,
            },
            "resources": {
                "requests": {"cpu": "10m", "memory": "32Mi"},
                "limits": {"cpu": "100m", "memory": "64Mi"},
            },
        }
    ],
}
POD_CHANGES = {
    "none": lambda pod: None,
    "privileged": lambda pod: pod["containers"][0]["securityContext"].update(privileged=True),
    "host pid": lambda pod: pod.update(hostPID=True),
    "root": lambda pod: pod["securityContext"].update(runAsUser=0),
    "sysctl": lambda pod: pod["securityContext"].update(sysctls=[{"name": "kernel.msgmax", "value": "1"}]),
    "token": lambda pod: pod.update(
        volumes=[{"name": "t", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}}]
    ),
    "ephemeral root": lambda pod: pod.update(
        ephemeralContainers=[{"name": "debug", "image": "busybox:1.36"}]
    ),
    "apparmor": lambda pod: pod["containers"][0]["securityContext"].update(
        appArmorProfile={"type": "Unconfined"}
    ),
    "latest": lambda pod: pod["containers"][0].update(image="ghcr.io/acme/tool:latest"),
}
WRAPPERS = {  # name -> (group, kind, how the pod spec is wrapped)
    "Deployment": (
        "apps",
        "Deployment",
        lambda pod: {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "shop-x"},
            "spec": {
                "selector": {"matchLabels": {"a": "b"}},
                "template": {"metadata": {"labels": {"a": "b"}}, "spec": pod},
            },
        },
    ),
    "PodTemplate": (
        "",
        "PodTemplate",
        lambda pod: {
            "apiVersion": "v1",
            "kind": "PodTemplate",
            "metadata": {"name": "shop-x"},
            "template": {"spec": pod},
        },
    ),
    "Rollout": (
        "argoproj.io",
        "Rollout",
        lambda pod: {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Rollout",
            "metadata": {"name": "shop-x"},
            "spec": {"template": {"spec": pod}},
        },
    ),
    "ScaledJob": (
        "keda.sh",
        "ScaledJob",
        lambda pod: {
            "apiVersion": "keda.sh/v1alpha1",
            "kind": "ScaledJob",
            "metadata": {"name": "shop-x"},
            "spec": {"jobTargetRef": {"template": {"spec": pod}}},
        },
    ),
    "Knative": (
        "serving.knative.dev",
        "Service",
        lambda pod: {
            "apiVersion": "serving.knative.dev/v1",
            "kind": "Service",
            "metadata": {"name": "shop-x"},
            "spec": {"template": {"spec": pod}},
        },
    ),
    "anything": (
        "example.com",
        "Thing",
        lambda pod: {
            "apiVersion": "example.com/v1",
            "kind": "Thing",
            "metadata": {"name": "shop-x"},
            "spec": {"runner": {"podSpec": pod}},
        },
    ),
}
PATHS = [
    "k8s/extra.yaml",
    "k8s/../k8s/extra.yaml",
    "/etc/passwd",
    "k8s/link.yaml",
    "k8s\\extra.yaml",
    "k8s//extra.yaml",
    "./k8s/extra.yaml",
    "k8s/outside-link.yaml",
]


def add_extra_resource(root: Path, doc: dict, data) -> None:
    """A hostile (or harmless) extra resource, possibly wrapped in Lists, named by a path that may be a trick."""
    import copy

    group, kind, wrap = WRAPPERS[data.draw(st.sampled_from(sorted(WRAPPERS)), label="wrapper")]
    pod = copy.deepcopy(HARDENED_POD)
    POD_CHANGES[data.draw(st.sampled_from(sorted(POD_CHANGES)), label="pod change")](pod)
    obj = wrap(pod)
    for _ in range(data.draw(st.integers(0, 2), label="lists around it")):
        obj = {
            "apiVersion": "v1",
            "kind": data.draw(st.sampled_from(["List", "DeploymentList", "FooList"])),
            "items": [obj],
        }
    (root / "k8s").mkdir(exist_ok=True)
    (root / "k8s/extra.yaml").write_text(yaml.safe_dump(obj, sort_keys=False))
    (root / "k8s/link.yaml").symlink_to("extra.yaml")
    (root / "k8s/outside-link.yaml").symlink_to("/etc/hostname")
    doc["spec"]["extraResources"] = [data.draw(st.sampled_from(PATHS), label="path")]
    app = root / "environments/app.yaml"
    app.write_text(
        app.read_text() + f"  allowKinds: [{{group: '{group}', kind: {kind}, namespaced: true}}]\n"
    )
    if KINDS.get((group, kind)) is not None and KINDS[(group, kind)].delegates:
        # KEDA's controller acts with its own rights (gitops-delegation): opted out, so the pod rules are what decides.
        doc["spec"].setdefault("security", {})["allow"] = [
            {"rule": "gitops-delegation", "reason": "the fuzz test's own ScaledJob"}
        ]


def assert_hardened(root: Path, output) -> None:
    """What every compiled environment keeps, whatever the spec said (bar visible opt-outs), checked on the
    overlays as written, read back by kompile's overlay reader (not the model the gate saw)."""
    for name, compiled in output.environments.items():
        env = compiled.env
        objects = read_overlay(root, name)
        allow = env.security.allow
        kinds = [obj["kind"] for obj in objects]
        assert "Secret" not in kinds, name
        assert any(
            obj["kind"] == "NetworkPolicy" and obj["metadata"]["name"].endswith("-default-deny")
            for obj in objects
        ), name
        scope = Scope(
            namespace=env.namespace,
            production=env.tier is Tier.PRODUCTION,
            api_accounts=frozenset(a.name for a in env.accounts if a.api_access),
            default_deny=f"{env.app}-default-deny",
            declared=env.declared_kinds,
        )
        for _, finding in check_stream(objects, scope):
            assert finding.rule is not None and any(a.covers(finding.rule, finding.object) for a in allow), (
                name,
                finding,
            )


@pytest.mark.slow  # the long hunt is the point; the fast subset runs the two below
@FUZZ
@given(data=st.data())
def test_random_and_hostile_changes_build_hardened_or_fail_cleanly(data):
    scratch = Path(tempfile.mkdtemp(prefix="kompile-fuzz-"))
    try:
        root = copy_example(scratch / "repo")
        spec = data.draw(st.sampled_from(SPECS), label="spec file")
        path = root / spec
        doc = yaml.safe_load(path.read_text())
        how = data.draw(
            st.sampled_from(["mutate", "tweak", "hostile patch", "hostile patch", "both", "extra", "extra"]),
            label="how",
        )
        if how in ("mutate", "both"):
            doc = mutate(doc, data)
        if how == "tweak":
            doc = tweak(doc, data)
        if (
            how == "extra"
            and spec != "environments/app.yaml"
            and isinstance(doc, dict)
            and isinstance(doc.get("spec"), dict)
        ):
            add_extra_resource(root, doc, data)
        if how in ("hostile patch", "both") and isinstance(doc, dict) and isinstance(doc.get("spec"), dict):
            kind, obj, op = data.draw(st.sampled_from(HOSTILE_OPS), label="hostile patch")
            doc["spec"].setdefault("patches", [])
            if isinstance(doc["spec"]["patches"], list):
                doc["spec"]["patches"].append({"target": {"kind": kind, "name": obj}, "patch": [op]})
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        try:
            output = compile_project(root)
            write_tree(root, output.files, output.owned, output.inputs)
        except KompileError as exc:
            event("refused with a positioned diagnostic")
            for diagnostic in exc.diagnostics:
                assert diagnostic.span is not None and diagnostic.span.path, diagnostic
            assert not any((root / name).exists() for name in OUTPUTS), (
                "nothing may be written on invalid input"
            )
            return
        event("built")
        assert_hardened(root, output)
        assert plan_write(root, output.files, output.owned, output.inputs).is_noop  # written whole
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def test_the_fuzzer_reaches_both_outcomes(tmp_path: Path):
    """The hostile patches are refused and the harmless ones build (so the property above tests both paths)."""
    outcomes = set()
    for kind, name, op in (HOSTILE_OPS[0], HOSTILE_OPS[-1]):
        root = copy_example(tmp_path / f"repo-{len(outcomes)}-{kind}")
        dev = root / "environments/dev.yaml"
        doc = yaml.safe_load(dev.read_text())
        doc["spec"]["patches"] = [{"target": {"kind": kind, "name": name}, "patch": [op]}]
        dev.write_text(yaml.safe_dump(doc, sort_keys=False))
        try:
            output = compile_project(root)
            write_tree(root, output.files, output.owned, output.inputs)
            assert_hardened(root, output)
            outcomes.add("built")
        except KompileError as exc:
            assert {d.code.value for d in exc.diagnostics} == {"K603"}
            outcomes.add("refused")
    assert outcomes == {"built", "refused"}


class _Draws:
    """Answers the fuzz test's draws in order (to replay one case by hand)."""

    def __init__(self, *answers) -> None:
        self.answers = list(answers)

    def draw(self, strategy, label=None):
        return self.answers.pop(0)


@pytest.mark.parametrize("wrapper", sorted(WRAPPERS))
def test_extra_resources_reach_both_outcomes(tmp_path: Path, wrapper: str):
    """Through every wrapper, a hardened pod builds (and passes the gate on the overlay read back) and a
    privileged one is refused: the extra-resource path of the fuzz test tests both outcomes."""
    outcomes = {}
    for change in ("none", "privileged"):
        root = copy_example(tmp_path / f"{wrapper}-{change}")
        dev = root / "environments/dev.yaml"
        doc = yaml.safe_load(dev.read_text())
        add_extra_resource(root, doc, _Draws(wrapper, change, 1, "List", "k8s/extra.yaml"))
        dev.write_text(yaml.safe_dump(doc, sort_keys=False))
        try:
            output = compile_project(root)
            write_tree(root, output.files, output.owned, output.inputs)
            assert_hardened(root, output)
            outcomes[change] = "built"
        except KompileError as exc:
            assert {d.code.value for d in exc.diagnostics} == {"K603"}, exc.diagnostics
            outcomes[change] = "refused"
    assert outcomes == {"none": "built", "privileged": "refused"}
