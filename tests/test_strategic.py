"""kompile/k8s/strategic.py against the real kustomize (`kubectl kustomize`, kustomize v5.5), both directions.

apply_patch: each example (and each generated user patch) is also built by kustomize from a tmp tree, base/
with the object and overlay/ patching it, and both must give the same object, list order included. Where
kustomize silently does something else than the patch says, apply_patch must refuse; those tests record
what kustomize does instead, so they fail if kustomize changes.
diff_patch: kustomize applying the patch kompile writes to the base must give the environment's object.
Property tests batch several objects into one kustomize run (a run costs ~40 ms).
"""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from kompile.k8s.strategic import (
    DIRECTIVE,
    SET,
    PatchError,
    apply_patch,
    as_kustomize_reads,
    diff_patch,
    merge_key,
)

from conftest import build_file_tree, kustomize_build, require_kubectl

pytestmark = pytest.mark.kubectl

DELETE = {DIRECTIVE: "delete"}
REPLACE = {DIRECTIVE: "replace"}


# ---------------------------------------------------------------------------------------------
# Running kustomize


def _dump(doc) -> str:
    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=False)


def write_tree(root: Path, pairs: list[tuple[dict, dict]]) -> Path:
    """base/ with every object, overlay/ patching them; returns the overlay folder."""
    files = {
        "base/kustomization.yaml": _dump({"resources": [f"object-{i}.yaml" for i in range(len(pairs))]}),
        "overlay/kustomization.yaml": _dump(
            {
                "resources": ["../base"],
                "patches": [
                    {"path": "patch.yaml" if len(pairs) == 1 else f"patch-{i}.yaml"}
                    for i in range(len(pairs))
                ],
            }
        ),
    }
    for i, (base, patch) in enumerate(pairs):
        files[f"base/object-{i}.yaml"] = _dump(base)
        files["overlay/patch.yaml" if len(pairs) == 1 else f"overlay/patch-{i}.yaml"] = _dump(patch)
    build_file_tree(root, files)
    return root / "overlay"


def _identity(obj: dict) -> tuple:
    return obj["apiVersion"], obj["kind"], obj["metadata"]["name"]


def kustomize_patched(root: Path, pairs: list[tuple[dict, dict]]) -> list[dict | None]:
    """What kustomize makes of each base with its patch (None: the patch deleted the object)."""
    output = kustomize_build(write_tree(root, pairs))
    built = {_identity(obj): obj for obj in YAML(typ="safe", pure=True).load_all(output) if obj}
    return [built.get(_identity(base)) for base, _ in pairs]


def kustomize_failure(root: Path, base: dict, patch: dict) -> str | None:
    """kustomize's error message, or None when it builds."""
    result = subprocess.run(
        [require_kubectl(), "kustomize", str(write_tree(root, [(base, patch)]))],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return None if result.returncode == 0 else result.stderr


def canon(obj) -> str:
    """Equal as YAML: map key order ignored; list order, and 1 against true or 1.0, not."""
    return json.dumps(obj, sort_keys=True)


def with_identity(obj: dict, change: dict) -> dict:
    """A patch as kompile's layout writes it: diff_patch's change under the object's identity."""
    change = copy.deepcopy(change)
    return {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "metadata": {"name": obj["metadata"]["name"], **(change.pop("metadata", None) or {})},
        **change,
    }


def at(obj, *path):
    for key in path:
        obj = obj[key]
    return obj


# ---------------------------------------------------------------------------------------------
# Example objects


def obj(api: str, kind: str, **fields) -> dict:
    metadata = fields.pop("metadata", {})
    return {"apiVersion": api, "kind": kind, "metadata": {"name": "app", **metadata}, **fields}


def container(name: str, **fields) -> dict:
    return {"name": name, "image": f"ghcr.io/acme/{name}:1.0", **fields}


def deployment(pod: dict, **fields) -> dict:
    spec = {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "app"}},
        "template": {"metadata": {"labels": {"app": "app"}}, "spec": pod},
    }
    return obj("apps/v1", "Deployment", spec=spec, **fields)


def pod_patch(pod: dict, **fields) -> dict:
    return obj("apps/v1", "Deployment", spec={"template": {"spec": pod}}, **fields)


def service(ports: list[dict], **spec) -> dict:
    return obj("v1", "Service", spec={"selector": {"app": "app"}, "ports": ports, **spec})


def svc_port(port: int, protocol: str | None = "TCP", **fields) -> dict:
    item = {"port": port, **fields}
    if protocol:
        item["protocol"] = protocol
    return item


def ctr_port(port: int, protocol: str | None = "TCP", **fields) -> dict:
    item = {"containerPort": port, **fields}
    if protocol:
        item["protocol"] = protocol
    return item


