"""Rules on traffic: routes and hosts, ALLOWED_HOSTS, the ingress and gateway settings, network rules."""

from __future__ import annotations

import difflib
import re

from kompile.errors import Code, Collector, Span
from kompile.source import YMap


def _web_target(where: str, target, components: YMap, span: Span, out: Collector) -> bool:
    webs = [n for n, c in components.items() if c.get("type") == "web"]
    if target not in components:
        close = difflib.get_close_matches(str(target), webs, n=1)
        out.error(
            Code.INGRESS_TARGET,
            f"{where}: no component named '{target}'",
            span,
            f"did you mean '{close[0]}'?" if close else "web components: " + (", ".join(webs) or "none"),
        )
        return False
    if components[target].get("type") != "web":
        out.error(
            Code.INGRESS_TARGET,
            f"{where}: '{target}' is a {components[target].get('type')}, not a web component",
            span,
            "only a web component has a Service and a port to route to",
        )
        return False
    return True


def check_ingress(settings: YMap, components: YMap, out: Collector) -> None:
    ingress = settings.get("ingress")
    if not isinstance(ingress, YMap):
        return
    _check_entry(settings, ingress, out)
    webs = [n for n, c in components.items() if c.get("type") == "web"]
    target = ingress.get("component")
    routes = ingress.get("routes")
    if routes:
        for key in ("component", "path"):
            if ingress.get(key) is not None:
                out.error(
                    Code.COMPONENT_SHAPE,
                    f"ingress.{key} and ingress.routes: say it in routes",
                    ingress.key_span(key),
                    "each route names its path and component; remove this",
                )
        timeouts: dict[str, object] = {}
        paths: set[str] = set()
        for index, route in enumerate(routes):
            if not isinstance(route, YMap):
                continue
            span = routes.item_span(index)
            _web_target(
                f"ingress.routes.{route.get('name') or route.get('path')}",
                route.get("component"),
                components,
                route.value_span("component"),
                out,
            )
            if route.get("path") in paths:
                out.error(
                    Code.INVALID_VALUE,
                    f"ingress.routes: the path {route.get('path')} is routed twice",
                    span,
                    "route each path to one component",
                )
            paths.add(route.get("path"))
            component, timeout = route.get("component"), route.get("timeoutSeconds")
            if component in timeouts and timeouts[component] != timeout:
                out.error(
                    Code.INVALID_VALUE,
                    f"ingress.routes: the routes to {component} differ in timeoutSeconds",
                    span,
                    "the timeout is the component's Ingress's (an annotation): give its routes one timeout",
                )
            timeouts.setdefault(component, timeout)
    elif target is not None:
        _web_target("ingress.component", target, components, ingress.value_span("component"), out)
    elif len(webs) != 1:
        out.error(
            Code.INGRESS_TARGET,
            "ingress: no web component to route to"
            if not webs
            else f"ingress: several web components ({', '.join(webs)}); say which one",
            settings.key_span("ingress"),
            f"set ingress.component to one of: {', '.join(webs)}"
            if webs
            else "add a component with type: web",
        )


def _check_entry(settings: YMap, ingress: YMap, out: Collector) -> None:
    """An Ingress needs a class and a TLS Secret; a Gateway brings both, and its own certificate."""
    if ingress.get("host") is None and not ingress.get("hosts"):
        out.error(
            Code.MISSING_FIELD, "ingress: no host", settings.key_span("ingress"), "add host: shop.example.com"
        )
    if ingress.get("gateway") is not None:
        for key in ("className", "tlsSecret", "certificate", "annotations"):
            if ingress.get(key) is not None:
                out.error(
                    Code.COMPONENT_SHAPE,
                    f"ingress.{key}: a Gateway's listener has the class, TLS and settings",
                    ingress.key_span(key),
                    "remove it, or remove gateway to write Ingresses",
                )
        return
    for key, hint in (
        ("className", "add className: nginx (the IngressClass)"),
        (
            "tlsSecret",
            "add tlsSecret: <secret> (and certificate: {issuer: ...} to have cert-manager fill it)",
        ),
    ):
        if ingress.get(key) is None:
            out.error(
                Code.MISSING_FIELD,
                f"ingress: '{key}' is required (or a gateway)",
                settings.key_span("ingress"),
                hint,
            )
    certificate = ingress.get("certificate")
    peers = (settings.get("network") or {}).get("ingressFrom") or ()
    if isinstance(certificate, YMap) and certificate.get("http01") and not peers:
        out.error(
            Code.MISSING_FIELD,
            "ingress.certificate.http01: no network.ingressFrom to let the ingress controller in",
            certificate.key_span("http01"),
            "name the controller's namespace in network.ingressFrom; the default "
            "deny would keep it from cert-manager's solver pods",
        )


