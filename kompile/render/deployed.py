"""What the overlay's kustomization transformers do (namespace, labels, images), done in the model,
and the checks on what the cluster then receives."""

from __future__ import annotations

from kompile import names
from kompile.errors import Code, Diagnostic, KompileError, Span
from kompile.k8s import kinds, meta
from kompile.k8s.strategic import as_kustomize_reads
from kompile.k8s.transformers import with_labels, with_namespace, with_object_images, with_subject_namespaces
from kompile.model import Environment, GitOpsTool, Tier
from kompile.policy.gate import Scope, check_stream
from kompile.policy.sops import is_sops_encrypted
from kompile.render.ids import object_id


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


_SECRET_REFS = frozenset(
    (
        "secretRef",
        "secretKeyRef",
        # A CSI volume's driver reads the Secret for the pod.
        "nodePublishSecretRef",
        "nodeStageSecretRef",
        "controllerPublishSecretRef",
        "controllerExpandSecretRef",
        "nodeExpandSecretRef",
    )
)


def _secret_names(node, found: set[str] | None = None) -> set[str]:
    """The Secrets an object's pods read (envFrom, env valueFrom, secret and projected volumes), wherever
    they are in it: built-in workloads and custom resources alike. (Into one set, on one walk.)"""
    if found is None:
        found = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _SECRET_REFS and isinstance(value, dict) and isinstance(value.get("name"), str):
                found.add(value["name"])
            elif key == "imagePullSecrets" and isinstance(
                value, list
            ):  # registry credentials are Secrets too
                found.update(
                    item["name"]
                    for item in value
                    if isinstance(item, dict) and isinstance(item.get("name"), str)
                )
            elif (
                key == "secret"
                and isinstance(value, dict)
                and isinstance(value.get("secretName", value.get("name")), str)
            ):
                found.add(
                    value.get("secretName", value.get("name"))
                )  # a volume, or a projected volume's source
            elif type(value) is dict or type(value) is list or isinstance(value, dict | list):
                _secret_names(value, found)
    elif isinstance(node, list):
        for item in node:
            if type(item) is dict or type(item) is list or isinstance(item, dict | list):
                _secret_names(item, found)
    return found
