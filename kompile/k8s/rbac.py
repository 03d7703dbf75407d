"""A Role and its RoleBinding to the app's ServiceAccount, only when the spec asks for API access."""

from __future__ import annotations

from kompile.k8s.meta import object_meta, resource

API = "rbac.authorization.k8s.io/v1"


def role(name: str, labels: dict[str, str], rules: list[dict]) -> dict:
    return resource(API, "Role", object_meta(name, labels), rules=[dict(rule) for rule in rules])


def role_binding(name: str, labels: dict[str, str], service_account: str, namespace: str | None) -> dict:
    subject = {"kind": "ServiceAccount", "name": service_account}
    if namespace:
        subject["namespace"] = namespace
    return resource(
        API,
        "RoleBinding",
        object_meta(name, labels),
        roleRef={"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        subjects=[subject],
    )
