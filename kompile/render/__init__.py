"""Environment -> the Kubernetes objects it runs (kompile's own model of them, not via kustomize).

render_environment(env) is exactly what `kubectl kustomize overlays/<env>` builds from the output;
the tests hold the two equal. For the shared base (env.name is None) it is what bases/<app>/ holds."""

from __future__ import annotations

from kompile.errors import Code, Diagnostic, KompileError, Span
from kompile.k8s import kinds
from kompile.k8s.meta import file_name
from kompile.k8s.strategic import as_kustomize_reads
from kompile.model import Environment, GitOpsTool
from kompile.render.components import RENDERERS
from kompile.render.context import build_context
from kompile.render.deployed import (
    check_deployed,
    check_secret_references,
    environment_labels,
    image_change,
    transform_for_environment,
)
from kompile.render.ids import object_id, object_id_problem
from kompile.render.network import acme_solver_policy, host_policies
from kompile.render.patches import ValueBudget, apply_patches, extra_objects
from kompile.render.shared import (
    render_config,
    render_default_deny,
    render_identity,
    render_migrate,
    render_namespace,
    render_sealed_secrets,
    render_secrets,
)
from kompile.render.traffic import render_certificate, render_route

__all__ = [
    "environment_labels",
    "image_change",
    "object_id",
    "object_id_problem",
    "render_environment",
    "render_stages",
]
from kompile.safefs import MAX_NAME_BYTES

# Argo CD applies a wave, waits until it is healthy, then starts the next: identity, config, secrets
# and network policies first; then the migration Job (a Sync hook); then what runs the new release.
# Each kind's wave is in the kinds table.
ARGOCD_WAVE = "argocd.argoproj.io/sync-wave"
ARGOCD_HOOK = {
    # Sync, not PreSync: on a first install a PreSync Job would run before its Secret exists.
    "argocd.argoproj.io/hook": "Sync",
    "argocd.argoproj.io/hook-delete-policy": "BeforeHookCreation",
}
FLUX_FORCE = {"kustomize.toolkit.fluxcd.io/force": "enabled"}  # a Job's template is immutable: recreate it


def render_environment(env: Environment, base_ids: frozenset = frozenset()) -> list[dict]:
    """The objects of an environment as deployed (for the base: as bases/<app>/ holds them)."""
    return render_stages(env, base_ids)[1]


def render_stages(env: Environment, base_ids: frozenset = frozenset()) -> tuple[list[dict], list[dict]]:
    """(the objects as the overlay's patches see them, the objects as deployed).

    The first stage is what kompile builds, user patches applied: no namespace, only the App's image
    name, no instance label. The second is what the overlay's transformers (namespace, labels, images)
    make of it. They share what the transformers leave alone, so keeping both costs little. The second
    stage is what the cluster receives, and every object of it goes through the policy gate."""
    ctx = build_context(env)
    objects: list[dict] = []
    origins: dict[tuple, Span] = {}  # object -> the setting, patch or manifest its problems point at
    budget = ValueBudget()

    def add(rendered: list[dict], where: Span | None) -> None:
        budget.take(rendered, where, "this setting")
        for obj in rendered:
            is_policy = obj["kind"] == "NetworkPolicy" and "network" in env.setting_spans
            origins[object_id(obj)] = env.span_of("network") if is_policy else where
        objects.extend(rendered)

    add(render_namespace(ctx), env.where)
    for account in env.accounts:
        add(
            render_identity(ctx, account),
            env.span_of(f"components.{account.component}" if account.component else "identity"),
        )
    add(render_config(ctx), env.span_of("env"))
    add(render_sealed_secrets(ctx), env.span_of("sealedSecrets"))
    add(
        render_secrets(ctx),
        env.span_of("externalSecrets") if env.external_secrets else env.span_of("sopsSecrets"),
    )
    add(render_default_deny(ctx), env.where)
    add(host_policies(ctx), env.span_of("network"))
    add(acme_solver_policy(ctx), env.span_of("ingress"))
    for component in env.components:
        add(RENDERERS[component.type](ctx, component), env.span_of(f"components.{component.name}"))
    add(render_route(ctx), env.span_of("ingress"))
    add(render_certificate(ctx), env.span_of("ingress"))
    add(render_migrate(ctx), env.span_of("migrate"))
    if env.gitops is not None:
        _annotate_for_gitops(objects, env.gitops.tool)
    generated = {object_id(obj) for obj in objects}
    for obj, where in extra_objects(env, objects):
        budget.take([obj], where, "this extra resource")
        objects.append(obj)
        origins[object_id(obj)] = where
    patched: set[tuple] = set()
    objects = [
        as_kustomize_reads(obj) for obj in apply_patches(objects, env.patches, origins, patched, budget)
    ]
    # What kompile wrote and no patch changed: its delegating kinds (a TriggerAuthentication, an
    # ExternalSecret) are kompile's own shape, not a spec author's.
    own = frozenset(generated - patched)
    if env.name is None:
        return objects, objects
    # kustomize's name references point a binding's subjects at the ServiceAccounts of the build, matching
    # the namespace their files state: none for the base's (base_ids), the environment's for the overlay's
    # own, which the overlay writes as deployed.
    accounts = {
        obj["metadata"]["name"]: None if object_id(obj) in base_ids else env.namespace
        for obj in objects
        if obj["kind"] == "ServiceAccount"
    }
    deployed = [transform_for_environment(obj, env, accounts) for obj in objects]
    check_file_names(env, deployed, origins)
    check_secret_references(env, deployed, origins)
    check_deployed(env, deployed, origins, own)
    return objects, deployed


def check_file_names(env: Environment, objects: list[dict], origins: dict[tuple, Span]) -> None:
    """Each object gets a file of its own: a name no file system folds into another's (case, API groups) and
    that fits in one path component."""
    seen: dict[str, dict] = {}
    problems = []
    for obj in objects:
        name = file_name(obj)
        where = origins.get(object_id(obj)) or env.where or Span(env.sources[-1])
        what = f"{obj['kind']}/{obj['metadata']['name']}"
        if "/" in name or name.startswith(".") or len(name.encode()) > MAX_NAME_BYTES:
            problems.append(
                Diagnostic(
                    Code.EXTRA_RESOURCE,
                    f"{what} cannot be written to a file of its own: '{name[:80]}' is "
                    f"not one file name of at most {MAX_NAME_BYTES} bytes",
                    where,
                    "shorten its name",
                )
            )
            continue
        other = seen.setdefault(name.lower(), obj)
        if other is not obj:
            problems.append(
                Diagnostic(
                    Code.EXTRA_RESOURCE,
                    f"{what} ({obj['apiVersion']}) and {other['kind']}/{other['metadata']['name']} "
                    f"({other['apiVersion']}) would be written to the same file, {name.lower()}",
                    where,
                    "rename one of them: file names do not tell API groups or upper and lower case apart",
                )
            )
    if problems:
        raise KompileError(problems)


def _annotate_for_gitops(objects: list[dict], tool: GitOpsTool) -> None:
    for obj in objects:
        kind = obj["kind"]
        added: dict[str, str] = {}
        row = kinds.lookup(obj["apiVersion"], kind)
        if tool is GitOpsTool.ARGOCD and row is not None and row.wave is not None:
            added[ARGOCD_WAVE] = row.wave
            if kind == "Job":
                added.update(ARGOCD_HOOK)
        elif tool is GitOpsTool.FLUX and kind == "Job":
            added.update(FLUX_FORCE)
        if added:
            metadata = obj["metadata"]
            metadata["annotations"] = dict(sorted({**metadata.get("annotations", {}), **added}.items()))
