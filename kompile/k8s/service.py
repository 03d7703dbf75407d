"""The Service of a web component."""

from __future__ import annotations

from kompile.k8s.meta import object_meta, resource


def service(name: str, labels: dict[str, str], selector: dict[str, str], port: int) -> dict:
    return resource(
        "v1",
        "Service",
        object_meta(name, labels),
        spec={
            "ports": [{"name": "http", "port": port, "protocol": "TCP", "targetPort": "http"}],
            "selector": dict(selector),
            "type": "ClusterIP",
        },
    )
