"""NetworkPolicies: the default deny is there and intact, and no rule opens the namespace to every
namespace or to every address.

Policies add up: a pod may talk to whatever any policy selecting it allows. So a wide rule anywhere
undoes the default deny, and every rule of every policy in the stream is checked. A peer is "every
namespace" when its namespaceSelector selects all namespaces (or all but some); addresses are "every
address" when the ipBlocks of one direction, taken together, cover all of IPv4 or all of IPv6.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from kompile.policy.pods import _list, _map

DIRECTIONS = (("ingress", "from", "Ingress"), ("egress", "to", "Egress"))
_EVERYWHERE = (ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0"))


def selects_everything(selector) -> bool:
    """An empty label selector (absent, {}, empty matchLabels and matchExpressions) selects every object."""
    selector = _map(selector)
    return not _map(selector.get("matchLabels")) and not _list(selector.get("matchExpressions"))


def is_narrow(selector) -> bool:
    """A namespace selector that names what it selects: a label to equal, or a label In some values.
    Exists, DoesNotExist and NotIn alone select every namespace that has (or lacks) a label."""
    selector = _map(selector)
    if _map(selector.get("matchLabels")):
        return True
    return any(_map(e).get("operator") == "In" and _list(_map(e).get("values")) for e in _list(selector.get("matchExpressions")))


def is_default_deny(policy: dict) -> bool:
    """Selects every pod, names both policy types, and allows nothing."""
    spec = _map(policy.get("spec"))
    types = _list(spec.get("policyTypes"))
    return ("podSelector" in spec and selects_everything(spec.get("podSelector")) and "Ingress" in types and "Egress" in types
            and not spec.get("ingress") and not spec.get("egress"))


def network(cidr) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """An ipBlock's cidr as the API server reads it (host bits allowed); IPv4-mapped IPv6 as IPv4."""
    try:
        net = ipaddress.ip_network(str(cidr), strict=False)
    except ValueError:
        return None
    if isinstance(net, ipaddress.IPv6Network) and net.prefixlen >= 96 and net.network_address.ipv4_mapped is not None:
        return ipaddress.ip_network(f"{net.network_address.ipv4_mapped}/{net.prefixlen - 96}", strict=False)
    return net


def check_policies(policies: list[tuple[str, dict]], report: Callable[[str, str, str], None]) -> bool:
    """Report wide rules ((object, rule, message)); True when one of the policies is a default deny."""
    blocks: dict[str, list[tuple[str, object]]] = {"ingress": [], "egress": []}
    for name, policy in policies:
        spec = _map(policy.get("spec"))
        for direction, peers_key, _ in DIRECTIONS:
            for index, rule in enumerate(_list(spec.get(direction))):
                rule = _map(rule)
                where = f"spec.{direction}[{index}]"
                peers = _list(rule.get(peers_key))
                if not peers:
                    report(name, "network-policy", f"{where} has no '{peers_key}', so it allows every peer")
                for peer in peers:
                    peer = _map(peer)
                    if "namespaceSelector" in peer and not is_narrow(peer["namespaceSelector"]):
                        report(name, "network-policy", f"{where} is open to every namespace (its namespaceSelector "
                               "selects all of them)")
                    block = _map(peer.get("ipBlock"))
                    if "cidr" in block:
                        net = network(block["cidr"])
                        if net is None:
                            report(name, "network-policy", f"{where}: ipBlock cidr {block['cidr']!r} cannot be read as an "
                                   "address block, so kompile cannot tell what it opens")
                        else:
                            blocks[direction].append((name, net))
                            if net.prefixlen == 0:
                                report(name, "network-policy", f"{where} is open to every address ({block['cidr']})")
    for direction, found in blocks.items():
        for everything in _EVERYWHERE:
            mine = [(n, net) for n, net in found if net.version == everything.version and net.prefixlen > 0]
            if mine and list(ipaddress.collapse_addresses(net for _, net in mine)) == [everything]:
                name = min(mine, key=lambda item: item[1].prefixlen)[0]  # the policy with the widest block
                report(name, "network-policy", f"the {direction} ipBlocks together cover every {'IPv4' if everything.version == 4 else 'IPv6'} "
                       f"address ({everything})")
    return any(policy.get("kind") == "NetworkPolicy" and is_default_deny(policy) for _, policy in policies)
