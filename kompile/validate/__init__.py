"""Rules across fields and files, checked on each environment's merged settings before anything is
rendered. Every rule reports into one Collector so a run lists every problem at once."""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass

from kompile import names, spec
from kompile.errors import Code, Collector, Diagnostic, KompileError, Span, naming_environments
from kompile.k8s import kinds
from kompile.k8s.transformers import image_name
from kompile.load.merge import app_settings, effective_spec
from kompile.load.project import Project, expand_lists
from kompile.policy.gate import image_problem
from kompile.policy.network import WIDEST, covers_half, network
from kompile.policy.plaintext import credential_in
from kompile.policy.pods import Unclassifiable, pod_specs
from kompile.policy.pods import containers as pod_containers
from kompile.policy.sops import secret_keys, sops_problem
from kompile.safefs import MAX_NAME_BYTES
from kompile.source import YList, YMap, describe
from kompile.spec.commands import runs_embedded_beat, through_broker

SEALED_SECRET_API = "bitnami.com/v1alpha1"
SCOPE_ANNOTATIONS = {
    "namespace-wide": "sealedsecrets.bitnami.com/namespace-wide",
    "cluster-wide": "sealedsecrets.bitnami.com/cluster-wide",
}

IMAGE_FIELDS_HINT = "pin the image by digest: image: {digest: sha256:...}"


@dataclass(frozen=True)
class Resolved:
    """One environment, merged and checked: what normalise.py turns into the model."""

    name: str
    settings: YMap
    chain: tuple[str, ...]
    sources: tuple[str, ...]

    @property
    def namespace(self) -> str:
        return self.settings.get("namespace") or ""


def validate_project(project: Project) -> list[Resolved]:
    out = Collector()
    resolved: list[Resolved] = []
    # Problems of the App's own settings come back for every environment too; KompileError drops
    # the repeats (same code, place and message), so each is listed once.
    check_settings(project, app_settings(project), None, out)
    app_problems = set(out.items)
    shared: list[tuple[str, Diagnostic]] = []  # found in a file other than the environment's own
    _check_allow_kinds(project, out)
    for name, env_file in project.environments.items():
        try:
            settings, chain = effective_spec(project, name)
        except KompileError as exc:
            out.add(exc.diagnostics)
            continue
        before = len(out.items)
        # A setting the merged spec lacks was nulled by this environment (the App has it): point at its spec.
        spec.check_effective(
            settings, out, env_file.doc.key_span("spec") if "spec" in env_file.doc else env_file.doc.span
        )
        if "namespace" not in settings:
            # After the check: <app>-<environment> gets its own message (_check_environment) when too long.
            settings["namespace"] = names.instance(project.name, name)
        if len(out.items) == before:
            check_settings(project, settings, name, out)
            _check_environment(project, name, settings, out)
            # A problem of the merged settings that the App alone does not have, found in another file (the
            # App's, or one extended): say which environment has it.
            found, out.items[before:] = out.items[before:], []
            out.add(d for d in found if d in app_problems or (d.span and d.span.path == env_file.rel))
            shared.extend(
                (name, d)
                for d in found
                if not (d in app_problems or (d.span and d.span.path == env_file.rel))
            )
        sources = (project.app.rel, *(project.environments[n].rel for n in chain))
        resolved.append(Resolved(name, settings, tuple(chain), sources))
    out.add(naming_environments(shared))
    _check_namespaces(project, resolved, out)
    out.raise_if_any()
    return resolved


# ---------------------------------------------------------------------------------------------
# Rules that hold for the App's own settings and for every environment.


MAX_COMPONENTS = 100  # more is a mistake (or an attempt at the CI machine's time), not an app
MAX_EXTRA_OBJECTS = 1000


def check_settings(project: Project, settings: YMap, env: str | None, out: Collector) -> None:
    components = settings.get("components") or YMap(settings.span)
    if len(components) > MAX_COMPONENTS:
        out.error(
            Code.COMPONENT_SHAPE,
            f"{len(components)} components; an app has at most {MAX_COMPONENTS}",
            settings.key_span("components"),
            "split the app into several apps (repos or folders)",
        )
        return
    for name, component in components.items():
        _check_component(project.name, name, component, components.key_span(name), out)
        _check_references(settings, f"components.{name}", component, out)
    if isinstance(settings.get("migrate"), YMap):
        _check_references(settings, "migrate", settings["migrate"], out)
    _check_helpers(settings, out)
    _check_ingress(settings, components, out)
    _check_allowed_hosts(settings, out)
    _check_network(settings, components, out)
    _check_plaintext(settings.get("env") or {}, out)
    _check_extra_resources(project, settings, env, out)
    _check_patches(project, settings, out)


def _check_component(app: str, name: str, component: YMap, key_span: Span, out: Collector) -> None:
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


def _check_references(settings: YMap, where: str, body: YMap, out: Collector) -> None:
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


def _check_helpers(settings: YMap, out: Collector) -> None:
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
            _check_plaintext(helper.get("env") or {}, out)
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


def _web_target(where: str, target, components: YMap, span: Span, out: Collector) -> bool:
    webs = [n for n, c in components.items() if c.get("type") == "web"]
    if target not in components:
        close = difflib.get_close_matches(str(target), webs, n=1)
        out.error(
            Code.INGRESS_TARGET,
            f"{where}: no component named '{target}'",
            span,
            f"did you mean '{close[0]}'?" if close else "web components: " + (", ".join(webs) or "none"),
        )
        return False
    if components[target].get("type") != "web":
        out.error(
            Code.INGRESS_TARGET,
            f"{where}: '{target}' is a {components[target].get('type')}, not a web component",
            span,
            "only a web component has a Service and a port to route to",
        )
        return False
    return True


def _check_ingress(settings: YMap, components: YMap, out: Collector) -> None:
    ingress = settings.get("ingress")
    if not isinstance(ingress, YMap):
        return
    _check_entry(settings, ingress, out)
    webs = [n for n, c in components.items() if c.get("type") == "web"]
    target = ingress.get("component")
    routes = ingress.get("routes")
    if routes:
        for key in ("component", "path"):
            if ingress.get(key) is not None:
                out.error(
                    Code.COMPONENT_SHAPE,
                    f"ingress.{key} and ingress.routes: say it in routes",
                    ingress.key_span(key),
                    "each route names its path and component; remove this",
                )
        timeouts: dict[str, object] = {}
        paths: set[str] = set()
        for index, route in enumerate(routes):
            if not isinstance(route, YMap):
                continue
            span = routes.item_span(index)
            _web_target(
                f"ingress.routes.{route.get('name') or route.get('path')}",
                route.get("component"),
                components,
                route.value_span("component"),
                out,
            )
            if route.get("path") in paths:
                out.error(
                    Code.INVALID_VALUE,
                    f"ingress.routes: the path {route.get('path')} is routed twice",
                    span,
                    "route each path to one component",
                )
            paths.add(route.get("path"))
            component, timeout = route.get("component"), route.get("timeoutSeconds")
            if component in timeouts and timeouts[component] != timeout:
                out.error(
                    Code.INVALID_VALUE,
                    f"ingress.routes: the routes to {component} differ in timeoutSeconds",
                    span,
                    "the timeout is the component's Ingress's (an annotation): give its routes one timeout",
                )
            timeouts.setdefault(component, timeout)
    elif target is not None:
        _web_target("ingress.component", target, components, ingress.value_span("component"), out)
    elif len(webs) != 1:
        out.error(
            Code.INGRESS_TARGET,
            "ingress: no web component to route to"
            if not webs
            else f"ingress: several web components ({', '.join(webs)}); say which one",
            settings.key_span("ingress"),
            f"set ingress.component to one of: {', '.join(webs)}"
            if webs
            else "add a component with type: web",
        )


