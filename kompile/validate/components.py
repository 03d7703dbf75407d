"""Rules on components: their shape per type, the names they refer to, queue autoscaling, sidecars
and init containers declared once."""

from __future__ import annotations

import difflib

from kompile import names
from kompile.errors import Code, Collector, Span
from kompile.policy.images import image_problem
from kompile.source import YList, YMap
from kompile.spec.commands import runs_embedded_beat, through_broker
from kompile.validate.objects import check_plaintext


def check_component(app: str, name: str, component: YMap, key_span: Span, out: Collector) -> None:
    if len(names.component(app, name)) > 63:
        out.error(
            Code.INVALID_NAME,
            f"'{app}-{name}' (app and component) is longer than 63 characters",
            key_span,
            "Kubernetes names are DNS labels; shorten the component name",
        )
    kind = component.get("type")
    _check_workload_shape(name, kind, component, key_span, out)
    if kind == "cron" and len(names.component(app, name)) > 52:
        out.error(
            Code.INVALID_NAME,
            f"'{app}-{name}' (app and cron component) is longer than 52 characters",
            key_span,
            "the CronJob controller adds 11 characters to name each run's Job; shorten the component name",
        )
    autoscaling = component.get("autoscaling")
    if isinstance(autoscaling, YMap) and autoscaling.get("minReplicas", 0) > autoscaling.get(
        "maxReplicas", 0
    ):
        out.error(
            Code.AUTOSCALING_BOUNDS,
            f"components.{name}.autoscaling: minReplicas {autoscaling['minReplicas']} is above maxReplicas {autoscaling['maxReplicas']}",
            autoscaling.value_span("minReplicas"),
            f"lower minReplicas to at most {autoscaling['maxReplicas']}, or raise maxReplicas",
        )
    if kind == "scheduler":
        if autoscaling is not None:
            out.error(
                Code.SCHEDULER_SCALING,
                f"components.{name}: a scheduler is never autoscaled",
                component.key_span("autoscaling"),
                "two celery beat processes would run every task twice; remove autoscaling",
            )
        if component.get("replicas", 1) > 1:
            out.error(
                Code.SCHEDULER_SCALING,
                f"components.{name}: a scheduler runs at most 1 replica",
                component.value_span("replicas"),
                "two celery beat processes would run every task twice; use replicas: 1 (or 0 to pause it)",
            )
    if kind == "web" and component.get("port") is None:
        out.error(
            Code.COMPONENT_SHAPE,
            f"components.{name}: a web component needs a port",
            key_span,
            "add port: 8000 (the port gunicorn binds to; its Service and probes use it)",
        )
    probes = component.get("probes")
    http = probes.get("http") if isinstance(probes, YMap) else None
    if (
        kind != "web"
        and isinstance(http, YMap)
        and http.get("port") is None
        and component.get("port") is None
    ):
        out.error(
            Code.COMPONENT_SHAPE,
            f"components.{name}.probes.http: no port to probe",
            probes.key_span("http"),
            "set probes.http.port or the component's port",
        )


CRON_ONLY = ("schedule", "timeZone", "timeoutSeconds", "suspend")
NOT_CRON = ("port", "replicas", "autoscaling", "probes")
# KEDA's parameters each broker's scaler reads from a TriggerAuthentication.
QUEUE_PARAMETERS = {
    "redis": {"address", "host", "port", "username", "password", "tls", "ca", "cert", "key"},
    "rabbitmq": {"host", "username", "password", "tls", "ca", "cert", "key"},
}


