"""Merged, validated settings -> the model: every default applied, every name derived, no YAML left."""

from __future__ import annotations

from kompile.errors import Span
from kompile.load.merge import app_settings
from kompile.load.project import Project
from kompile.model import (
    DEFAULT_BRANCH_PREFIX,
    Allowance,
    Environment,
    ExtraObject,
    GitOps,
    GitOpsTool,
    Hydration,
    Image,
    Patch,
    Security,
    Tier,
)
from kompile.normalise.components import (
    account_of,
    component_of,
    container_of,
    migrate_of,
    node_span,
    secret_of,
)
from kompile.normalise.defaults import DEFAULT_SECURITY
from kompile.normalise.traffic import (
    external_secret_objects,
    ingress_of,
    monitoring_of,
    network_of,
    pull_requests_of,
)
from kompile.source import YMap, plain
from kompile.spec import quantity_text
from kompile.validate.objects import declared_kinds
from kompile.validate.resolved import SCOPE_ANNOTATIONS, Resolved


def normalise_environment(project: Project, resolved: Resolved) -> Environment:
    return _environment(project, resolved.settings, resolved.name, resolved.sources)


def normalise_base(project: Project) -> Environment:
    """The App's settings alone: what every environment shares, compiled into bases/<app>/."""
    return _environment(project, app_settings(project), None, (project.app.rel,))


def _environment(project: Project, settings: YMap, name: str | None, sources: tuple[str, ...]) -> Environment:
    env = {k: str(v) for k, v in sorted((settings.get("env") or {}).items())}
    gunicorn_cmd_args = env.get("GUNICORN_CMD_ARGS", "")
    shared = account_of(project.name, settings.get("identity"), None)
    sidecars = {c["name"]: container_of(c) for c in settings.get("sidecars") or ()}
    init_containers = {c["name"]: container_of(c) for c in settings.get("initContainers") or ()}
    components = tuple(
        component_of(project.name, component_name, body, gunicorn_cmd_args, shared, sidecars, init_containers)
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
        image=Image(
            image.get("repository", ""), image.get("tag"), image.get("digest"), span=node_span(image)
        ),
        image_name=(app_settings(project).get("image") or {}).get("repository", "")
        if name
        else image.get("repository", ""),
        env=env,
        secrets=tuple(secret_of(s) for s in settings.get("secrets") or ()),
        components=components,
        migrate=migrate_of(settings.get("migrate"), sidecars, init_containers),
        network=network_of(settings.get("network") or {}),
        ingress=ingress_of(settings.get("ingress"), components),
        monitoring=monitoring_of(settings.get("monitoring"), components),
        external_secrets=tuple(external_secret_objects(settings, namespace)) if name else (),
        sops_secrets=tuple(
            plain(project.manifests(entry["file"], None)[0])
            for _, entry in sorted((settings.get("sopsSecrets") or {}).items())
        )
        if name
        else (),
        pull_requests=pull_requests_of(settings.get("pullRequests")) if name else None,
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
        span=node_span(body),
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


def normalise_gitops(project: Project) -> GitOps | None:
    """The App's GitOps settings (validate_app first)."""
    return _gitops(project.app.spec.get("gitops"))


def _gitops(body: dict | None) -> GitOps | None:
    if not body:
        return None
    tool = GitOpsTool(body["tool"])
    argocd = body.get("argocd") or {}
    flux = body.get("flux") or {}
    hydration = body.get("hydration") or {}
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
        hydration=Hydration(hydration.get("mode", "none")),
        branch_prefix=hydration.get("branchPrefix", DEFAULT_BRANCH_PREFIX),
        promoter=bool(hydration.get("promoter", True)),
        span=node_span(body),
    )