def _check_entry(settings: YMap, ingress: YMap, out: Collector) -> None:
    """An Ingress needs a class and a TLS Secret; a Gateway brings both, and its own certificate."""
    if ingress.get("host") is None and not ingress.get("hosts"):
        out.error(
            Code.MISSING_FIELD, "ingress: no host", settings.key_span("ingress"), "add host: shop.example.com"
        )
    if ingress.get("gateway") is not None:
        for key in ("className", "tlsSecret", "certificate", "annotations"):
            if ingress.get(key) is not None:
                out.error(
                    Code.COMPONENT_SHAPE,
                    f"ingress.{key}: a Gateway's listener has the class, TLS and settings",
                    ingress.key_span(key),
                    "remove it, or remove gateway to write Ingresses",
                )
        return
    for key, hint in (
        ("className", "add className: nginx (the IngressClass)"),
        (
            "tlsSecret",
            "add tlsSecret: <secret> (and certificate: {issuer: ...} to have cert-manager fill it)",
        ),
    ):
        if ingress.get(key) is None:
            out.error(
                Code.MISSING_FIELD,
                f"ingress: '{key}' is required (or a gateway)",
                settings.key_span("ingress"),
                hint,
            )
    certificate = ingress.get("certificate")
    peers = (settings.get("network") or {}).get("ingressFrom") or ()
    if isinstance(certificate, YMap) and certificate.get("http01") and not peers:
        out.error(
            Code.MISSING_FIELD,
            "ingress.certificate.http01: no network.ingressFrom to let the ingress controller in",
            certificate.key_span("http01"),
            "name the controller's namespace in network.ingressFrom; the default "
            "deny would keep it from cert-manager's solver pods",
        )


def allowed_host(host: str, allowed: list[str]) -> bool:
    """Whether Django's ALLOWED_HOSTS lets host in: an exact name, '.example.com' (the domain and its
    subdomains) or '*'."""
    host = host.lower()
    for pattern in (p.lower() for p in allowed):
        if (
            pattern == "*"
            or host == pattern
            or (pattern.startswith(".") and (host == pattern[1:] or host.endswith(pattern)))
        ):
            return True
    return False


def _check_allowed_hosts(settings: YMap, out: Collector) -> None:
    """The public hosts are in DJANGO_ALLOWED_HOSTS when the spec sets it: the probes send the first as
    their Host header, and visitors every one."""
    env, ingress = settings.get("env") or {}, settings.get("ingress")
    if "DJANGO_ALLOWED_HOSTS" not in env or not isinstance(ingress, YMap):
        return
    allowed = [h.strip() for h in re.split(r"[,\s]+", str(env["DJANGO_ALLOWED_HOSTS"])) if h.strip()]
    for key in ("host", "hosts"):
        values = (
            [ingress[key]]
            if key == "host" and ingress.get(key)
            else ingress.get(key) or []
            if key == "hosts"
            else []
        )
        for host in values:
            if not allowed_host(str(host), allowed):
                out.error(
                    Code.INVALID_VALUE,
                    f"ingress.{key}: {host} is not in DJANGO_ALLOWED_HOSTS ({env['DJANGO_ALLOWED_HOSTS']})",
                    ingress.value_span(key),
                    "Django answers 400 to it, the probes included; add it to "
                    "env.DJANGO_ALLOWED_HOSTS (a leading '.' allows every subdomain)",
                )


def _check_network(settings: YMap, components: YMap, out: Collector) -> None:
    network = settings.get("network") or YMap(settings.span)
    egress = [
        *(network.get("egress") or ()),
        *(rule for c in components.values() for rule in c.get("egress") or ()),
    ]
    hosts = [rule for rule in egress if isinstance(rule, YMap) and rule.get("host")]
    if hosts and network.get("cni", "other") != "cilium":
        rule = hosts[0]
        out.error(
            Code.COMPONENT_SHAPE,
            f"network.egress: {rule['host']} is a host name, which a NetworkPolicy cannot "
            "name (it knows addresses only)",
            rule.value_span("host"),
            "on a cluster with Cilium set network.cni: cilium (a CiliumNetworkPolicy says it); elsewhere give the "
            "service's address block as cidr",
        )
    if (
        hosts
        and not any(isinstance(t, YMap) and t.get("namespace") for t in network.get("dns") or ())
        and network.get("dns")
    ):
        out.error(
            Code.COMPONENT_SHAPE,
            "network.dns: egress to host names needs DNS pods Cilium can watch",
            network.key_span("dns"),
            "add the cluster DNS pods: {namespace: kube-system, podSelector: {k8s-app: kube-dns}}",
        )
    for name, component in components.items():
        targets = component.get("connectsTo")
        for index, target in enumerate(targets or ()):
            span = targets.item_span(index)
            if target == name:
                out.error(
                    Code.INVALID_VALUE,
                    f"components.{name}.connectsTo: a component reaches itself anyway",
                    span,
                )
            else:
                _web_target(f"components.{name}.connectsTo", target, components, span, out)
        metrics = component.get("metrics")
        if (
            isinstance(metrics, YMap)
            and metrics.get("port") is not None
            and metrics.get("port") == component.get("port")
        ):
            out.error(
                Code.INVALID_VALUE,
                f"components.{name}.metrics.port is the port it serves",
                metrics.value_span("port"),
                "serve metrics on a port of their own, outside Django (django-prometheus' exporter port): "
                "Prometheus sends the pod's address as Host, which ALLOWED_HOSTS refuses, and the public routes "
                "must not reach /metrics",
            )
    labels = (settings.get("monitoring") or {}).get("labels") or {}
    for key in labels:
        if str(key).startswith("app.kubernetes.io/"):
            out.error(
                Code.INVALID_NAME,
                f"monitoring.labels: {key} is kompile's",
                labels.key_span(key),
                "use the label your Prometheus selects ServiceMonitors by, e.g. release: kube-prometheus-stack",
            )


def _check_plaintext(env: YMap, out: Collector) -> None:
    for key, value in env.items():
        if not isinstance(value, str):
            continue
        what = credential_in(key, value)
        if what == "what looks like a secret":
            where = env.key_span(key) if isinstance(env, YMap) else None
            out.error(
                Code.PLAINTEXT_SECRET,
                f"env.{key} looks like a secret; env values are stored in plain text",
                where,
                "declare the key under secrets: on the App and seal its value with kubeseal",
            )
        elif what:
            out.error(
                Code.PLAINTEXT_SECRET,
                f"env.{key} holds {what} in plain text",
                env.value_span(key),
                "move it to secrets: (declared on the App) and seal the value with kubeseal",
            )


def _objects(project: Project, rel: str, span: Span, out: Collector, expand: bool = False) -> list[YMap]:
    try:
        manifests = project.manifests(rel, span)
    except KompileError as exc:
        out.add(exc.diagnostics)
        return []
    return expand_lists(manifests, out) if expand else manifests


