"""NetworkPolicies: the default deny is there and intact, and no rule opens the namespace to every
namespace or to every address.

Policies add up: a pod may talk to whatever any policy selecting it allows. So a wide rule anywhere
undoes the default deny, and every rule of every policy in the stream is checked. A peer is "every
namespace" when its namespaceSelector selects all namespaces (or all but some); addresses are "every
address" when the ipBlocks of one direction, taken together, cover all of IPv4 or all of IPv6.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable

from kompile.policy.pods import _list, _map

DIRECTIONS = (("ingress", "from", "Ingress"), ("egress", "to", "Egress"))
# A block at least this wide (or blocks that together cover half of the addresses) is the internet, not a
# destination: 10.0.0.0/8 is a network, 0.0.0.0/1 or 2000::/3 is everything.
WIDEST = {4: 8, 6: 16}
# IPv6 prefixes that reach all of IPv4 through a gateway (NAT64) or embed it (IPv4-mapped, -compatible).
_IPV4_INSIDE = [ipaddress.ip_network(n) for n in ("::ffff:0:0/96", "64:ff9b::/96", "64:ff9b:1::/48", "::/96")]


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
    return any(
        _map(e).get("operator") == "In" and _list(_map(e).get("values"))
        for e in _list(selector.get("matchExpressions"))
    )


def is_default_deny(policy: dict) -> bool:
    """Selects every pod, names both policy types, and allows nothing."""
    spec = _map(policy.get("spec"))
    types = _list(spec.get("policyTypes"))
    return (
        "podSelector" in spec
        and selects_everything(spec.get("podSelector"))
        and "Ingress" in types
        and "Egress" in types
        and not spec.get("ingress")
        and not spec.get("egress")
    )


def network(cidr) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """An ipBlock's cidr as the API server reads it (host bits allowed); an IPv6 block that holds IPv4
    addresses (mapped, compatible, NAT64) as the IPv4 block it reaches."""
    return _network(str(cidr))


@functools.lru_cache(maxsize=4096)  # (the same few blocks in every environment; networks are immutable)
def _network(cidr: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        net = ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return None
    if isinstance(net, ipaddress.IPv6Network):
        for inside in _IPV4_INSIDE:
            if net.subnet_of(inside) and net.prefixlen >= 96:
                low = int(net.network_address) & 0xFFFFFFFF
                return ipaddress.ip_network(
                    f"{ipaddress.IPv4Address(low)}/{net.prefixlen - 96}", strict=False
                )
            if inside.subnet_of(net):  # a wider block around it reaches all of IPv4 through it
                return ipaddress.ip_network("0.0.0.0/0")
    return net


# The addresses that reach the internet: all of IPv4, and IPv6's global unicast block (every routable
# address is in 2000::/3, an eighth of the space).
INTERNET = {4: ipaddress.ip_network("0.0.0.0/0"), 6: ipaddress.ip_network("2000::/3")}


def covers_half(nets: list, version: int) -> bool:
    """Whether these blocks together cover half or more of the internet's addresses of one IP version."""
    return _covers_half(tuple(nets), version)


@functools.lru_cache(maxsize=4096)
def _covers_half(nets: tuple, version: int) -> bool:
    internet = INTERNET[version]
    inside = []
    for net in ipaddress.collapse_addresses(n for n in nets if n.version == version):
        if net.subnet_of(internet):
            inside.append(net)
        elif internet.subnet_of(net):
            inside.append(internet)
    return 2 * sum(net.num_addresses for net in inside) >= internet.num_addresses


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
                        report(
                            name,
                            "network-policy",
                            f"{where} is open to every namespace (its namespaceSelector selects all of them)",
                        )
                    block = _map(peer.get("ipBlock"))
                    if "cidr" in block:
                        net = network(block["cidr"])
                        if net is None:
                            report(
                                name,
                                "network-policy",
                                f"{where}: ipBlock cidr {block['cidr']!r} cannot be read as an "
                                "address block, so kompile cannot tell what it opens",
                            )
                        else:
                            blocks[direction].append((name, net))
                            if net.prefixlen < WIDEST[net.version]:
                                reaches = "" if str(net) == str(block["cidr"]) else f", which reaches {net}"
                                report(
                                    name,
                                    "network-policy",
                                    f"{where} is open to a large part of all addresses "
                                    f"({block['cidr']}{reaches}, wider than /{WIDEST[net.version]} for IPv{net.version})",
                                )
    for direction, found in blocks.items():
        for version in (4, 6):
            mine = [
                (n, net)
                for n, net in found
                if net.version == version and net.prefixlen >= WIDEST[net.version]
            ]
            if mine and covers_half([net for _, net in mine], version):
                name = min(mine, key=lambda item: item[1].prefixlen)[0]  # the policy with the widest block
                report(
                    name,
                    "network-policy",
                    f"the {direction} ipBlocks together cover half or more of all "
                    f"{'IPv4' if version == 4 else 'routable IPv6'} addresses",
                )
    return any(policy.get("kind") == "NetworkPolicy" and is_default_deny(policy) for _, policy in policies)


def only_opens_host_names(obj: dict) -> bool:
    """A CiliumNetworkPolicy of the one shape kompile writes, which opens nothing but egress to named
    hosts: egress rules that either send DNS to DNS pods (`toEndpoints` in a namespace, port 53, a dns
    rule) or reach hosts by exact name (`toFQDNs` with matchName, given ports); no ingress, no other
    peer. Anything else is a policy kompile does not evaluate."""
    if obj.get("apiVersion") != "cilium.io/v2" or obj.get("kind") != "CiliumNetworkPolicy":
        return False
    spec = _map(obj.get("spec"))
    if set(spec) != {"endpointSelector", "egress"} or selects_everything(spec.get("endpointSelector")):
        return False
    for rule in _list(spec.get("egress")):
        rule = _map(rule)
        ports = [_map(p) for entry in _list(rule.get("toPorts")) for p in _list(_map(entry).get("ports"))]
        if not ports:
            return False
        if set(rule) == {"toEndpoints", "toPorts"}:
            endpoints = [_map(_map(e).get("matchLabels")) for e in _list(rule.get("toEndpoints"))]
            if not endpoints or not all(e.get("k8s:io.kubernetes.pod.namespace") for e in endpoints):
                return False
            if any(str(p.get("port")) != "53" for p in ports):
                return False
            if any(
                set(_map(entry)) != {"ports", "rules"} or set(_map(_map(entry).get("rules"))) != {"dns"}
                for entry in _list(rule.get("toPorts"))
            ):
                return False
        elif set(rule) == {"toFQDNs", "toPorts"}:
            names = [_map(n) for n in _list(rule.get("toFQDNs"))]
            if not names or any(
                set(n) != {"matchName"} or not isinstance(n.get("matchName"), str) or "*" in n["matchName"]
                for n in names
            ):
                return False
            if any(set(_map(entry)) != {"ports"} for entry in _list(rule.get("toPorts"))):
                return False
        else:
            return False
    return True
