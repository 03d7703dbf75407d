"""Merged, validated settings -> the model: every default applied, every name derived, no YAML left."""

from __future__ import annotations

from kompile import names
from kompile.errors import Span
from kompile.k8s.quantity import parse_quantity
from kompile.load.merge import app_settings
from kompile.load.project import Project
from kompile.model import (
    DEFAULT_DNS,
    Account,
    Allowance,
    Autoscaling,
    Certificate,
    Component,
    ComponentType,
    Container,
    DnsTarget,
    EgressRule,
    Environment,
    ExtraObject,
    GatewayRef,
    GitOps,
    GitOpsTool,
    Image,
    Ingress,
    Metrics,
    Migrate,
    Monitoring,
    Network,
    Patch,
    Peer,
    Port,
    Probe,
    Probes,
    PullRequests,
    Queue,
    Resources,
    Route,
    Scheduling,
    Secret,
    SecretMount,
    Security,
    Tier,
)
from kompile.source import YList, YMap, plain
from kompile.spec import quantity_text
from kompile.spec.commands import celery_time_limit, graceful_timeout
from kompile.validate.objects import declared_kinds
from kompile.validate.resolved import SCOPE_ANNOTATIONS, Resolved

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


def normalise_environment(project: Project, resolved: Resolved) -> Environment:
    return _environment(project, resolved.settings, resolved.name, resolved.sources)


def normalise_base(project: Project) -> Environment:
    """The App's settings alone: what every environment shares, compiled into bases/<app>/."""
    return _environment(project, app_settings(project), None, (project.app.rel,))


def _environment(project: Project, settings: YMap, name: str | None, sources: tuple[str, ...]) -> Environment:
    env = {k: str(v) for k, v in sorted((settings.get("env") or {}).items())}
    gunicorn_cmd_args = env.get("GUNICORN_CMD_ARGS", "")
    shared = _account(project.name, settings.get("identity"), None)
    sidecars = {c["name"]: _container(c) for c in settings.get("sidecars") or ()}
    init_containers = {c["name"]: _container(c) for c in settings.get("initContainers") or ()}
    components = tuple(
        _component(project.name, component_name, body, gunicorn_cmd_args, shared, sidecars, init_containers)
        for component_name, body in sorted((settings.get("components") or {}).items())
    )
    own = {c.account.name: c.account for c in components if c.account.name != shared.name}
    accounts = (shared, *(own[n] for n in sorted(own)))
    image = settings.get("image") or {}
    namespace = settings.get("namespace") if name else None
    return Environment(
        app=project.name,
        name=name,
        namespace=namespace,
        cluster=settings.get("cluster"),
        tier=Tier(settings["tier"]) if settings.get("tier") else None,
        image=Image(image.get("repository", ""), image.get("tag"), image.get("digest")),
        image_name=(app_settings(project).get("image") or {}).get("repository", "")
        if name
        else image.get("repository", ""),
        env=env,
        secrets=tuple(_secret(s) for s in settings.get("secrets") or ()),
        components=components,
        migrate=_migrate(settings.get("migrate"), sidecars, init_containers),
        network=_network(settings.get("network") or {}),
        ingress=_ingress(settings.get("ingress"), components),
        monitoring=_monitoring(settings.get("monitoring"), components),
        external_secrets=tuple(_external_secrets(settings, namespace)) if name else (),
        sops_secrets=tuple(
            plain(project.manifests(entry["file"], None)[0])
            for _, entry in sorted((settings.get("sopsSecrets") or {}).items())
        )
        if name
        else (),
        pull_requests=_pull_requests(settings.get("pullRequests")) if name else None,
        security=_security(settings.get("security") or {}),
        accounts=accounts,
        extra_objects=tuple(
            ExtraObject(plain(obj), obj.span)
            for rel in settings.get("extraResources") or ()
            for obj in project.objects(rel, None)
        ),
        patches=tuple(_patches(project, settings)),
        sealed_secrets=tuple(_sealed_secrets(project, settings, namespace)) if name else (),
        gitops=_gitops(project.app.spec.get("gitops")),
        sources=sources,
        where=settings.span,
        setting_spans=_setting_spans(settings),
        declared_kinds=declared_kinds(project),
    )


