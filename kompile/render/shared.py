"""Objects every environment has whatever its components: namespace, identity, config, secrets,
network baseline, the migration Job and RBAC."""

from __future__ import annotations

from kompile.k8s import core, networkpolicy, pod, rbac, workloads
from kompile.model import Account
from kompile.render.containers import helper_containers
from kompile.render.context import Context


def render_namespace(ctx: Context) -> list[dict]:
    if not ctx.env.namespace:
        return []
    return [core.namespace(ctx.env.namespace, ctx.labels())]


def render_identity(ctx: Context, account: Account) -> list[dict]:
    """A ServiceAccount (the app's, or a component's with an identity or API access of its own) and the
    Role its rules make."""
    labels = ctx.labels(account.component)
    objects = [core.service_account(account.name, labels, account.annotations)]
    if account.rules:
        objects.append(rbac.role(account.name, labels, list(account.rules)))
        objects.append(rbac.role_binding(account.name, labels, account.name, ctx.env.namespace))
    return objects


def render_config(ctx: Context) -> list[dict]:
    return [core.config_map(ctx.config_name, ctx.labels(), ctx.env.env)]


def render_sealed_secrets(ctx: Context) -> list[dict]:
    objects = []
    for sealed in ctx.env.sealed_secrets:
        obj = {**sealed, "metadata": dict(sealed["metadata"])}
        obj["metadata"]["labels"] = {**ctx.labels(), **(sealed["metadata"].get("labels") or {})}
        objects.append(obj)
    return objects


def render_default_deny(ctx: Context) -> list[dict]:
    return [networkpolicy.default_deny(ctx.name("default-deny"), ctx.labels())]


def egress_rules(ctx: Context) -> list[dict]:
    rules = []
    for rule in ctx.env.network.egress:
        if rule.cidr:
            peer = networkpolicy.cidr_peer(rule.cidr, rule.excepted)
        else:
            peer = networkpolicy.namespace_peer(rule.namespace, rule.pod_selector)
        rules.append({"ports": networkpolicy.ports((p.port, p.protocol) for p in rule.ports), "to": [peer]})
    return rules


def component_policy(ctx: Context, component: str, ingress: list[dict] | None = None) -> dict:
    return networkpolicy.component_policy(ctx.name(component), ctx.labels(component), ctx.selector(component),
                                          ingress=ingress or [], egress=egress_rules(ctx))


def render_migrate(ctx: Context) -> list[dict]:
    migrate = ctx.env.migrate
    if migrate is None:
        return []
    volumes, mounts = ctx.secret_volumes()
    container = pod.container(
        "migrate", ctx.env.image_name, ctx.identity, command=migrate.command, env_from=ctx.env_from(),
        volume_mounts=mounts, resources=pod.resources(migrate.resources.requests, migrate.resources.limits))
    template = pod.pod_template(ctx.pod_labels("migrate", ctx.env.accounts[0]), ctx.pod_annotations, ctx.identity,
                                [container], volumes=volumes, restart_policy="Never",
                                init_containers=helper_containers(ctx.identity, migrate.sidecars, migrate.init_containers))
    job = workloads.job(ctx.name("migrate"), ctx.workload_labels("migrate"), {}, template,
                        backoff_limit=migrate.backoff_limit, deadline_seconds=migrate.timeout_seconds)
    return [job, component_policy(ctx, "migrate")]
