"""Components, their containers and probes, identities and resources: every default applied."""

from __future__ import annotations

from kompile import names
from kompile.errors import Span
from kompile.k8s.quantity import parse_quantity
from kompile.model import (
    Account,
    Autoscaling,
    Component,
    ComponentType,
    Container,
    EgressRule,
    Metrics,
    Migrate,
    Port,
    Probe,
    Probes,
    Queue,
    Resources,
    Scheduling,
    Secret,
    SecretMount,
)
from kompile.normalise.defaults import (
    CELERY_SHUTDOWN_MARGIN,
    CRON_TIMEOUT,
    DEFAULT_AUTOSCALING_CPU,
    DEFAULT_LIMITS,
    DEFAULT_REQUESTS,
    GRACE_SECONDS,
    IDENTITY_ANNOTATIONS,
    MIGRATE_BACKOFF,
    MIGRATE_TIMEOUT,
    PRE_STOP_SECONDS,
    SERVER_GRACEFUL_TIMEOUT,
    SIDECAR_LIMITS,
    SIDECAR_REQUESTS,
)
from kompile.source import YList, YMap, plain
from kompile.spec import quantity_text
from kompile.spec.commands import celery_time_limit, graceful_timeout


def component_of(
    app: str,
    name: str,
    body: dict,
    gunicorn_cmd_args: str,
    shared: Account,
    sidecars: dict[str, Container],
    init_containers: dict[str, Container],
) -> Component:
    kind = ComponentType(body["type"])
    autoscaling = body.get("autoscaling")
    own_account = body.get("identity") is not None or body.get("rbac") is not None
    account = (
        account_of(
            names.component(app, name),
            body.get("identity"),
            body.get("rbac"),
            fallback=shared,
            component=name,
        )
        if own_account
        else shared
    )
    return Component(
        name=name,
        type=kind,
        command=tuple(body["command"]) if body.get("command") else None,
        args=tuple(body["args"]) if body.get("args") else None,
        port=body.get("port"),
        replicas=min(body.get("replicas", 1), 1)
        if kind is ComponentType.SCHEDULER
        else body.get("replicas", 1),
        autoscaling=_autoscaling(autoscaling)
        if autoscaling and kind in (ComponentType.WEB, ComponentType.WORKER)
        else None,
        probes=_component_probes(kind, body),
        resources=resources_with_defaults(body.get("resources") or {}),
        termination_grace_seconds=body.get(
            "terminationGracePeriodSeconds", _grace(kind, body, gunicorn_cmd_args)
        ),
        account=account,
        sidecars=tuple(sidecars[n] for n in body.get("sidecars") or ()),
        init_containers=tuple(init_containers[n] for n in body.get("initContainers") or ()),
        metrics=Metrics(
            body["metrics"]["port"], body["metrics"].get("path", "/metrics"), span=node_span(body["metrics"])
        )
        if body.get("metrics")
        else None,
        connects_to=tuple(body.get("connectsTo") or ()),
        scheduling=_scheduling(body.get("scheduling")),
        egress=egress_rules(body.get("egress")),
        secrets=tuple(body["secrets"]) if body.get("secrets") is not None else None,
        schedule=body.get("schedule") if kind is ComponentType.CRON else None,
        time_zone=body.get("timeZone") if kind is ComponentType.CRON else None,
        timeout_seconds=body.get("timeoutSeconds", CRON_TIMEOUT) if kind is ComponentType.CRON else None,
        suspend=bool(body.get("suspend", False)) if kind is ComponentType.CRON else False,
        span=node_span(body),
    )


def node_span(body) -> Span | None:
    """Where a node of the merged spec was written (the file that set it last)."""
    return body.span if isinstance(body, YMap | YList) else None