def _check_workload_shape(name: str, kind, component: YMap, key_span: Span, out: Collector) -> None:
    """What each component type may and must say: cron has a schedule and no pods to probe or scale;
    the others are long-running, probed, and never scheduled."""
    where = f"components.{name}"
    if kind == "cron":
        for key in NOT_CRON:
            if component.get(key) is not None:
                out.error(
                    Code.COMPONENT_SHAPE,
                    f"{where}: a cron component has no {key}",
                    component.key_span(key),
                    "each run is one Job pod that ends; remove it",
                )
        return
    for key in CRON_ONLY:
        if component.get(key) is not None:
            out.error(
                Code.COMPONENT_SHAPE,
                f"{where}: {key} is for cron components only",
                component.key_span(key),
                "set type: cron to run the command on a schedule",
            )
    probes = component.get("probes")
    if isinstance(probes, YMap) and not any(probes.get(k) is not None for k in ("http", "exec", "readiness")):
        out.error(
            Code.MISSING_FIELD,
            f"{where}.probes: no health check",
            component.key_span("probes"),
            "add http: {path: /healthz/} (web) or exec: {command: [...]}; it drives readiness",
        )
    if isinstance(probes, YMap) and kind in ("worker", "scheduler"):
        liveness = probes.get("liveness")
        command = ((liveness.get("exec") or {}).get("command") or ()) if isinstance(liveness, YMap) else ()
        if through_broker(command):
            out.error(
                Code.COMPONENT_SHAPE,
                f"{where}.probes.liveness asks the workers through the broker",
                probes.value_span("liveness"),
                "in a broker outage it fails in every pod and restarts them all, killing their tasks; let readiness "
                "ask the broker, and check liveness locally (a heartbeat file the worker touches)",
            )
    argv = [str(part) for part in (*(component.get("command") or ()), *(component.get("args") or ()))]
    if kind == "worker" and runs_embedded_beat(argv):
        field = "args" if any(a in ("-B", "--beat") for a in component.get("args") or ()) else "command"
        out.error(
            Code.COMPONENT_SHAPE,
            f"{where}: a celery worker with -B/--beat runs beat in every replica",
            component.value_span(field),
            "each replica (and each rollout's extra pod) would send every periodic task again; remove -B and add "
            "a component of type: scheduler running `celery beat`",
        )
    autoscaling = component.get("autoscaling")
    if isinstance(autoscaling, YMap):
        queue = autoscaling.get("queue")
        if queue is not None and kind != "worker":
            out.error(
                Code.COMPONENT_SHAPE,
                f"{where}.autoscaling.queue: only workers scale on a queue",
                autoscaling.key_span("queue"),
                "a web component scales on CPU or memory",
            )
        if autoscaling.get("minReplicas") == 0 and queue is None:
            out.error(
                Code.AUTOSCALING_BOUNDS,
                f"{where}.autoscaling: minReplicas 0 needs a queue to wake it",
                autoscaling.value_span("minReplicas"),
                "a HorizontalPodAutoscaler cannot scale from zero; add autoscaling.queue, or set minReplicas: 1",
            )
        if queue is not None and (
            autoscaling.get("cpu") is not None or autoscaling.get("memory") is not None
        ):
            out.error(
                Code.COMPONENT_SHAPE,
                f"{where}.autoscaling: queue scaling replaces cpu and memory targets",
                autoscaling.key_span("cpu" if autoscaling.get("cpu") is not None else "memory"),
                "KEDA scales on the queue's length alone; remove cpu and memory",
            )


def check_references(settings: YMap, where: str, body: YMap, out: Collector) -> None:
    """Sidecars, init containers and secrets that a component or migrate names are declared."""
    for field_name, declared_in in (("sidecars", "sidecars"), ("initContainers", "initContainers")):
        names = body.get(field_name)
        if not isinstance(names, YList):
            continue
        declared = [c.get("name") for c in settings.get(declared_in) or () if isinstance(c, dict)]
        seen = set()
        for index, name in enumerate(names):
            if name not in declared:
                close = difflib.get_close_matches(str(name), declared, n=1)
                out.error(
                    Code.REFERENCE,
                    f"{where}.{field_name}: no {declared_in} entry named '{name}'",
                    names.item_span(index),
                    f"did you mean '{close[0]}'?" if close else f"declare it under the App's {declared_in}",
                )
            elif name in seen:
                out.error(
                    Code.REFERENCE, f"{where}.{field_name}: '{name}' is listed twice", names.item_span(index)
                )
            seen.add(name)
    declared_secrets = [s.get("name") for s in settings.get("secrets") or () if isinstance(s, dict)]
    for index, name in enumerate(body.get("secrets") or ()):
        if name not in declared_secrets:
            close = difflib.get_close_matches(str(name), declared_secrets, n=1)
            out.error(
                Code.REFERENCE,
                f"{where}.secrets: the App declares no secret '{name}'",
                body["secrets"].item_span(index),
                f"did you mean '{close[0]}'?"
                if close
                else "declared: " + (", ".join(declared_secrets) or "none"),
            )
    autoscaling = body.get("autoscaling")
    queue = autoscaling.get("queue") if isinstance(autoscaling, YMap) else None
    if isinstance(queue, YMap):
        _check_queue(settings, f"{where}.autoscaling.queue", queue, out)