ENV = [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}, {"name": "C", "value": "3"}]
TSC = [
    {"topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway", "maxSkew": 1},
    {"topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "ScheduleAnyway", "maxSkew": 1},
    {"topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "DoNotSchedule", "maxSkew": 2},
]
WEB = container(
    "web",
    env=ENV,
    args=["--workers=3", "--timeout=30"],
    command=["gunicorn"],
    envFrom=[{"configMapRef": {"name": "shop-config"}}, {"secretRef": {"name": "shop-django"}}],
    ports=[ctr_port(8000, name="http"), ctr_port(53, "UDP", name="dns")],
    volumeMounts=[{"name": "tmp", "mountPath": "/tmp"}, {"name": "cache", "mountPath": "/cache"}],
    resources={"limits": {"cpu": "1", "memory": "512Mi"}, "requests": {"cpu": "250m"}},
    securityContext={"readOnlyRootFilesystem": True, "runAsUser": 10001},
)
POD = {
    "containers": [WEB, container("proxy")],
    "volumes": [{"name": "tmp", "emptyDir": {}}, {"name": "cache", "emptyDir": {"sizeLimit": "1Gi"}}],
    "topologySpreadConstraints": TSC,
    "tolerations": [{"key": "spot", "operator": "Exists"}],
}
SEALED = obj(
    "bitnami.com/v1alpha1",
    "SealedSecret",
    spec={
        "encryptedData": {"DB_PASSWORD": "AgB1", "API_KEY": "AgB2"},
        "template": {
            "metadata": {"name": "shop-django", "labels": {"a": "b"}},
            "type": "Opaque",
            "items": [{"name": "x", "v": 1}, {"name": "y", "v": 2}],
        },
    },
)
NETPOL = obj(
    "networking.k8s.io/v1",
    "NetworkPolicy",
    spec={
        "podSelector": {"matchLabels": {"app": "app"}},
        "policyTypes": ["Ingress", "Egress"],
        "ingress": [{"from": [{"namespaceSelector": {}}], "ports": [{"port": 8000, "protocol": "TCP"}]}],
        "egress": [
            {"ports": [{"port": 53, "protocol": "UDP"}]},
            {"ports": [{"port": 5432, "protocol": "TCP"}]},
        ],
    },
)
HPA = obj(
    "autoscaling/v2",
    "HorizontalPodAutoscaler",
    spec={
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "app"},
        "minReplicas": 2,
        "maxReplicas": 5,
        "metrics": [
            {
                "type": "Resource",
                "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}},
            },
            {
                "type": "Resource",
                "resource": {"name": "memory", "target": {"type": "Utilization", "averageUtilization": 80}},
            },
        ],
        "behavior": {
            "scaleDown": {
                "policies": [
                    {"type": "Pods", "value": 1, "periodSeconds": 60},
                    {"type": "Percent", "value": 10, "periodSeconds": 60},
                ]
            }
        },
    },
)
CRONJOB = obj(
    "batch/v1",
    "CronJob",
    spec={
        "schedule": "*/5 * * * *",
        "jobTemplate": {
            "spec": {
                "template": {
                    "metadata": {"labels": {"app": "app"}},
                    "spec": {"restartPolicy": "Never", "containers": [WEB, container("proxy")]},
                }
            }
        },
    },
)


def cronjob_patch(pod: dict) -> dict:
    return obj("batch/v1", "CronJob", spec={"jobTemplate": {"spec": {"template": {"spec": pod}}}})


def web_patch(**fields) -> dict:
    return pod_patch({"containers": [{"name": "web", **fields}]})


BASE = deployment(POD)
# (base, patch): apply_patch must give exactly what kustomize gives.
AGREEMENT = {
    # merge keys
    "containers by name, patch items first": (
        BASE,
        pod_patch({"containers": [{"name": "proxy", "image": "p:2"}, container("new")]}),
    ),
    "initContainers by name": (
        deployment({**POD, "initContainers": [container("a"), container("b")]}),
        pod_patch({"initContainers": [{"name": "b", "image": "b:2"}, container("c")]}),
    ),
    "ephemeralContainers by name, their env and volumeDevices by key, their ports whole": (
        deployment(
            {
                **POD,
                "ephemeralContainers": [
                    container(
                        "e",
                        env=ENV,
                        ports=[ctr_port(1), ctr_port(2)],
                        volumeDevices=[{"name": "a", "devicePath": "/a"}, {"name": "b", "devicePath": "/b"}],
                    )
                ],
            }
        ),
        pod_patch(
            {
                "ephemeralContainers": [
                    {
                        "name": "e",
                        "env": [{"name": "B", "value": "x"}],
                        "ports": [ctr_port(2, name="p")],
                        "volumeDevices": [{"name": "c", "devicePath": "/b"}],
                    }
                ]
            }
        ),
    ),
    "env by name": (BASE, web_patch(env=[{"name": "C", "value": "changed"}, {"name": "D", "value": "4"}])),
    "env by name, valueFrom added next to value": (
        BASE,
        web_patch(env=[{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]),
    ),
    "volumeMounts by mountPath": (
        BASE,
        web_patch(
            volumeMounts=[
                {"name": "other", "mountPath": "/cache", "readOnly": True},
                {"name": "data", "mountPath": "/data"},
            ]
        ),
    ),
    "volumeDevices by devicePath": (
        deployment(
            {
                "containers": [
                    container(
                        "web",
                        volumeDevices=[{"name": "a", "devicePath": "/a"}, {"name": "b", "devicePath": "/b"}],
                    )
                ]
            }
        ),
        web_patch(volumeDevices=[{"name": "c", "devicePath": "/b"}]),
    ),
    "container ports by containerPort and protocol: new first, then the target's in place": (
        BASE,
        web_patch(
            ports=[ctr_port(53, "UDP", name="domain"), ctr_port(9090, name="metrics"), ctr_port(53, "TCP")]
        ),
    ),
    "container ports, a new one without protocol": (BASE, web_patch(ports=[ctr_port(9090, None)])),
    "container ports, none with protocol: one-key order": (
        deployment(
            {
                "containers": [
                    container("web", ports=[ctr_port(80, None), ctr_port(81, None), ctr_port(82, None)])
                ]
            }
        ),
        web_patch(ports=[ctr_port(82, None, name="x"), ctr_port(83, None)]),
    ),
    "container port matched by text: 80 and '80'": (
        deployment({"containers": [container("web", ports=[ctr_port(80)])]}),
        web_patch(ports=[ctr_port("80", name="x")]),
    ),
    "Service ports by port and protocol": (
        service([svc_port(80, name="http"), svc_port(443, name="https"), svc_port(53, "UDP", name="dns")]),
        obj(
            "v1",
            "Service",
            spec={"ports": [svc_port(443, targetPort=8443), svc_port(8080, name="alt"), svc_port(53, "TCP")]},
        ),
    ),
    "Service ports, delete one": (
        service([svc_port(80), svc_port(443)]),
        obj("v1", "Service", spec={"ports": [{**svc_port(80), **DELETE}]}),
    ),
    "volumes by name": (
        BASE,
        pod_patch(
            {
                "volumes": [
                    {"name": "cache", "emptyDir": {"sizeLimit": "2Gi"}},
                    {"name": "config", "configMap": {"name": "c"}},
                ]
            }
        ),
    ),
    "volumes by name: a new source is merged next to the old one (no retainKeys)": (
        BASE,
        pod_patch({"volumes": [{"name": "tmp", "configMap": {"name": "c"}}]}),
    ),
    "imagePullSecrets by name, hostAliases by ip": (
        deployment(
            {
                **POD,
                "imagePullSecrets": [{"name": "a"}, {"name": "b"}],
                "hostAliases": [
                    {"ip": "10.0.0.1", "hostnames": ["a"]},
                    {"ip": "10.0.0.2", "hostnames": ["b"]},
                ],
            }
        ),
        pod_patch(
            {
                "imagePullSecrets": [{"name": "c"}, {"name": "b"}],
                "hostAliases": [{"ip": "10.0.0.2", "hostnames": ["c"]}],
            }
        ),
    ),
    "topologySpreadConstraints by topologyKey and whenUnsatisfiable": (
        BASE,
        pod_patch(
            {
                "topologySpreadConstraints": [
                    {**TSC[2], "maxSkew": 5},
                    {"topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule", "maxSkew": 1},
                ]
            }
        ),
    ),
    "CronJob: the pod spec under jobTemplate": (
        CRONJOB,
        cronjob_patch(
            {"containers": [{"name": "web", "env": [{"name": "B", "value": "x"}]}, container("new")]}
        ),
    ),
    "Job env": (
        obj("batch/v1", "Job", spec={"template": {"spec": {"restartPolicy": "Never", "containers": [WEB]}}}),
        obj(
            "batch/v1",
            "Job",
            spec={
                "template": {"spec": {"containers": [{"name": "web", "env": [{"name": "Z", "value": "z"}]}]}}
            },
        ),
    ),
    "Pod containers by name": (
        obj("v1", "Pod", spec={"containers": [container("a"), container("b")]}),
        obj("v1", "Pod", spec={"containers": [{"name": "b", "image": "b:2"}]}),
    ),
    "PodTemplate": (
        obj("v1", "PodTemplate", template={"spec": {"containers": [container("a"), container("b")]}}),
        obj("v1", "PodTemplate", template={"spec": {"containers": [{"name": "b", "image": "b:2"}]}}),
    ),
    "ServiceAccount secrets by name, imagePullSecrets whole": (
        obj(
            "v1",
            "ServiceAccount",
            secrets=[{"name": "a"}, {"name": "b"}],
            imagePullSecrets=[{"name": "a"}, {"name": "b"}],
        ),
        obj("v1", "ServiceAccount", secrets=[{"name": "c"}], imagePullSecrets=[{"name": "c"}]),
    ),
    "metadata.finalizers as a set, ownerReferences by uid": (
        obj(
            "v1",
            "ConfigMap",
            metadata={
                "finalizers": ["a", "b", "a"],
                "ownerReferences": [{"uid": "1", "name": "a"}, {"uid": "2", "name": "b"}],
            },
        ),
        obj(
            "v1",
            "ConfigMap",
            metadata={"finalizers": ["c", "c", "b"], "ownerReferences": [{"uid": "2", "name": "B"}]},
        ),
    ),
    "template metadata lists merge too": (
        deployment({"containers": [container("web")]})
        | {
            "spec": {
                "template": {"metadata": {"finalizers": ["a"]}, "spec": {"containers": [container("web")]}}
            }
        },
        pod_patch({}) | {"spec": {"template": {"metadata": {"finalizers": ["b"]}}}},
    ),
    "metadata.finalizers: [] keeps them": (
        obj("v1", "ConfigMap", metadata={"finalizers": ["a"]}),
        obj("v1", "ConfigMap", metadata={"finalizers": []}),
    ),
    # lists replaced whole
    "args, command and envFrom replaced whole": (
        BASE,
        web_patch(args=["--workers=5"], command=["uvicorn"], envFrom=[{"secretRef": {"name": "other"}}]),
    ),
    "tolerations and securityContext.capabilities lists replaced whole": (
        BASE,
        pod_patch(
            {
                "tolerations": [],
                "containers": [{"name": "web", "securityContext": {"capabilities": {"drop": ["ALL"]}}}],
            }
        ),
    ),
    "lists unknown to Kubernetes 1.21 (resizePolicy, resourceClaims) replaced whole": (
        deployment(
            {
                "containers": [
                    container(
                        "web",
                        resizePolicy=[
                            {"resourceName": "cpu", "restartPolicy": "NotRequired"},
                            {"resourceName": "memory", "restartPolicy": "NotRequired"},
                        ],
                    )
                ],
                "resourceClaims": [{"name": "a"}, {"name": "b"}],
            }
        ),
        pod_patch(
            {
                "containers": [
                    {
                        "name": "web",
                        "resizePolicy": [{"resourceName": "memory", "restartPolicy": "RestartContainer"}],
                    }
                ],
                "resourceClaims": [{"name": "c"}],
            }
        ),
    ),
    "nulls inside a list replaced whole stay": (
        BASE,
        web_patch(envFrom=[{"configMapRef": {"name": "x", "optional": None}}]),
    ),
    "NetworkPolicy ingress, egress and policyTypes replaced whole": (
        NETPOL,
        obj(
            "networking.k8s.io/v1",
            "NetworkPolicy",
            spec={"egress": [{"ports": [{"port": 443, "protocol": "TCP"}]}], "policyTypes": ["Egress"]},
        ),
    ),
    "HPA (autoscaling/v2: no schema) metrics, policies and finalizers replaced whole": (
        {**HPA, "metadata": {"name": "app", "finalizers": ["a"]}},
        obj(
            "autoscaling/v2",
            "HorizontalPodAutoscaler",
            spec={
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {
                            "name": "cpu",
                            "target": {"type": "Utilization", "averageUtilization": 50},
                        },
                    }
                ],
                "behavior": {"scaleDown": {"policies": [{"type": "Pods", "value": 2, "periodSeconds": 30}]}},
            },
            metadata={"finalizers": ["x"]},
        ),
    ),
    "PodDisruptionBudget selector expressions replaced whole": (
        obj(
            "policy/v1",
            "PodDisruptionBudget",
            spec={"minAvailable": 1, "selector": {"matchExpressions": [{"key": "a", "operator": "Exists"}]}},
        ),
        obj(
            "policy/v1",
            "PodDisruptionBudget",
            spec={"selector": {"matchExpressions": [{"key": "b", "operator": "Exists"}]}},
        ),
    ),
    "Ingress rules and tls replaced whole": (
        obj(
            "networking.k8s.io/v1",
            "Ingress",
            spec={"rules": [{"host": "a"}, {"host": "b"}], "tls": [{"hosts": ["a"], "secretName": "a"}]},
        ),
        obj(
            "networking.k8s.io/v1",
            "Ingress",
            spec={"rules": [{"host": "b", "http": {"paths": []}}], "tls": [{"hosts": ["b"]}]},
        ),
    ),
    "Role rules replaced whole": (
        obj(
            "rbac.authorization.k8s.io/v1",
            "Role",
            rules=[{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}],
        ),
        obj(
            "rbac.authorization.k8s.io/v1",
            "Role",
            rules=[{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}],
        ),
    ),
    "RoleBinding subjects replaced whole": (
        obj(
            "rbac.authorization.k8s.io/v1",
            "RoleBinding",
            subjects=[{"kind": "ServiceAccount", "name": "a"}, {"kind": "ServiceAccount", "name": "b"}],
        ),
        obj(
            "rbac.authorization.k8s.io/v1",
            "RoleBinding",
            subjects=[{"kind": "ServiceAccount", "name": "b", "namespace": "x"}],
        ),
    ),
    "Namespace spec.finalizers replaced whole": (
        obj("v1", "Namespace", spec={"finalizers": ["kubernetes"]}),
        obj("v1", "Namespace", spec={"finalizers": ["x"]}),
    ),
    # deletion by null
    "null deletes keys, present or not": (
        BASE,
        obj(
            "apps/v1",
            "Deployment",
            spec={
                "replicas": None,
                "paused": None,
                "template": {
                    "spec": {"containers": [{"name": "web", "securityContext": None, "workingDir": None}]}
                },
            },
        ),
    ),
    "null on the last label leaves an empty map": (
        obj("v1", "ConfigMap", metadata={"labels": {"a": "b"}}, data={"k": "v"}),
        obj("v1", "ConfigMap", metadata={"labels": {"a": None}}, data={"k": None}),
    ),
    "null in a new item or map is dropped": (
        BASE,
        web_patch(
            env=[{"name": "N", "value": None}],
            lifecycle={"preStop": None, "postStart": {"exec": {"command": ["true"]}}},
        ),
    ),
    "explicit nulls in the base stay": (
        obj("v1", "ConfigMap", metadata={"creationTimestamp": None}, data={"a": "1", "n": None}),
        obj("v1", "ConfigMap", data={"b": "2"}),
    ),
    # $patch: delete
    "$patch: delete on env items, a container, a missing item": (
        BASE,
        pod_patch(
            {
                "containers": [
                    {"name": "web", "env": [{"name": "B", **DELETE}, {"name": "missing", **DELETE}]},
                    {"name": "proxy", **DELETE},
                ]
            }
        ),
    ),
    "$patch: delete on every item leaves an empty list": (
        BASE,
        web_patch(env=[{"name": n, **DELETE} for n in "ABC"]),
    ),
    "$patch: delete on maps, with other keys, and missing": (
        BASE,
        web_patch(
            securityContext={**DELETE, "runAsUser": 1}, resources={"limits": DELETE}, livenessProbe=DELETE
        ),
    ),
    "list directive {$patch: delete} removes the field": (
        BASE,
        web_patch(env=[DELETE, {"name": "Z", "value": "z"}]),
    ),
    # $patch: replace and merge
    "$patch: replace on a map: its content merged into nothing": (
        BASE,
        web_patch(resources={**REPLACE, "limits": {"cpu": "2", "memory": None}}, securityContext={**REPLACE}),
    ),
    "$patch: replace on a keyed list": (
        BASE,
        web_patch(env=[REPLACE, {"name": "Z", "value": "z"}, {"name": "B", **DELETE}]),
    ),
    "$patch: replace on containers, nested directives applied": (
        BASE,
        pod_patch(
            {
                "containers": [
                    REPLACE,
                    container(
                        "only",
                        env=[{"name": "A", **DELETE}, {"name": "B", "value": "1"}],
                        securityContext={"privileged": None, "runAsUser": 1},
                    ),
                ]
            }
        ),
    ),
    "$patch: replace on Service ports": (
        service([svc_port(80), svc_port(443)]),
        obj("v1", "Service", spec={"ports": [REPLACE, svc_port(8443), svc_port(80, name="x")]}),
    ),
    "$patch: replace on finalizers": (
        obj("v1", "ConfigMap", metadata={"finalizers": ["a", "b"]}),
        obj("v1", "ConfigMap", metadata={"finalizers": [REPLACE, "c"]}),
    ),
    "$patch: replace on a new item just adds it": (
        BASE,
        web_patch(env=[{"name": "N", "value": "n", **REPLACE}]),
    ),
    "$patch: merge on a list, an item and a map change nothing": (
        BASE,
        pod_patch(
            {
                "containers": [
                    {
                        "name": "web",
                        "env": [{DIRECTIVE: "merge"}, {"name": "A", "value": "x"}],
                        "resources": {DIRECTIVE: "merge", "requests": {"cpu": "1"}},
                    },
                    {"name": "proxy", "image": "p:2", DIRECTIVE: "merge"},
                ]
            }
        ),
    ),
    "keyed list onto a missing list: deletions dropped, directives applied": (
        deployment({"containers": [container("web")]}),
        web_patch(env=[{"name": "A", **DELETE}, {"name": "B", "value": "1"}], volumeMounts=[]),
    ),
    "new container with nested directives": (
        BASE,
        pod_patch(
            {
                "containers": [
                    container(
                        "new",
                        env=[{"name": "X", **DELETE}, {"name": "Y", "value": "y"}],
                        securityContext=DELETE,
                        resources={**REPLACE, "limits": {"cpu": "1"}},
                    )
                ]
            }
        ),
    ),
    "empty lists: keyed keeps the target, atomic replaces it": (BASE, web_patch(env=[], args=[], ports=[])),
    "empty map and empty list added": (
        deployment({"containers": [container("web")]}),
        web_patch(securityContext={}, env=[], args=[]),
    ),
    "map over explicit null": (
        obj("v1", "ConfigMap", metadata={"labels": None}, data={"a": None}),
        obj("v1", "ConfigMap", metadata={"labels": {"a": "b"}}, data={"a": "x"}),
    ),
    # custom resources: no schema
    "SealedSecret: maps merge, $patch on maps works": (
        SEALED,
        obj(
            "bitnami.com/v1alpha1",
            "SealedSecret",
            spec={
                "encryptedData": {"API_KEY": None, "NEW": "AgB3"},
                "template": {"metadata": {**REPLACE, "name": "renamed"}, "items": None},
            },
        ),
    ),
    "SealedSecret: lists of named items replaced whole": (
        SEALED,
        obj(
            "bitnami.com/v1alpha1",
            "SealedSecret",
            spec={"template": {"items": [{"name": "y", "v": 3}]}},
            metadata={"finalizers": ["only"]},
        ),
    ),
    "a Deployment of another group is a custom resource": (
        obj(
            "example.com/v1",
            "Deployment",
            spec={"template": {"spec": {"containers": [container("a"), container("b")]}}},
        ),
        obj(
            "example.com/v1",
            "Deployment",
            spec={"template": {"spec": {"containers": [{"name": "b", "image": "b:2"}]}}},
        ),
    ),
    "apps/v1beta2 (not in Kubernetes 1.21) has no schema": (
        obj(
            "apps/v1beta2",
            "Deployment",
            spec={"template": {"spec": {"containers": [container("a"), container("b")]}}},
        ),
        obj(
            "apps/v1beta2",
            "Deployment",
            spec={"template": {"spec": {"containers": [{"name": "b", "image": "b:2"}]}}},
        ),
    ),
    "keys starting with $ other than $patch are data": (
        obj("example.com/v1", "Widget", spec={"$ref": "a"}),
        obj("example.com/v1", "Widget", spec={"$schema": "b"}),
    ),
    "scalars change type freely": (BASE, web_patch(workingDir=5, stdin=True, tty=False)),
}


