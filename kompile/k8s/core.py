"""Namespace, ServiceAccount and ConfigMap."""

from __future__ import annotations

from kompile.k8s.meta import object_meta, resource

POD_SECURITY = "restricted"


def namespace(name: str, labels: dict[str, str]) -> dict:
    pss = {f"pod-security.kubernetes.io/{mode}": POD_SECURITY for mode in ("audit", "enforce", "warn")}
    return resource("v1", "Namespace", object_meta(name, {**labels, **pss}))


def service_account(name: str, labels: dict[str, str], annotations: dict[str, str] | None = None) -> dict:
    # No token in pods unless a Role asks for API access (see pod.py). Cloud identities are annotations
    # their webhooks read; they inject tokens of their own, which need no automount.
    return resource(
        "v1", "ServiceAccount", object_meta(name, labels, annotations), automountServiceAccountToken=False
    )


def config_map(name: str, labels: dict[str, str], data: dict[str, str]) -> dict:
    return resource("v1", "ConfigMap", object_meta(name, labels), data=dict(sorted(data.items())))
