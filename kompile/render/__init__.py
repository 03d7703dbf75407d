"""Environment -> the Kubernetes objects it runs (kompile's own model of them, not via kustomize).

render_environment(env) is exactly what `kubectl kustomize overlays/<env>` builds from the output;
the tests hold the two equal. For the shared base (env.name is None) it is what bases/<app>/ holds.
"""

from __future__ import annotations

import copy

import jsonpatch

from kompile import names
from kompile.errors import Code, Diagnostic, KompileError, Span
from kompile.k8s import kinds, meta
from kompile.k8s.meta import file_name
from kompile.k8s.strategic import PatchError, apply_patch, as_kustomize_reads
from kompile.k8s.transformers import with_labels, with_namespace, with_object_images, with_subject_namespaces
from kompile.model import Environment, GitOpsTool, Patch, Tier
from kompile.policy.gate import Scope, check_stream
from kompile.policy.sops import is_sops_encrypted
from kompile.render.components import RENDERERS
from kompile.render.context import build_context
from kompile.render.network import acme_solver_policy, host_policies
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


def object_id_problem(obj) -> str | None:
    """Why obj is not an object kustomize can place (None when it is)."""
    if (
        not isinstance(obj, dict)
        or not isinstance(obj.get("apiVersion"), str)
        or not isinstance(obj.get("kind"), str)
    ):
        return "no apiVersion or kind"
    metadata = obj.get("metadata")
    if not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str) or not metadata["name"]:
        return "no metadata.name"
    return None


def object_id(obj: dict) -> tuple[str, str, str]:
    """(group, kind, name): unique within one environment's namespace."""
    group = obj["apiVersion"].rpartition("/")[0]
    return group, obj["kind"], obj["metadata"]["name"]


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

    def add(rendered: list[dict], where: Span | None) -> None:
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
    for obj, where in _extra_objects(env, objects):
        objects.append(obj)
        origins[object_id(obj)] = where
    patched: set[tuple] = set()
    objects = [as_kustomize_reads(obj) for obj in _apply_patches(objects, env.patches, origins, patched)]
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


def _extra_objects(env: Environment, generated: list[dict]) -> list[tuple[dict, Span]]:
    taken = {object_id(obj) for obj in generated}
    extra = []
    for item in env.extra_objects:
        obj = copy.deepcopy(item.body)
        obj["metadata"].pop(
            "namespace", None
        )  # it lands in the environment's namespace, as kustomize would put it
        if object_id(obj) in taken:
            _, kind, name = object_id(obj)
            raise KompileError(
                [
                    Diagnostic(
                        Code.EXTRA_RESOURCE,
                        f"extra resource {kind}/{name} has the name of an object kompile generates",
                        item.where,
                        "change the generated object with spec.patches instead",
                    )
                ]
            )
        taken.add(object_id(obj))
        extra.append((obj, item.where))
    return extra


