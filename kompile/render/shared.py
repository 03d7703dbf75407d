"""Objects every environment has whatever its components: namespace, identity, config, secrets,
network baseline, the migration Job and RBAC."""

from __future__ import annotations

from kompile.k8s import core, networkpolicy, pod, rbac, workloads
from kompile.model import Account
from kompile.render.containers import helper_containers, pod_secrets
from kompile.render.context import Context
from kompile.render.network import component_policy


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


def render_migrate(ctx: Context) -> list[dict]:
    migrate = ctx.env.migrate
    if migrate is None:
        return []
    volumes, mounts = ctx.secret_volumes(migrate.secrets)
    container = pod.container(
        "migrate",
        ctx.env.image_name,
        ctx.identity,
        command=migrate.command,
        env_from=ctx.env_from(migrate.secrets),
        volume_mounts=mounts,
        resources=pod.resources(migrate.resources.requests, migrate.resources.limits),
    )
    helpers, helper_volumes = helper_containers(
        ctx.identity, migrate.sidecars, migrate.init_containers, ctx.env.image_name
    )
    template = pod.pod_template(
        ctx.pod_labels("migrate", ctx.env.accounts[0]),
        ctx.pod_annotations(pod_secrets(migrate.secrets, (*migrate.sidecars, *migrate.init_containers))),
        ctx.identity,
        [container],
        volumes=[*volumes, *helper_volumes],
        restart_policy="Never",
        init_containers=helpers,
    )
    job = workloads.job(
        ctx.name("migrate"),
        ctx.workload_labels("migrate"),
        {},
        template,
        backoff_limit=migrate.backoff_limit,
        deadline_seconds=migrate.timeout_seconds,
    )
    return [job, component_policy(ctx, "migrate")]


def render_secrets(ctx: Context) -> list[dict]:
    """The secrets of the other backends: ExternalSecrets, and sops-encrypted Secrets that Flux decrypts."""
    objects = []
    for obj in (*ctx.env.external_secrets, *ctx.env.sops_secrets):
        obj = {**obj, "metadata": dict(obj["metadata"])}
        obj["metadata"]["labels"] = {**ctx.labels(), **(obj["metadata"].get("labels") or {})}
        objects.append(obj)
    return objects