def _check_extra_resources(project: Project, settings: YMap, env: str | None, out: Collector) -> None:
    paths = settings.get("extraResources") or YList(settings.span)
    listed: dict[str, Span] = {}
    for index, rel in enumerate(paths):
        if isinstance(rel, str) and rel in listed:
            first = listed[rel]
            out.error(
                Code.EXTRA_RESOURCE,
                f"extraResources lists '{rel}' twice",
                paths.item_span(index),
                f"it is listed first at line {first.line}; list each file once",
            )
        listed.setdefault(rel, paths.item_span(index))
    if len(listed) < len(paths):
        return
    allowed = allowed_kinds(project)
    declared = declared_kinds(project)
    count = 0
    app_image = (app_settings(project).get("image") or {}).get("repository")
    for index, rel in enumerate(paths):
        objects = _objects(project, rel, paths.item_span(index), out, expand=True)
        count += len(objects)
        if count > MAX_EXTRA_OBJECTS:
            out.error(
                Code.EXTRA_RESOURCE,
                f"extraResources hold more than {MAX_EXTRA_OBJECTS} objects",
                paths.item_span(index),
                "kompile writes a file per object; an environment of this size belongs in its own repo or tool",
            )
            return
        for obj in objects:
            if not check_kubernetes_object(obj, out):
                continue
            kind = kinds.classify(obj["apiVersion"], obj["kind"], declared)
            if isinstance(kind, kinds.Unknown):
                out.error(Code.UNCLASSIFIABLE, kind.message, obj.value_span(kind.field), kind.hint)
                continue
            if kind.group == "" and kind.name == "Secret":
                out.error(
                    Code.SECRET_OBJECT,
                    "a Secret in extraResources would commit its value in plain text",
                    obj.value_span("kind"),
                    "seal it with kubeseal and list it under sealedSecrets",
                )
            elif kind.group == "" and kind.name == "Namespace":
                out.error(
                    Code.EXTRA_RESOURCE,
                    "an environment has one Namespace, the one kompile writes (spec.namespace)",
                    obj.value_span("kind"),
                    "remove it; set the environment's namespace with spec.namespace",
                )
            elif (kind.group, kind.name) not in allowed:
                out.error(
                    Code.EXTRA_RESOURCE,
                    f"{kind.name} ({kind.group or 'core'} group) is not one of kompile's own kinds "
                    "nor one the App allows: kompile never widens what an environment may deploy by itself",
                    obj.value_span("kind"),
                    f"list it in {project.app.rel}: allowKinds: [{{group: '{kind.group}', "
                    f"kind: {kind.name}}}] (every allowed kind is listed on every run)",
                )
            production = settings.get("tier") == "production"
            for container in _containers(obj, kind):
                if isinstance(container.get("image"), str) and image_name(container["image"]) == app_image:
                    continue  # the overlay retags the App's image with the environment's tag or digest
                problem = image_problem(container.get("image"), production)
                if problem is not None:
                    code, message, hint = problem
                    where = container.value_span("image") if "image" in container else container.span
                    out.error(code, f"container '{container.get('name')}': {message}", where, hint)


def _containers(obj: YMap, kind: kinds.Kind) -> list[YMap]:
    try:
        specs, _ = pod_specs(obj, kind)
    except Unclassifiable:
        return []  # the policy gate reports it
    return [c for pod, _ in specs for _, c in pod_containers(pod) if isinstance(c, YMap)]


def allowed_kinds(project: Project) -> set[tuple[str, str]]:
    """The kinds an extra resource may have: kompile's own built-in kinds and those the App lists in
    allowKinds. A custom kind kompile writes itself (a ScaledObject, an ExternalSecret) is listed too
    when a spec author writes one: its controller acts with rights kompile cannot see."""
    listed = {
        (str(k.get("group", "")), str(k.get("kind")))
        for k in project.app.spec.get("allowKinds") or ()
        if isinstance(k, dict)
    }
    return {key for key in kinds.OWN_KINDS if kinds.KINDS[key].builtin} | listed


def declared_kinds(project: Project) -> dict[tuple[str, str], bool]:
    """The App's word on kinds kompile has no row for: (group, kind) -> namespaced."""
    return {
        (str(k.get("group", "")), str(k.get("kind"))): bool(k.get("namespaced", True))
        for k in project.app.spec.get("allowKinds") or ()
        if isinstance(k, dict) and k.get("namespaced") is not None
    }


def _check_allow_kinds(project: Project, out: Collector) -> None:
    """Each listed kind exists (kinds are case-sensitive) and says its scope where kompile cannot know it."""
    entries = project.app.spec.get("allowKinds") or YList(project.app.spec.span)
    for index, entry in enumerate(entries):
        where = entries.item_span(index)
        group, kind = str(entry.get("group", "")), str(entry.get("kind"))
        row = kinds.KINDS.get((group, kind))
        if row is None and group in kinds.BUILTIN_GROUPS:
            found = kinds.classify(f"{group}/v1" if group else "v1", kind)
            out.error(
                Code.UNCLASSIFIABLE,
                getattr(found, "message", f"no kind {kind} in {group}"),
                where,
                getattr(found, "hint", None),
            )
        elif row is None and entry.get("namespaced") is None:
            out.error(
                Code.MISSING_FIELD,
                f"allowKinds: say whether {kind} ({group}) is namespaced",
                where,
                "kompile cannot know a custom kind's scope: add namespaced: true (or false for a cluster-wide kind)",
            )
        elif row is not None and entry.get("namespaced") not in (None, row.namespaced):
            out.error(
                Code.INVALID_VALUE,
                f"allowKinds: {kind} ({group or 'core'}) is {'' if row.namespaced else 'not '}namespaced",
                entry.value_span("namespaced"),
                f"remove namespaced, or write namespaced: {str(row.namespaced).lower()}",
            )


def check_kubernetes_object(obj: YMap, out: Collector) -> bool:
    """The fields every Kubernetes object needs, so kustomize can place it."""
    problems = len(out.items)
    for key in ("apiVersion", "kind"):
        if not isinstance(obj.get(key), str) or not obj.get(key):
            out.error(
                Code.EXTRA_RESOURCE,
                f"a Kubernetes object needs a string '{key}'",
                obj.value_span(key) if key in obj else obj.span,
                "a manifest starts with apiVersion, kind and metadata.name; kubectl explain <kind> shows the rest",
            )
    metadata = obj.get("metadata")
    if not isinstance(metadata, YMap) or not isinstance(metadata.get("name"), str):
        out.error(
            Code.EXTRA_RESOURCE,
            "a Kubernetes object needs metadata.name",
            obj.key_span("metadata") if "metadata" in obj else obj.span,
            "add metadata: {name: ...}; kompile sets the namespace",
        )
    elif not re.fullmatch(spec.DNS_SUBDOMAIN, metadata["name"]) or len(metadata["name"]) > 253:
        out.error(
            Code.INVALID_NAME,
            f"{spec.shown(metadata['name'])} is not a valid object name",
            metadata.value_span("name"),
            "object names are lower-case letters, digits, '-' and '.'",
        )
    elif (
        isinstance(obj.get("kind"), str)
        and len(f"{obj['kind']}-{metadata['name']}.yaml".encode()) > MAX_NAME_BYTES
    ):
        out.error(
            Code.INVALID_NAME,
            f"{spec.shown(metadata['name'])} is too long: kompile writes each object to a file "
            f"named <kind>-<name>.yaml, at most {MAX_NAME_BYTES} bytes",
            metadata.value_span("name"),
            f"shorten the name to at most {MAX_NAME_BYTES - len(obj['kind']) - 6} characters",
        )
    if len(out.items) == problems:
        kind = kinds.classify(obj["apiVersion"], obj["kind"], {})
        if isinstance(kind, kinds.Unknown) and kind.message.startswith(("apiVersion", "kind '")):
            out.error(Code.UNCLASSIFIABLE, kind.message, obj.value_span(kind.field), kind.hint)
    if len(out.items) == problems:
        # What kompile (and kustomize's transformers) read or write in any object it passes on.
        explain = f"`kubectl explain {obj['kind'].lower()}` shows its fields"
        check_fields(
            obj,
            _object_fields(obj["apiVersion"], obj["kind"]),
            Code.EXTRA_RESOURCE,
            out,
            missing_hint=explain,
            wrong_hint=explain,
        )
        _check_values(obj, out)
    return len(out.items) == problems


