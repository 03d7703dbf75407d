"""The real tools are the oracle. For every overlay of every golden case:

- `kubectl kustomize overlays/<env>` (kustomize v5, no plugins or flags) builds it;
- every object it emits validates strictly (unknown fields are errors) against the Kubernetes OpenAPI
  schemas of 1.30 and of the newest version kubernetes-validate ships, and every custom resource
  against its CRD schema in tests/vendor/schemas/crds (or, for kinds the catalog lacks, the schema of
  the project's own CRD in tests/vendor/crds, made strict the same way);
- what it emits equals kompile's own model of the environment (`compiled.objects`, which is what
  `kompile render ENV` prints), object for object, and so does the `kompile render` command's output.

A missing kubectl skips these tests locally and fails them in CI (CI=true), see conftest.require_kubectl.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from functools import cache
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml
from deepdiff import DeepDiff
from kubernetes_validate.utils import latest_version

from kompile.compiler import compile_project
from kompile.k8s.kinds import BUILTIN_GROUPS
from kompile.layout import Compiled

from conftest import (
    CRD_SCHEMAS,
    VENDOR,
    as_flux_applies,
    copy_golden_input,
    golden_overlays,
    kustomize_build,
    write_files,
)

OVERLAYS = golden_overlays()
IDS = [f"{case}/{env}" for case, env in OVERLAYS]
# The oldest Kubernetes the output must run on, and the newest the validator knows.
KUBERNETES_VERSIONS = sorted({"1.30.0", latest_version()})

pytestmark = pytest.mark.kubectl


def build_overlay(case: str, env: str, tmp_path: Path) -> tuple[Path, Compiled, list[dict]]:
    """The case compiled and written under tmp_path; its model of `env`; and what kustomize builds from it."""
    root = copy_golden_input(case, tmp_path / "repo")
    output = compile_project(root)
    write_files(root, output.files)
    built = [doc for doc in yaml.safe_load_all(kustomize_build(root / "overlays" / env)) if doc is not None]
    return root, output.environments[env], built


def object_key(obj: dict) -> tuple[str, str, str, str]:
    metadata = obj.get("metadata") or {}
    return (
        obj.get("apiVersion", ""),
        obj.get("kind", ""),
        metadata.get("namespace", ""),
        metadata.get("name", ""),
    )


def object_differences(expected: list[dict], actual: list[dict], what: str) -> str:
    """'' when both lists hold the same objects (by apiVersion, kind, namespace and name, then equal dicts)."""
    report = []
    for label, objects in (("kompile's model", expected), (what, actual)):
        keys = [object_key(obj) for obj in objects]
        duplicates = sorted({key for key in keys if keys.count(key) > 1})
        if duplicates:
            report.append(f"{label} holds duplicates: {duplicates}")
    want = {object_key(obj): obj for obj in expected}
    have = {object_key(obj): obj for obj in actual}
    for key in sorted(want.keys() - have.keys()):
        report.append(f"only in kompile's model: {'/'.join(key)}")
    for key in sorted(have.keys() - want.keys()):
        report.append(f"only in {what}: {'/'.join(key)}")
    for key in sorted(want.keys() & have.keys()):
        diff = DeepDiff(want[key], have[key], verbose_level=2)
        if diff:
            report.append(f"{'/'.join(key)} differs (kompile's model -> {what}):\n{diff.pretty()}")
    return "\n".join(report)


@pytest.mark.parametrize(("case", "env"), OVERLAYS, ids=IDS)
def test_kustomize_builds_what_kompile_renders(case: str, env: str, tmp_path: Path):
    _, compiled, built = build_overlay(case, env, tmp_path)
    assert built, f"kubectl kustomize overlays/{env} emitted nothing"
    differences = object_differences(compiled.objects, built, "kubectl kustomize")
    assert not differences, f"{case}: overlays/{env} does not build what kompile renders:\n{differences}"


@pytest.mark.parametrize(("case", "env"), OVERLAYS, ids=IDS)
def test_render_command_prints_what_kustomize_builds(case: str, env: str, tmp_path: Path):
    root, _, built = build_overlay(case, env, tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "kompile", "render", env, "--root", str(root)],
        capture_output=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr.decode()
    rendered = [doc for doc in yaml.safe_load_all(result.stdout) if doc is not None]
    differences = object_differences(rendered, built, "kubectl kustomize")
    assert not differences, f"{case}: `kompile render {env}` differs from overlays/{env}:\n{differences}"


def test_object_differences_can_fail():
    """The comparison sees a changed field, a missing object and a duplicate."""
    a = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "a", "namespace": "n"},
        "data": {"k": "1"},
    }
    b = copy.deepcopy(a)
    b["data"]["k"] = "2"
    c = {**copy.deepcopy(a), "metadata": {"name": "c", "namespace": "n"}}
    assert object_differences([a], [copy.deepcopy(a)], "x") == ""
    assert "root['data']['k']" in object_differences([a], [b], "x")
    assert "only in kompile's model: v1/ConfigMap/n/c" in object_differences([a, c], [a], "x")
    assert "duplicates" in object_differences([a], [a, a], "x")


# ---------------------------------------------------------------------------------------------
# Schemas


@cache
def crd_schema(group: str, kind: str, version: str) -> dict | None:
    """The catalog's JSON Schema for the kind, or else one made from the project's own CRD (vendored)."""
    path = CRD_SCHEMAS / group / f"{kind.lower()}_{version}.json"
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    for crd_file in sorted((VENDOR / "crds").glob(f"{group}_*.yaml")):
        crd = yaml.safe_load(crd_file.read_text(encoding="utf-8"))
        if crd["spec"]["names"]["kind"] != kind:
            continue
        for served in crd["spec"]["versions"]:
            if served["name"] == version:
                return strict_schema(copy.deepcopy(served["schema"]["openAPIV3Schema"]))
    return None


def strict_schema(node):
    """An OpenAPI v3 schema of a CRD as a strict JSON Schema: an object that lists its properties allows
    no others (the API server would prune them silently), as the catalog's converter makes them."""
    if isinstance(node, dict):
        if (
            node.get("type") == "object"
            and "properties" in node
            and "additionalProperties" not in node
            and not node.get("x-kubernetes-preserve-unknown-fields")
        ):
            node["additionalProperties"] = False
        for key in ("properties", "patternProperties", "definitions"):
            for child in (node.get(key) or {}).values():
                strict_schema(child)
        for key in ("items", "additionalProperties", "not"):
            if isinstance(node.get(key), dict):
                strict_schema(node[key])
        for key in ("allOf", "anyOf", "oneOf"):
            for child in node.get(key) or ():
                strict_schema(child)
    return node