@pytest.mark.parametrize(("base", "patch"), list(AGREEMENT.values()), ids=list(AGREEMENT))
def test_apply_patch_agrees_with_kustomize(tmp_path: Path, base: dict, patch: dict):
    (theirs,) = kustomize_patched(tmp_path, [(base, patch)])
    assert canon(apply_patch(base, patch)) == canon(theirs)


# (base, patch, what kustomize does): kustomize fails ("fails", message) or silently gives something else than
# the patch says ("gives", path, value); apply_patch must raise PatchError instead.
REFUSALS = {
    "a map onto a string": (BASE, web_patch(image={"a": 1}), ("fails", "wrong node kind")),
    "a string onto a map": (BASE, web_patch(securityContext="x"), ("fails", "wrong node kind")),
    "a list onto a string": (BASE, web_patch(image=["x"]), ("fails", "wrong node kind")),
    "{$patch: delete} onto a string": (BASE, web_patch(image=DELETE), ("fails", "wrong node kind")),
    "an unknown directive": (
        BASE,
        web_patch(resources={DIRECTIVE: "remove"}),
        ("fails", "unknown patch strategy"),
    ),
    "$patch: replace on an existing item is ignored": (
        BASE,
        web_patch(env=[{"name": "B", "valueFrom": {"fieldRef": {"fieldPath": "x"}}, **REPLACE}]),
        ("gives", ("spec", "template", "spec", "containers", 0, "env"), [ENV[1], ENV[0], ENV[2]]),
    ),
    "duplicate keys in the patch collapse": (
        BASE,
        web_patch(env=[{"name": "B", "value": "x"}, {"name": "B", "value": "y"}]),
        (
            "gives",
            ("spec", "template", "spec", "containers", 0, "env"),
            [{"name": "B", "value": "x"}, ENV[0], ENV[2]],
        ),
    ),
    "duplicate keys in the target collapse, even untouched": (
        deployment({"containers": [container("web", env=[*ENV, {"name": "A", "value": "9"}])]}),
        web_patch(env=[{"name": "Z", "value": "z"}]),
        (
            "gives",
            ("spec", "template", "spec", "containers", 0, "env"),
            [{"name": "Z", "value": "z"}, {"name": "A", "value": "9"}, ENV[1], ENV[2]],
        ),
    ),
    "an item without its merge key empties the list": (
        BASE,
        web_patch(env=[{"value": "x"}]),
        ("gives", ("spec", "template", "spec", "containers", 0, "env"), []),
    ),
    "a port without protocol does not patch the port with one": (
        service([svc_port(80, name="http")]),
        obj("v1", "Service", spec={"ports": [svc_port(80, None, targetPort=8080)]}),
        ("gives", ("spec", "ports"), [svc_port(80, name="http")]),
    ),
    "nor delete it": (
        service([svc_port(80), svc_port(81)]),
        obj("v1", "Service", spec={"ports": [{**svc_port(81, None), **DELETE}]}),
        ("gives", ("spec", "ports"), [svc_port(80), svc_port(81)]),
    ),
    "a port without protocol is not deleted while other ports have one": (
        service([svc_port(80, None), svc_port(443)]),
        obj("v1", "Service", spec={"ports": [{**svc_port(80, None), **DELETE}]}),
        ("gives", ("spec", "ports"), [svc_port(80, None), svc_port(443)]),
    ),
    "a topology spread constraint without whenUnsatisfiable is dropped": (
        BASE,
        pod_patch(
            {"topologySpreadConstraints": [{"topologyKey": "topology.kubernetes.io/zone", "maxSkew": 3}]}
        ),
        ("gives", ("spec", "template", "spec", "topologySpreadConstraints"), TSC),
    ),
    "$setElementOrder is copied into the object": (
        BASE,
        web_patch(**{"$setElementOrder/env": [{"name": "C"}, {"name": "B"}, {"name": "A"}]}),
        (
            "gives",
            ("spec", "template", "spec", "containers", 0, "$setElementOrder/env"),
            [{"name": "C"}, {"name": "B"}, {"name": "A"}],
        ),
    ),
    "$retainKeys is copied into the object": (
        BASE,
        pod_patch(
            {"volumes": [{"name": "tmp", "configMap": {"name": "c"}, "$retainKeys": ["name", "configMap"]}]}
        ),
        ("gives", ("spec", "template", "spec", "volumes", 0, "$retainKeys"), ["name", "configMap"]),
    ),
    "$patch inside a list replaced whole is kept as data": (
        BASE,
        web_patch(args=["--x", REPLACE]),
        ("gives", ("spec", "template", "spec", "containers", 0, "args"), ["--x", REPLACE]),
    ),
    "$patch inside a custom resource's list is kept as data": (
        SEALED,
        obj("bitnami.com/v1alpha1", "SealedSecret", spec={"template": {"items": [{"name": "x", **DELETE}]}}),
        ("gives", ("spec", "template", "items"), [{"name": "x", **DELETE}]),
    ),
    "$patch: replace on a whole object is ignored": (
        obj("v1", "ConfigMap", data={"a": "1"}),
        {**REPLACE, **obj("v1", "ConfigMap", data={"b": "2"})},
        ("gives", ("data",), {"a": "1"}),
    ),
    "a list's {$patch: merge} next to an item with $patch: the item's change is lost": (
        BASE,
        web_patch(env=[{DIRECTIVE: "merge"}, {"name": "A", "value": "x", DIRECTIVE: "merge"}]),
        ("gives", ("spec", "template", "spec", "containers", 0, "env"), ENV),
    ),
    "a list directive after an item with $patch is an item": (
        BASE,
        web_patch(env=[{"name": "A", **DELETE}, REPLACE]),
        ("gives", ("spec", "template", "spec", "containers", 0, "env"), []),
    ),
    "a list directive where the target has no such list is written as data": (
        BASE,
        pod_patch({"imagePullSecrets": [REPLACE, {"name": "ghcr"}]}),
        ("gives", ("spec", "template", "spec", "imagePullSecrets"), [REPLACE]),
    ),
    "lists of built-in kinds kompile does not model (webhooks merge by name)": (
        obj(
            "admissionregistration.k8s.io/v1",
            "MutatingWebhookConfiguration",
            webhooks=[{"name": "a", "sideEffects": "None"}, {"name": "b"}],
        ),
        obj(
            "admissionregistration.k8s.io/v1",
            "MutatingWebhookConfiguration",
            webhooks=[{"name": "b", "sideEffects": "None"}],
        ),
        (
            "gives",
            ("webhooks",),
            [{"name": "b", "sideEffects": "None"}, {"name": "a", "sideEffects": "None"}],
        ),
    ),
}