def _check_values(node, out: Collector) -> None:
    """Values no Kubernetes object can hold and kustomize stops at: infinite or not-a-number floats."""
    if isinstance(node, YMap):
        for key, value in node.items():
            if isinstance(value, float) and not math.isfinite(value):
                out.error(
                    Code.EXTRA_RESOURCE,
                    f"{key}: {value} is not a number Kubernetes (or kustomize) can hold",
                    node.value_span(key),
                    "quote it if it is text",
                )
            elif isinstance(value, dict | list):
                _check_values(value, out)
    elif isinstance(node, YList):
        for index, value in enumerate(node):
            if isinstance(value, float) and not math.isfinite(value):
                out.error(
                    Code.EXTRA_RESOURCE,
                    f"{value} is not a number Kubernetes (or kustomize) can hold",
                    node.item_span(index),
                    "quote it if it is text",
                )
            elif isinstance(value, dict | list):
                _check_values(value, out)


_METADATA_FIELDS = (
    (("metadata", "namespace"), str, False),
    (("metadata", "labels"), "strings", False),
    (("metadata", "annotations"), "strings", False),
)
_KIND_FIELDS = {
    "SealedSecret": (
        (("spec",), dict, False),
        (("spec", "template"), dict, False),
        (("spec", "template", "metadata"), dict, False),
        (("spec", "template", "metadata", "name"), str, False),
    ),
    "ExternalSecret": (
        (("spec",), dict, False),
        (("spec", "target"), dict, False),
        (("spec", "target", "name"), str, False),
    ),
}


def _object_fields(api_version: str, kind: str) -> tuple:
    fields = list(_METADATA_FIELDS) + list(_KIND_FIELDS.get(kind, ()))
    for path in kinds.template_label_paths(api_version, kind):
        if path[-1] == []:
            continue
        # The labels transformer writes into pod templates (includeTemplates): each step must be a mapping.
        fields += [(path[:end], dict, False) for end in range(1, len(path) + 1)]
        fields += [((*path, "metadata"), dict, False), ((*path, "metadata", "labels"), "strings", False)]
    return tuple(dict.fromkeys(fields))


def _check_patches(project: Project, settings: YMap, out: Collector) -> None:
    patches = settings.get("patches") or YList(settings.span)
    for index, entry in enumerate(patches):
        where = patches.item_span(index)
        if entry.get("path") is not None:
            docs = _objects(project, entry["path"], entry.value_span("path"), out)
            if len(docs) != 1:
                if docs:
                    out.error(
                        Code.PATCH,
                        f"patch file '{entry['path']}' holds {len(docs)} documents; one patch per file",
                        entry.value_span("path"),
                    )
                continue
            body = docs[0]
        else:
            body = entry["patch"]
        if isinstance(body, list) and entry.get("target") is None:
            out.error(
                Code.PATCH,
                "a JSON patch (a list of operations) needs a target",
                where,
                "target: {kind: Deployment, name: shop-web}",
            )
        if isinstance(body, dict) and entry.get("target") is None:
            metadata = body.get("metadata")
            if not (
                isinstance(body.get("kind"), str)
                and isinstance(metadata, dict)
                and isinstance(metadata.get("name"), str)
            ):
                out.error(
                    Code.PATCH,
                    "a strategic merge patch needs kind and metadata.name (or a target)",
                    where,
                    "name what it patches: kind: Deployment and metadata: {name: shop-web}, or target: {kind: Deployment, name: shop-web}",
                )
        if isinstance(body, list):
            for op_index, op in enumerate(body):
                if (
                    not isinstance(op, dict)
                    or op.get("op") not in ("add", "remove", "replace", "move", "copy", "test")
                    or not isinstance(op.get("path"), str)
                ):
                    op_where = body.item_span(op_index) if isinstance(body, YList) else where
                    out.error(
                        Code.PATCH,
                        "a JSON patch operation needs op (add, remove, replace, move, copy, test) and path",
                        op_where,
                        "for example {op: replace, path: /spec/replicas, value: 3}",
                    )


# ---------------------------------------------------------------------------------------------
# Rules for a concrete environment.


# Namespaces an environment never takes: the cluster's own, and where the GitOps controller runs.
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
# Where the controllers kompile's output relies on usually run: an environment there would put a
# restricted Namespace label and a default deny on them.
CONTROLLER_NAMESPACES = (
    "argocd",
    "flux-system",
    "cert-manager",
    "ingress-nginx",
    "keda",
    "external-secrets",
    "monitoring",
    "sealed-secrets",
    "gatekeeper-system",
    "kyverno",
    "envoy-gateway-system",
    "istio-system",
    "cilium",
    "calico-system",
    "tigera-operator",
    "gke-managed-system",
)


def _peer_namespaces(settings: YMap) -> dict[str, str]:
    """Namespaces the spec itself names as others' (the ingress controller's, Prometheus', DNS'): what names them."""
    network = settings.get("network") or {}
    named = {
        str(p.get("namespace")): "network.ingressFrom"
        for p in network.get("ingressFrom") or ()
        if isinstance(p, dict)
    }
    named |= {
        str(t.get("namespace")): "network.dns"
        for t in network.get("dns") or ()
        if isinstance(t, dict) and t.get("namespace")
    }
    monitoring = settings.get("monitoring")
    if isinstance(monitoring, dict):
        named[str(monitoring.get("namespace", "monitoring"))] = "monitoring"
    return named


def _gitops_tool(project: Project) -> str | None:
    gitops = project.app.spec.get("gitops")
    return gitops.get("tool") if isinstance(gitops, YMap) else None


def _gitops_namespace(project: Project) -> str | None:
    gitops = project.app.spec.get("gitops")
    if not isinstance(gitops, YMap):
        return None
    tool = gitops.get("tool")
    settings = gitops.get(tool) if isinstance(gitops.get(tool), YMap) else {}
    return settings.get("namespace") or {"argocd": "argocd", "flux": "flux-system"}.get(tool)