def schema_problems(obj: dict, kubernetes_version: str) -> list[str]:
    """Every way obj fails its schema: the Kubernetes OpenAPI schema (strict), or for a custom resource
    its CRD's. An object that has neither is a problem too: nothing may pass unchecked."""
    name = f"{obj.get('kind')}/{(obj.get('metadata') or {}).get('name')}"
    try:
        kubernetes_validate.validate(obj, kubernetes_version, strict=True)
        return []
    except kubernetes_validate.ValidationError as exc:
        where = ".".join(str(p) for p in exc.path) or "(top)"
        return [f"{name}: Kubernetes {kubernetes_version}: {where}: {exc.message}"]
    except kubernetes_validate.SchemaNotFoundError:
        pass
    return custom_resource_problems(obj)


def custom_resource_problems(obj: dict) -> list[str]:
    name = f"{obj.get('kind')}/{(obj.get('metadata') or {}).get('name')}"
    group, _, version = obj["apiVersion"].rpartition("/")
    schema = crd_schema(group, obj["kind"], version)
    if schema is None:
        return [
            f"{name}: no Kubernetes schema and no CRD schema at {group}/{obj['kind'].lower()}_{version}.json"
        ]
    problems = [
        f"{name}: {'.'.join(str(p) for p in error.absolute_path) or '(top)'}: {error.message}"
        for error in jsonschema.Draft202012Validator(schema).iter_errors(obj)
    ]
    # CRD schemas say only `metadata: {type: object}`, and the API server prunes unknown top-level
    # fields silently; hold both to the standard of the built-in kinds.
    problems += [
        f"{name}: unknown top-level field '{key}'" for key in obj if key not in schema.get("properties", {})
    ]
    probe = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": obj.get("metadata")}
    try:
        kubernetes_validate.validate(probe, latest_version(), strict=True)
    except kubernetes_validate.ValidationError as exc:
        problems.append(f"{name}: metadata.{'.'.join(str(p) for p in list(exc.path)[1:])}: {exc.message}")
    return problems