def _check_queue(settings: YMap, where: str, queue: YMap, out: Collector) -> None:
    secret, keys = queue.get("secret"), queue.get("keys") or {}
    if (secret is None) != (not keys):
        out.error(
            Code.MISSING_FIELD,
            f"{where}: secret and keys go together",
            queue.key_span("secret" if secret else "keys"),
            "name the App's secret and which of its keys KEDA reads, e.g. secret: shop-broker, "
            "keys: {address: REDIS_ADDRESS, password: REDIS_PASSWORD}",
        )
        return
    broker = queue.get("broker")
    for parameter in keys:
        if broker in QUEUE_PARAMETERS and parameter not in QUEUE_PARAMETERS[broker]:
            out.error(
                Code.INVALID_VALUE,
                f"{where}.keys: KEDA's {broker} scaler reads no '{parameter}'",
                keys.key_span(parameter),
                "it reads " + ", ".join(sorted(QUEUE_PARAMETERS[broker])),
            )
    if secret is None:
        return
    declared = {s.get("name"): s for s in settings.get("secrets") or () if isinstance(s, dict)}
    if secret not in declared:
        out.error(
            Code.REFERENCE,
            f"{where}.secret: the App declares no secret '{secret}'",
            queue.value_span("secret"),
            "declare it under secrets (with the keys KEDA reads), so every environment provides it sealed",
        )
        return
    for parameter, key in keys.items():
        if key not in (declared[secret].get("keys") or ()):
            out.error(
                Code.REFERENCE,
                f"{where}.keys.{parameter}: secret '{secret}' has no key '{key}'",
                keys.value_span(parameter),
                "its keys: " + ", ".join(declared[secret].get("keys") or ()),
            )


def check_helpers(settings: YMap, out: Collector) -> None:
    """The declared sidecars and init containers: pinned images, plain settings, env-mounted secrets,
    probes with a port, and names that do not clash with the containers they join."""
    secrets = {s.get("name"): s for s in settings.get("secrets") or () if isinstance(s, dict)}
    components = settings.get("components") or {}
    taken = {*components, "migrate"}
    for field_name in ("sidecars", "initContainers"):
        for helper in settings.get(field_name) or ():
            if not isinstance(helper, YMap):
                continue
            where = f"{field_name}.{helper.get('name')}"
            if helper.get("name") in taken:
                out.error(
                    Code.INVALID_NAME,
                    f"{where}: the name is a component's, migrate's or another helper's container name",
                    helper.value_span("name"),
                    "give it a name of its own: containers of one pod need distinct names",
                )
            taken.add(helper.get("name"))
            image = helper.get("image")
            if isinstance(image, str) and not helper.get("appImage"):
                digest = image.partition("@")[2] or None
                tag = image.partition("@")[0].rpartition("/")[2].partition(":")[2] or None
                problem = (
                    image_problem(image, False)
                    if (tag or digest)
                    else (
                        Code.LATEST_TAG,
                        f"runs '{image}' without a tag or digest, so Kubernetes would pull 'latest'",
                        "pin it: add :<tag> or @sha256:<digest>",
                    )
                )
                if problem:
                    code, message, hint = problem
                    out.error(code, f"{where}.image: {message}", helper.value_span("image"), hint)
            check_plaintext(helper.get("env") or {}, out)
            for index2, name in enumerate(helper.get("secrets") or ()):
                if name not in secrets:
                    out.error(
                        Code.REFERENCE,
                        f"{where}.secrets: the App declares no secret '{name}'",
                        helper["secrets"].item_span(index2),
                        "declare it under secrets, so every environment provides it sealed",
                    )
                elif secrets[name].get("mount", "env") != "env":
                    out.error(
                        Code.REFERENCE,
                        f"{where}.secrets: '{name}' is mounted as files, not as environment variables",
                        helper["secrets"].item_span(index2),
                        "a helper reads a secret as variables (mount: env)",
                    )
            probes = helper.get("probes")
            for probe_name, probe in probes.items() if isinstance(probes, YMap) else ():
                if not isinstance(probe, YMap):
                    continue
                if field_name == "initContainers":
                    out.error(
                        Code.COMPONENT_SHAPE,
                        f"{where}.probes: an init container runs to completion and has no probes",
                        probes.key_span(probe_name),
                        "declare it under sidecars if it keeps running",
                    )
                    break
                check = probe.get("http") if probe.get("http") is not None else probe.get("tcp")
                if isinstance(check, YMap) and check.get("port") is None:
                    out.error(
                        Code.MISSING_FIELD,
                        f"{where}.probes.{probe_name}: say which port to probe",
                        probe.key_span("http" if probe.get("http") is not None else "tcp"),
                        "a sidecar has no port of the component's; e.g. http: {path: /startup, port: 9090}",
                    )
