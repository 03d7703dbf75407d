"""Metrics: a Service for a component's metrics port and a ServiceMonitor that has Prometheus scrape it.

Prometheus sends `Host: <pod IP>:<port>` and cannot be told otherwise (the ServiceMonitor has no header
field), which Django's ALLOWED_HOSTS rejects; so metrics are served on a port of their own, outside
Django's request handling (django-prometheus' exporter port), never through the public routes."""

from __future__ import annotations

from kompile.k8s.meta import object_meta, resource
from kompile.model import Component
from kompile.render.context import Context


def render_metrics(ctx: Context, component: Component) -> list[dict]:
    metrics, monitoring = component.metrics, ctx.env.monitoring
    if metrics is None or monitoring is None:
        return []
    name = f"{ctx.name(component.name)}-metrics"
    labels = ctx.labels(component.name)
    service = resource(
        "v1",
        "Service",
        object_meta(name, labels),
        spec={
            "ports": [{"name": "metrics", "port": metrics.port, "protocol": "TCP", "targetPort": "metrics"}],
            "selector": ctx.selector(component.name),
            "type": "ClusterIP",
        },
    )
    monitor = resource(
        "monitoring.coreos.com/v1",
        "ServiceMonitor",
        object_meta(ctx.name(component.name), dict(sorted({**labels, **monitoring.labels}.items()))),
        spec={
            "endpoints": [
                {"interval": monitoring.interval, "path": metrics.path, "port": "metrics", "scheme": "http"}
            ],
            "selector": {"matchLabels": ctx.selector(component.name)},
        },
    )
    return [service, monitor]