@pytest.mark.parametrize("kubernetes_version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize(("case", "env"), OVERLAYS, ids=IDS)
def test_every_object_validates_strictly(case: str, env: str, kubernetes_version: str, tmp_path: Path):
    _, _, built = build_overlay(case, env, tmp_path)
    problems = [
        problem for obj in as_flux_applies(built) for problem in schema_problems(obj, kubernetes_version)
    ]
    assert not problems, f"{case}: overlays/{env}:\n" + "\n".join(problems)


@pytest.mark.parametrize(("case", "env"), OVERLAYS, ids=IDS)
def test_custom_resources_validate_against_their_crds(case: str, env: str, tmp_path: Path):
    _, compiled, built = build_overlay(case, env, tmp_path)
    custom = [
        obj for obj in built if obj["apiVersion"].rpartition("/")[0] not in BUILTIN_GROUPS
    ]  # every kind a CRD adds
    providers = {
        o["metadata"]["name"] for o in built if o["kind"] in ("SealedSecret", "ExternalSecret", "Secret")
    }
    assert providers == {s.name for s in compiled.env.secrets}, (
        f"{case}/{env}: each declared secret, from one backend"
    )
    problems = [problem for obj in custom for problem in custom_resource_problems(obj)]
    assert not problems, f"{case}: overlays/{env}:\n" + "\n".join(problems)


def test_schema_checks_can_fail():
    """Strictness is real: an unknown field, a wrong type and an unknown kind are all reported."""
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "v"}}
    assert schema_problems(config, "1.30.0") == []
    assert schema_problems({**config, "spec": {}}, "1.30.0")
    assert schema_problems({**config, "data": {"k": 1}}, "1.30.0")
    sealed = {
        "apiVersion": "bitnami.com/v1alpha1",
        "kind": "SealedSecret",
        "metadata": {"name": "s", "namespace": "n"},
        "spec": {"encryptedData": {"K": "AgB"}, "template": {"metadata": {"name": "s", "namespace": "n"}}},
    }
    assert custom_resource_problems(sealed) == []
    assert custom_resource_problems({**sealed, "spec": {**sealed["spec"], "encrypted": {}}})
    assert custom_resource_problems({**sealed, "status2": {}})
    assert custom_resource_problems({**sealed, "metadata": {"name": "s", "labels": {"a": 1}}})
    assert schema_problems(
        {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}, "1.30.0"
    )


# ---------------------------------------------------------------------------------------------
# Extra resources meet kustomize's transformers in ways kompile's own objects never do.

EXTRAS = """\
apiVersion: v1
kind: ServiceAccount
metadata:
  name: docs-reporter
---
# Subjects: kustomize's namespace transformer fills in subjects named "default", and its name
# references fill in the namespace of subjects that name a ServiceAccount of the build.
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: docs-view
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
subjects:
  - {kind: ServiceAccount, name: docs}
  - {kind: ServiceAccount, name: docs, namespace: default}
  - {kind: ServiceAccount, name: docs, namespace: elsewhere}
  - {kind: ServiceAccount, name: docs-reporter}
  - {kind: ServiceAccount, name: docs-reporter, namespace: default}
  - {kind: ServiceAccount, name: default}
  - {kind: ServiceAccount, name: default, namespace: kube-system}
  - {kind: ServiceAccount, name: prometheus, namespace: monitoring}
  - {kind: ServiceAccount, name: unknown}
  - {kind: Group, name: docs-editors, apiGroup: rbac.authorization.k8s.io}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: docs-staging-node-reader
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: system:node-reader}
subjects:
  - {kind: ServiceAccount, name: docs}
  - {kind: ServiceAccount, name: default}
---
apiVersion: v1
kind: ReplicationController
metadata:
  name: docs-legacy
spec:
  replicas: 0
  selector: {app: docs-legacy}
  template:
    metadata:
      labels: {app: docs-legacy}
    spec:
      automountServiceAccountToken: false
      containers:
        - name: legacy
          image: registry.example.org/platform/docs-site:old
          securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}, runAsNonRoot: true,
                            runAsUser: 10001, readOnlyRootFilesystem: true, seccompProfile: {type: RuntimeDefault}}
          resources: {requests: {cpu: 10m, memory: 32Mi}, limits: {cpu: 100m, memory: 64Mi}}
"""


