"""One renderer per component type, found through an explicit table."""

from __future__ import annotations

from collections.abc import Callable

from kompile.k8s import keda, pod, scaling, service, workloads
from kompile.model import Component, ComponentType
from kompile.render.containers import helper_containers, pod_secrets
from kompile.render.context import Context, probe_host
from kompile.render.monitoring import render_metrics
from kompile.render.network import component_policy
from kompile.render.probes import container_probes
from kompile.render.traffic import render_ingress

PRE_STOP = {"preStop": {"sleep": {"seconds": 5}}}


def _template(
    ctx: Context,
    component: Component,
    *,
    spread: bool,
    lifecycle: dict | None,
    restart_policy: str | None = None,
) -> dict:
    identity = ctx.pod_identity(component.account)
    volumes, mounts = ctx.secret_volumes(component.secrets)
    ports = [{"containerPort": component.port, "name": "http", "protocol": "TCP"}] if component.port else []
    if component.metrics:
        ports.append({"containerPort": component.metrics.port, "name": "metrics", "protocol": "TCP"})
    probes = container_probes(
        component.probes, named_port=component.port, host=probe_host(ctx.env, component)
    )
    container = pod.container(
        component.name,
        ctx.env.image_name,
        identity,
        command=component.command,
        args=component.args,
        ports=ports,
        env_from=ctx.env_from(component.secrets),
        volume_mounts=mounts,
        probes=probes,
        lifecycle=lifecycle,
        resources=pod.resources(component.resources.requests, component.resources.limits),
    )
    annotations = ctx.pod_annotations(
        pod_secrets(component.secrets, (*component.sidecars, *component.init_containers))
    )
    helpers, helper_volumes = helper_containers(
        identity, component.sidecars, component.init_containers, ctx.env.image_name
    )
    scheduling = component.scheduling
    if scheduling and scheduling.pod_annotations:
        annotations = {**scheduling.pod_annotations, **annotations}  # kompile's hashes are kompile's
    return pod.pod_template(
        ctx.pod_labels(component.name, component.account),
        annotations,
        identity,
        [container],
        volumes=[*volumes, *helper_volumes],
        grace_seconds=component.termination_grace_seconds,
        restart_policy=restart_policy,
        spread=pod.topology_spread(ctx.selector(component.name)) if spread else None,
        init_containers=helpers,
        node_selector=scheduling.node_selector if scheduling else None,
        priority_class=scheduling.priority_class if scheduling else None,
        tolerations=list(scheduling.tolerations) if scheduling else None,
    )


def _workload(
    ctx: Context, component: Component, *, spread: bool, recreate: bool, lifecycle: dict | None
) -> list[dict]:
    selector = ctx.selector(component.name)
    template = _template(ctx, component, spread=spread, lifecycle=lifecycle)
    replicas = None if component.autoscaling else component.replicas
    name = ctx.name(component.name)
    objects = [
        workloads.deployment(
            name,
            ctx.workload_labels(component.name),
            selector,
            template,
            replicas=replicas,
            recreate=recreate,
        )
    ]
    scale = component.autoscaling
    if scale and scale.queue:
        # KEDA owns the replica count through an HPA of its own: never a second HPA beside it.
        queue = scale.queue
        if queue.secret:
            objects.append(
                keda.trigger_authentication(name, ctx.labels(component.name), queue.secret, queue.keys)
            )
        objects.append(
            keda.scaled_object(
                name,
                ctx.labels(component.name),
                name,
                min_replicas=scale.min_replicas,
                max_replicas=scale.max_replicas,
                broker=queue.broker,
                queue=queue.name,
                length=queue.length,
                authentication=name if queue.secret else None,
            )
        )
    elif scale:
        objects.append(
            scaling.horizontal_pod_autoscaler(
                name,
                ctx.labels(component.name),
                name,
                min_replicas=scale.min_replicas,
                max_replicas=scale.max_replicas,
                cpu=scale.cpu,
                memory=scale.memory,
            )
        )
    if component.pods_at_least >= 2 and not recreate:
        objects.append(scaling.pod_disruption_budget(name, ctx.labels(component.name), selector))
    return objects


def render_web(ctx: Context, component: Component) -> list[dict]:
    objects = _workload(ctx, component, spread=True, recreate=False, lifecycle=PRE_STOP)
    objects.append(
        service.service(
            ctx.name(component.name), ctx.labels(component.name), ctx.selector(component.name), component.port
        )
    )
    objects += render_ingress(ctx, component.name)
    objects += render_metrics(ctx, component)
    objects.append(component_policy(ctx, component.name, component))
    return objects


def render_worker(ctx: Context, component: Component) -> list[dict]:
    objects = _workload(ctx, component, spread=True, recreate=False, lifecycle=None)
    objects += render_metrics(ctx, component)
    objects.append(component_policy(ctx, component.name, component))
    return objects


def render_scheduler(ctx: Context, component: Component) -> list[dict]:
    # celery beat: one process ever, so the old pod stops before the new one starts.
    objects = _workload(ctx, component, spread=False, recreate=True, lifecycle=None)
    objects += render_metrics(ctx, component)
    objects.append(component_policy(ctx, component.name, component))
    return objects


def render_cron(ctx: Context, component: Component) -> list[dict]:
    template = _template(ctx, component, spread=False, lifecycle=None, restart_policy="Never")
    cron = workloads.cron_job(
        ctx.name(component.name),
        ctx.workload_labels(component.name),
        template,
        schedule=component.schedule,
        time_zone=component.time_zone,
        deadline_seconds=component.timeout_seconds,
        suspend=component.suspend,
    )
    return [cron, component_policy(ctx, component.name, component)]


RENDERERS: dict[ComponentType, Callable[[Context, Component], list[dict]]] = {
    ComponentType.WEB: render_web,
    ComponentType.WORKER: render_worker,
    ComponentType.SCHEDULER: render_scheduler,
    ComponentType.CRON: render_cron,
}