def _check_environment(project: Project, name: str, settings: YMap, out: Collector) -> None:
    namespace = settings["namespace"]
    env_file = project.environments[name]
    controller = _gitops_namespace(project)
    peers = _peer_namespaces(settings)
    if (
        namespace in SYSTEM_NAMESPACES
        or namespace.startswith("kube-")
        or namespace == controller
        or namespace in CONTROLLER_NAMESPACES
        or namespace in peers
    ):
        owner = (
            "the GitOps controller"
            if namespace == controller
            else f"what {peers[namespace]} names"
            if namespace in peers
            else "a controller"
            if namespace in CONTROLLER_NAMESPACES
            else "the cluster"
        )
        where = (
            settings.value_span("namespace")
            if "namespace" in settings.value_spans
            else env_file.doc["metadata"].value_span("name")
        )
        out.error(
            Code.INVALID_NAME,
            f"namespace '{namespace}' belongs to {owner}: an environment takes it over (its "
            "Namespace labels, a default deny, pruning)",
            where,
            "give the environment a namespace of its own",
        )
    if len(names.instance(project.name, name)) > 63:
        out.error(
            Code.INVALID_NAME,
            f"'{project.name}-{name}' (app and environment) is longer than 63 characters",
            env_file.doc["metadata"].value_span("name"),
            "shorten the environment's name: it names the namespace (by default) and labels every object",
        )
    image = settings["image"]
    if not image.get("tag") and not image.get("digest"):
        # Point at the environment's own image when it has one, else at its spec: the tag goes there.
        image_span = settings.value_span("image")
        where = (
            image_span
            if image_span.path != project.app.rel
            else env_file.doc.key_span("spec")
            if "spec" in env_file.doc
            else env_file.doc.span
        )
        out.error(
            Code.LATEST_TAG,
            f"image: environment '{name}' sets no tag or digest, so Kubernetes would pull 'latest'",
            where,
            f"pin what it runs in {env_file.rel}: image: {{tag: 1.4.3}} or image: {{digest: sha256:...}}",
        )
    _check_secrets(project, name, settings, namespace, out)
    _check_egress(project, settings, out)
    if isinstance(settings.get("pullRequests"), YMap):
        _check_previews(project, settings, out)
    if settings.get("tier") == "production":
        _check_production(settings, name, out)


def _check_previews(project: Project, settings: YMap, out: Collector) -> None:
    """A preview template: what one instance per pull request needs to work in a namespace of its own."""
    pr = settings["pullRequests"]
    where = settings.key_span("pullRequests")
    if _gitops_tool(project) != "argocd":
        out.error(
            Code.COMPONENT_SHAPE,
            "pullRequests: previews per pull request need Argo CD's ApplicationSet",
            where,
            "Flux has no pull-request generator without Flux Operator (a separate controller); with Flux, let CI "
            "write an environment file per pull request",
        )
    for key, allowed in (
        ("host", {"{number}"}),
        ("imageTag", {"{number}", "{head_sha}", "{head_short_sha}"}),
    ):
        for placeholder in re.findall(r"\{[^}]*\}", str(pr.get(key, ""))):
            if placeholder not in allowed:
                out.error(
                    Code.INVALID_VALUE,
                    f"pullRequests.{key}: {placeholder} is not a pull request's parameter",
                    pr.value_span(key),
                    "use " + ", ".join(sorted(allowed)),
                )
    if (settings.get("image") or {}).get("digest"):
        out.error(
            Code.INVALID_VALUE,
            "pullRequests: a preview template pins its image by digest",
            settings.value_span("image"),
            "a digest would win over each pull request's tag; pin a tag (any: each preview replaces it)",
        )
    ingress = settings.get("ingress")
    if (
        isinstance(ingress, YMap)
        and len([*([ingress["host"]] if ingress.get("host") else []), *(ingress.get("hosts") or ())]) > 1
    ):
        out.error(
            Code.INVALID_VALUE,
            "pullRequests: a preview answers on one host",
            settings.key_span("ingress"),
            "give the template one host; pullRequests.host is each preview's",
        )
    for secret_name, entry in (settings.get("sealedSecrets") or {}).items():
        scope = (
            entry.get("scope", "strict")
            if entry.get("file") is None
            else next((sealed_scope(obj) for obj in project.objects(entry["file"], None)[:1]), "strict")
        )
        if scope != "cluster-wide":
            out.error(
                Code.SEALED_SECRET_MISMATCH,
                f"sealedSecrets.{secret_name}: sealed with scope {scope}, it cannot be "
                f"unsealed in a preview's namespace ({names.preview(project.name, '<number>')})",
                settings["sealedSecrets"].key_span(secret_name),
                "seal the preview's values with --scope cluster-wide, or take them from a store with externalSecrets",
            )


def _check_egress(project: Project, settings: YMap, out: Collector) -> None:
    """An egress block as wide as a large part of the internet undoes the default deny. Said here, at the
    rule, rather than by the gate once per NetworkPolicy it lands in: network.egress for every component
    (unless the environment opts out of network-policy for every object), a component's own egress for
    it (unless the opt-out names its NetworkPolicy). An opt-out leaves the exact check to the gate."""
    allows = [
        a
        for a in (settings.get("security") or {}).get("allow") or ()
        if isinstance(a, dict) and a.get("rule") == "network-policy"
    ]
    opted_out = {a.get("object") for a in allows}
    hint = (
        "name the networks the app talks to; to reach the internet on purpose opt out visibly: "
        "security: {allow: [{rule: network-policy, object: NetworkPolicy/<name>, reason: ...}]}"
    )
    scopes = [("every component", (settings.get("network") or YMap(settings.span)), None)]
    scopes += [
        (f"component {name}", component, f"NetworkPolicy/{project.name}-{name}")
        for name, component in (settings.get("components") or {}).items()
        if isinstance(component, YMap)
    ]
    for who, holder, policy in scopes:
        if None in opted_out or policy in opted_out:
            continue
        rules = holder.get("egress") or ()
        narrow: dict[int, list] = {4: [], 6: []}
        for rule in rules:
            if not isinstance(rule, YMap) or rule.get("cidr") is None:
                continue
            net = network(rule["cidr"])
            if net is not None and net.prefixlen >= WIDEST[net.version]:
                narrow[net.version].append(net)
            elif net is not None:
                reaches = "" if str(net) == str(rule["cidr"]) else f", which reaches {net},"
                share = (
                    "every address"
                    if net.prefixlen == 0
                    else f"a large part of all addresses (wider than /{WIDEST[net.version]} for IPv{net.version})"
                )
                out.error(
                    Code.HARDENING,
                    f"egress to {rule['cidr']}{reaches} opens {share} to {who}",
                    rule.value_span("cidr"),
                    hint,
                )
        for version, nets in narrow.items():
            # Many narrow blocks are as wide as one wide block: the gate's rule, said once at the list.
            if nets and covers_half(nets, version):
                out.error(
                    Code.HARDENING,
                    f"the egress rules together open half or more of all {'IPv4' if version == 4 else 'routable IPv6'} "
                    f"addresses to {who}",
                    holder.key_span("egress"),
                    hint,
                )


BACKENDS = ("sealedSecrets", "externalSecrets", "sopsSecrets")