def test_kustomize_transformers_on_extra_resources(tmp_path: Path):
    root = copy_golden_input("web-only", tmp_path / "repo")
    (root / "extras").mkdir()
    (root / "extras" / "rbac-and-legacy.yaml").write_text(EXTRAS)
    app = root / "environments" / "app.yaml"
    app.write_text(
        app.read_text() + "  allowKinds: [{group: rbac.authorization.k8s.io, kind: ClusterRoleBinding},"
        " {group: '', kind: ReplicationController}]\n"
    )
    spec = root / "environments" / "staging.yaml"
    # The bindings break the rbac rule on purpose (this models kustomize, not the policy): opted out.
    spec.write_text(
        spec.read_text() + "  extraResources: [extras/rbac-and-legacy.yaml]\n"
        "  security: {allow: [{rule: rbac, reason: these bindings exercise kustomize's subject rules},"
        " {rule: cluster-scoped, reason: so does the ClusterRoleBinding}]}\n"
    )
    output = compile_project(root)
    write_files(root, output.files)
    built = [
        doc for doc in yaml.safe_load_all(kustomize_build(root / "overlays" / "staging")) if doc is not None
    ]
    differences = object_differences(output.environments["staging"].objects, built, "kubectl kustomize")
    assert not differences, differences


def test_a_cluster_wide_sealed_secret_lands_in_the_environment_namespace(tmp_path: Path):
    """A cluster-wide SealedSecret unseals anywhere, so its file may name another namespace; the overlay's
    namespace transformer moves it, and kompile's model must say so too."""
    root = copy_golden_input("flux", tmp_path / "repo")
    sealed = root / "secrets" / "prod" / "billing-django.yaml"
    sealed.write_text(
        sealed.read_text()
        .replace(
            "  namespace: billing\n",
            '  namespace: billing-old\n  annotations:\n    sealedsecrets.bitnami.com/cluster-wide: "true"\n',
            1,
        )
        .replace("      namespace: billing\n", "")
    )
    output = compile_project(root)
    write_files(root, output.files)
    built = [
        doc for doc in yaml.safe_load_all(kustomize_build(root / "overlays" / "prod")) if doc is not None
    ]
    [secret] = [obj for obj in output.environments["prod"].objects if obj["kind"] == "SealedSecret"]
    assert secret["metadata"]["namespace"] == "billing"
    differences = object_differences(output.environments["prod"].objects, built, "kubectl kustomize")
    assert not differences, differences


def test_an_extra_resource_follows_an_environment_that_changes_the_image_repository(tmp_path: Path):
    """The preview's CronJob names the App's image; kustomize gives it the preview's repository and tag."""
    root = copy_golden_input("extends-and-escape-hatches", tmp_path / "repo")
    spec = root / "environments" / "preview.yaml"
    spec.write_text(
        spec.read_text().replace(
            "image: {tag: pr-481}", "image: {repository: ghcr.io/acme/forum-previews, tag: pr-481}"
        )
    )
    output = compile_project(root)
    write_files(root, output.files)
    built = [
        doc for doc in yaml.safe_load_all(kustomize_build(root / "overlays" / "preview")) if doc is not None
    ]
    differences = object_differences(output.environments["preview"].objects, built, "kubectl kustomize")
    assert not differences, differences


IMAGE_VALUES = [
    "ghcr.io/acme/shop",
    "ghcr.io/acme/shop:1.0",
    "ghcr.io/acme/shop@sha256:" + "a" * 64,
    "ghcr.io/acme/shop:1.0@sha256:" + "b" * 64,
    "ghcr.io/acme/shop@sha512:" + "c" * 128,
    "ghcrXio/acme/shop:1.0",  # '.' in the name is a regular expression to kustomize
    "ghcr.io/acme/shopping:1.0",
    "ghcr.io/acme/shop:1.{x}",
    "other.io/ghcr.io/acme/shop:1.0",
    "ghcr.io/acme/shop:",
]


@pytest.mark.kubectl
@pytest.mark.parametrize(
    "change",
    [
        {"newTag": "2.0"},
        {"digest": "sha256:" + "d" * 64},
        {"newTag": "2.0", "digest": "sha256:" + "d" * 64},
        {"newName": "registry.local:5000/shop"},
        {"newName": "registry.local/shop", "newTag": "3"},
    ],
)
def test_images_are_retagged_as_kustomize_retags_them(change: dict, tmp_path: Path):
    from kompile.k8s.transformers import retagged

    name = "ghcr.io/acme/shop"
    containers = [{"name": f"c{i}", "image": image} for i, image in enumerate(IMAGE_VALUES)]
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": containers}}
    (tmp_path / "pod.yaml").write_text(yaml.safe_dump(pod))
    kustomization = {"resources": ["pod.yaml"], "images": [{"name": name, **change}]}
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    built = yaml.safe_load(kustomize_build(tmp_path))
    theirs = [c["image"] for c in built["spec"]["containers"]]
    ours = [
        retagged(i, name, change.get("newName"), change.get("newTag"), change.get("digest"))
        for i in IMAGE_VALUES
    ]
    assert ours == theirs
