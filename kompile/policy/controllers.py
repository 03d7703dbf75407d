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
# Labels starting with __ steer the scrape itself (__address__, __scheme__, __metrics_path__, __param_*,
# __scrape_interval__, ...); only __tmp* is scratch space. A target label written with $ is named by
# the data, and labelmap renames labels wholesale: either can reach any of them.
_SCRATCH = "__tmp"


def scrape_problems(obj: dict, namespace: str | None, keys: list) -> list[str]:
    problems = [
        f"{key} has Prometheus send credentials from the namespace's Secrets, or route its scrapes, where kompile "
        "cannot see"
        for key in keys_anywhere(keys, SCRAPE_CREDENTIALS)
    ]
    stack = [obj]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            target, action = node.get("targetLabel"), node.get("action")
            if isinstance(target, str) and "$" in target:
                problems.append(
                    f"a relabeling names its target label from the data ({target}), which can set __address__"
                )
            elif isinstance(target, str) and target.startswith("__") and not target.startswith(_SCRATCH):
                what = (
                    "moves the scrape to another address"
                    if target == "__address__"
                    else "changes how Prometheus scrapes"
                )
                problems.append(f"a relabeling sets {target}, which {what}")
            if isinstance(action, str) and action.lower() == "labelmap":
                problems.append(
                    "a labelmap relabeling can rename labels onto __address__ and Prometheus' other scrape settings"
                )
            stack.extend(v for v in node.values() if isinstance(v, dict | list))
        elif isinstance(node, list):
            stack.extend(v for v in node if isinstance(v, dict | list))
    selector = _map(_map(obj.get("spec")).get("namespaceSelector"))
    if selector.get("any") not in (None, False) or any(
        name != namespace for name in _list(selector.get("matchNames"))
    ):
        problems.append("namespaceSelector has Prometheus scrape pods of other namespaces")
    return problems


def keys_anywhere(keys: list, wanted: frozenset) -> list[str]:
    """Those of an object's keys (every mapping key in it, as plaintext.scan gives them) that are wanted,
    sorted."""
    if wanted.isdisjoint(keys):  # (most objects: answered in C)
        return []
    return sorted(key for key in keys if key in wanted)


def snippet_keys(keys: list) -> list[str]:
    """Annotation-like keys anywhere in an object (as plaintext.scan gives them) that carry raw proxy
    configuration (ingress-nginx's *-snippet, NGINX Inc.'s *-snippets, HAProxy's *-config-snippet, ...),
    an Ingress's or a template's."""
    # Most objects have no key with "snippet" in it, in any case: found at once when every key is ASCII
    # (where lowercasing is all IGNORECASE does; other letters match "s", "i" or "k" too).
    try:
        text = "\n".join(keys)
        if text.isascii() and "snippet" not in text.lower():
            return []
    except TypeError:  # (a key that is not a string: looked at one by one)
        pass
    return sorted(key for key in keys if isinstance(key, str) and _SNIPPET.fullmatch(key))
