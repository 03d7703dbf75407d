"""Network rules, ingress routes, monitoring, ExternalSecrets and pull-request previews."""

from __future__ import annotations

from kompile.model import (
    DEFAULT_DNS,
    Certificate,
    Component,
    ComponentType,
    DnsTarget,
    GatewayRef,
    Ingress,
    Monitoring,
    Network,
    Peer,
    PullRequests,
    Route,
)
from kompile.normalise.components import egress_rules, node_span
from kompile.source import YMap


def network_of(body: dict) -> Network:
    dns = tuple(
        DnsTarget(t.get("namespace"), dict(t.get("podSelector") or {}), t.get("cidr"), span=node_span(t))
        for t in body.get("dns") or ()
    )
    return Network(
        ingress_from=tuple(
            Peer(p["namespace"], dict(p.get("podSelector") or {}), span=node_span(p))
            for p in body.get("ingressFrom") or ()
        ),
        egress=egress_rules(body.get("egress")),
        dns=dns or DEFAULT_DNS,
        cni=body.get("cni", "other"),
        span=node_span(body),
    )


def ingress_of(body: dict | None, components: tuple[Component, ...]) -> Ingress | None:
    if not body:
        return None
    if body.get("routes"):
        routes = tuple(
            Route(r["path"], r["component"], r.get("timeoutSeconds"), span=node_span(r))
            for r in body["routes"]
        )
    else:
        target = body.get("component") or next(c.name for c in components if c.type is ComponentType.WEB)
        routes = (Route(body.get("path", "/"), target, span=node_span(body)),)
    certificate, gateway = body.get("certificate"), body.get("gateway")
    return Ingress(
        hosts=tuple(
            dict.fromkeys([*([body["host"]] if body.get("host") else []), *(body.get("hosts") or ())])
        ),
        class_name=body.get("className"),
        tls_secret=body.get("tlsSecret"),
        annotations={k: str(v) for k, v in sorted((body.get("annotations") or {}).items())},
        routes=routes,
        certificate=Certificate(
            certificate["issuer"],
            certificate.get("kind", "ClusterIssuer"),
            bool(certificate.get("http01", False)),
            span=node_span(certificate),
        )
        if certificate
        else None,
        span=node_span(body),
        gateway=GatewayRef(
            gateway["name"], gateway.get("namespace"), gateway.get("sectionName"), span=node_span(gateway)
        )
        if gateway
        else None,
    )


def monitoring_of(body: dict | None, components: tuple[Component, ...]) -> Monitoring | None:
    """Where Prometheus runs: needed once a component serves metrics (the defaults suit kube-prometheus-stack)."""
    if not any(c.metrics for c in components):
        return None
    body = body or {}
    selector = body.get("podSelector")
    return Monitoring(
        namespace=body.get("namespace", "monitoring"),
        pod_selector=dict(
            sorted((selector if selector is not None else {"app.kubernetes.io/name": "prometheus"}).items())
        ),
        labels=dict(sorted((body.get("labels") or {}).items())),
        interval=body.get("interval", "30s"),
        span=node_span(body),
    )


def external_secret_objects(settings: YMap, namespace: str):
    """An ExternalSecret per secret the store provides, every field the API server would default written
    out (conversion, decoding and metadata strategies; creation and deletion policies), so neither Argo
    CD nor the operator sees a difference after apply."""
    body = settings.get("externalSecrets")
    if not body:
        return
    declared = {s["name"]: s for s in settings.get("secrets") or ()}
    store = body["store"]
    for name, entry in sorted(body["secrets"].items()):
        properties = entry.get("properties") or {}
        data = [
            {
                "remoteRef": {
                    "conversionStrategy": "Default",
                    "decodingStrategy": "None",
                    "key": entry["key"],
                    "metadataPolicy": "None",
                    "property": properties.get(key, key),
                },
                "secretKey": key,
            }
            for key in declared[name]["keys"]
        ]
        yield {
            "apiVersion": "external-secrets.io/v1",
            "kind": "ExternalSecret",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "data": data,
                "refreshInterval": body.get("refreshInterval", "1h0m0s"),
                "secretStoreRef": {"kind": store.get("kind", "SecretStore"), "name": store["name"]},
                "target": {"creationPolicy": "Owner", "deletionPolicy": "Retain", "name": name},
            },
        }


def pull_requests_of(body: dict | None) -> PullRequests | None:
    if not body:
        return None
    provider = "github" if body.get("github") else "gitlab"
    given = body[provider]
    settings: dict = {k: given[k] for k in ("owner", "repo", "project", "api") if given.get(k)}
    if given.get("tokenSecret"):
        settings["tokenRef"] = {"key": "token", "secretName": given["tokenSecret"]}
    if given.get("labels"):
        settings["labels"] = list(given["labels"])
    return PullRequests(
        provider=provider,
        settings=settings,
        host=body["host"],
        image_tag=body.get("imageTag", "{head_sha}"),
        requeue_after_seconds=body.get("requeueAfterSeconds", 300),
        span=node_span(body),
    )
