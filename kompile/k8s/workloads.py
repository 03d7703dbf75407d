"""Deployment, Job and CronJob."""

from __future__ import annotations

from kompile.k8s.meta import object_meta, resource


def deployment(
    name: str,
    labels: dict[str, str],
    selector: dict[str, str],
    template: dict,
    *,
    replicas: int | None,
    recreate: bool,
) -> dict:
    spec: dict = {}
    if replicas is not None:  # absent when an HPA owns the count, so GitOps and the HPA never fight
        spec["replicas"] = replicas
    spec["revisionHistoryLimit"] = 5
    spec["selector"] = {"matchLabels": dict(selector)}
    if recreate:
        spec["strategy"] = {"type": "Recreate"}
    else:
        spec["strategy"] = {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0},
        }
    spec["template"] = template
    return resource("apps/v1", "Deployment", object_meta(name, labels), spec=spec)


def job(
    name: str,
    labels: dict[str, str],
    annotations: dict[str, str],
    template: dict,
    *,
    backoff_limit: int,
    deadline_seconds: int,
) -> dict:
    # No ttlSecondsAfterFinished: a Job that deletes itself shows the app as OutOfSync.
    spec = {"activeDeadlineSeconds": deadline_seconds, "backoffLimit": backoff_limit, "template": template}
    return resource("batch/v1", "Job", object_meta(name, labels, annotations), spec=spec)


def cron_job(
    name: str,
    labels: dict[str, str],
    template: dict,
    *,
    schedule: str,
    time_zone: str | None,
    deadline_seconds: int,
    suspend: bool,
) -> dict:
    """A management command on a schedule: never two runs at once, no retry of a command that may not be
    idempotent, a missed run given up after five minutes, and the last three runs of each outcome kept
    for their logs (no ttlSecondsAfterFinished: it would race the history limits)."""
    job_spec = {"activeDeadlineSeconds": deadline_seconds, "backoffLimit": 0, "template": template}
    spec: dict = {
        "concurrencyPolicy": "Forbid",
        "failedJobsHistoryLimit": 3,
        "jobTemplate": {"metadata": {"labels": dict(labels)}, "spec": job_spec},
        "schedule": schedule,
        "startingDeadlineSeconds": 300,
        "successfulJobsHistoryLimit": 3,
        "suspend": suspend,
    }
    if time_zone:
        spec["timeZone"] = time_zone
    return resource("batch/v1", "CronJob", object_meta(name, labels), spec=spec)
