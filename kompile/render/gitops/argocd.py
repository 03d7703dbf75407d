"""Argo CD: an AppProject that allows exactly what kompile deploys, one Application per environment
(or one ApplicationSet), and a root Application that syncs them all (app of apps)."""

from __future__ import annotations

import json
import re
import secrets

from kompile import names
from kompile.errors import Code, Diagnostic, KompileError, Span
from kompile.k8s import meta
from kompile.k8s.kinds import KINDS
from kompile.model import Environment, Hydration

API = "argoproj.io/v1alpha1"
IN_CLUSTER = "https://kubernetes.default.svc"
SYNC_POLICY = {
    "automated": {"prune": True, "selfHeal": True},
    # The overlay brings its own Namespace, so no CreateNamespace. Server-side apply handles large
    # objects and fields other controllers own; pruning last keeps old objects until the new ones are healthy.
    "syncOptions": ["ServerSideApply=true", "PruneLast=true"],
    "retry": {"backoff": {"duration": "10s", "factor": 2, "maxDuration": "5m"}, "limit": 5},
}


def _labels(app: str) -> dict[str, str]:
    # No app.kubernetes.io/instance: Argo CD's own tracking label on these is the root application's.
    return meta.labels(app)


def destination(env: Environment) -> dict[str, str]:
    cluster = env.cluster or IN_CLUSTER
    key = "server" if cluster.startswith("https://") else "name"
    return {key: cluster, "namespace": env.namespace}


def _spec(base: Environment, path: str, dest: dict) -> dict:
    """An Application's spec that syncs a folder of this repository at the followed revision."""
    gitops = base.gitops
    return _spec_with(
        base, {"source": {"path": path, "repoURL": gitops.repo_url, "targetRevision": gitops.ref}}, dest
    )


def _spec_with(base: Environment, source: dict, dest: dict) -> dict:
    return {
        "destination": dest,
        "project": base.app,
        "revisionHistoryLimit": 10,
        **source,
        "syncPolicy": SYNC_POLICY,
    }


def source_fields(base: Environment, env: str) -> dict[str, str]:
    """What differs between environments in where an Application reads from, by hydration mode (an
    ApplicationSet's list elements carry these; its template reads them back as parameters)."""
    gitops = base.gitops
    if gitops.hydration is Hydration.RENDERED:
        return {"path": gitops.source_path(f"{names.RENDERED}/{env}")}
    if gitops.hydration is Hydration.BRANCHES:
        return {"revision": f"refs/heads/{gitops.sync_branch(env)}"}
    if gitops.hydration is Hydration.ARGOCD:
        fields = {"path": gitops.source_path(f"overlays/{env}"), "syncBranch": gitops.sync_branch(env)}
        if gitops.promoter:
            fields["hydrateBranch"] = gitops.hydrate_branch(env)
        return fields
    return {"path": gitops.source_path(f"overlays/{env}")}


def source_spec(base: Environment, fields: dict[str, str]) -> dict:
    """The Application's source (or sourceHydrator) from source_fields (values, or template actions)."""
    gitops = base.gitops
    folder = names.hydrated_folder(base.app, base.gitops.path)
    if gitops.hydration is Hydration.BRANCHES:
        return {"source": {"path": folder, "repoURL": gitops.repo_url, "targetRevision": fields["revision"]}}
    if gitops.hydration is Hydration.ARGOCD:
        hydrator: dict = {
            "drySource": {"path": fields["path"], "repoURL": gitops.repo_url, "targetRevision": gitops.ref},
            "syncSource": {"path": folder, "targetBranch": fields["syncBranch"]},
        }
        if "hydrateBranch" in fields:
            hydrator["hydrateTo"] = {"targetBranch": fields["hydrateBranch"]}
        return {"sourceHydrator": hydrator}
    return {"source": {"path": fields["path"], "repoURL": gitops.repo_url, "targetRevision": gitops.ref}}


def _annotations(base: Environment, overlay: bool = True) -> dict[str, str]:
    """What keeps a monorepo fast in Argo CD: the repo-server regenerates an environment's manifests
    only when a commit touches its overlay or the shared base (not on every commit to the repo), and
    diffs are computed by the API server (ServerSideDiff), as the sync applies them. Rendered or
    hydrated manifests depend on nothing outside their own folder."""
    overlay = overlay and base.gitops.hydration in (Hydration.NONE, Hydration.ARGOCD)
    paths = f".;/{base.gitops.source_path(f'bases/{base.app}')}" if overlay else "."
    return {
        "argocd.argoproj.io/compare-options": "ServerSideDiff=true",
        "argocd.argoproj.io/manifest-generate-paths": paths,
    }


def go_template_literal(text: str) -> str:
    """Text an ApplicationSet's Go template prints as written: `{{` cannot start an action."""
    return text.replace("{{", '{{ "{{" }}')