def _setting_spans(settings: YMap) -> dict[str, Span]:
    spans = {key: settings.key_span(key) for key in settings}
    components = settings.get("components")
    if isinstance(components, YMap):
        spans.update({f"components.{name}": components.key_span(name) for name in components})
    return spans


def _component(
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
        _account(
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
        metrics=Metrics(body["metrics"]["port"], body["metrics"].get("path", "/metrics"))
        if body.get("metrics")
        else None,
        connects_to=tuple(body.get("connectsTo") or ()),
        scheduling=_scheduling(body.get("scheduling")),
        egress=_egress(body.get("egress")),
        secrets=tuple(body["secrets"]) if body.get("secrets") is not None else None,
        schedule=body.get("schedule") if kind is ComponentType.CRON else None,
        time_zone=body.get("timeZone") if kind is ComponentType.CRON else None,
        timeout_seconds=body.get("timeoutSeconds", CRON_TIMEOUT) if kind is ComponentType.CRON else None,
        suspend=bool(body.get("suspend", False)) if kind is ComponentType.CRON else False,
        span=_span(body),
    )


def _span(body) -> Span | None:
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
        )
        if queue
        else None,
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
    )


def _container(body: dict) -> Container:
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
        span=_span(body),
    )


def _account(
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
        span=_span(rbac or identity),
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


def _secret(body: dict) -> Secret:
    mount = SecretMount(body.get("mount", "env"))
    return Secret(
        name=body["name"],
        keys=tuple(body["keys"]),
        mount=mount,
        mount_path=body.get("mountPath", f"/etc/secrets/{body['name']}"),
        span=_span(body),
    )


def _migrate(
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
    )


def _network(body: dict) -> Network:
    dns = tuple(
        DnsTarget(t.get("namespace"), dict(t.get("podSelector") or {}), t.get("cidr"))
        for t in body.get("dns") or ()
    )
    return Network(
        ingress_from=tuple(
            Peer(p["namespace"], dict(p.get("podSelector") or {})) for p in body.get("ingressFrom") or ()
        ),
        egress=_egress(body.get("egress")),
        dns=dns or DEFAULT_DNS,
        cni=body.get("cni", "other"),
    )


def _egress(rules) -> tuple[EgressRule, ...]:
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
            span=_span(rule),
        )
        for rule in rules or ()
    )


def _ingress(body: dict | None, components: tuple[Component, ...]) -> Ingress | None:
    if not body:
        return None
    if body.get("routes"):
        routes = tuple(Route(r["path"], r["component"], r.get("timeoutSeconds")) for r in body["routes"])
    else:
        target = body.get("component") or next(c.name for c in components if c.type is ComponentType.WEB)
        routes = (Route(body.get("path", "/"), target),)
    certificate, gateway = body.get("certificate"), body.get("gateway")
    return Ingress(
        hosts=tuple(
            dict.fromkeys([*([body["host"]] if body.get("host") else []), *(body.get("hosts") or ())])
        ),
        class_name=body.get("className"),
        tls_secret=body.get("tlsSecret"),
        annotations={k: str(v) for k, v in sorted((body.get("annotations") or {}).items())},
        routes=routes,
        certificate=Certificate(
            certificate["issuer"],
            certificate.get("kind", "ClusterIssuer"),
            bool(certificate.get("http01", False)),
        )
        if certificate
        else None,
        gateway=GatewayRef(gateway["name"], gateway.get("namespace"), gateway.get("sectionName"))
        if gateway
        else None,
    )


def _monitoring(body: dict | None, components: tuple[Component, ...]) -> Monitoring | None:
    """Where Prometheus runs: needed once a component serves metrics (the defaults suit kube-prometheus-stack)."""
    if not any(c.metrics for c in components):
        return None
    body = body or {}
    selector = body.get("podSelector")
    return Monitoring(
        namespace=body.get("namespace", "monitoring"),
        pod_selector=dict(
            sorted((selector if selector is not None else {"app.kubernetes.io/name": "prometheus"}).items())
        ),
        labels=dict(sorted((body.get("labels") or {}).items())),
        interval=body.get("interval", "30s"),
    )


