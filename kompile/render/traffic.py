"""Public entry: an Ingress per routed component (or one HTTPRoute on a Gateway), and the cert-manager
Certificate for their hosts."""

from __future__ import annotations

from kompile.k8s.meta import object_meta, resource
from kompile.model import Route
from kompile.render.context import Context

# ingress-nginx closes a proxied connection idle for 60 s unless told otherwise: websockets need more.
NGINX_TIMEOUTS = (
    "nginx.ingress.kubernetes.io/proxy-read-timeout",
    "nginx.ingress.kubernetes.io/proxy-send-timeout",
)


def render_ingress(ctx: Context, component: str) -> list[dict]:
    """The Ingress of one routed component: its paths on every host. Annotations (timeouts) act on a
    whole Ingress, so each component has its own; ingress-nginx merges those of one host, longest
    path first."""
    ingress = ctx.env.ingress
    if ingress is None or ingress.gateway is not None or component not in ingress.routed:
        return []
    routes = [r for r in ingress.routes if r.component == component]
    annotations = dict(ingress.annotations)
    timeout = next((r.timeout_seconds for r in routes if r.timeout_seconds), None)
    if timeout:
        annotations.update({key: str(timeout) for key in NGINX_TIMEOUTS})
    name = ctx.name(component)
    backend = {"service": {"name": name, "port": {"name": "http"}}}
    paths = [{"backend": backend, "path": r.path, "pathType": "Prefix"} for r in routes]
    return [
        resource(
            "networking.k8s.io/v1",
            "Ingress",
            object_meta(name, ctx.labels(component), annotations),
            spec={
                "ingressClassName": ingress.class_name,
                "rules": [
                    {"host": host, "http": {"paths": [dict(p) for p in paths]}} for host in ingress.hosts
                ],
                "tls": [{"hosts": list(ingress.hosts), "secretName": ingress.tls_secret}],
            },
        )
    ]


def _rule(ctx: Context, route: Route) -> dict:
    # Every field the API server would default is written out, so Argo CD sees no difference after apply.
    rule: dict = {
        "backendRefs": [
            {
                "group": "",
                "kind": "Service",
                "name": ctx.name(route.component),
                "port": ctx.env.component(route.component).port,
                "weight": 1,
            }
        ],
        "matches": [{"path": {"type": "PathPrefix", "value": route.path}}],
    }
    if route.timeout_seconds:
        rule["timeouts"] = {"request": f"{route.timeout_seconds}s"}
    return rule


def render_route(ctx: Context) -> list[dict]:
    """One HTTPRoute on the platform's Gateway; TLS is the Gateway listener's."""
    ingress = ctx.env.ingress
    if ingress is None or ingress.gateway is None:
        return []
    gateway = ingress.gateway
    parent: dict = {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": gateway.name}
    if gateway.namespace:
        parent["namespace"] = gateway.namespace
    if gateway.section:
        parent["sectionName"] = gateway.section
    return [
        resource(
            "gateway.networking.k8s.io/v1",
            "HTTPRoute",
            object_meta(ctx.app, ctx.labels()),
            spec={
                "hostnames": list(ingress.hosts),
                "parentRefs": [parent],
                "rules": [_rule(ctx, route) for route in ingress.routes],
            },
        )
    ]


def render_certificate(ctx: Context) -> list[dict]:
    """A Certificate written out rather than left to cert-manager's ingress-shim: reviewed in Git, checked
    here, and one for every host of every Ingress of the environment."""
    ingress = ctx.env.ingress
    if ingress is None or ingress.certificate is None:
        return []
    cert = ingress.certificate
    return [
        resource(
            "cert-manager.io/v1",
            "Certificate",
            object_meta(ingress.tls_secret, ctx.labels()),
            spec={
                "dnsNames": list(ingress.hosts),
                "issuerRef": {"group": "cert-manager.io", "kind": cert.kind, "name": cert.issuer},
                "secretName": ingress.tls_secret,
            },
        )
    ]
