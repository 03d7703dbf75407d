"""Service and Ingress for web components."""

from __future__ import annotations

from kompile.k8s.meta import object_meta, resource


def service(name: str, labels: dict[str, str], selector: dict[str, str], port: int) -> dict:
    return resource("v1", "Service", object_meta(name, labels), spec={
        "ports": [{"name": "http", "port": port, "protocol": "TCP", "targetPort": "http"}],
        "selector": dict(selector),
        "type": "ClusterIP",
    })


def ingress(name: str, labels: dict[str, str], annotations: dict[str, str], *, class_name: str, host: str, path: str,
            tls_secret: str, service: str) -> dict:
    backend = {"service": {"name": service, "port": {"name": "http"}}}
    return resource("networking.k8s.io/v1", "Ingress", object_meta(name, labels, annotations), spec={
        "ingressClassName": class_name,
        "rules": [{"host": host, "http": {"paths": [{"backend": backend, "path": path, "pathType": "Prefix"}]}}],
        "tls": [{"hosts": [host], "secretName": tls_secret}],
    })