@pytest.mark.parametrize(("base", "patch", "kustomize_does"), list(REFUSALS.values()), ids=list(REFUSALS))
def test_apply_patch_refuses_what_kustomize_does_silently(
    tmp_path: Path, base: dict, patch: dict, kustomize_does: tuple
):
    if kustomize_does[0] == "fails":
        failure = kustomize_failure(tmp_path, base, patch)
        assert failure is not None and kustomize_does[1] in failure
    else:
        (theirs,) = kustomize_patched(tmp_path, [(base, patch)])
        _, path, value = kustomize_does
        assert canon(at(theirs, *path)) == canon(value)
    with pytest.raises(PatchError):
        apply_patch(base, patch)


def test_top_level_delete_is_left_to_the_caller(tmp_path: Path):
    base = obj("v1", "ConfigMap", data={"a": "1"})
    patch = {**DELETE, **obj("v1", "ConfigMap")}
    assert kustomize_patched(tmp_path, [(base, patch)]) == [None]
    with pytest.raises(PatchError, match="deletes the whole object"):
        apply_patch(base, patch)


def test_merge_key_table():
    pod = ("spec", "template", "spec")
    assert merge_key("apps/v1", "Deployment", (*pod, "containers")) == ("name",)
    assert merge_key("apps/v1", "Deployment", (*pod, "containers", "env")) == ("name",)
    assert merge_key("apps/v1", "Deployment", (*pod, "containers", "volumeMounts")) == ("mountPath",)
    assert merge_key("apps/v1", "Deployment", (*pod, "containers", "ports")) == ("containerPort", "protocol")
    assert merge_key("apps/v1", "Deployment", (*pod, "ephemeralContainers", "ports")) is None
    assert merge_key("apps/v1", "Deployment", (*pod, "topologySpreadConstraints")) == (
        "topologyKey",
        "whenUnsatisfiable",
    )
    assert merge_key("apps/v1", "Deployment", (*pod, "containers", "args")) is None
    assert merge_key("apps/v1", "Deployment", ("spec", "volumes")) is None  # no such field: replaced
    assert merge_key("batch/v1", "CronJob", ("spec", "jobTemplate", *pod, "volumes")) == ("name",)
    assert merge_key("v1", "Service", ("spec", "ports")) == ("port", "protocol")
    assert merge_key("v1", "ConfigMap", ("metadata", "finalizers")) == SET
    assert merge_key("networking.k8s.io/v1", "NetworkPolicy", ("spec", "egress")) is None
    assert merge_key("autoscaling/v2", "HorizontalPodAutoscaler", ("metadata", "finalizers")) is None
    assert merge_key("example.com/v1", "Deployment", (*pod, "containers")) is None
    with pytest.raises(PatchError, match="does not model"):
        merge_key("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", ("webhooks",))


# ---------------------------------------------------------------------------------------------
# diff_patch examples


def _port_names(ports):
    return [p.get("name") for p in ports]


# (base, target): kustomize must build exactly target from base and diff_patch's patch.
ROUND_TRIPS = {
    "unchanged": (BASE, BASE),
    "env value changed, var added in the middle, var removed": (
        BASE,
        deployment(
            {
                **POD,
                "containers": [
                    {**WEB, "env": [ENV[0], {"name": "N", "value": "n"}, {"name": "C", "value": "x"}]},
                    POD["containers"][1],
                ],
            }
        ),
    ),
    "containers reordered": (BASE, deployment({**POD, "containers": POD["containers"][::-1]})),
    "replicas dropped, annotation added": (
        BASE,
        {
            **deployment(POD, metadata={"annotations": {"a": "b"}}),
            "spec": {k: v for k, v in BASE["spec"].items() if k != "replicas"},
        },
    ),
    "a container port appended at the end (two keys: needs $patch: replace)": (
        BASE,
        deployment(
            {
                **POD,
                "containers": [
                    {**WEB, "ports": [*WEB["ports"], ctr_port(9090, name="metrics")]},
                    POD["containers"][1],
                ],
            }
        ),
    ),
    "a container port added first (two keys: a keyed patch)": (
        BASE,
        deployment(
            {
                **POD,
                "containers": [
                    {**WEB, "ports": [ctr_port(9090, name="metrics"), *WEB["ports"]]},
                    POD["containers"][1],
                ],
            }
        ),
    ),
    "container ports reordered": (
        BASE,
        deployment({**POD, "containers": [{**WEB, "ports": WEB["ports"][::-1]}, POD["containers"][1]]}),
    ),
    "a protocol added to a port that had none": (
        deployment({"containers": [container("web", ports=[ctr_port(80, None), ctr_port(81)])]}),
        deployment({"containers": [container("web", ports=[ctr_port(80), ctr_port(81)])]}),
    ),
    "ports without protocol, reordered (one-key order)": (
        deployment({"containers": [container("web", ports=[ctr_port(80, None), ctr_port(81, None)])]}),
        deployment(
            {"containers": [container("web", ports=[ctr_port(81, None, name="b"), ctr_port(80, None)])]}
        ),
    ),
    "a Service port appended": (
        service([svc_port(80, name="http")]),
        service([svc_port(80, name="http"), svc_port(443, name="https")]),
    ),
    "a Service port changed and another removed": (
        service([svc_port(80, name="http"), svc_port(443, name="https")]),
        service([svc_port(80, name="http", targetPort=8080)]),
    ),
    "topology spread constraints: one removed, one changed": (
        BASE,
        deployment({**POD, "topologySpreadConstraints": [TSC[0], {**TSC[2], "maxSkew": 3}]}),
    ),
    "a finalizer removed (a set: needs $patch: replace)": (
        obj("v1", "ConfigMap", metadata={"finalizers": ["a", "b"]}),
        obj("v1", "ConfigMap", metadata={"finalizers": ["b"]}),
    ),
    "finalizers emptied": (
        obj("v1", "ConfigMap", metadata={"finalizers": ["a"]}),
        obj("v1", "ConfigMap", metadata={"finalizers": []}),
    ),
    "a field changes node kind inside a map (the map is replaced)": (
        SEALED,
        {
            **SEALED,
            "spec": {**SEALED["spec"], "template": {**SEALED["spec"]["template"], "type": {"nested": "x"}}},
        },
    ),
    "a field changes node kind inside a container (the containers list is replaced)": (
        deployment({**POD, "containers": [{**WEB, "workingDir": "/app"}, POD["containers"][1]]}),
        deployment({**POD, "containers": [{**WEB, "workingDir": {"odd": True}}, POD["containers"][1]]}),
    ),
    "a base list with duplicate keys (replaced)": (
        deployment({"containers": [container("web", env=[*ENV, {"name": "A", "value": "9"}])]}),
        deployment({"containers": [container("web", env=[ENV[1], {"name": "A", "value": "9"}])]}),
    ),
    "atomic lists and maps replaced": (
        NETPOL,
        {**NETPOL, "spec": {**NETPOL["spec"], "egress": NETPOL["spec"]["egress"][:1], "podSelector": {}}},
    ),
    "a custom resource's list": (
        HPA,
        {**HPA, "spec": {**HPA["spec"], "metrics": HPA["spec"]["metrics"][::-1]}},
    ),
    "CronJob env": (
        CRONJOB,
        {
            **CRONJOB,
            "spec": {
                **CRONJOB["spec"],
                "jobTemplate": {
                    "spec": {
                        "template": {
                            **CRONJOB["spec"]["jobTemplate"]["spec"]["template"],
                            "spec": {"restartPolicy": "Never", "containers": [{**WEB, "env": ENV[::-1]}]},
                        }
                    }
                },
            },
        },
    ),
}