def _autoscaling(body: dict) -> Autoscaling:
    queue = body.get("queue")
    scales_on_usage = body.get("memory") is None and queue is None
    return Autoscaling(
        min_replicas=body["minReplicas"],
        max_replicas=body["maxReplicas"],
        cpu=body.get("cpu", DEFAULT_AUTOSCALING_CPU if scales_on_usage else None),
        memory=body.get("memory"),
        queue=Queue(
            broker=queue["broker"],
            name=queue.get("name", "celery"),
            length=queue.get("length", 10),
            secret=queue.get("secret"),
            keys={k: queue["keys"][k] for k in sorted(queue.get("keys") or {})},
            span=node_span(queue),
        )
        if queue
        else None,
        span=node_span(body),
    )


def _grace(kind: ComponentType, body: dict, gunicorn_cmd_args: str) -> int | None:
    argv = [*(body.get("command") or ()), *(body.get("args") or ())]
    if kind is ComponentType.WEB:
        # The endpoints drop the pod during the preStop sleep; then the server finishes what it serves.
        return graceful_timeout(argv, gunicorn_cmd_args, SERVER_GRACEFUL_TIMEOUT) + PRE_STOP_SECONDS + 5
    if kind is ComponentType.CRON:
        return None
    limit = celery_time_limit(argv)
    if kind is ComponentType.WORKER and limit is not None:
        return limit + CELERY_SHUTDOWN_MARGIN
    return GRACE_SECONDS[kind]


def _probe(body: dict | None, default_port: int | None) -> Probe | None:
    if not body:
        return None
    timing = {
        "span": node_span(body),
        "period_seconds": body.get("periodSeconds"),
        "failure_threshold": body.get("failureThreshold"),
        "timeout_seconds": body.get("timeoutSeconds"),
    }
    if body.get("http") is not None:
        return Probe(http_path=body["http"]["path"], port=body["http"].get("port", default_port), **timing)
    if body.get("exec") is not None:
        return Probe(command=tuple(body["exec"]["command"]), **timing)
    return Probe(port=(body.get("tcp") or {}).get("port", default_port), **timing)


def _component_probes(kind: ComponentType, body: dict) -> Probes:
    """Readiness may depend on the database or the broker; liveness must not (an outage would restart
    every pod at once, which fixes nothing). So the health check drives readiness (and a web
    component's startup), and liveness is only a web server's open port unless the spec says more."""
    if kind is ComponentType.CRON:
        return Probes()
    probes = body.get("probes") or {}
    port = body.get("port")
    health = _probe(
        {"http": probes["http"]}
        if probes.get("http")
        else {"exec": probes["exec"]}
        if probes.get("exec")
        else None,
        port,
    )
    web = kind is ComponentType.WEB
    return Probes(
        startup=_probe(probes.get("startup"), port) or (health if web else None),
        readiness=_probe(probes.get("readiness"), port) or health,
        # A health check may ask the database or the broker, so it never restarts a process by itself.
        liveness=_probe(probes.get("liveness"), port) or (Probe(port=port) if web and port else None),
    )


def _scheduling(body: dict | None) -> Scheduling | None:
    if not body:
        return None
    return Scheduling(
        node_selector=dict(sorted((body.get("nodeSelector") or {}).items())),
        tolerations=tuple(plain(t) for t in body.get("tolerations") or ()),
        priority_class=body.get("priorityClassName"),
        pod_annotations={k: str(v) for k, v in sorted((body.get("podAnnotations") or {}).items())},
        span=node_span(body),
    )


def container_of(body: dict) -> Container:
    probes = body.get("probes") or {}
    return Container(
        name=body["name"],
        image=body.get("image") or "",
        app_image=bool(body.get("appImage")),
        writable_paths=tuple(body.get("writablePaths") or ()),
        command=tuple(body["command"]) if body.get("command") else None,
        args=tuple(body["args"]) if body.get("args") else None,
        env={k: str(v) for k, v in sorted((body.get("env") or {}).items())},
        secrets=tuple(body.get("secrets") or ()),
        ports=tuple(body.get("ports") or ()),
        resources=resources_with_defaults(body.get("resources") or {}, SIDECAR_REQUESTS, SIDECAR_LIMITS),
        probes=Probes(
            startup=_probe(probes.get("startup"), None),
            readiness=_probe(probes.get("readiness"), None),
            liveness=_probe(probes.get("liveness"), None),
        ),
        span=node_span(body),
    )


