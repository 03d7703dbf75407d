"""NetworkPolicies: deny everything, then allow what the spec lists, per component."""

from __future__ import annotations

from kompile.k8s.meta import object_meta, resource

API = "networking.k8s.io/v1"
NAMESPACE_LABEL = "kubernetes.io/metadata.name"


def default_deny(name: str, labels: dict[str, str]) -> dict:
    return resource(
        API,
        "NetworkPolicy",
        object_meta(name, labels),
        spec={"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
    )


def namespace_peer(namespace: str, pod_selector: dict[str, str]) -> dict:
    peer: dict = {"namespaceSelector": {"matchLabels": {NAMESPACE_LABEL: namespace}}}
    if pod_selector:
        peer["podSelector"] = {"matchLabels": dict(sorted(pod_selector.items()))}
    return peer


def cidr_peer(cidr: str, excepted: tuple[str, ...]) -> dict:
    block: dict = {"cidr": cidr}
    if excepted:
        block["except"] = list(excepted)
    return {"ipBlock": block}


def ports(entries) -> list[dict]:
    return [{"port": port, "protocol": protocol} for port, protocol in entries]


def component_policy(
    name: str, labels: dict[str, str], selector: dict[str, str], *, ingress: list[dict], egress: list[dict]
) -> dict:
    """Names both policy types, so a scanner looking at one pod sees its whole policy."""
    spec: dict = {"egress": list(egress)}
    if ingress:
        spec["ingress"] = ingress
    spec["podSelector"] = {"matchLabels": dict(selector)}
    spec["policyTypes"] = ["Ingress", "Egress"]
    return resource(API, "NetworkPolicy", object_meta(name, labels), spec=spec)