@pytest.mark.parametrize(("base", "target"), list(ROUND_TRIPS.values()), ids=list(ROUND_TRIPS))
def test_diff_patch_round_trips(tmp_path: Path, base: dict, target: dict):
    patch = with_identity(target, diff_patch(base, target))
    (theirs,) = kustomize_patched(tmp_path, [(base, patch)])
    assert canon(theirs) == canon(target)
    assert canon(apply_patch(base, patch)) == canon(target)


def test_kustomize_drops_empty_annotations_of_every_object(tmp_path: Path):
    """Not a merge rule, but in every result: an empty or null metadata.annotations is gone, patched or not,
    while other empty maps (labels, a template's annotations) stay."""
    untouched = obj("v1", "ConfigMap", metadata={"annotations": {}, "labels": {}}, data={"a": "1"})
    emptied = deployment({"containers": [container("web")]}, metadata={"annotations": {"a": "b"}})
    emptied["spec"]["template"]["metadata"]["annotations"] = {}
    patch = pod_patch({}, metadata={"annotations": {"a": None}})
    output = kustomize_build(
        build_file_tree(
            tmp_path,
            {
                "base/kustomization.yaml": _dump({"resources": ["objects.yaml"]}),
                "base/objects.yaml": yaml.safe_dump_all([untouched, emptied], sort_keys=False),
                "overlay/kustomization.yaml": _dump(
                    {"resources": ["../base"], "patches": [{"path": "patch.yaml"}]}
                ),
                "overlay/patch.yaml": _dump(patch),
            },
        )
        / "overlay"
    )
    theirs = list(YAML(typ="safe", pure=True).load_all(output))
    assert canon(theirs[0]) == canon(as_kustomize_reads(copy.deepcopy(untouched))) != canon(untouched)
    assert canon(theirs[1]) == canon(apply_patch(emptied, patch))
    assert (
        "annotations" not in theirs[1]["metadata"]
        and theirs[1]["spec"]["template"]["metadata"]["annotations"] == {}
    )
    target = copy.deepcopy(emptied)
    target["metadata"]["annotations"] = {}
    assert diff_patch(emptied, target) == {"metadata": {"annotations": {"a": None}}}


def test_diff_patch_shapes():
    """The patch is keyed where that is faithful, and replaces the list only where it must."""
    assert diff_patch(BASE, BASE) == {}
    web = ("spec", "template", "spec", "containers", 0)
    appended = ROUND_TRIPS["a container port appended at the end (two keys: needs $patch: replace)"][1]
    assert at(diff_patch(BASE, appended), *web, "ports")[0] == REPLACE
    first = ROUND_TRIPS["a container port added first (two keys: a keyed patch)"][1]
    assert at(diff_patch(BASE, first), *web, "ports") == [ctr_port(9090, name="metrics")]
    env = ROUND_TRIPS["env value changed, var added in the middle, var removed"][1]
    assert at(diff_patch(BASE, env), *web, "env") == [
        {"name": "A"},
        {"name": "N", "value": "n"},
        {"name": "C", "value": "x"},
        {"name": "B", **DELETE},
    ]
    kind_change = ROUND_TRIPS["a field changes node kind inside a map (the map is replaced)"][1]
    assert diff_patch(SEALED, kind_change)["spec"]["template"][DIRECTIVE] == "replace"


def test_diff_patch_refuses_a_target_list_with_duplicate_keys(tmp_path: Path):
    """Duplicate env names are legal in Kubernetes, but kustomize collapses them whatever the patch says."""
    base = deployment({"containers": [container("web", env=ENV)]})
    target = deployment({"containers": [container("web", env=[*ENV, {"name": "A", "value": "again"}])]})
    with pytest.raises(PatchError, match="duplicate"):
        diff_patch(base, target)
    replace = with_identity(
        target,
        {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {
                                "name": "web",
                                "env": [
                                    REPLACE,
                                    *at(target, "spec", "template", "spec", "containers", 0, "env"),
                                ],
                            }
                        ]
                    }
                }
            }
        },
    )
    (theirs,) = kustomize_patched(tmp_path, [(base, replace)])
    assert canon(theirs) != canon(target)  # why kompile refuses: not even $patch: replace keeps them


def test_diff_patch_refuses_a_null_it_cannot_write():
    base = obj("v1", "ConfigMap", data={"a": "1"})
    with pytest.raises(PatchError, match="data.a"):
        diff_patch(base, obj("v1", "ConfigMap", data={"a": None}))


# ---------------------------------------------------------------------------------------------
# Generated objects

NAMES = ["web", "worker", "beat", "proxy", "metrics"]
ENV_NAMES = [
    "DJANGO_SETTINGS_MODULE",
    "LOG_LEVEL",
    "DATABASE_URL",
    "REDIS_URL",
    "WORKERS",
    "DEBUG",
    "TZ",
    "SENTRY_DSN",
]
VOLUMES = ["tmp", "cache", "config", "data", "certs"]
ZONES = ["topology.kubernetes.io/zone", "kubernetes.io/hostname"]
LABEL_KEYS = [
    "app.kubernetes.io/name",
    "app.kubernetes.io/component",
    "team",
    "tier",
    "kompile.dev/config-hash",
]
PORTS = [53, 80, 443, 8000, 8080, 9090]
TEXT = st.one_of(
    st.sampled_from(
        ["", "1", "true", "info", "debug", "postgres://db:5432/shop", "25%", "a b", "0.5", "on", "UTC"]
    ),
    st.text(alphabet="abcdefgh-_./", min_size=1, max_size=8),
)
QUANTITY = st.sampled_from(["100m", "250m", "1", "2", "64Mi", "512Mi", "1Gi"])
PROTOCOL = st.sampled_from(["TCP", "TCP", "UDP", None])

settings_for_kustomize = settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


def unambiguous(ports: list[tuple[int, str | None]]) -> bool:
    """No two items kustomize cannot tell apart (port 80 next to 80/TCP); kompile refuses those, tested above."""
    return all(
        not (a[0] == b[0] and (a[1] is None or b[1] is None))
        for i, a in enumerate(ports)
        for b in ports[i + 1 :]
    )


def env_var():
    return st.builds(
        lambda name, value, secret: (
            {"name": name, "valueFrom": {"secretKeyRef": {"name": "shop-django", "key": name}}}
            if secret
            else {"name": name, "value": value}
        ),
        st.sampled_from(ENV_NAMES),
        TEXT,
        st.booleans(),
    )


def port_list(make, max_size=3):
    pairs = st.lists(st.tuples(st.sampled_from(PORTS), PROTOCOL), max_size=max_size, unique=True).filter(
        unambiguous
    )
    return pairs.map(
        lambda items: [make(port, protocol, name=f"p{i}") for i, (port, protocol) in enumerate(items)]
    )


@st.composite
def containers(draw, name: str, volumes: list[str]) -> dict:
    item = {"name": name, "image": f"ghcr.io/acme/{name}:{draw(st.sampled_from(['1.0', '1.1', 'latest']))}"}
    if draw(st.booleans()):
        item["command"] = draw(
            st.lists(st.sampled_from(["gunicorn", "celery", "python", "-m", "app"]), min_size=1, max_size=3)
        )
    if draw(st.booleans()):
        item["args"] = draw(st.lists(TEXT, max_size=3))
    env = draw(st.lists(env_var(), max_size=5, unique_by=lambda e: e["name"]))
    if env:
        item["env"] = env
    if draw(st.booleans()):
        item["envFrom"] = [{"configMapRef": {"name": "shop-config"}}, {"secretRef": {"name": "shop-django"}}][
            : draw(st.integers(1, 2))
        ]
    ports = draw(port_list(ctr_port))
    if ports:
        item["ports"] = ports
    if draw(st.booleans()):
        item["resources"] = {
            "limits": {"cpu": draw(QUANTITY), "memory": draw(QUANTITY)},
            "requests": {"cpu": draw(QUANTITY)},
        }
    mounts = draw(st.lists(st.sampled_from(volumes), unique=True)) if volumes else []
    if mounts:
        item["volumeMounts"] = [
            {"name": v, "mountPath": f"/{v}", **({"readOnly": True} if v == "config" else {})} for v in mounts
        ]
    if draw(st.booleans()):
        item["securityContext"] = {
            "readOnlyRootFilesystem": draw(st.booleans()),
            "runAsUser": 10001,
            "capabilities": {"drop": ["ALL"]},
        }
    if draw(st.booleans()):
        item["readinessProbe"] = {"httpGet": {"path": "/healthz/", "port": "http"}, "periodSeconds": 10}
    return item


