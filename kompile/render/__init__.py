"""Environment -> the Kubernetes objects it runs (kompile's own model of them, not via kustomize).

render_environment(env) is exactly what `kubectl kustomize overlays/<env>` builds from the output;
the tests hold the two equal. For the shared base (env.name is None) it is what bases/<app>/ holds.
"""

from __future__ import annotations

import copy

import jsonpatch

from kompile.errors import Code, Diagnostic, KompileError, Span
from kompile.hardening import check_object, plaintext_findings
from kompile.k8s import meta
from kompile.k8s.strategic import PatchError, apply_patch, as_kustomize_reads
from kompile.k8s.transformers import (
    NO_PODS,
    pod_spec,
    with_labels,
    with_namespace,
    with_object_images,
    with_subject_namespaces,
)
from kompile.model import Environment, GitOpsTool, Patch
from kompile.render.components import RENDERERS
from kompile.render.context import build_context
from kompile.render.shared import (
    render_config,
    render_default_deny,
    render_identity,
    render_migrate,
    render_namespace,
    render_sealed_secrets,
)

# Argo CD applies a wave, waits until it is healthy, then starts the next: identity, config, secrets
# and network policies first; then the migration Job (a Sync hook); then what runs the new release.
ARGOCD_WAVES = {
    "Namespace": "-1", "ServiceAccount": "-1", "Role": "-1", "RoleBinding": "-1", "ConfigMap": "-1",
    "SealedSecret": "-1", "NetworkPolicy": "-1",
    "Job": "0",
    "Deployment": "1", "Service": "1", "Ingress": "1", "HorizontalPodAutoscaler": "1", "PodDisruptionBudget": "1",
}
ARGOCD_WAVE = "argocd.argoproj.io/sync-wave"
ARGOCD_HOOK = {
    # Sync, not PreSync: on a first install a PreSync Job would run before its Secret exists.
    "argocd.argoproj.io/hook": "Sync",
    "argocd.argoproj.io/hook-delete-policy": "BeforeHookCreation",
}
FLUX_FORCE = {"kustomize.toolkit.fluxcd.io/force": "enabled"}  # a Job's template is immutable: recreate it

def object_id_problem(obj) -> str | None:
    """Why obj is not an object kustomize can place (None when it is)."""
    if not isinstance(obj, dict) or not isinstance(obj.get("apiVersion"), str) or not isinstance(obj.get("kind"), str):
        return "no apiVersion or kind"
    metadata = obj.get("metadata")
    if not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str) or not metadata["name"]:
        return "no metadata.name"
    return None


def object_id(obj: dict) -> tuple[str, str, str]:
    """(group, kind, name): unique within one environment's namespace."""
    group = obj["apiVersion"].rpartition("/")[0]
    return group, obj["kind"], obj["metadata"]["name"]


def render_environment(env: Environment) -> list[dict]:
    """The objects of an environment as deployed (for the base: as bases/<app>/ holds them)."""
    return render_stages(env)[1]


def render_stages(env: Environment) -> tuple[list[dict], list[dict]]:
    """(the objects as the overlay's patches see them, the objects as deployed).

    The first stage is what kompile builds, user patches applied: no namespace, only the App's image
    name, no instance label. The second is what the overlay's transformers (namespace, labels, images)
    make of it. They share what the transformers leave alone, so keeping both costs little."""
    ctx = build_context(env)
    objects = [
        *render_namespace(ctx),
        *render_identity(ctx),
        *render_config(ctx),
        *render_sealed_secrets(ctx),
        *render_default_deny(ctx),
    ]
    for component in env.components:
        objects.extend(RENDERERS[component.type](ctx, component))
    objects.extend(render_migrate(ctx))
    if env.gitops is not None:
        _annotate_for_gitops(objects, env.gitops.tool)
    objects.extend(_extra_objects(env, objects))
    touched: dict[tuple, Span] = {}
    objects = [as_kustomize_reads(obj) for obj in _apply_patches(objects, env.patches, touched)]
    if env.name is None:
        return objects, objects
    # No object has a namespace yet, as in the base's files. (An overlay's own ServiceAccount is written
    # with its namespace; kustomize then leaves subjects that say "default" alone. Only that case, a
    # subject naming it in the wrong namespace on purpose, is not modelled.)
    accounts = {obj["metadata"]["name"]: None for obj in objects if obj["kind"] == "ServiceAccount"}
    deployed = [transform_for_environment(obj, env, accounts) for obj in objects]
    check_secret_references(env, deployed)
    check_what_the_spec_wrote(env, deployed, touched)
    return objects, deployed


