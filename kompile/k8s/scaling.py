"""HorizontalPodAutoscaler and PodDisruptionBudget."""

from __future__ import annotations

from kompile.k8s.meta import object_meta, resource


def horizontal_pod_autoscaler(
    name: str,
    labels: dict[str, str],
    target: str,
    *,
    min_replicas: int,
    max_replicas: int,
    cpu: int | None,
    memory: int | None,
) -> dict:
    metrics = [
        {
            "resource": {"name": metric, "target": {"averageUtilization": percent, "type": "Utilization"}},
            "type": "Resource",
        }
        for metric, percent in (("cpu", cpu), ("memory", memory))
        if percent is not None
    ]
    return resource(
        "autoscaling/v2",
        "HorizontalPodAutoscaler",
        object_meta(name, labels),
        spec={
            "maxReplicas": max_replicas,
            "metrics": metrics,
            "minReplicas": min_replicas,
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
        },
    )


def pod_disruption_budget(name: str, labels: dict[str, str], selector: dict[str, str]) -> dict:
    # AlwaysAllow: a pod that is not ready anyway must never block a node drain.
    return resource(
        "policy/v1",
        "PodDisruptionBudget",
        object_meta(name, labels),
        spec={
            "maxUnavailable": 1,
            "selector": {"matchLabels": dict(selector)},
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
        },
    )
