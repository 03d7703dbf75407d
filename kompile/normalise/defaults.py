"""The defaults kompile applies where a spec says nothing (the README's "Defaults kompile applies")."""

from __future__ import annotations

from kompile.model import (
    ComponentType,
    Security,
)

DEFAULT_REQUESTS = {"cpu": "100m", "memory": "256Mi", "ephemeral-storage": "64Mi"}
DEFAULT_LIMITS = {"cpu": "1", "memory": "512Mi", "ephemeral-storage": "1Gi"}
DEFAULT_AUTOSCALING_CPU = 80
SERVER_GRACEFUL_TIMEOUT = 30  # gunicorn's default; uvicorn and daphne have none (they close at once)
PRE_STOP_SECONDS = 5  # time for endpoints to drop the pod before gunicorn stops accepting
GRACE_SECONDS = {ComponentType.WORKER: 60, ComponentType.SCHEDULER: 30}
# Celery's warm shutdown (SIGTERM) lets running tasks finish, each within the hard --time-limit; then
# the worker closes its broker connection and puts back what it had reserved.
CELERY_SHUTDOWN_MARGIN = 30
SIDECAR_REQUESTS = {"cpu": "50m", "memory": "64Mi", "ephemeral-storage": "64Mi"}
SIDECAR_LIMITS = {"cpu": "500m", "memory": "256Mi", "ephemeral-storage": "1Gi"}
CRON_TIMEOUT = 3600
IDENTITY_ANNOTATIONS = {
    "gcp": "iam.gke.io/gcp-service-account",
    "aws": "eks.amazonaws.com/role-arn",
    "azure": "azure.workload.identity/client-id",
}
DEFAULT_SECURITY = Security(run_as_user=10001, run_as_group=10001, fs_group=10001, tmp_size="256Mi")
MIGRATE_TIMEOUT = 900
MIGRATE_BACKOFF = 1