# kompile's own template actions are marked with a token no spec can contain (it is new in every run),
# so every other string of a template, whatever part of the spec it came from, is escaped as text.
_TOKEN = secrets.token_hex(16)
_MARKED = re.compile(rf"<{_TOKEN}:([A-Za-z_]+)>")


def action(parameter: str) -> str:
    """A generator parameter, filled in by the ApplicationSet controller."""
    return f"<{_TOKEN}:{parameter}>"


def as_template(node):
    """A template whose only actions are kompile's own."""
    if isinstance(node, str):
        return _MARKED.sub(lambda m: "{{." + m.group(1) + "}}", go_template_literal(node))
    if isinstance(node, dict):
        return {key: as_template(value) for key, value in node.items()}
    if isinstance(node, list):
        return [as_template(value) for value in node]
    return node


def application(base: Environment, env: Environment) -> dict:
    metadata = {
        "name": env.instance,
        "namespace": base.gitops.namespace,
        "annotations": _annotations(base),
        "labels": _labels(base.app),
    }
    return {
        "apiVersion": API,
        "kind": "Application",
        "metadata": metadata,
        "spec": _spec_with(base, source_spec(base, source_fields(base, env.name)), destination(env)),
    }


def application_set(base: Environment, envs: list[Environment]) -> dict:
    keys = {next(iter(destination(e))) for e in envs}
    if len(keys) > 1:
        raise KompileError(
            [
                Diagnostic(
                    Code.INVALID_VALUE,
                    "gitops.argocd.applicationSet: every environment's cluster must be "
                    "given the same way, all as API server URLs or all as cluster names",
                    Span(base.sources[0]),
                    "write each spec.cluster as https://... or each as a cluster name",
                )
            ]
        )
    key = keys.pop() if keys else "server"
    elements = [
        {"env": e.name, "namespace": e.namespace, **source_fields(base, e.name), key: destination(e)[key]}
        for e in envs
    ]
    fields = {field: action(field) for field in source_fields(base, "")}
    template = {
        "metadata": {
            "name": names.instance(base.app, action("env")),
            "annotations": _annotations(base),
            "labels": _labels(base.app),
        },
        "spec": _spec_with(
            base, source_spec(base, fields), {key: action(key), "namespace": action("namespace")}
        ),
    }
    return {
        "apiVersion": API,
        "kind": "ApplicationSet",
        "metadata": {"name": base.app, "namespace": base.gitops.namespace, "labels": _labels(base.app)},
        "spec": {
            "generators": [{"list": {"elements": elements}}],
            "goTemplate": True,
            "goTemplateOptions": ["missingkey=error"],
            "template": as_template(template),
        },
    }


PLACEHOLDERS = {
    "{number}": action("number"),
    "{head_sha}": action("head_sha"),
    "{head_short_sha}": action("head_short_sha"),
}


def preview_namespace(base: Environment, pattern: str | None = None) -> str:
    return names.preview(base.app, action("number") if pattern is None else pattern)


def _filled(text: str) -> str:
    """A spec's {number}-style placeholders as the pull-request generator's parameters."""
    for placeholder, parameter in PLACEHOLDERS.items():
        text = text.replace(placeholder, parameter)
    return text


def _json_patch(target: dict, ops: list[dict]) -> dict:
    # Argo CD takes a patch as text; JSON is YAML, and keeps the template's {{ }} inside strings.
    return {"patch": json.dumps(ops, sort_keys=True), "target": target}