def volume(name: str) -> dict:
    return {
        "name": name,
        **(
            {"configMap": {"name": "shop-config"}}
            if name == "config"
            else {"secret": {"secretName": "shop-certs"}}
            if name == "certs"
            else {"emptyDir": {"sizeLimit": "256Mi"}}
        ),
    }


@st.composite
def pod_specs(draw) -> dict:
    volumes = draw(st.lists(st.sampled_from(VOLUMES), unique=True, max_size=3))
    names = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=3, unique=True))
    pod = {"containers": [draw(containers(name, volumes)) for name in names]}
    if volumes:
        pod["volumes"] = [volume(v) for v in volumes]
    tsc = draw(
        st.lists(
            st.tuples(st.sampled_from(ZONES), st.sampled_from(["ScheduleAnyway", "DoNotSchedule"])),
            unique=True,
            max_size=2,
        )
    )
    if tsc:
        pod["topologySpreadConstraints"] = [
            {
                "topologyKey": key,
                "whenUnsatisfiable": when,
                "maxSkew": 1,
                "labelSelector": {"matchLabels": {"app": "shop"}},
            }
            for key, when in tsc
        ]
    if draw(st.booleans()):
        pod["tolerations"] = [{"key": "spot", "operator": "Exists", "effect": "NoSchedule"}]
    if draw(st.booleans()):
        pod["imagePullSecrets"] = [
            {"name": n} for n in draw(st.lists(st.sampled_from(["ghcr", "ecr"]), min_size=1, unique=True))
        ]
    pod["serviceAccountName"] = "shop"
    return pod


def labels():
    return st.dictionaries(
        st.sampled_from(LABEL_KEYS), st.sampled_from(["shop", "web", "core", "b35cce", "x"]), max_size=3
    )


@st.composite
def metadata(draw, name: str) -> dict:
    meta = {"name": name}
    for key in ("labels", "annotations"):
        value = draw(labels())
        if value or draw(st.booleans()):
            meta[key] = value
    if draw(st.integers(0, 5)) == 0:
        meta["finalizers"] = draw(
            st.lists(st.sampled_from(["a.example/x", "b.example/y", "c.example/z"]), unique=True)
        )
    return meta


@st.composite
def pod_owners(draw, name: str) -> dict:
    kind = draw(st.sampled_from(["Deployment", "Deployment", "CronJob"]))
    template = {"metadata": {"labels": draw(labels())}, "spec": draw(pod_specs())}
    if kind == "CronJob":
        template["spec"]["restartPolicy"] = "Never"
        return {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": draw(metadata(name)),
            "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": template}}},
        }
    spec: dict = {"selector": {"matchLabels": {"app": "shop"}}, "template": template}
    if draw(st.booleans()):
        spec["replicas"] = draw(st.integers(1, 5))
    if draw(st.booleans()):
        spec["strategy"] = {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0},
        }
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": draw(metadata(name)), "spec": spec}


@st.composite
def services(draw, name: str) -> dict:
    spec = {
        "selector": {"app": "shop"},
        "ports": [{**p, "targetPort": p["port"]} for p in draw(port_list(svc_port, 4))],
    }
    if draw(st.booleans()):
        spec["type"] = draw(st.sampled_from(["ClusterIP", "NodePort"]))
    return {"apiVersion": "v1", "kind": "Service", "metadata": draw(metadata(name)), "spec": spec}


@st.composite
def config_maps(draw, name: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": draw(metadata(name)),
        "data": draw(st.dictionaries(st.sampled_from(ENV_NAMES), TEXT, max_size=5)),
    }


def np_rule(port: int) -> dict:
    return {
        "ports": [{"port": port, "protocol": "TCP"}],
        "to": [{"ipBlock": {"cidr": f"10.{port % 250}.0.0/16"}}],
    }


@st.composite
def network_policies(draw, name: str) -> dict:
    spec = {
        "podSelector": {"matchLabels": draw(labels())},
        "policyTypes": ["Ingress", "Egress"],
        "ingress": [
            {
                "from": [
                    {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}
                ]
            }
        ],
        "egress": [np_rule(p) for p in draw(st.lists(st.sampled_from(PORTS), max_size=3, unique=True))],
    }
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": draw(metadata(name)),
        "spec": spec,
    }


# --- mutations: each changes a copy of a realistic object the way an environment would


def pod_of(obj: dict) -> dict:
    spec = obj["spec"]
    return (spec["jobTemplate"]["spec"] if obj["kind"] == "CronJob" else spec)["template"]["spec"]


def pick(draw, items: list):
    return items[draw(st.integers(0, len(items) - 1))]


def shuffled(draw, items: list) -> list:
    return draw(st.permutations(items))


def set_or_drop(holder: dict, key: str, value) -> None:
    if value in ([], {}, None):
        holder.pop(key, None)
    else:
        holder[key] = value


def mutate_env(draw, obj):
    ctr = pick(draw, pod_of(obj)["containers"])
    env = ctr.get("env", [])
    action = draw(st.sampled_from(["change", "delete", "insert", "shuffle", "clear"]))
    if action == "insert":
        taken = {e["name"] for e in env}
        free = [n for n in ENV_NAMES if n not in taken]
        if free:
            env.insert(draw(st.integers(0, len(env))), {"name": pick(draw, free), "value": draw(TEXT)})
    elif env and action == "change":
        pick(draw, env).update(value=draw(TEXT))
    elif env and action == "delete":
        env.remove(pick(draw, env))
    elif action == "shuffle":
        env = shuffled(draw, env)
    elif action == "clear":
        env = [] if draw(st.booleans()) else None
    if env is None:
        ctr.pop("env", None)
    else:
        ctr["env"] = env


def mutate_containers(draw, obj):
    pod = pod_of(obj)
    action = draw(st.sampled_from(["shuffle", "add", "remove", "image"]))
    if action == "shuffle":
        pod["containers"] = shuffled(draw, pod["containers"])
    elif action == "add":
        free = [n for n in NAMES if n not in {c["name"] for c in pod["containers"]}]
        if free:
            new = draw(containers(pick(draw, free), [v["name"] for v in pod.get("volumes", [])]))
            pod["containers"].insert(draw(st.integers(0, len(pod["containers"]))), new)
    elif action == "remove" and len(pod["containers"]) > 1:
        pod["containers"].remove(pick(draw, pod["containers"]))
    else:
        pick(draw, pod["containers"])["image"] = f"ghcr.io/acme/other:{draw(st.sampled_from(['2.0', 'sha']))}"


def mutate_volumes(draw, obj):
    pod = pod_of(obj)
    volumes = pod.get("volumes", [])
    names = [v["name"] for v in volumes]
    action = draw(st.sampled_from(["add", "remove", "source", "mount", "unmount"]))
    if action == "add" and len(names) < len(VOLUMES):
        name = pick(draw, [v for v in VOLUMES if v not in names])
        volumes.insert(draw(st.integers(0, len(volumes))), volume(name))
        pick(draw, pod["containers"]).setdefault("volumeMounts", []).append(
            {"name": name, "mountPath": f"/mnt/{name}"}
        )
    elif action == "remove" and volumes:
        gone = pick(draw, volumes)
        volumes.remove(gone)
        for ctr in pod["containers"]:
            set_or_drop(
                ctr, "volumeMounts", [m for m in ctr.get("volumeMounts", []) if m["name"] != gone["name"]]
            )
    elif action == "source" and volumes:
        chosen = pick(draw, volumes)
        for key in ("emptyDir", "configMap", "secret"):
            chosen.pop(key, None)
        chosen["emptyDir"] = {"medium": "Memory"} if draw(st.booleans()) else {}
    elif action == "mount" and names:
        ctr = pick(draw, pod["containers"])
        mounts = ctr.setdefault("volumeMounts", [])
        path = f"/extra/{pick(draw, names)}"
        if path not in {m["mountPath"] for m in mounts}:
            mounts.insert(
                draw(st.integers(0, len(mounts))), {"name": names[0], "mountPath": path, "readOnly": True}
            )
    elif action == "unmount":
        ctr = pick(draw, pod["containers"])
        if ctr.get("volumeMounts"):
            ctr["volumeMounts"].remove(pick(draw, ctr["volumeMounts"]))
            set_or_drop(ctr, "volumeMounts", ctr["volumeMounts"])
    set_or_drop(pod, "volumes", volumes)


def mutate_port_list(draw, ports: list[dict], key: str, make) -> list[dict]:
    action = draw(st.sampled_from(["add", "remove", "renumber", "protocol", "shuffle", "rename"]))
    ids = [(p[key], p.get("protocol")) for p in ports]
    if action == "add":
        new = (draw(st.sampled_from(PORTS)), draw(PROTOCOL))
        if new not in ids and unambiguous([*ids, new]):
            ports.insert(draw(st.integers(0, len(ports))), make(new[0], new[1], name="added"))
    elif ports and action == "remove":
        ports.remove(pick(draw, ports))
    elif ports and action in ("renumber", "protocol"):
        i = draw(st.integers(0, len(ports) - 1))
        new = (
            (draw(st.sampled_from(PORTS)), ids[i][1]) if action == "renumber" else (ids[i][0], draw(PROTOCOL))
        )
        if new not in ids and unambiguous([*ids[:i], new, *ids[i + 1 :]]):
            ports[i] = {
                k: v for k, v in {**ports[i], key: new[0], "protocol": new[1]}.items() if v is not None
            }
    elif action == "shuffle":
        ports = shuffled(draw, ports)
    elif ports:
        pick(draw, ports)["name"] = "renamed"
    return ports


def mutate_ports(draw, obj):
    ctr = pick(draw, pod_of(obj)["containers"])
    set_or_drop(ctr, "ports", mutate_port_list(draw, ctr.get("ports", []), "containerPort", ctr_port))


