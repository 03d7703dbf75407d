"""Fields that make a controller act past the environment's policies: kinds that route traffic around
the ingress, proxy snippets, token and secret senders, Prometheus' scrape targets, YAML merge keys."""

from __future__ import annotations

import re

from kompile.policy.pods import (
    _list,
    _map,
)

# Kinds that route traffic past the ingress and the environment's policies: hand-written endpoints, and
# Gateways with listeners of their own.
EXPOSING = {
    "": ("Endpoints",),
    "discovery.k8s.io": ("EndpointSlice",),
    "gateway.networking.k8s.io": ("Gateway", "ListenerSet", "TCPRoute", "UDPRoute", "TLSRoute"),
}
_SNIPPET = re.compile(r"[a-z0-9.-]+/[A-Za-z0-9._-]*snippets?", re.IGNORECASE)


# Fields by which a custom resource has its controller use a ServiceAccount's token: External Secrets'
# and cert-manager's serviceAccountRef (they mint one and send it to a Vault or a cloud), Prometheus'
# bearerTokenFile (it sends its own), KEDA's boundServiceAccountToken.
TOKEN_SENDERS = frozenset({"serviceAccountRef", "bearerTokenFile", "boundServiceAccountToken"})
MERGE_KEY = frozenset({"<<"})

# Prometheus Operator's monitors: Prometheus reads these fields' Secrets in the monitor's namespace and sends
# them with every scrape; relabelling these labels moves the scrape to another address; a proxy sees it all.
MONITORING = "monitoring.coreos.com"
SCRAPE_CREDENTIALS = frozenset(
    {
        "authorization",
        "basicAuth",
        "oauth2",
        "bearerTokenSecret",
        "sigv4",
        "keySecret",
        "proxyUrl",
        "proxyConnectHeader",
        "proxyFromEnvironment",
    }
)
_MOVES_TARGET = re.compile(r"__(address|scheme|metrics_path|param_.*)__|__param_.*")


def scrape_problems(obj: dict, namespace: str | None) -> list[str]:
    problems = [
        f"{key} has Prometheus send credentials from the namespace's Secrets, or route its scrapes, where kompile "
        "cannot see"
        for key in keys_anywhere(obj, SCRAPE_CREDENTIALS)
    ]
    stack = [obj]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            target = node.get("targetLabel")
            if isinstance(target, str) and _MOVES_TARGET.fullmatch(target):
                problems.append(f"a relabeling sets {target}, which moves the scrape to another address")
            stack.extend(v for v in node.values() if isinstance(v, dict | list))
        elif isinstance(node, list):
            stack.extend(v for v in node if isinstance(v, dict | list))
    selector = _map(_map(obj.get("spec")).get("namespaceSelector"))
    if selector.get("any") not in (None, False) or any(
        name != namespace for name in _list(selector.get("matchNames"))
    ):
        problems.append("namespaceSelector has Prometheus scrape pods of other namespaces")
    return problems


def keys_anywhere(obj, wanted: frozenset) -> list[str]:
    found, stack = [], [obj]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            found += [key for key in node if key in wanted]
            stack.extend(v for v in node.values() if isinstance(v, dict | list))
        elif isinstance(node, list):
            stack.extend(v for v in node if isinstance(v, dict | list))
    return sorted(found)


def snippet_keys(obj) -> list[str]:
    """Annotation-like keys anywhere in an object that carry raw proxy configuration (ingress-nginx's
    *-snippet, NGINX Inc.'s *-snippets, HAProxy's *-config-snippet, ...), an Ingress's or a template's."""
    found, stack = [], [obj]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            found += [key for key in node if isinstance(key, str) and _SNIPPET.fullmatch(key)]
            stack.extend(v for v in node.values() if isinstance(v, dict | list))
        elif isinstance(node, list):
            stack.extend(v for v in node if isinstance(v, dict | list))
    return sorted(found)