def _external_secrets(settings: YMap, namespace: str):
    """An ExternalSecret per secret the store provides, every field the API server would default written
    out (conversion, decoding and metadata strategies; creation and deletion policies), so neither Argo
    CD nor the operator sees a difference after apply."""
    body = settings.get("externalSecrets")
    if not body:
        return
    declared = {s["name"]: s for s in settings.get("secrets") or ()}
    store = body["store"]
    for name, entry in sorted(body["secrets"].items()):
        properties = entry.get("properties") or {}
        data = [
            {
                "remoteRef": {
                    "conversionStrategy": "Default",
                    "decodingStrategy": "None",
                    "key": entry["key"],
                    "metadataPolicy": "None",
                    "property": properties.get(key, key),
                },
                "secretKey": key,
            }
            for key in declared[name]["keys"]
        ]
        yield {
            "apiVersion": "external-secrets.io/v1",
            "kind": "ExternalSecret",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "data": data,
                "refreshInterval": body.get("refreshInterval", "1h0m0s"),
                "secretStoreRef": {"kind": store.get("kind", "SecretStore"), "name": store["name"]},
                "target": {"creationPolicy": "Owner", "deletionPolicy": "Retain", "name": name},
            },
        }


def _pull_requests(body: dict | None) -> PullRequests | None:
    if not body:
        return None
    provider = "github" if body.get("github") else "gitlab"
    given = body[provider]
    settings: dict = {k: given[k] for k in ("owner", "repo", "project", "api") if given.get(k)}
    if given.get("tokenSecret"):
        settings["tokenRef"] = {"key": "token", "secretName": given["tokenSecret"]}
    if given.get("labels"):
        settings["labels"] = list(given["labels"])
    return PullRequests(
        provider=provider,
        settings=settings,
        host=body["host"],
        image_tag=body.get("imageTag", "{head_sha}"),
        requeue_after_seconds=body.get("requeueAfterSeconds", 300),
    )


def _security(body: dict) -> Security:
    allow = body.get("allow") or ()
    return Security(
        run_as_user=body.get("runAsUser", DEFAULT_SECURITY.run_as_user),
        run_as_group=body.get("runAsGroup", DEFAULT_SECURITY.run_as_group),
        fs_group=body.get("fsGroup", DEFAULT_SECURITY.fs_group),
        tmp_size=quantity_text(body.get("tmpSize", DEFAULT_SECURITY.tmp_size)),
        allow=tuple(
            Allowance(item["rule"], item.get("object"), item["reason"].strip(), allow.item_span(index))
            for index, item in enumerate(allow)
        ),
    )


def _patches(project: Project, settings: YMap):
    patches = settings.get("patches") or ()
    for index, entry in enumerate(patches):
        where = patches.item_span(index)
        body = project.manifests(entry["path"], None)[0] if entry.get("path") else entry["patch"]
        yield Patch(body=plain(body), target=dict(plain(entry.get("target") or {})), where=where)


def _sealed_secrets(project: Project, settings: YMap, namespace: str):
    for name, entry in sorted((settings.get("sealedSecrets") or {}).items()):
        if entry.get("file"):
            yield plain(project.manifests(entry["file"], None)[0])
            continue
        scope = entry.get("scope", "strict")
        annotations = {SCOPE_ANNOTATIONS[scope]: "true"} if scope in SCOPE_ANNOTATIONS else {}
        metadata = {"name": name, "namespace": namespace}
        if annotations:
            metadata["annotations"] = annotations
        yield {
            "apiVersion": "bitnami.com/v1alpha1",
            "kind": "SealedSecret",
            "metadata": dict(metadata),
            "spec": {
                "encryptedData": {k: entry["encryptedData"][k] for k in sorted(entry["encryptedData"])},
                "template": {"metadata": dict(metadata), "type": "Opaque"},
            },
        }


def _gitops(body: dict | None) -> GitOps | None:
    if not body:
        return None
    tool = GitOpsTool(body["tool"])
    argocd = body.get("argocd") or {}
    flux = body.get("flux") or {}
    return GitOps(
        tool=tool,
        repo_url=body["repoURL"],
        revision=body.get("revision", "main"),
        path=(body.get("path") or "").strip("/"),
        namespace=(
            argocd.get("namespace", "argocd")
            if tool is GitOpsTool.ARGOCD
            else flux.get("namespace", "flux-system")
        ),
        application_set=bool(argocd.get("applicationSet", False)),
        interval=flux.get("interval", "10m"),
        timeout=flux.get("timeout", "5m"),
        sops_key_secret=flux.get("sopsKeySecret", "sops-age"),
    )