def mutate_resources(draw, obj):
    ctr = pick(draw, pod_of(obj)["containers"])
    action = draw(st.sampled_from(["cpu", "drop-limits", "drop", "requests"]))
    resources = ctr.setdefault("resources", {})
    if action == "cpu":
        resources.setdefault("limits", {})["cpu"] = draw(QUANTITY)
    elif action == "drop-limits":
        resources.pop("limits", None)
    elif action == "drop":
        del ctr["resources"]
        return
    else:
        resources["requests"] = {"memory": draw(QUANTITY)}
    set_or_drop(ctr, "resources", resources)


def mutate_metadata(draw, obj):
    if obj["kind"] in ("Deployment", "CronJob") and draw(st.booleans()):
        template = (
            obj["spec"]["jobTemplate"]["spec"]["template"]
            if obj["kind"] == "CronJob"
            else obj["spec"]["template"]
        )
        meta = template.setdefault("metadata", {})
    else:
        meta = obj["metadata"]
    action = draw(st.sampled_from(["labels", "annotations", "finalizers"]))
    if action == "finalizers" and meta is obj["metadata"]:
        set_or_drop(
            meta,
            "finalizers",
            draw(st.lists(st.sampled_from(["a.example/x", "b.example/y", "c.example/z"]), unique=True)),
        )
        return
    values = dict(meta.get(action) or {})
    key = draw(st.sampled_from(LABEL_KEYS))
    if key in values and draw(st.booleans()):
        del values[key]
    else:
        values[key] = draw(st.sampled_from(["shop", "changed", "2642f6b1"]))
    if values or draw(st.booleans()):
        meta[action] = values
    else:
        meta.pop(action, None)


def mutate_replicas(draw, obj):
    if obj["kind"] == "Deployment":
        set_or_drop(obj["spec"], "replicas", draw(st.one_of(st.none(), st.integers(0, 9))))
        if draw(st.booleans()):
            obj["spec"]["strategy"] = {"type": "Recreate"}


def mutate_atomic(draw, obj):
    pod = pod_of(obj)
    ctr = pick(draw, pod["containers"])
    field = draw(st.sampled_from(["args", "command", "envFrom", "tolerations"]))
    if field == "tolerations":
        set_or_drop(
            pod,
            field,
            draw(
                st.sampled_from(
                    [[], [{"key": "gpu", "operator": "Exists"}], [{"key": "spot", "operator": "Exists"}]]
                )
            ),
        )
    elif field == "envFrom":
        set_or_drop(
            ctr,
            field,
            draw(
                st.sampled_from(
                    [[], [{"secretRef": {"name": "other"}}], [{"configMapRef": {"name": "shop-config"}}]]
                )
            ),
        )
    else:
        set_or_drop(ctr, field, draw(st.lists(TEXT, max_size=3)))


def mutate_spread(draw, obj):
    pod = pod_of(obj)
    tsc = pod.get("topologySpreadConstraints", [])
    action = draw(st.sampled_from(["skew", "remove", "add", "shuffle"]))
    if tsc and action == "skew":
        pick(draw, tsc)["maxSkew"] = draw(st.integers(1, 3))
    elif tsc and action == "remove":
        tsc.remove(pick(draw, tsc))
    elif action == "add":
        key, when = draw(st.sampled_from(ZONES)), draw(st.sampled_from(["ScheduleAnyway", "DoNotSchedule"]))
        if (key, when) not in {(t["topologyKey"], t["whenUnsatisfiable"]) for t in tsc}:
            tsc.insert(
                draw(st.integers(0, len(tsc))), {"topologyKey": key, "whenUnsatisfiable": when, "maxSkew": 2}
            )
    else:
        tsc = shuffled(draw, tsc)
    set_or_drop(pod, "topologySpreadConstraints", tsc)


def mutate_container_details(draw, obj):
    ctr = pick(draw, pod_of(obj)["containers"])
    action = draw(st.sampled_from(["security", "drop-security", "probe-header", "probe-path", "drop-probe"]))
    if action == "security":
        ctr.setdefault("securityContext", {})["readOnlyRootFilesystem"] = draw(st.booleans())
    elif action == "drop-security":
        ctr.pop("securityContext", None)
    elif action == "probe-header":
        probe = ctr.setdefault("readinessProbe", {"httpGet": {"path": "/healthz/", "port": "http"}})
        probe.setdefault("httpGet", {})["httpHeaders"] = [{"name": "Host", "value": "shop.dev.example.com"}]
    elif action == "probe-path":
        ctr.setdefault("readinessProbe", {})["httpGet"] = {"path": "/ready", "port": 8000}
    else:
        ctr.pop("readinessProbe", None)


def mutate_pull_secrets(draw, obj):
    pod = pod_of(obj)
    names = [s["name"] for s in pod.get("imagePullSecrets", [])]
    names = draw(
        st.permutations(
            draw(st.lists(st.sampled_from(["ghcr", "ecr", "docker"]), unique=True))
            if draw(st.booleans())
            else names
        )
    )
    set_or_drop(pod, "imagePullSecrets", [{"name": n} for n in names])


def mutate_service(draw, obj):
    spec = obj["spec"]
    action = draw(st.sampled_from(["ports", "ports", "target", "type", "selector", "affinity", "external"]))
    if action == "ports":
        set_or_drop(spec, "ports", mutate_port_list(draw, spec.get("ports", []), "port", svc_port))
    elif action == "target" and spec.get("ports"):
        pick(draw, spec["ports"])["targetPort"] = draw(st.sampled_from(["http", 8000, 9000]))
    elif action == "type":
        set_or_drop(spec, "type", draw(st.sampled_from([None, "ClusterIP", "LoadBalancer"])))
    elif action == "selector":
        spec["selector"] = draw(labels())
    elif action == "affinity":
        set_or_drop(spec, "sessionAffinity", draw(st.sampled_from([None, "ClientIP"])))
    else:
        set_or_drop(
            spec, "externalIPs", draw(st.lists(st.sampled_from(["10.0.0.1", "10.0.0.2"]), unique=True))
        )


def mutate_config_map(draw, obj):
    data = obj.setdefault("data", {})
    key = draw(st.sampled_from(ENV_NAMES))
    if key in data and draw(st.booleans()):
        del data[key]
    else:
        data[key] = draw(TEXT)
    if draw(st.integers(0, 4)) == 0:
        obj["immutable"] = True


def mutate_network_policy(draw, obj):
    spec = obj["spec"]
    action = draw(st.sampled_from(["add", "remove", "port", "types", "selector"]))
    if action == "add":
        spec["egress"].insert(
            draw(st.integers(0, len(spec["egress"]))), np_rule(draw(st.sampled_from(PORTS)))
        )
    elif action == "remove" and spec["egress"]:
        spec["egress"].remove(pick(draw, spec["egress"]))
    elif action == "port" and spec["egress"]:
        pick(draw, spec["egress"])["ports"][0]["port"] = draw(st.sampled_from(PORTS))
    elif action == "types":
        spec["policyTypes"] = draw(st.sampled_from([["Ingress"], ["Egress"], ["Egress", "Ingress"]]))
    else:
        spec["podSelector"] = {"matchLabels": draw(labels())}


POD_MUTATIONS = [
    mutate_env,
    mutate_containers,
    mutate_volumes,
    mutate_ports,
    mutate_resources,
    mutate_metadata,
    mutate_replicas,
    mutate_atomic,
    mutate_spread,
    mutate_container_details,
    mutate_pull_secrets,
]
KINDS = {
    pod_owners: POD_MUTATIONS,
    services: [mutate_service, mutate_metadata],
    config_maps: [mutate_config_map, mutate_metadata],
    network_policies: [mutate_network_policy, mutate_metadata],
}


@st.composite
def object_pairs(draw, name: str) -> tuple[dict, dict]:
    """(base, target): a realistic object and what an environment makes of it."""
    make = draw(st.sampled_from(list(KINDS)))
    base = draw(make(name))
    target = copy.deepcopy(base)
    for mutation in draw(st.lists(st.sampled_from(KINDS[make]), min_size=1, max_size=4)):
        mutation(draw, target)
    return base, target


def batches(pairs):
    return st.integers(1, 6).flatmap(lambda n: st.tuples(*(pairs(f"obj-{i}") for i in range(n))))


@settings_for_kustomize
@given(batch=batches(object_pairs))
def test_diff_patch_round_trips_on_generated_objects(tmp_path_factory, batch):
    """(a) kustomize applies diff_patch's patch to the base and gives the target; (b) so does apply_patch."""
    patches = [with_identity(target, diff_patch(base, target)) for base, target in batch]
    built = kustomize_patched(
        tmp_path_factory.mktemp("diff"),
        [(base, patch) for (base, _), patch in zip(batch, patches, strict=True)],
    )
    for (base, target), patch, theirs in zip(batch, patches, built, strict=True):
        expected = as_kustomize_reads(
            copy.deepcopy(target)
        )  # metadata.annotations: {} never survives kustomize
        assert canon(theirs) == canon(expected), f"patch:\n{_dump(patch)}"
        assert canon(apply_patch(base, patch)) == canon(expected), f"patch:\n{_dump(patch)}"


# --- user patches: what a spec's `patches:` might say


def maybe(draw, value, odds: int = 2):
    return value if draw(st.integers(0, odds - 1)) == 0 else None