def _annotate_for_gitops(objects: list[dict], tool: GitOpsTool) -> None:
    for obj in objects:
        kind = obj["kind"]
        added: dict[str, str] = {}
        if tool is GitOpsTool.ARGOCD and kind in ARGOCD_WAVES:
            added[ARGOCD_WAVE] = ARGOCD_WAVES[kind]
            if kind == "Job":
                added.update(ARGOCD_HOOK)
        elif tool is GitOpsTool.FLUX and kind == "Job":
            added.update(FLUX_FORCE)
        if added:
            metadata = obj["metadata"]
            metadata["annotations"] = dict(sorted({**metadata.get("annotations", {}), **added}.items()))


def _extra_objects(env: Environment, generated: list[dict]) -> list[dict]:
    taken = {object_id(obj) for obj in generated}
    extra = []
    for item in env.extra_objects:
        obj = copy.deepcopy(item.body)
        obj["metadata"].pop("namespace", None)  # it lands in the environment's namespace, as kustomize would put it
        if object_id(obj) in taken:
            _, kind, name = object_id(obj)
            raise KompileError([Diagnostic(Code.EXTRA_RESOURCE, f"extra resource {kind}/{name} has the name of an object kompile "
                                           "generates", item.where, "change the generated object with spec.patches instead")])
        taken.add(object_id(obj))
        extra.append(obj)
    return extra


