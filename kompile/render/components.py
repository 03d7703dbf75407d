"""One renderer per component type, found through an explicit table."""

from __future__ import annotations

from collections.abc import Callable

from kompile.k8s import keda, networkpolicy, pod, scaling, service, workloads
from kompile.model import Component, ComponentType
from kompile.render.containers import helper_containers
from kompile.render.context import Context, probe_host
from kompile.render.probes import container_probes
from kompile.render.shared import component_policy

PRE_STOP = {"preStop": {"sleep": {"seconds": 5}}}


def _template(ctx: Context, component: Component, *, spread: bool, lifecycle: dict | None,
              restart_policy: str | None = None) -> dict:
    identity = ctx.pod_identity(component.account)
    volumes, mounts = ctx.secret_volumes()
    ports = [{"containerPort": component.port, "name": "http", "protocol": "TCP"}] if component.port else None
    probes = container_probes(component.probes, named_port=component.port, host=probe_host(ctx.env, component))
    container = pod.container(
        component.name, ctx.env.image_name, identity, command=component.command, args=component.args, ports=ports,
        env_from=ctx.env_from(), volume_mounts=mounts, probes=probes, lifecycle=lifecycle,
        resources=pod.resources(component.resources.requests, component.resources.limits))
    return pod.pod_template(ctx.pod_labels(component.name, component.account), ctx.pod_annotations, identity, [container],
                            volumes=volumes, grace_seconds=component.termination_grace_seconds,
                            restart_policy=restart_policy,
                            spread=pod.topology_spread(ctx.selector(component.name)) if spread else None,
                            init_containers=helper_containers(identity, component.sidecars, component.init_containers))


def _workload(ctx: Context, component: Component, *, spread: bool, recreate: bool, lifecycle: dict | None) -> list[dict]:
    selector = ctx.selector(component.name)
    template = _template(ctx, component, spread=spread, lifecycle=lifecycle)
    replicas = None if component.autoscaling else component.replicas
    name = ctx.name(component.name)
    objects = [workloads.deployment(name, ctx.workload_labels(component.name), selector, template, replicas=replicas, recreate=recreate)]
    scale = component.autoscaling
    if scale and scale.queue:
        # KEDA owns the replica count through an HPA of its own: never a second HPA beside it.
        queue = scale.queue
        if queue.secret:
            objects.append(keda.trigger_authentication(name, ctx.labels(component.name), queue.secret, queue.keys))
        objects.append(keda.scaled_object(name, ctx.labels(component.name), name, min_replicas=scale.min_replicas,
                                          max_replicas=scale.max_replicas, broker=queue.broker, queue=queue.name,
                                          length=queue.length, authentication=name if queue.secret else None))
    elif scale:
        objects.append(scaling.horizontal_pod_autoscaler(name, ctx.labels(component.name), name, min_replicas=scale.min_replicas,
                                                         max_replicas=scale.max_replicas, cpu=scale.cpu, memory=scale.memory))
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


def render_cron(ctx: Context, component: Component) -> list[dict]:
    template = _template(ctx, component, spread=False, lifecycle=None, restart_policy="Never")
    cron = workloads.cron_job(ctx.name(component.name), ctx.workload_labels(component.name), template,
                              schedule=component.schedule, time_zone=component.time_zone,
                              deadline_seconds=component.timeout_seconds, suspend=component.suspend)
    return [cron, component_policy(ctx, component.name)]


RENDERERS: dict[ComponentType, Callable[[Context, Component], list[dict]]] = {
    ComponentType.WEB: render_web,
    ComponentType.WORKER: render_worker,
    ComponentType.SCHEDULER: render_scheduler,
    ComponentType.CRON: render_cron,
}