def _check_secrets(project: Project, env: str, settings: YMap, namespace: str, out: Collector) -> None:
    """Every secret the App declares comes from exactly one backend of the environment (sealed values,
    an external store, or sops for Flux), with every key."""
    sealed = settings.get("sealedSecrets") or YMap(settings.span)
    external = (settings.get("externalSecrets") or {}).get("secrets") or YMap(settings.span)
    sops = settings.get("sopsSecrets") or YMap(settings.span)
    declared_keys = {secret["name"]: list(secret["keys"]) for secret in settings.get("secrets") or ()}
    provided: dict[str, set[str] | None] = {}
    backend_of: dict[str, str] = {}
    for backend, entries in zip(BACKENDS, (sealed, external, sops), strict=True):
        for secret_name in entries:
            if secret_name in backend_of:
                out.error(
                    Code.SECRET_NOT_PROVIDED,
                    f"{backend}.{secret_name}: the secret also comes from {backend_of[secret_name]}",
                    entries.key_span(secret_name),
                    "provide each secret from one backend",
                )
            backend_of[secret_name] = backend
    for secret_name, entry in sealed.items():
        if entry.get("file") is not None:
            keys = _check_sealed_file(project, secret_name, entry, namespace, out)
        else:
            keys = set(entry["encryptedData"])
            _check_inherited_sealing(
                project, env, secret_name, entry, sealed.key_span(secret_name), namespace, out
            )
        provided[secret_name] = keys
    for secret_name, entry in external.items():
        if secret_name not in declared_keys:
            out.error(
                Code.REFERENCE,
                f"externalSecrets.secrets.{secret_name}: the App declares no such secret",
                external.key_span(secret_name),
                "declare it under the App's secrets, with its keys",
            )
            continue
        properties = entry.get("properties") or {}
        for key in properties:
            if key not in declared_keys[secret_name]:
                out.error(
                    Code.REFERENCE,
                    f"externalSecrets.secrets.{secret_name}.properties: '{key}' is not a key the App "
                    "declares",
                    properties.key_span(key),
                    "its keys: " + ", ".join(declared_keys[secret_name]),
                )
        provided[secret_name] = set(declared_keys[secret_name])
    for secret_name, entry in sops.items():
        provided[secret_name] = _check_sops_file(project, secret_name, entry, namespace, out)
    if sops and _gitops_tool(project) != "flux":
        out.error(
            Code.SECRET_OBJECT,
            "sopsSecrets: only Flux decrypts sops-encrypted Secrets",
            settings.key_span("sopsSecrets"),
            "Argo CD would apply the ciphertext as the value (or refuse the file); use sealedSecrets or "
            "externalSecrets with Argo CD",
        )
    declared = set(declared_keys)
    for index, secret in enumerate(settings.get("secrets") or ()):
        where = settings["secrets"].item_span(index)
        name = secret["name"]
        if name not in provided:
            # At sealedSecrets when the environment has some, else at the environment file's spec.
            env_doc = project.environments[env].doc
            span = (
                settings.key_span("sealedSecrets")
                if "sealedSecrets" in settings
                else env_doc.key_span("spec")
                if "spec" in env_doc
                else env_doc.span
            )
            close = difflib.get_close_matches(name, [n for n in provided if n not in declared], n=1)
            hint = (
                f"{backend_of[close[0]]} has '{close[0]}': did you mean '{name}'?"
                if close
                else f"add sealedSecrets: {{{name}: {{file: secrets/{env}/{name}.yaml}}}} (made with kubeseal), or take it "
                "from a store with externalSecrets"
            )
            out.error(
                Code.SECRET_NOT_PROVIDED,
                f"secret '{name}' is not provided by environment '{env}'",
                span,
                hint,
            )
            continue
        if provided[name] is None:
            continue  # the sealed file itself is broken; that is reported already
        missing = [k for k in secret["keys"] if k not in provided[name]]
        if missing:
            backend = backend_of[name]
            span = (sealed if backend == "sealedSecrets" else sops).key_span(name)
            out.error(
                Code.SECRET_NOT_PROVIDED,
                f"{'sealed' if backend == 'sealedSecrets' else 'sops'} secret '{name}' lacks "
                f"key(s) {', '.join(missing)}",
                span,
                f"the App declares these keys at {where.path}:{where.line}; "
                + (
                    "seal them with kubeseal"
                    if backend == "sealedSecrets"
                    else "add them and encrypt with sops"
                ),
            )


def _check_inherited_sealing(
    project: Project, env: str, name: str, entry: YMap, where: Span, namespace: str, out: Collector
) -> None:
    """Inline ciphertext inherited through extends was sealed for the environment that wrote it: in
    another namespace only cluster-wide sealing unseals (a preview extending dev, say)."""
    writer = next(
        (other for other, spec_file in project.environments.items() if spec_file.rel == where.path), None
    )
    if writer is None or writer == env or entry.get("scope", "strict") == "cluster-wide":
        return
    theirs = project.environments[writer].spec.get("namespace") or names.instance(project.name, writer)
    if theirs != namespace:
        out.error(
            Code.SEALED_SECRET_MISMATCH,
            f"sealedSecrets.{name}: inherited from environment '{writer}', sealed for its "
            f"namespace '{theirs}'; environment '{env}' deploys to '{namespace}', where it cannot be unsealed",
            where,
            f"seal this environment's values for '{namespace}' (kubeseal --namespace {namespace}), seal them with "
            f"--scope cluster-wide, or take them from a store with externalSecrets; `{name}: null` drops the inherited one",
        )


def _check_sops_file(
    project: Project, name: str, entry: YMap, namespace: str, out: Collector
) -> set[str] | None:
    """A sops-encrypted Secret manifest for this name and namespace, with every value encrypted."""
    rel = entry["file"]
    where = entry.value_span("file")
    docs = _objects(project, rel, where, out)
    if not docs:
        return None
    if len(docs) != 1 or docs[0].get("kind") != "Secret" or docs[0].get("apiVersion") != "v1":
        out.error(
            Code.SEALED_SECRET_MISMATCH,
            f"'{rel}' is not one Secret (v1) encrypted with sops",
            where,
            f"write it with: sops --encrypt --encrypted-regex '^(data|stringData)$' secret.yaml > {rel}",
        )
        return None
    obj = docs[0]
    problem = sops_problem(obj)
    if problem:
        out.error(
            Code.PLAINTEXT_SECRET,
            f"'{rel}': {problem}",
            obj.key_span("sops") if "sops" in obj else obj.span,
            f"encrypt it: sops --encrypt --encrypted-regex '^(data|stringData)$' --in-place {rel}",
        )
        return None
    metadata = obj.get("metadata") if isinstance(obj.get("metadata"), YMap) else YMap(obj.span)
    if metadata.get("name") != name:
        out.error(
            Code.SEALED_SECRET_MISMATCH,
            f"'{rel}' is the Secret '{metadata.get('name')}', not '{name}'",
            metadata.value_span("name") if "name" in metadata else obj.span,
            f"set metadata.name: {name}",
        )
    if metadata.get("namespace") not in (None, namespace):
        out.error(
            Code.SEALED_SECRET_MISMATCH,
            f"'{rel}' names the namespace '{metadata['namespace']}', but this environment "
            f"deploys to '{namespace}'",
            metadata.value_span("namespace"),
            "remove metadata.namespace: the overlay sets it",
        )
    return secret_keys(obj)