def account_of(
    name: str,
    identity: dict | None,
    rbac: dict | None,
    fallback: Account | None = None,
    component: str | None = None,
) -> Account:
    """A ServiceAccount: its cloud identities (a component without its own keeps the app's), and the
    rules of a Role bound to it."""
    if identity is None and fallback is not None:
        annotations, azure = fallback.annotations, fallback.azure
    else:
        identity = identity or {}
        annotations = {IDENTITY_ANNOTATIONS[k]: identity[k] for k in IDENTITY_ANNOTATIONS if identity.get(k)}
        annotations.update({k: str(v) for k, v in (identity.get("annotations") or {}).items()})
        annotations = dict(sorted(annotations.items()))
        azure = bool(identity.get("azure"))
    rules = tuple(plain(rule) for rule in ((rbac or {}).get("rules") or ()))
    return Account(
        name=name,
        annotations=annotations,
        rules=rules,
        azure=azure,
        component=component,
        span=node_span(rbac or identity),
    )


def resources_with_defaults(
    given: dict, default_requests: dict = DEFAULT_REQUESTS, default_limits: dict = DEFAULT_LIMITS
) -> Resources:
    """Fill what the spec leaves out, never leaving a limit below its request."""
    requests = {k: quantity_text(v) for k, v in (given.get("requests") or {}).items()}
    limits = {k: quantity_text(v) for k, v in (given.get("limits") or {}).items()}
    for resource in ("cpu", "memory", "ephemeral-storage"):
        if resource not in requests:
            default = default_requests[resource]
            limit = limits.get(resource)
            requests[resource] = (
                limit if limit and parse_quantity(limit) < parse_quantity(default) else default
            )
        if resource not in limits:
            default = default_limits[resource]
            request = requests[resource]
            limits[resource] = request if parse_quantity(request) > parse_quantity(default) else default
    order = ("cpu", "memory", "ephemeral-storage")
    return Resources(requests={k: requests[k] for k in order}, limits={k: limits[k] for k in order})


def secret_of(body: dict) -> Secret:
    mount = SecretMount(body.get("mount", "env"))
    return Secret(
        name=body["name"],
        keys=tuple(body["keys"]),
        mount=mount,
        mount_path=body.get("mountPath", f"/etc/secrets/{body['name']}"),
        span=node_span(body),
    )


def migrate_of(
    body: dict | None, sidecars: dict[str, Container], init_containers: dict[str, Container]
) -> Migrate | None:
    if not body:
        return None
    return Migrate(
        command=tuple(body["command"]),
        timeout_seconds=body.get("timeoutSeconds", MIGRATE_TIMEOUT),
        backoff_limit=body.get("backoffLimit", MIGRATE_BACKOFF),
        resources=resources_with_defaults(body.get("resources") or {}),
        sidecars=tuple(sidecars[n] for n in body.get("sidecars") or ()),
        init_containers=tuple(init_containers[n] for n in body.get("initContainers") or ()),
        secrets=tuple(body["secrets"]) if body.get("secrets") is not None else None,
        span=node_span(body),
    )


def egress_rules(rules) -> tuple[EgressRule, ...]:
    return tuple(
        EgressRule(
            name=rule.get("name"),
            cidr=rule.get("cidr"),
            excepted=tuple(rule.get("except") or ()),
            namespace=rule.get("namespace"),
            pod_selector=dict(rule.get("podSelector") or {}),
            ports=tuple(
                Port(p) if isinstance(p, int) else Port(p["port"], p.get("protocol", "TCP"))
                for p in rule["ports"]
            ),
            host=rule.get("host"),
            span=node_span(rule),
        )
        for rule in rules or ()
    )
