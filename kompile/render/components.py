"""One renderer per component type, found through an explicit table."""

from __future__ import annotations

from collections.abc import Callable

from kompile.k8s import networkpolicy, pod, scaling, service, workloads
from kompile.model import Component, ComponentType
from kompile.render.context import Context, probe_host
from kompile.render.shared import component_policy

# Probe timings. Exec probes start a process (celery inspect ping takes a second or more), so they run rarely.
HTTP_PROBES = {
    "startupProbe": {"failureThreshold": 60, "periodSeconds": 5, "timeoutSeconds": 5},
    "readinessProbe": {"failureThreshold": 3, "periodSeconds": 10, "timeoutSeconds": 5},
    "livenessProbe": {"failureThreshold": 3, "periodSeconds": 20, "timeoutSeconds": 5},
}
EXEC_PROBES = {
    "startupProbe": {"failureThreshold": 30, "periodSeconds": 10, "timeoutSeconds": 30},
    "readinessProbe": {"failureThreshold": 3, "periodSeconds": 30, "timeoutSeconds": 30},
    "livenessProbe": {"failureThreshold": 3, "periodSeconds": 60, "timeoutSeconds": 30},
}
PRE_STOP = {"preStop": {"sleep": {"seconds": 5}}}


def probes(ctx: Context, component: Component) -> dict:
    check = component.probe
    if check.http_path is not None:
        http: dict = {"path": check.http_path, "port": "http" if check.port == component.port else check.port}
        host = probe_host(ctx.env, component)
        if host:
            http["httpHeaders"] = [{"name": "Host", "value": host}]
        return {kind: {"httpGet": dict(http), **timing} for kind, timing in HTTP_PROBES.items()}
    return {kind: {"exec": {"command": list(check.command)}, **timing} for kind, timing in EXEC_PROBES.items()}


def _workload(ctx: Context, component: Component, *, spread: bool, recreate: bool, lifecycle: dict | None) -> list[dict]:
    volumes, mounts = ctx.secret_volumes()
    ports = [{"containerPort": component.port, "name": "http", "protocol": "TCP"}] if component.port else None
    container = pod.container(
        component.name, ctx.env.image_name, ctx.identity, command=component.command, args=component.args, ports=ports,
        env_from=ctx.env_from(), volume_mounts=mounts, probes=probes(ctx, component), lifecycle=lifecycle,
        resources=pod.resources(component.resources.requests, component.resources.limits))
    selector = ctx.selector(component.name)
    template = pod.pod_template(ctx.workload_labels(component.name), ctx.pod_annotations, ctx.identity, [container],
                                volumes=volumes, grace_seconds=component.termination_grace_seconds,
                                spread=pod.topology_spread(selector) if spread else None)
    replicas = None if component.autoscaling else component.replicas
    name = ctx.name(component.name)
    objects = [workloads.deployment(name, ctx.workload_labels(component.name), selector, template, replicas=replicas, recreate=recreate)]
    if component.autoscaling:
        a = component.autoscaling
        objects.append(scaling.horizontal_pod_autoscaler(name, ctx.labels(component.name), name, min_replicas=a.min_replicas,
                                                         max_replicas=a.max_replicas, cpu=a.cpu, memory=a.memory))
    if component.pods_at_least >= 2 and not recreate:
        objects.append(scaling.pod_disruption_budget(name, ctx.labels(component.name), selector))
    return objects


def render_web(ctx: Context, component: Component) -> list[dict]:
    objects = _workload(ctx, component, spread=True, recreate=False, lifecycle=PRE_STOP)
    name = ctx.name(component.name)
    objects.append(service.service(name, ctx.labels(component.name), ctx.selector(component.name), component.port))
    ingress = ctx.env.ingress
    if ingress and ingress.component == component.name:
        objects.append(service.ingress(name, ctx.labels(component.name), ingress.annotations, class_name=ingress.class_name,
                                       host=ingress.host, path=ingress.path, tls_secret=ingress.tls_secret, service=name))
    peers = [networkpolicy.namespace_peer(p.namespace, p.pod_selector) for p in ctx.env.network.ingress_from]
    allowed = [{"from": peers, "ports": networkpolicy.ports([(component.port, "TCP")])}] if peers else []
    objects.append(component_policy(ctx, component.name, allowed))
    return objects


def render_worker(ctx: Context, component: Component) -> list[dict]:
    objects = _workload(ctx, component, spread=True, recreate=False, lifecycle=None)
    objects.append(component_policy(ctx, component.name))
    return objects


def render_scheduler(ctx: Context, component: Component) -> list[dict]:
    # celery beat: one process ever, so the old pod stops before the new one starts.
    objects = _workload(ctx, component, spread=False, recreate=True, lifecycle=None)
    objects.append(component_policy(ctx, component.name))
    return objects


RENDERERS: dict[ComponentType, Callable[[Context, Component], list[dict]]] = {
    ComponentType.WEB: render_web,
    ComponentType.WORKER: render_worker,
    ComponentType.SCHEDULER: render_scheduler,
}
