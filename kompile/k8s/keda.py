"""KEDA: a ScaledObject that scales a Celery worker on its broker queue, and the TriggerAuthentication
that lends it the broker's credentials from a Secret."""

from __future__ import annotations

from kompile.k8s.meta import object_meta, resource

API = "keda.sh/v1alpha1"
POLLING_SECONDS = 15
# Scaling to zero waits this long after the queue empties: an empty list does not mean idle workers
# (Celery moves prefetched messages out of it).
COOLDOWN_SECONDS = 300
# Scale down one pod a minute after five quiet minutes: a removed worker gets SIGTERM and must finish its tasks.
SCALE_DOWN = {
    "policies": [{"periodSeconds": 60, "type": "Pods", "value": 1}],
    "stabilizationWindowSeconds": 300,
}


def trigger_authentication(name: str, labels: dict[str, str], secret: str, keys: dict[str, str]) -> dict:
    refs = [{"key": key, "name": secret, "parameter": parameter} for parameter, key in sorted(keys.items())]
    return resource(API, "TriggerAuthentication", object_meta(name, labels), spec={"secretTargetRef": refs})


def scaled_object(
    name: str,
    labels: dict[str, str],
    target: str,
    *,
    min_replicas: int,
    max_replicas: int,
    broker: str,
    queue: str,
    length: int,
    authentication: str | None,
) -> dict:
    if broker == "redis":
        # Celery's Redis transport keeps a queue as a list of that name.
        metadata = {"activationListLength": "0", "listLength": str(length), "listName": queue}
    else:
        metadata = {"activationValue": "0", "mode": "QueueLength", "queueName": queue, "value": str(length)}
    trigger: dict = {"metadata": metadata, "metricType": "AverageValue", "type": broker}
    if authentication:
        trigger["authenticationRef"] = {"name": authentication}
    return resource(
        API,
        "ScaledObject",
        object_meta(name, labels),
        spec={
            "advanced": {"horizontalPodAutoscalerConfig": {"behavior": {"scaleDown": SCALE_DOWN}}},
            "cooldownPeriod": COOLDOWN_SECONDS,
            "maxReplicaCount": max_replicas,
            "minReplicaCount": min_replicas,
            "pollingInterval": POLLING_SECONDS,
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
            "triggers": [trigger],
        },
    )