def _apply_patches(objects: list[dict], patches: tuple[Patch, ...], touched: dict[tuple, Span]) -> list[dict]:
    """objects with the user's patches applied; touched records, per object, the last patch that changed it."""
    for patch in patches:
        target = patch.target or {
            "kind": patch.body.get("kind"),
            "name": (patch.body.get("metadata") or {}).get("name"),
        }
        matched = False
        for index, obj in enumerate(objects):
            if not _matches(obj, target):
                continue
            matched = True
            try:
                if isinstance(patch.body, list):
                    patched = jsonpatch.apply_patch(obj, patch.body)
                else:
                    patched = apply_patch(obj, _patch_body(patch))
            except (PatchError, jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
                raise KompileError([Diagnostic(Code.PATCH, f"patch does not apply to {obj['kind']}/{obj['metadata']['name']}: {exc}",
                                               patch.where)]) from None
            if object_id_problem(patched) or object_id(patched) != object_id(obj):
                raise KompileError([Diagnostic(Code.PATCH, f"patch changes what {obj['kind']}/{obj['metadata']['name']} is "
                                               f"({object_id_problem(patched) or 'its kind, API group or name'})", patch.where,
                                               "a patch changes an object's contents; add another object with extraResources")])
            objects[index] = patched
            touched[object_id(patched)] = patch.where
        if not matched:
            what = "/".join(str(target.get(k)) for k in ("kind", "name") if target.get(k))
            raise KompileError([Diagnostic(Code.PATCH, f"patch matches no object ({what})", patch.where,
                                           "`kompile render ENV` lists the objects and their names")])
    return objects


def _patch_body(patch: Patch) -> dict:
    """With an explicit target, the patch's own identity is not applied (it may name several objects)."""
    if not patch.target:
        return patch.body
    body = {k: v for k, v in patch.body.items() if k not in ("apiVersion", "kind")}
    if isinstance(body.get("metadata"), dict):
        body["metadata"] = {k: v for k, v in body["metadata"].items() if k not in ("name", "namespace")}
    return body


def _matches(obj: dict, target: dict) -> bool:
    group, _, version = obj["apiVersion"].rpartition("/")
    checks = {"kind": obj["kind"], "name": obj["metadata"]["name"], "group": group, "version": version}
    return all(target.get(key) in (None, value) for key, value in checks.items())


# ---------------------------------------------------------------------------------------------
# What the overlay's kustomization transformers do (namespace, labels, images), done in the model.


def transform_for_environment(obj: dict, env: Environment, service_accounts: dict[str, str | None]) -> dict:
    """obj as the overlay's transformers leave it: in the environment's namespace (as are the subjects
    kustomize points there), with the environment's labels, running the environment's image."""
    obj = with_namespace(obj, env.namespace)
    obj = with_labels(obj, environment_labels(env), include_templates=True)
    obj = with_object_images(obj, env.image_name, *image_change(env))
    return as_kustomize_reads(with_subject_namespaces(obj, env.namespace, service_accounts))


def image_change(env: Environment) -> tuple[str | None, str | None, str | None]:
    """(newName, newTag, digest) of the overlay's images entry for env.image_name."""
    new_name = env.image.repository if env.image.repository != env.image_name else None
    return new_name, env.image.tag, env.image.digest


def environment_labels(env: Environment) -> dict[str, str]:
    """What the overlay's labels transformer adds to every object of an environment."""
    return {meta.INSTANCE: env.instance}


def check_what_the_spec_wrote(env: Environment, objects: list[dict], touched: dict[tuple, Span]) -> None:
    """kompile's own objects are hardened and secret-free by construction; patches and extra resources
    are what a spec author writes, so those objects are checked against kompile/hardening.py. A finding
    is an error unless the spec opts out of its rule (security.allow, with a reason)."""
    written = {object_id(item.body): item.where for item in env.extra_objects if not object_id_problem(item.body)}
    problems = []
    for obj in objects:
        where = touched.get(object_id(obj)) or written.get(object_id(obj))
        if where is None:
            continue
        name = f"{obj['kind']}/{obj['metadata']['name']}"
        for path, what in plaintext_findings(obj):
            problems.append(Diagnostic(Code.PLAINTEXT_SECRET, f"{name}: {path} holds {what} in plain text", where,
                                       "declare it under the App's secrets and seal its value with kubeseal"))
        for finding in check_object(obj, api_access=bool(env.rbac_rules)):
            if not any(allowance.covers(finding.rule, finding.object) for allowance in env.security.allow):
                problems.append(Diagnostic(
                    Code.HARDENING, f"{finding.object}: {finding.message} (rule {finding.rule})", where,
                    f"keep the hardening, or opt out visibly: security: {{allow: [{{rule: {finding.rule}, "
                    f"object: {finding.object}, reason: ...}}]}}"))
    if problems:
        raise KompileError(problems)


def check_secret_references(env: Environment, objects: list[dict]) -> None:
    """Every Secret a pod reads must be unsealed (or synced) by an object of the same environment."""
    provided = set()
    for obj in objects:
        if obj["kind"] == "SealedSecret":
            template_meta = ((obj.get("spec") or {}).get("template") or {}).get("metadata") or {}
            provided.add(template_meta.get("name") or obj["metadata"]["name"])
        elif obj["kind"] == "ExternalSecret":
            provided.add(((obj.get("spec") or {}).get("target") or {}).get("name") or obj["metadata"]["name"])
    # An extra resource's problem points at its manifest; a generated object's at the environment's spec.
    written = {object_id(item.body): item.where for item in env.extra_objects if not object_id_problem(item.body)}
    problems = []
    for obj in objects:
        if obj["kind"] in NO_PODS:
            continue
        pod = pod_spec(obj)
        for name in sorted(_pod_secret_names(pod) if pod is not None else _secret_names(obj)):
            if name not in provided:
                problems.append(Diagnostic(
                    Code.SECRET_REFERENCE, f"{obj['kind']}/{obj['metadata']['name']} reads Secret '{name}', which nothing in "
                    f"environment '{env.name}' provides", written.get(object_id(obj)) or env.where or Span(env.sources[-1]),
                    f"add sealedSecrets: {{{name}: ...}} to {env.sources[-1]}, or declare it under the App's secrets"))
    if problems:
        raise KompileError(problems)


def _pod_secret_names(pod: dict) -> set[str]:
    """The Secrets a pod spec reads: envFrom, env valueFrom, secret and projected volumes."""
    found: set[str] = set()

    def add(ref) -> None:
        if isinstance(ref, dict) and isinstance(ref.get("name"), str):
            found.add(ref["name"])

    for key in ("initContainers", "containers", "ephemeralContainers"):
        for container in _items(pod.get(key)):
            for source in _items(container.get("envFrom")):
                add(source.get("secretRef"))
            for variable in _items(container.get("env")):
                value_from = variable.get("valueFrom")
                add(value_from.get("secretKeyRef") if isinstance(value_from, dict) else None)
    for volume in _items(pod.get("volumes")):
        secret = volume.get("secret")
        if isinstance(secret, dict) and isinstance(secret.get("secretName"), str):
            found.add(secret["secretName"])
        projected = volume.get("projected")
        for source in _items(projected.get("sources") if isinstance(projected, dict) else None):
            add(source.get("secret"))
    return found


def _items(value) -> list[dict]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _secret_names(node) -> set[str]:
    """The same, anywhere in an object of a kind kompile does not know (a custom resource with pods)."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("secretRef", "secretKeyRef") and isinstance(value, dict) and isinstance(value.get("name"), str):
                found.add(value["name"])
            elif key == "secret" and isinstance(value, dict) and isinstance(value.get("secretName", value.get("name")), str):
                found.add(value.get("secretName", value.get("name")))  # a volume, or a projected volume's source
            else:
                found |= _secret_names(value)
    elif isinstance(node, list):
        for item in node:
            found |= _secret_names(item)
    return found