def preview_application_set(base: Environment, env: Environment) -> dict:
    """One preview of env per open pull request: its own namespace, the pull request's image and host,
    deleted with everything in it when the pull request closes (the Application's resources finalizer;
    the overlay's Namespace is one of its resources). The project is fixed, never taken from the pull
    request."""
    pr = env.pull_requests
    host = _filled(pr.host)
    patches = []
    ingress = env.ingress
    if ingress is not None and ingress.gateway is None:
        for component in ingress.routed:
            patches.append(
                _json_patch(
                    {"kind": "Ingress", "name": names.component(base.app, component)},
                    [
                        {"op": "replace", "path": "/spec/rules/0/host", "value": host},
                        {"op": "replace", "path": "/spec/tls/0/hosts", "value": [host]},
                    ],
                )
            )
        if ingress.certificate is not None:
            patches.append(
                _json_patch(
                    {"kind": "Certificate", "name": ingress.tls_secret},
                    [{"op": "replace", "path": "/spec/dnsNames", "value": [host]}],
                )
            )
    elif ingress is not None:
        patches.append(
            _json_patch(
                {"kind": "HTTPRoute", "name": base.app},
                [{"op": "replace", "path": "/spec/hostnames", "value": [host]}],
            )
        )
    if ingress is not None:
        # The template's own host stays allowed: the probes send it.
        allowed = ",".join(
            [host, *([env.env["DJANGO_ALLOWED_HOSTS"]] if env.env.get("DJANGO_ALLOWED_HOSTS") else [])]
        )
        patches.append(
            _json_patch(
                {"kind": "ConfigMap", "name": names.config_map(base.app)},
                [{"op": "add", "path": "/data/DJANGO_ALLOWED_HOSTS", "value": allowed}],
            )
        )
    namespace = preview_namespace(base)
    for account in env.accounts:
        if account.rules:  # a subject's namespace is written out; kustomize's namespace does not change it
            patches.append(
                _json_patch(
                    {"kind": "RoleBinding", "name": account.name},
                    [{"op": "replace", "path": "/subjects/0/namespace", "value": namespace}],
                )
            )
    dest = destination(env)
    key = next(iter(dest))
    spec = _spec(
        base, base.gitops.source_path(f"overlays/{env.name}"), {key: dest[key], "namespace": namespace}
    )
    image = f"{env.image_name}={env.image.repository}:{_filled(pr.image_tag)}"  # name=new-name:tag, as kustomize edit takes it
    spec["source"]["kustomize"] = {"images": [image], "namespace": namespace, "patches": patches}
    generator = {"pullRequest": {pr.provider: pr.settings, "requeueAfterSeconds": pr.requeue_after_seconds}}
    return {
        "apiVersion": API,
        "kind": "ApplicationSet",
        "metadata": {
            "name": f"{env.instance}s",
            "namespace": base.gitops.namespace,
            "labels": _labels(base.app),
        },
        "spec": {
            "generators": [generator],
            "goTemplate": True,
            "goTemplateOptions": ["missingkey=error"],
            "template": as_template(
                {
                    "metadata": {
                        "name": names.preview(base.app, action("number")),
                        "annotations": _annotations(base),
                        "labels": _labels(base.app),
                    },
                    "spec": spec,
                }
            ),
        },
    }


def app_project(base: Environment, envs: list[Environment], deployed: set[tuple[str, str]]) -> dict:
    """Least privilege: this repo, these destinations, and only the kinds deployed. Those are kompile's own
    and, for extra resources, the ones the App's allowKinds lists (validate refuses others), so a pull
    request cannot widen the allow-list without saying so in the App."""
    kinds = sorted(deployed)

    def namespaced(group: str, kind: str) -> bool:
        row = KINDS.get((group, kind))
        return row.namespaced if row is not None else base.declared_kinds.get((group, kind), True)

    cluster = [{"group": g, "kind": k} for g, k in kinds if not namespaced(g, k)]
    namespaced_kinds = [{"group": g, "kind": k} for g, k in kinds if namespaced(g, k)]
    # A preview template deploys to one namespace per pull request, <app>-pr-<number>.
    destinations = sorted(
        (
            {**destination(e), "namespace": preview_namespace(base, "*")}
            if e.pull_requests
            else destination(e)
            for e in envs
        ),
        key=lambda d: (d.get("server", ""), d.get("name", ""), d["namespace"]),
    )
    return {
        "apiVersion": API,
        "kind": "AppProject",
        "metadata": {"name": base.app, "namespace": base.gitops.namespace, "labels": _labels(base.app)},
        "spec": {
            "clusterResourceWhitelist": cluster,
            "description": f"{base.app}: compiled by kompile from environments/",
            "destinations": destinations,
            "namespaceResourceWhitelist": namespaced_kinds,
            "sourceRepos": [base.gitops.repo_url],
        },
    }


def root_application(base: Environment) -> dict:
    """What `kubectl apply -f gitops/argocd/bootstrap.yaml` creates: it syncs gitops/argocd/."""
    gitops = base.gitops
    spec = _spec(
        base, gitops.source_path("gitops/argocd"), {"server": IN_CLUSTER, "namespace": gitops.namespace}
    )
    spec["project"] = "default"  # the app's own AppProject is one of the objects it creates
    return {
        "apiVersion": API,
        "kind": "Application",
        "metadata": {
            "name": names.gitops_root(base.app),
            "annotations": _annotations(base, overlay=False),
            "namespace": gitops.namespace,
            "labels": _labels(base.app),
        },
        "spec": spec,
    }


def render_argocd(
    base: Environment, envs: list[Environment], kinds: set[tuple[str, str]]
) -> tuple[list[dict], list[dict]]:
    """The objects the root syncs that describe every environment (the AppProject, and the
    ApplicationSet when the environments share one), and the bootstrap. Each environment's own objects
    come from argocd_objects."""
    shared = [app_project(base, envs, kinds)]
    deployed = [env for env in envs if not env.pull_requests]
    if base.gitops.application_set and deployed:
        shared.append(application_set(base, deployed))
    return shared, [root_application(base)]


def argocd_objects(base: Environment, env: Environment) -> list[dict]:
    """What the root syncs for this environment alone: its Application (unless an ApplicationSet lists
    it), or its preview ApplicationSet."""
    if env.pull_requests:
        return [preview_application_set(base, env)]
    return [] if base.gitops.application_set else [application(base, env)]
