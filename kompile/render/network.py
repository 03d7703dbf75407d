"""NetworkPolicies beyond the default deny: one per component, naming both policy types, that allows
what the spec says and nothing else; a CiliumNetworkPolicy for egress to host names; the cert-manager
HTTP-01 solver's way in."""

from __future__ import annotations

from kompile.k8s import meta, networkpolicy
from kompile.model import Component, ComponentType
from kompile.render.context import Context

DNS_PORTS = [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]
ACME_SOLVER_PORT = 8089  # cert-manager's acmesolver listens here (pkg/issuer/acme/http)
ACME_SOLVER_LABEL = "acme.cert-manager.io/http01-solver"


def dns_rule(ctx: Context) -> dict:
    peers = [
        networkpolicy.namespace_peer(t.namespace, t.pod_selector)
        if t.namespace
        else networkpolicy.cidr_peer(t.cidr, ())
        for t in ctx.env.network.dns
    ]
    return {"ports": [dict(p) for p in DNS_PORTS], "to": peers}


def egress_rules(rules_given) -> list[dict]:
    """Egress rules to address blocks and namespaces (host names go in a CiliumNetworkPolicy)."""
    rules = []
    for rule in rules_given:
        if rule.host:
            continue
        if rule.cidr:
            peer = networkpolicy.cidr_peer(rule.cidr, rule.excepted)
        else:
            peer = networkpolicy.namespace_peer(rule.namespace, rule.pod_selector)
        rules.append({"ports": networkpolicy.ports((p.port, p.protocol) for p in rule.ports), "to": [peer]})
    return rules


def _routed(ctx: Context, component: Component) -> bool:
    """Whether the ingress controller (or the Gateway) may reach it: a web component a route names, or
    every web component of an environment without public entry."""
    if component.type is not ComponentType.WEB:
        return False
    return ctx.env.ingress is None or component.name in ctx.env.ingress.routed


def _pods(ctx: Context, name: str) -> dict:
    return {"podSelector": {"matchLabels": ctx.selector(name)}}


def component_policy(ctx: Context, name: str, component: Component | None = None) -> dict:
    """The policy of one component (or of migrate, with component None)."""
    env = ctx.env
    ingress: list[dict] = []
    if component is not None:
        peers = [networkpolicy.namespace_peer(p.namespace, p.pod_selector) for p in env.network.ingress_from]
        if peers and _routed(ctx, component):
            ingress.append({"from": peers, "ports": networkpolicy.ports([(component.port, "TCP")])})
        callers = [c.name for c in env.components if component.name in c.connects_to]
        if callers and component.port:
            ingress.append(
                {
                    "from": [_pods(ctx, c) for c in callers],
                    "ports": networkpolicy.ports([(component.port, "TCP")]),
                }
            )
        if component.metrics and env.monitoring:
            prometheus = networkpolicy.namespace_peer(env.monitoring.namespace, env.monitoring.pod_selector)
            ingress.append(
                {"from": [prometheus], "ports": networkpolicy.ports([(component.metrics.port, "TCP")])}
            )
    egress = [
        dns_rule(ctx),
        *egress_rules(env.network.egress),
        *egress_rules(component.egress if component else ()),
    ]
    for target in component.connects_to if component else ():
        port = env.component(target).port
        egress.append({"ports": networkpolicy.ports([(port, "TCP")]), "to": [_pods(ctx, target)]})
    return networkpolicy.component_policy(
        ctx.name(name), ctx.labels(name), ctx.selector(name), ingress=ingress, egress=egress
    )


def host_policies(ctx: Context) -> list[dict]:
    """Egress to host names, which only Cilium can say: a CiliumNetworkPolicy for every pod of the app
    (network.egress), and one per component with hosts of its own. Cilium learns a name's addresses from
    the DNS answers its proxy sees, so each also sends DNS through that proxy (every name may be looked
    up; only the listed ones may be reached)."""
    policies = _host_policy(
        ctx, ctx.name("hosts"), ctx.labels(), {meta.NAME: ctx.app}, ctx.env.network.egress
    )
    for component in ctx.env.components:
        policies += _host_policy(
            ctx,
            f"{ctx.name(component.name)}-hosts",
            ctx.labels(component.name),
            ctx.selector(component.name),
            component.egress,
        )
    return policies


def _host_policy(ctx: Context, name: str, labels: dict, selector: dict, rules) -> list[dict]:
    hosts = [rule for rule in rules if rule.host]
    if not hosts:
        return []
    dns_pods = [
        {
            "matchLabels": {
                "k8s:io.kubernetes.pod.namespace": t.namespace,
                **{f"k8s:{k}": v for k, v in sorted(t.pod_selector.items())},
            }
        }
        for t in ctx.env.network.dns
        if t.namespace
    ]
    egress = [
        {
            "toEndpoints": dns_pods,
            "toPorts": [
                {"ports": [{"port": "53", "protocol": "ANY"}], "rules": {"dns": [{"matchPattern": "*"}]}}
            ],
        }
    ]
    for rule in hosts:
        egress.append(
            {
                "toFQDNs": [{"matchName": rule.host}],
                "toPorts": [{"ports": [{"port": str(p.port), "protocol": p.protocol} for p in rule.ports]}],
            }
        )
    return [
        meta.resource(
            "cilium.io/v2",
            "CiliumNetworkPolicy",
            meta.object_meta(name, labels),
            spec={
                "egress": egress,
                "endpointSelector": {"matchLabels": dict(selector)},
            },
        )
    ]


def acme_solver_policy(ctx: Context) -> list[dict]:
    """cert-manager's HTTP-01 solver pods, which it starts in this namespace: the ingress controller must
    reach them through the default deny, and nothing else may."""
    ingress = ctx.env.ingress
    if ingress is None or ingress.certificate is None or not ingress.certificate.http01:
        return []
    peers = [networkpolicy.namespace_peer(p.namespace, p.pod_selector) for p in ctx.env.network.ingress_from]
    return [
        meta.resource(
            "networking.k8s.io/v1",
            "NetworkPolicy",
            meta.object_meta(ctx.name("acme-http01-solver"), ctx.labels()),
            spec={
                "ingress": [{"from": peers, "ports": networkpolicy.ports([(ACME_SOLVER_PORT, "TCP")])}],
                "podSelector": {"matchLabels": {ACME_SOLVER_LABEL: "true"}},
                "policyTypes": ["Ingress"],
            },
        )
    ]