def _check_sealed_file(
    project: Project, name: str, entry: YMap, namespace: str, out: Collector
) -> set[str] | None:
    rel = entry["file"]
    where = entry.value_span("file")
    if entry.get("scope") is not None:
        out.error(
            Code.SEALED_SECRET_MISMATCH,
            f"sealedSecrets.{name}: scope comes from the file's annotations",
            entry.key_span("scope"),
            "remove scope, or use encryptedData",
        )
    docs = _objects(project, rel, where, out)
    if not docs:
        return None
    if len(docs) != 1:
        out.error(
            Code.SEALED_SECRET_MISMATCH,
            f"'{rel}' holds {len(docs)} objects; one SealedSecret per file",
            where,
        )
        return None
    obj = docs[0]
    if obj.get("kind") == "Secret":
        out.error(
            Code.SECRET_OBJECT,
            f"'{rel}' is a plain Secret: its values are only base64-encoded",
            obj.value_span("kind"),
            f"seal it with: kubeseal -o yaml < secret.yaml > {rel} (and never commit the Secret)",
        )
        return None
    if obj.get("apiVersion") != SEALED_SECRET_API or obj.get("kind") != "SealedSecret":
        wrong = "kind" if obj.get("kind") != "SealedSecret" else "apiVersion"
        out.error(
            Code.SEALED_SECRET_MISMATCH,
            f"'{rel}' is not a SealedSecret ({SEALED_SECRET_API})",
            obj.value_span(wrong) if wrong in obj else obj.span,
            "write it with: kubeseal -o yaml < secret.yaml",
        )
        return None
    if not _sealed_shape(rel, obj, out):
        return None
    metadata, body = obj["metadata"], obj["spec"]
    scope = sealed_scope(obj)
    if metadata["name"] != name:
        # Whatever the scope, the Secret it unseals to takes this name, and the pods read `name`.
        how = f"reseal with --name {name}" if scope != "cluster-wide" else f"set metadata.name: {name}"
        out.error(
            Code.SEALED_SECRET_MISMATCH,
            f"'{rel}' is sealed for the name '{metadata['name']}', not '{name}'",
            metadata.value_span("name"),
            f"{scope} sealed secrets unseal to a Secret of their own name; {how}",
        )
    if scope != "cluster-wide" and metadata.get("namespace") != namespace:
        out.error(
            Code.SEALED_SECRET_MISMATCH,
            f"'{rel}' is sealed for the namespace '{metadata.get('namespace')}', but this environment deploys to '{namespace}'",
            metadata.value_span("namespace") if "namespace" in metadata else metadata.key_span("name"),
            f"reseal it with: kubeseal --namespace {namespace} -o yaml < secret.yaml",
        )
    template_meta = (body.get("template") or {}).get("metadata")
    if isinstance(template_meta, YMap):
        for key, expected in (("name", name), ("namespace", namespace)):
            if scope == "strict" and template_meta.get(key) not in (None, expected):
                out.error(
                    Code.SEALED_SECRET_MISMATCH,
                    f"'{rel}': spec.template.metadata.{key} is '{template_meta[key]}', not '{expected}'",
                    template_meta.value_span(key),
                    f"reseal it for {key} '{expected}'",
                )
    return set(body["encryptedData"])


# What a SealedSecret file must look like for kompile to pass it on: (path, type, required).
_SEALED_FIELDS = (
    (("metadata",), dict, True),
    (("metadata", "name"), str, True),
    (("metadata", "namespace"), str, False),
    (("metadata", "labels"), "strings", False),
    (("metadata", "annotations"), "strings", False),
    (("spec",), dict, True),
    (("spec", "encryptedData"), "strings", True),
    (("spec", "template"), dict, False),
    (("spec", "template", "type"), str, False),
    (("spec", "template", "metadata"), dict, False),
    (("spec", "template", "metadata", "name"), str, False),
    (("spec", "template", "metadata", "namespace"), str, False),
    (("spec", "template", "metadata", "labels"), "strings", False),
    (("spec", "template", "metadata", "annotations"), "strings", False),
    (("spec", "template", "data"), "strings", False),
)
_SHAPES = {dict: "a mapping", str: "a string", "strings": "a mapping of strings"}


def _sealed_shape(rel: str, obj: YMap, out: Collector) -> bool:
    """The fields kompile reads or passes on, with the types kubeseal writes."""
    problems = len(out.items)
    check_fields(
        obj,
        _SEALED_FIELDS,
        Code.SEALED_SECRET_MISMATCH,
        out,
        missing_hint="write it with: kubeseal -o yaml < secret.yaml",
        wrong_hint="kubeseal -o yaml writes it; reseal rather than editing by hand",
    )
    data = (obj.get("spec") or {}).get("encryptedData") if isinstance(obj.get("spec"), dict) else None
    if isinstance(data, YMap) and not data:
        out.error(
            Code.SEALED_SECRET_MISMATCH,
            f"'{rel}': spec.encryptedData is empty",
            obj["spec"].value_span("encryptedData"),
            "write it with: kubeseal -o yaml < secret.yaml",
        )
    return len(out.items) == problems


def check_fields(obj: YMap, fields, code: Code, out: Collector, missing_hint: str, wrong_hint: str) -> None:
    """Type-check the fields at the given paths, each (path, type, required); a field under a parent that is
    absent or wrong is skipped (the parent is reported)."""
    rel = obj.span.path
    for path, kind, required in fields:
        parent = obj
        for key in path[:-1]:
            parent = parent.get(key) if isinstance(parent, YMap) else None
        if not isinstance(parent, YMap):
            continue
        key = path[-1]
        value = parent.get(key)
        dotted = ".".join(path)
        if value is None:
            if required:
                out.error(
                    code,
                    f"'{rel}' has no {dotted}",
                    parent.key_span(key) if key in parent else parent.span,
                    missing_hint,
                )
            continue
        if kind == "strings" and isinstance(value, YMap):
            for item_key, item in value.items():
                if not isinstance(item, str):
                    out.error(
                        code,
                        f"'{rel}': {dotted}.{item_key} must be a string, found {describe(item)}",
                        value.value_span(item_key),
                        wrong_hint
                        if item is None or isinstance(item, dict | list)
                        else f'quote it: {item_key}: "{item}"',
                    )
        elif not isinstance(value, YMap if kind == "strings" else kind):
            out.error(
                code,
                f"'{rel}': {dotted} must be {_SHAPES[kind]}, found {describe(value)}",
                parent.value_span(key),
                wrong_hint,
            )


def sealed_scope(obj: dict) -> str:
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    for scope, annotation in SCOPE_ANNOTATIONS.items():
        if str(annotations.get(annotation, "")).lower() == "true":
            return scope
    return "strict"


