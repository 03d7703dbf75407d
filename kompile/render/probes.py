"""The model's probes as a container's startupProbe, readinessProbe and livenessProbe."""

from __future__ import annotations

from kompile.model import Probe, Probes

# Exec probes start a process (celery inspect ping takes a second or more), so they run rarely.
HTTP_TIMING = {
    "startupProbe": {"failureThreshold": 60, "periodSeconds": 5, "timeoutSeconds": 5},
    "readinessProbe": {"failureThreshold": 3, "periodSeconds": 10, "timeoutSeconds": 5},
    "livenessProbe": {"failureThreshold": 3, "periodSeconds": 20, "timeoutSeconds": 5},
}
EXEC_TIMING = {
    "startupProbe": {"failureThreshold": 30, "periodSeconds": 10, "timeoutSeconds": 30},
    "readinessProbe": {"failureThreshold": 3, "periodSeconds": 30, "timeoutSeconds": 30},
    "livenessProbe": {"failureThreshold": 3, "periodSeconds": 60, "timeoutSeconds": 30},
}


def container_probes(probes: Probes, *, named_port: int | None = None, host: str | None = None) -> dict:
    """named_port is the port the container names `http` (probes on it use the name); host is the Host
    header HTTP probes send on that port (Django refuses the kubelet's pod IP unless it is allowed)."""
    out = {}
    for key, probe in (
        ("startupProbe", probes.startup),
        ("readinessProbe", probes.readiness),
        ("livenessProbe", probes.liveness),
    ):
        if probe is not None:
            out[key] = _probe(key, probe, named_port, host)
    return out


def _probe(key: str, probe: Probe, named_port: int | None, host: str | None) -> dict:
    port = "http" if named_port is not None and probe.port == named_port else probe.port
    if probe.command is not None:
        check, timing = {"exec": {"command": list(probe.command)}}, EXEC_TIMING[key]
    elif probe.http_path is not None:
        http: dict = {"path": probe.http_path, "port": port}
        if host and port == "http":
            http["httpHeaders"] = [{"name": "Host", "value": host}]
        check, timing = {"httpGet": http}, HTTP_TIMING[key]
    else:
        check, timing = {"tcpSocket": {"port": port}}, HTTP_TIMING[key]
    given = {
        "failureThreshold": probe.failure_threshold,
        "periodSeconds": probe.period_seconds,
        "timeoutSeconds": probe.timeout_seconds,
    }
    return {**check, **{k: given[k] if given[k] is not None else v for k, v in timing.items()}}