def _apply_patches(
    objects: list[dict], patches: tuple[Patch, ...], origins: dict[tuple, Span], patched_ids: set[tuple]
) -> list[dict]:
    """objects with the user's patches applied; origins records, per object, the last patch that changed it,
    and patched_ids every object a patch touched."""
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
            name = f"{obj['kind']}/{obj['metadata']['name']}"
            try:
                if isinstance(patch.body, list):
                    # One operation at a time, each bounded: `copy` can double an object with every operation.
                    patched = obj
                    for operation in patch.body:
                        patched = jsonpatch.apply_patch(patched, [operation])
                        _check_size(patched, name, patch)
                else:
                    patched = apply_patch(obj, _patch_body(patch))
            except (PatchError, jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
                raise KompileError(
                    [Diagnostic(Code.PATCH, f"patch does not apply to {name}: {exc}", patch.where)]
                ) from None
            except RecursionError:
                raise KompileError(
                    [Diagnostic(Code.PATCH, f"patch makes {name} too deep to handle", patch.where)]
                ) from None
            _check_size(patched, name, patch)
            if object_id_problem(patched) or object_id(patched) != object_id(obj):
                raise KompileError(
                    [
                        Diagnostic(
                            Code.PATCH,
                            f"patch changes what {obj['kind']}/{obj['metadata']['name']} is "
                            f"({object_id_problem(patched) or 'its kind, API group or name'})",
                            patch.where,
                            "a patch changes an object's contents; add another object with extraResources",
                        )
                    ]
                )
            problem = shape_problem(patched)
            if problem:
                raise KompileError(
                    [
                        Diagnostic(
                            Code.PATCH,
                            f"patch leaves {name} in a shape kustomize cannot read: {problem}",
                            patch.where,
                            "`kubectl explain` shows the field's type",
                        )
                    ]
                )
            objects[index] = patched
            origins[object_id(patched)] = patch.where
            patched_ids.add(object_id(patched))
        if not matched:
            what = "/".join(str(target.get(k)) for k in ("kind", "name") if target.get(k))
            raise KompileError(
                [
                    Diagnostic(
                        Code.PATCH,
                        f"patch matches no object ({what})",
                        patch.where,
                        "`kompile render ENV` lists the objects and their names",
                    )
                ]
            )
    return objects


MAX_OBJECT_DEPTH = 100  # a spec nests at most 64 levels; JSON patches could stack further, one op at a time
MAX_OBJECT_VALUES = 100_000  # a spec holds at most 50,000 values; JSON `copy` could multiply them


def too_large(value, max_depth: int = MAX_OBJECT_DEPTH, max_values: int = MAX_OBJECT_VALUES) -> str | None:
    """Why value is beyond what any Kubernetes object holds (walked without recursion, stopping early)."""
    stack = [(value, 0)]
    count = 0
    while stack:
        node, depth = stack.pop()
        count += 1
        if depth > max_depth:
            return f"it nests deeper than {max_depth} levels"
        if count > max_values:
            return f"it holds more than {max_values} values"
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        stack.extend((child, depth + 1) for child in children)
    return None


def _check_size(obj: dict, name: str, patch: Patch) -> None:
    problem = too_large(obj)
    if problem:
        raise KompileError(
            [
                Diagnostic(
                    Code.PATCH,
                    f"patch makes {name} too large: {problem}",
                    patch.where,
                    "no Kubernetes object is that large; write the value out",
                )
            ]
        )


def shape_problem(obj: dict) -> str | None:
    """What in an object kustomize's transformers cannot read: metadata, labels and annotations that are not
    mappings of strings, or a pod template's metadata that is not a mapping."""
    metadata = obj.get("metadata")
    for field in ("labels", "annotations"):
        value = metadata.get(field) if isinstance(metadata, dict) else None
        if value is not None and not (
            isinstance(value, dict) and all(isinstance(v, str) for v in value.values())
        ):
            return f"metadata.{field} must be a mapping of strings"
    if (
        isinstance(metadata, dict)
        and metadata.get("namespace") is not None
        and not isinstance(metadata["namespace"], str)
    ):
        return "metadata.namespace must be a string"
    for path in kinds.template_label_paths(obj["apiVersion"], obj["kind"]):
        node = obj
        for key in path:
            if key == []:
                if node is not None and not (
                    isinstance(node, list) and all(isinstance(i, dict) for i in node)
                ):
                    return "spec.volumeClaimTemplates must be a list of mappings"
                break
            node = node.get(key) if isinstance(node, dict) else None
            if node is None:
                break
            if not isinstance(node, dict):
                return f"{'.'.join(path)} must be a mapping"
        else:
            template_meta = node.get("metadata") if isinstance(node, dict) else None
            if template_meta is not None and not isinstance(template_meta, dict):
                return f"{'.'.join(path)}.metadata must be a mapping"
            labels = template_meta.get("labels") if isinstance(template_meta, dict) else None
            if labels is not None and not (
                isinstance(labels, dict) and all(isinstance(v, str) for v in labels.values())
            ):
                return f"{'.'.join(path)}.metadata.labels must be a mapping of strings"
    return None


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


def check_deployed(
    env: Environment, objects: list[dict], origins: dict[tuple, Span], own: frozenset = frozenset()
) -> None:
    """The policy gate on what the cluster receives. A finding is an error, at the setting, patch or
    manifest the object came from, unless the spec opts out of its rule (security.allow, with a reason)."""
    scope = Scope(
        namespace=env.namespace,
        production=env.tier is Tier.PRODUCTION,
        api_accounts=frozenset(a.name for a in env.accounts if a.api_access),
        default_deny=names.default_deny(env.app),
        declared=env.declared_kinds,
        decrypts_sops=env.gitops is not None and env.gitops.tool is GitOpsTool.FLUX,
        own=own,
    )
    problems = []
    for index, finding in check_stream(objects, scope):
        if finding.rule is not None and any(
            a.covers(finding.rule, finding.object) for a in env.security.allow
        ):
            continue
        where = origins.get(object_id(objects[index])) if index >= 0 else None
        where = where or env.where or Span(env.sources[-1])
        if finding.rule is None:
            problems.append(
                Diagnostic(finding.code, f"{finding.object}: {finding.message}", where, finding.hint)
            )
        else:
            problems.append(
                Diagnostic(
                    finding.code,
                    f"{finding.object}: {finding.message} (rule {finding.rule})",
                    where,
                    f"keep the hardening, or opt out visibly: security: {{allow: [{{rule: {finding.rule}, "
                    f"object: {finding.object}, reason: ...}}]}}",
                )
            )
    if problems:
        raise KompileError(problems)


def check_secret_references(env: Environment, objects: list[dict], origins: dict[tuple, Span]) -> None:
    """Every Secret a pod reads must be unsealed (or synced) by an object of the same environment."""
    provided = set()
    for obj in objects:
        if obj["kind"] == "SealedSecret":
            template_meta = ((obj.get("spec") or {}).get("template") or {}).get("metadata") or {}
            provided.add(template_meta.get("name") or obj["metadata"]["name"])
        elif obj["kind"] == "ExternalSecret":
            provided.add(((obj.get("spec") or {}).get("target") or {}).get("name") or obj["metadata"]["name"])
        elif obj["kind"] == "Secret" and is_sops_encrypted(obj):
            provided.add(obj["metadata"]["name"])
    problems = []
    for obj in objects:
        # A ServiceAccount's imagePullSecrets go into every pod that runs as it.
        is_account = obj["kind"] == "ServiceAccount" and obj["apiVersion"] == "v1"
        if kinds.holds_no_pods(obj["apiVersion"], obj["kind"]) and not is_account:
            continue
        read = _secret_names({"imagePullSecrets": obj.get("imagePullSecrets")} if is_account else obj)
        for name in sorted(read):
            if name not in provided:
                problems.append(
                    Diagnostic(
                        Code.SECRET_REFERENCE,
                        f"{obj['kind']}/{obj['metadata']['name']} reads Secret '{name}', which nothing in "
                        f"environment '{env.name}' provides",
                        origins.get(object_id(obj)) or env.where or Span(env.sources[-1]),
                        f"add sealedSecrets: {{{name}: ...}} to {env.sources[-1]}, or declare it under the App's secrets",
                    )
                )
    if problems:
        raise KompileError(problems)


def _secret_names(node) -> set[str]:
    """The Secrets an object's pods read (envFrom, env valueFrom, secret and projected volumes), wherever
    they are in it: built-in workloads and custom resources alike."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            # nodePublishSecretRef (and its siblings): a CSI volume's driver reads the Secret for the pod.
            if (
                key
                in (
                    "secretRef",
                    "secretKeyRef",
                    "nodePublishSecretRef",
                    "nodeStageSecretRef",
                    "controllerPublishSecretRef",
                    "controllerExpandSecretRef",
                    "nodeExpandSecretRef",
                )
                and isinstance(value, dict)
                and isinstance(value.get("name"), str)
            ):
                found.add(value["name"])
            elif key == "imagePullSecrets" and isinstance(
                value, list
            ):  # registry credentials are Secrets too
                found |= {
                    item["name"]
                    for item in value
                    if isinstance(item, dict) and isinstance(item.get("name"), str)
                }
            elif (
                key == "secret"
                and isinstance(value, dict)
                and isinstance(value.get("secretName", value.get("name")), str)
            ):
                found.add(
                    value.get("secretName", value.get("name"))
                )  # a volume, or a projected volume's source
            else:
                found |= _secret_names(value)
    elif isinstance(node, list):
        for item in node:
            found |= _secret_names(item)
    return found