@st.composite
def env_patch(draw, env: list[dict] | None) -> list:
    """Changes to env (None: the container has none, where kompile refuses list directives)."""
    names = [e["name"] for e in env or []]
    chosen = draw(st.lists(st.sampled_from(ENV_NAMES), unique=True, max_size=4))
    items = []
    for name in chosen:
        form = draw(st.sampled_from(["value", "delete", "null", "valueFrom"]))
        if form == "delete":
            items.append({"name": name, **DELETE})
        elif form == "null":
            items.append(
                {"name": name, "value": None, "valueFrom": {"configMapKeyRef": {"name": "c", "key": name}}}
            )
        elif form == "valueFrom" and name in names:
            items.append(
                {"name": name, "value": None, "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
            )
        else:
            items.append({"name": name, "value": draw(TEXT)})
    directive = draw(st.sampled_from([None, None, None, "replace", "merge", "delete"]))
    if directive and env is not None and not (directive == "merge" and any(DIRECTIVE in i for i in items)):
        items.insert(0, {DIRECTIVE: directive})
    return items


@st.composite
def container_patch(draw, ctr: dict | None, volumes: list[str]) -> dict:
    if ctr is None:  # a new container, which may carry directives of its own
        new = draw(containers(draw(st.sampled_from(NAMES)), volumes))
        if draw(st.booleans()):
            new["env"] = draw(env_patch(None))
        if draw(st.booleans()):
            new["securityContext"] = (
                {**DELETE} if draw(st.booleans()) else {"privileged": None, "runAsNonRoot": True}
            )
        return new
    item = {"name": ctr["name"]}
    if draw(st.integers(0, 5)) == 0:
        return {**item, **DELETE}
    fields = draw(
        st.lists(
            st.sampled_from(
                ["image", "env", "resources", "securityContext", "ports", "volumeMounts", "args", "probe"]
            ),
            unique=True,
            min_size=1,
            max_size=3,
        )
    )
    if "image" in fields:
        item["image"] = "ghcr.io/acme/patched:9"
    if "env" in fields:
        item["env"] = draw(env_patch(ctr.get("env")))
    if "resources" in fields:
        item["resources"] = draw(
            st.sampled_from(
                [
                    DELETE,
                    {**REPLACE, "limits": {"cpu": "3"}},
                    {"limits": {"memory": "2Gi", "cpu": None}},
                    {"requests": None},
                ]
            )
        )
    if "securityContext" in fields:
        item["securityContext"] = draw(
            st.sampled_from(
                [None, DELETE, {"runAsUser": 1000, "capabilities": {"add": ["NET_BIND_SERVICE"]}}]
            )
        )
    if "ports" in fields:
        existing = [(p["containerPort"], p.get("protocol")) for p in ctr.get("ports", [])]
        ports = []
        for port, protocol in existing:  # (an item without protocol cannot be deleted: tested above)
            form = draw(st.sampled_from(["skip", "change", "delete"] if protocol else ["skip", "change"]))
            if form != "skip":
                ports.append(
                    {**ctr_port(port, protocol), **({"name": "changed"} if form == "change" else DELETE)}
                )
        new = (draw(st.sampled_from(PORTS)), draw(PROTOCOL))
        if new not in existing and unambiguous([*existing, new]):
            ports.insert(draw(st.integers(0, len(ports))), ctr_port(*new, name="new"))
        item["ports"] = shuffled(draw, ports)
    if "volumeMounts" in fields and volumes:
        mounts = [
            {"name": v, "mountPath": f"/{v}", "readOnly": draw(st.booleans())}
            for v in draw(st.lists(st.sampled_from(volumes), unique=True))
        ]
        mounts += [
            {"mountPath": m["mountPath"], **DELETE}
            for m in ctr.get("volumeMounts", [])
            if draw(st.booleans()) and m["mountPath"] not in {x["mountPath"] for x in mounts}
        ]
        item["volumeMounts"] = mounts
    if "args" in fields:
        item["args"] = draw(st.lists(TEXT, max_size=2))
    if "probe" in fields:
        item["readinessProbe"] = draw(
            st.sampled_from([None, {"httpGet": {"path": "/live"}}, {**REPLACE, "tcpSocket": {"port": 8000}}])
        )
    return item


@st.composite
def pod_patches(draw, pod: dict) -> dict:
    patch: dict = {}
    volumes = [v["name"] for v in pod.get("volumes", [])]
    items = [
        draw(container_patch(c, volumes))
        for c in draw(st.lists(st.sampled_from(pod["containers"]), unique_by=lambda c: c["name"], max_size=2))
    ]
    if draw(st.booleans()):
        new = draw(container_patch(None, volumes))
        if new["name"] not in {c["name"] for c in pod["containers"]} | {i["name"] for i in items}:
            items.append(new)
    if items and draw(st.integers(0, 6)) == 0:
        patch["containers"] = [REPLACE, *items]
    elif items or draw(st.booleans()):
        patch["containers"] = shuffled(draw, items)
    if draw(st.booleans()):
        changes = [{"name": v, **DELETE} for v in volumes if draw(st.booleans())]
        free = [v for v in VOLUMES if v not in volumes]
        if free:
            changes.append(volume(pick(draw, free)))
        patch["volumes"] = changes
    if draw(st.booleans()):
        patch["topologySpreadConstraints"] = [
            {
                "topologyKey": key,
                "whenUnsatisfiable": when,
                **({"maxSkew": 4} if draw(st.booleans()) else DELETE),
            }
            for key, when in draw(
                st.lists(
                    st.tuples(st.sampled_from(ZONES), st.sampled_from(["ScheduleAnyway", "DoNotSchedule"])),
                    unique=True,
                    max_size=2,
                )
            )
        ]
    if draw(st.booleans()):
        plain = [
            [{"name": "quay"}],
            [],
        ]  # (list directives where the target has no list: refused, tested above)
        patch["imagePullSecrets"] = draw(
            st.sampled_from(
                [*plain, [DELETE], [REPLACE, {"name": "quay"}]] if "imagePullSecrets" in pod else plain
            )
        )
    if draw(st.booleans()):
        patch["tolerations"] = draw(st.sampled_from([None, [], [{"key": "x", "operator": "Exists"}]]))
    return patch


@st.composite
def meta_patch(draw, meta: dict) -> dict:
    patch: dict = {"name": meta["name"]}
    for key in ("labels", "annotations"):
        choice = draw(st.sampled_from(["skip", "skip", "set", "null-one", "null", "replace"]))
        if choice == "set":
            patch[key] = draw(labels())
        elif choice == "null-one" and meta.get(key):
            patch[key] = {pick(draw, list(meta[key])): None}
        elif choice == "null":
            patch[key] = None
        elif choice == "replace":
            patch[key] = {**REPLACE, "tier": "patched"}
    if draw(st.integers(0, 3)) == 0:
        patch["finalizers"] = draw(
            st.sampled_from(
                [["z.example/w"], [], [REPLACE, "a.example/x"], [DELETE]][: 4 if "finalizers" in meta else 2]
            )
        )
    return patch


@st.composite
def user_patches(draw, name: str) -> tuple[dict, dict]:
    """(base, patch): a realistic object and a patch a user might write for it."""
    make = draw(st.sampled_from(list(KINDS)))
    base = draw(make(name))
    patch = {
        "apiVersion": base["apiVersion"],
        "kind": base["kind"],
        "metadata": draw(meta_patch(base["metadata"])),
    }
    kind = base["kind"]
    if kind in ("Deployment", "CronJob"):
        pod = draw(pod_patches(pod_of(base)))
        template: dict = {"spec": pod}
        if draw(st.booleans()):
            template["metadata"] = {"annotations": {"kompile.dev/config-hash": "patched"}}
        if kind == "CronJob":
            patch["spec"] = {"jobTemplate": {"spec": {"template": template}}}
        else:
            patch["spec"] = {
                "template": template,
                "replicas": draw(st.sampled_from([None, 3])),
                "strategy": draw(
                    st.sampled_from(
                        [{"type": "Recreate", "rollingUpdate": None}, {"rollingUpdate": {"maxSurge": 1}}]
                    )
                ),
            }
    elif kind == "Service":
        existing = [(p["port"], p.get("protocol")) for p in base["spec"]["ports"]]
        ports = [
            {
                **svc_port(port, protocol),
                **draw(
                    st.sampled_from([DELETE, {"targetPort": "http"}, {"name": None}][0 if protocol else 1 :])
                ),
            }
            for port, protocol in existing
            if draw(st.booleans())
        ]
        new = (draw(st.sampled_from(PORTS)), draw(PROTOCOL))
        if new not in existing and unambiguous([*existing, new]):
            ports.append(svc_port(*new, name="new"))
        directive = draw(st.sampled_from([[], [], [REPLACE]]))
        patch["spec"] = {
            "ports": [*directive, *shuffled(draw, ports)],
            "type": draw(st.sampled_from([None, "NodePort"])),
        }
    elif kind == "ConfigMap":
        data = {
            key: draw(st.one_of(st.none(), TEXT))
            for key in draw(st.lists(st.sampled_from(ENV_NAMES), unique=True, max_size=3))
        }
        patch["data"] = {**REPLACE, **data} if draw(st.integers(0, 3)) == 0 else data
    else:
        patch["spec"] = {
            "egress": [np_rule(443)],
            "podSelector": draw(
                st.sampled_from([{**REPLACE, "matchLabels": {"a": "b"}}, {"matchLabels": None}])
            ),
        }
    return base, patch


@settings_for_kustomize
@given(batch=batches(user_patches))
def test_apply_patch_agrees_with_kustomize_on_generated_patches(tmp_path_factory, batch):
    """(c) a user's patch, applied inside kompile's model, gives what kustomize gives, or kompile refuses
    it with a PatchError (which becomes a positioned K407): never a silently different object."""
    try:
        built = kustomize_patched(tmp_path_factory.mktemp("apply"), list(batch))
    except ValueError:  # ruamel cannot read back a scalar kustomize wrote: not a kompile question
        assume(False)
    for (base, patch), theirs in zip(batch, built, strict=True):
        try:
            ours = apply_patch(base, patch)
        except PatchError:
            continue
        assert canon(ours) == canon(theirs), f"patch:\n{_dump(patch)}"