def _check_production(settings: YMap, env: str, out: Collector) -> None:
    """The rules of tier: production. Messages name the environment: the setting they point at may be
    inherited from the App or an extended environment."""
    why = f"(environment '{env}' is tier: production)"
    image = settings["image"]
    if not image.get("digest"):
        out.error(
            Code.PROD_DIGEST,
            f"image is not pinned by digest {why}",
            settings.value_span("image"),
            IMAGE_FIELDS_HINT,
        )
    for field_name in ("sidecars", "initContainers"):
        for helper in settings.get(field_name) or ():
            if (
                isinstance(helper, YMap)
                and not helper.get("appImage")
                and "@" not in str(helper.get("image", ""))
            ):
                out.error(
                    Code.PROD_DIGEST,
                    f"{field_name}.{helper.get('name')}.image is not pinned by digest {why}",
                    helper.value_span("image"),
                    "add @sha256:<digest> (an environment may set it: "
                    f"{field_name}: {{{helper.get('name')}: {{image: ...@sha256:...}}}})",
                )
    components = settings["components"]
    for name, component in components.items():
        autoscaling = component.get("autoscaling")
        if isinstance(autoscaling, YMap) and autoscaling.get("minReplicas") == 0:
            out.error(
                Code.AUTOSCALING_BOUNDS,
                f"components.{name}.autoscaling: production never scales to zero {why}",
                autoscaling.value_span("minReplicas"),
                "the first task after a quiet spell would wait for a pod to "
                "start; set minReplicas: 1 or more",
            )
        if component["type"] == "web":
            autoscaling = component.get("autoscaling")
            count = autoscaling["minReplicas"] if autoscaling else component.get("replicas", 1)
            if count < 2:
                where = (
                    autoscaling.value_span("minReplicas")
                    if autoscaling
                    else component.value_span("replicas")
                    if "replicas" in component
                    else components.key_span(name)
                )
                out.error(
                    Code.PROD_REPLICAS,
                    f"components.{name}: a web component runs at least 2 pods, found {count} {why}",
                    where,
                    "one pod means downtime on every node drain and rollout; set replicas: 2 or autoscaling.minReplicas: 2",
                )
        _check_stated_resources(f"components.{name}", component, components.key_span(name), why, out)
    # migrate may keep kompile's defaults (a Job that ends; the canonical example relies on it).
    for field_name in ("sidecars", "initContainers"):
        for helper in settings.get(field_name) or ():
            if isinstance(helper, YMap):
                _check_stated_resources(f"{field_name}.{helper.get('name')}", helper, helper.span, why, out)


def _check_stated_resources(where: str, body: YMap, fallback: Span, why: str, out: Collector) -> None:
    resources = body.get("resources") or {}
    for part in ("requests", "limits"):
        given = resources.get(part) or {}
        missing = [r for r in ("cpu", "memory") if r not in given]
        if missing:
            span = resources.value_span(part) if part in resources else fallback
            out.error(
                Code.PROD_RESOURCES,
                f"{where}.resources.{part}: {' and '.join(missing)} not set {why}",
                span,
                "production pods state what they need and the most they may use",
            )


IN_CLUSTER = "in-cluster"
# Ways of writing the cluster Argo CD and Flux run in. (Argo CD itself knows only the first two: the
# others are not clusters it has, but they name the same one.)
_IN_CLUSTER = {
    "in-cluster",
    "https://kubernetes.default.svc",
    "https://kubernetes.default.svc.cluster.local",
    "https://kubernetes.default",
    "https://kubernetes",
}


def cluster_identity(cluster: str | None, tool: str | None = None) -> str:
    """One spelling per cluster: host in lower case, no default port, no trailing slash, the in-cluster
    aliases as one. Two environments may share a namespace only on clusters that differ by this. Flux
    reaches a remote cluster through a kubeconfig Secret named after its host: clusters that share that
    Secret are one cluster to Flux."""
    if not cluster:
        return IN_CLUSTER
    if tool == "flux" and cluster.strip().lower() not in _IN_CLUSTER:
        return f"flux-kubeconfig:{names.kubeconfig_secret(cluster)}"
    text = cluster.strip()
    if text.lower().startswith("https://"):
        rest = text[len("https://") :]
        host, _, path = rest.partition("/")
        host = host.lower().removesuffix(":443").rstrip(".")
        path = path.rstrip("/")
        text = f"https://{host}" + (f"/{path}" if path else "")
    return IN_CLUSTER if text.lower() in _IN_CLUSTER else text


def _check_namespaces(project: Project, resolved: list[Resolved], out: Collector) -> None:
    seen: dict[tuple[str, str], str] = {}
    spelled: dict[
        str, tuple[str, str]
    ] = {}  # cluster identity -> (how it was first written, by which environment)
    gitops = project.app.spec.get("gitops")
    tool = gitops.get("tool") if isinstance(gitops, YMap) else None
    for env in resolved:
        if env.name == "gitops":
            out.error(
                Code.INVALID_NAME,
                "the environment name 'gitops' is kompile's: the GitOps root object is "
                f"'{project.name}-gitops'",
                project.environments[env.name].doc["metadata"].value_span("name"),
                "choose another name for this environment (rename its file too)",
            )
        written = str(env.settings.get("cluster") or "")
        identity = cluster_identity(written, tool)
        first = spelled.setdefault(identity, (written, env.name))
        if written and first[0] and written != first[0] and identity != IN_CLUSTER:
            if tool == "flux" and cluster_identity(written) != cluster_identity(first[0]):
                # Two addresses, one Secret name: Flux would deploy both environments to one cluster.
                out.error(
                    Code.NAMESPACE_CLASH,
                    f"cluster {written} and {first[0]} (environment '{first[1]}') share Flux's "
                    f"kubeconfig Secret '{names.kubeconfig_secret(written)}'",
                    env.settings.value_span("cluster"),
                    "Flux names the Secret after the host name: write one cluster the same way everywhere, and "
                    "give different clusters host names that differ in more than punctuation or port",
                )
            else:
                same = (
                    "Flux reaches both through one kubeconfig Secret"
                    if tool == "flux"
                    else "Argo CD matches cluster addresses as written, so two spellings are two clusters to it"
                )
                out.error(
                    Code.NAMESPACE_CLASH,
                    f"cluster {written} is written as {first[0]} by environment '{first[1]}'",
                    env.settings.value_span("cluster"),
                    f"write each cluster the same way everywhere: {same}",
                )
        key = (identity, env.namespace)
        if key in seen:
            explicit = "namespace" in env.settings.value_spans
            # A namespace nobody wrote is <app>-<environment>: point at the name it comes from.
            where = (
                env.settings.value_span("namespace")
                if explicit
                else project.environments[env.name].doc["metadata"].value_span("name")
            )
            on = "" if identity == IN_CLUSTER and not written else f" on {written or identity}"
            out.error(
                Code.NAMESPACE_CLASH,
                f"environments '{seen[key]}' and '{env.name}' both deploy to namespace '{env.namespace}'"
                + on
                + ("" if explicit else f" ('{env.name}' by default)"),
                where,
                "each environment needs a namespace of its own; one would prune the other's objects",
            )
        else:
            seen[key] = env.name
    if any(env.settings.get("pullRequests") for env in resolved):
        # A pull request's preview is the Application <app>-pr-<number> in the namespace of that name.
        for env in resolved:
            if not env.settings.get("pullRequests") and (
                names.is_preview(project.name, env.namespace)
                or names.is_preview(project.name, names.instance(project.name, env.name))
            ):
                explicit = "namespace" in env.settings.value_spans and names.is_preview(
                    project.name, env.namespace
                )
                out.error(
                    Code.NAMESPACE_CLASH,
                    f"environment '{env.name}' takes the name of a pull request's preview "
                    f"('{env.namespace if explicit else names.instance(project.name, env.name)}')",
                    env.settings.value_span("namespace")
                    if explicit
                    else project.environments[env.name].doc["metadata"].value_span("name"),
                    "previews are <app>-pr-<number>, Application and namespace; name this environment otherwise",
                )
