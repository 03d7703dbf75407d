"""Hardened pods: Pod Security Standards "restricted" plus the NSA/CISA Kubernetes hardening guide."""

from __future__ import annotations

from dataclasses import dataclass

TMP_VOLUME = "tmp"


@dataclass(frozen=True)
class PodIdentity:
    service_account: str
    run_as_user: int
    run_as_group: int
    fs_group: int
    tmp_size: str
    api_access: bool = False  # mount the ServiceAccount token (only with a Role)


def container_security_context(identity: PodIdentity) -> dict:
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "runAsGroup": identity.run_as_group,
        "runAsNonRoot": True,
        "runAsUser": identity.run_as_user,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def pod_security_context(identity: PodIdentity) -> dict:
    return {
        "fsGroup": identity.fs_group,
        "runAsGroup": identity.run_as_group,
        "runAsNonRoot": True,
        "runAsUser": identity.run_as_user,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container(
    name: str,
    image: str,
    identity: PodIdentity,
    *,
    command=None,
    args=None,
    ports=None,
    env=None,
    env_from=None,
    volume_mounts=(),
    resources: dict,
    probes: dict | None = None,
    lifecycle: dict | None = None,
    restart_policy: str | None = None,
    pull_policy: str = "Always",
) -> dict:
    out: dict = {"name": name, "image": image, "imagePullPolicy": pull_policy}
    if command:
        out["command"] = list(command)
    if args:
        out["args"] = list(args)
    if ports:
        out["ports"] = ports
    if env:
        out["env"] = env
    if env_from:
        out["envFrom"] = env_from
    out["resources"] = resources
    out.update(probes or {})
    if lifecycle:
        out["lifecycle"] = lifecycle
    if restart_policy:  # Always on an init container: a native sidecar, started first and stopped last
        out["restartPolicy"] = restart_policy
    out["securityContext"] = container_security_context(identity)
    # The root filesystem is read-only: /tmp is the one writable place, bounded in size.
    out["volumeMounts"] = [{"name": TMP_VOLUME, "mountPath": "/tmp"}, *volume_mounts]
    return out


def pod_template(
    labels: dict[str, str],
    annotations: dict[str, str],
    identity: PodIdentity,
    containers: list[dict],
    *,
    volumes=(),
    grace_seconds: int | None = None,
    restart_policy: str | None = None,
    spread: list[dict] | None = None,
    init_containers: list[dict] | None = None,
    node_selector: dict[str, str] | None = None,
    priority_class: str | None = None,
    tolerations: list[dict] | None = None,
) -> dict:
    metadata: dict = {"labels": dict(labels)}
    if annotations:
        metadata["annotations"] = dict(sorted(annotations.items()))
    spec: dict = {
        "automountServiceAccountToken": identity.api_access,
        "containers": containers,
        # Service links would put every Service of the namespace into the environment (Django reads it).
        "enableServiceLinks": False,
    }
    if init_containers:
        spec["initContainers"] = init_containers
    if node_selector:
        spec["nodeSelector"] = dict(node_selector)
    if priority_class:
        spec["priorityClassName"] = priority_class
    if restart_policy:
        spec["restartPolicy"] = restart_policy
    spec["securityContext"] = pod_security_context(identity)
    spec["serviceAccountName"] = identity.service_account
    if grace_seconds is not None:
        spec["terminationGracePeriodSeconds"] = grace_seconds
    if tolerations:
        spec["tolerations"] = [dict(t) for t in tolerations]
    if spread:
        spec["topologySpreadConstraints"] = spread
    spec["volumes"] = [{"name": TMP_VOLUME, "emptyDir": {"sizeLimit": identity.tmp_size}}, *volumes]
    return {"metadata": metadata, "spec": spec}


def topology_spread(selector: dict[str, str]) -> list[dict]:
    """Spread a component's pods across zones and hosts, counting each ReplicaSet on its own."""
    return [
        {
            "labelSelector": {"matchLabels": dict(selector)},
            "matchLabelKeys": ["pod-template-hash"],
            "maxSkew": 1,
            "topologyKey": key,
            "whenUnsatisfiable": "ScheduleAnyway",
        }
        for key in ("topology.kubernetes.io/zone", "kubernetes.io/hostname")
    ]


def resources(requests: dict[str, str], limits: dict[str, str]) -> dict:
    return {"limits": dict(limits), "requests": dict(requests)}