class AllowedHosts:
    """Django's ALLOWED_HOSTS: exact names, '.example.com' (the domain and its subdomains) or '*'. Held
    as sets, so each host is looked up by its own length, not compared with every pattern (30,000
    hosts against 30,000 patterns took minutes)."""

    def __init__(self, allowed: list[str]) -> None:
        patterns = {p.lower() for p in allowed}
        self.everything = "*" in patterns
        self.exact = {p for p in patterns if not p.startswith(".")}
        self.domains = {p for p in patterns if p.startswith(".")}

    def allows(self, host: str) -> bool:
        host = host.lower()
        if self.everything or host in self.exact or "." + host in self.domains:
            return True
        dot = host.find(".")
        while dot != -1:
            if host[dot:] in self.domains:
                return True
            dot = host.find(".", dot + 1)
        return False


def _shown(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def check_allowed_hosts(settings: YMap, out: Collector) -> None:
    """The public hosts are in DJANGO_ALLOWED_HOSTS when the spec sets it: the probes send the first as
    their Host header, and visitors every one."""
    env, ingress = settings.get("env") or {}, settings.get("ingress")
    if "DJANGO_ALLOWED_HOSTS" not in env or not isinstance(ingress, YMap):
        return
    allowed = AllowedHosts(
        [h.strip() for h in re.split(r"[,\s]+", str(env["DJANGO_ALLOWED_HOSTS"])) if h.strip()]
    )
    for key in ("host", "hosts"):
        values = (
            [ingress[key]]
            if key == "host" and ingress.get(key)
            else ingress.get(key) or []
            if key == "hosts"
            else []
        )
        for host in values:
            if not allowed.allows(str(host)):
                out.error(
                    Code.INVALID_VALUE,
                    f"ingress.{key}: {host} is not in DJANGO_ALLOWED_HOSTS ({_shown(str(env['DJANGO_ALLOWED_HOSTS']))})",
                    ingress.value_span(key),
                    "Django answers 400 to it, the probes included; add it to "
                    "env.DJANGO_ALLOWED_HOSTS (a leading '.' allows every subdomain)",
                )


def check_network(settings: YMap, components: YMap, out: Collector) -> None:
    network = settings.get("network") or YMap(settings.span)
    egress = [
        *(network.get("egress") or ()),
        *(rule for c in components.values() for rule in c.get("egress") or ()),
    ]
    hosts = [rule for rule in egress if isinstance(rule, YMap) and rule.get("host")]
    if hosts and network.get("cni", "other") != "cilium":
        rule = hosts[0]
        out.error(
            Code.COMPONENT_SHAPE,
            f"network.egress: {rule['host']} is a host name, which a NetworkPolicy cannot "
            "name (it knows addresses only)",
            rule.value_span("host"),
            "on a cluster with Cilium set network.cni: cilium (a CiliumNetworkPolicy says it); elsewhere give the "
            "service's address block as cidr",
        )
    if (
        hosts
        and not any(isinstance(t, YMap) and t.get("namespace") for t in network.get("dns") or ())
        and network.get("dns")
    ):
        out.error(
            Code.COMPONENT_SHAPE,
            "network.dns: egress to host names needs DNS pods Cilium can watch",
            network.key_span("dns"),
            "add the cluster DNS pods: {namespace: kube-system, podSelector: {k8s-app: kube-dns}}",
        )
    for name, component in components.items():
        targets = component.get("connectsTo")
        for index, target in enumerate(targets or ()):
            span = targets.item_span(index)
            if target == name:
                out.error(
                    Code.INVALID_VALUE,
                    f"components.{name}.connectsTo: a component reaches itself anyway",
                    span,
                )
            else:
                _web_target(f"components.{name}.connectsTo", target, components, span, out)
        metrics = component.get("metrics")
        if (
            isinstance(metrics, YMap)
            and metrics.get("port") is not None
            and metrics.get("port") == component.get("port")
        ):
            out.error(
                Code.INVALID_VALUE,
                f"components.{name}.metrics.port is the port it serves",
                metrics.value_span("port"),
                "serve metrics on a port of their own, outside Django (django-prometheus' exporter port): "
                "Prometheus sends the pod's address as Host, which ALLOWED_HOSTS refuses, and the public routes "
                "must not reach /metrics",
            )
    labels = (settings.get("monitoring") or {}).get("labels") or {}
    for key in labels:
        if str(key).startswith("app.kubernetes.io/"):
            out.error(
                Code.INVALID_NAME,
                f"monitoring.labels: {key} is kompile's",
                labels.key_span(key),
                "use the label your Prometheus selects ServiceMonitors by, e.g. release: kube-prometheus-stack",
            )
