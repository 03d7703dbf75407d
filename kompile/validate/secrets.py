"""Rules on secrets: one backend per secret, sealed and sops files that hold what the spec says, and
sealing scopes that fit the namespace."""

from __future__ import annotations

import difflib

from kompile import names
from kompile.errors import Code, Collector, Span
from kompile.load.project import Project
from kompile.policy.sops import secret_keys, sops_problem
from kompile.source import YMap
from kompile.validate.objects import check_fields, spec_objects
from kompile.validate.resolved import SCOPE_ANNOTATIONS, SEALED_SECRET_API, gitops_tool

BACKENDS = ("sealedSecrets", "externalSecrets", "sopsSecrets")


def check_secrets(project: Project, env: str, settings: YMap, namespace: str, out: Collector) -> None:
    """Every secret the App declares comes from exactly one backend of the environment (sealed values,
    an external store, or sops for Flux), with every key."""
    sealed = settings.get("sealedSecrets") or YMap(settings.span)
    external = (settings.get("externalSecrets") or {}).get("secrets") or YMap(settings.span)
    sops = settings.get("sopsSecrets") or YMap(settings.span)
    declared_keys = {secret["name"]: list(secret["keys"]) for secret in settings.get("secrets") or ()}
    provided: dict[str, set[str] | None] = {}
    backend_of: dict[str, str] = {}
    for backend, entries in zip(BACKENDS, (sealed, external, sops), strict=True):
        for secret_name in entries:
            if secret_name in backend_of:
                out.error(
                    Code.SECRET_NOT_PROVIDED,
                    f"{backend}.{secret_name}: the secret also comes from {backend_of[secret_name]}",
                    entries.key_span(secret_name),
                    "provide each secret from one backend",
                )
            backend_of[secret_name] = backend
    for secret_name, entry in sealed.items():
        if entry.get("file") is not None:
            keys = _check_sealed_file(project, secret_name, entry, namespace, out)
        else:
            keys = set(entry["encryptedData"])
            _check_inherited_sealing(
                project, env, secret_name, entry, sealed.key_span(secret_name), namespace, out
            )
        provided[secret_name] = keys
    for secret_name, entry in external.items():
        if secret_name not in declared_keys:
            out.error(
                Code.REFERENCE,
                f"externalSecrets.secrets.{secret_name}: the App declares no such secret",
                external.key_span(secret_name),
                "declare it under the App's secrets, with its keys",
            )
            continue
        properties = entry.get("properties") or {}
        for key in properties:
            if key not in declared_keys[secret_name]:
                out.error(
                    Code.REFERENCE,
                    f"externalSecrets.secrets.{secret_name}.properties: '{key}' is not a key the App "
                    "declares",
                    properties.key_span(key),
                    "its keys: " + ", ".join(declared_keys[secret_name]),
                )
        provided[secret_name] = set(declared_keys[secret_name])
    for secret_name, entry in sops.items():
        provided[secret_name] = _check_sops_file(project, secret_name, entry, namespace, out)
    if sops and gitops_tool(project) != "flux":
        out.error(
            Code.SECRET_OBJECT,
            "sopsSecrets: only Flux decrypts sops-encrypted Secrets",
            settings.key_span("sopsSecrets"),
            "Argo CD would apply the ciphertext as the value (or refuse the file); use sealedSecrets or "
            "externalSecrets with Argo CD",
        )
    declared = set(declared_keys)
    for index, secret in enumerate(settings.get("secrets") or ()):
        where = settings["secrets"].item_span(index)
        name = secret["name"]
        if name not in provided:
            # At sealedSecrets when the environment has some, else at the environment file's spec.
            env_doc = project.environments[env].doc
            span = (
                settings.key_span("sealedSecrets")
                if "sealedSecrets" in settings
                else env_doc.key_span("spec")
                if "spec" in env_doc
                else env_doc.span
            )
            close = difflib.get_close_matches(name, [n for n in provided if n not in declared], n=1)
            hint = (
                f"{backend_of[close[0]]} has '{close[0]}': did you mean '{name}'?"
                if close
                else f"add sealedSecrets: {{{name}: {{file: secrets/{env}/{name}.yaml}}}} (made with kubeseal), or take it "
                "from a store with externalSecrets"
            )
            out.error(
                Code.SECRET_NOT_PROVIDED,
                f"secret '{name}' is not provided by environment '{env}'",
                span,
                hint,
            )
            continue
        if provided[name] is None:
            continue  # the sealed file itself is broken; that is reported already
        missing = [k for k in secret["keys"] if k not in provided[name]]
        if missing:
            backend = backend_of[name]
            span = (sealed if backend == "sealedSecrets" else sops).key_span(name)
            out.error(
                Code.SECRET_NOT_PROVIDED,
                f"{'sealed' if backend == 'sealedSecrets' else 'sops'} secret '{name}' lacks "
                f"key(s) {', '.join(missing)}",
                span,
                f"the App declares these keys at {where.path}:{where.line}; "
                + (
                    "seal them with kubeseal"
                    if backend == "sealedSecrets"
                    else "add them and encrypt with sops"
                ),
            )


def _check_inherited_sealing(
    project: Project, env: str, name: str, entry: YMap, where: Span, namespace: str, out: Collector
) -> None:
    """Inline ciphertext inherited through extends was sealed for the environment that wrote it: in
    another namespace only cluster-wide sealing unseals (a preview extending dev, say)."""
    writer = project.environment_in(where.path)
    if writer is None or writer == env or entry.get("scope", "strict") == "cluster-wide":
        return
    theirs = project.environments[writer].spec.get("namespace") or names.instance(project.name, writer)
    if theirs != namespace:
        out.error(
            Code.SEALED_SECRET_MISMATCH,
            f"sealedSecrets.{name}: inherited from environment '{writer}', sealed for its "
            f"namespace '{theirs}'; environment '{env}' deploys to '{namespace}', where it cannot be unsealed",
            where,
            f"seal this environment's values for '{namespace}' (kubeseal --namespace {namespace}), seal them with "
            f"--scope cluster-wide, or take them from a store with externalSecrets; `{name}: null` drops the inherited one",
        )


def _check_sops_file(
    project: Project, name: str, entry: YMap, namespace: str, out: Collector
) -> set[str] | None:
    """A sops-encrypted Secret manifest for this name and namespace, with every value encrypted."""
    rel = entry["file"]
    where = entry.value_span("file")
    docs = spec_objects(project, rel, where, out)
    if not docs:
        return None
    if len(docs) != 1 or docs[0].get("kind") != "Secret" or docs[0].get("apiVersion") != "v1":
        out.error(
            Code.SEALED_SECRET_MISMATCH,
            f"'{rel}' is not one Secret (v1) encrypted with sops",
            where,
            f"write it with: sops --encrypt --encrypted-regex '^(data|stringData)$' secret.yaml > {rel}",
        )
        return None
    obj = docs[0]
    problem = sops_problem(obj)
    if problem:
        out.error(
            Code.PLAINTEXT_SECRET,
            f"'{rel}': {problem}",
            obj.key_span("sops") if "sops" in obj else obj.span,
            f"encrypt it: sops --encrypt --encrypted-regex '^(data|stringData)$' --in-place {rel}",
        )
        return None
    metadata = obj.get("metadata") if isinstance(obj.get("metadata"), YMap) else YMap(obj.span)
    if metadata.get("name") != name:
        out.error(
            Code.SEALED_SECRET_MISMATCH,
            f"'{rel}' is the Secret '{metadata.get('name')}', not '{name}'",
            metadata.value_span("name") if "name" in metadata else obj.span,
            f"set metadata.name: {name}",
        )
    if metadata.get("namespace") not in (None, namespace):
        out.error(
            Code.SEALED_SECRET_MISMATCH,
            f"'{rel}' names the namespace '{metadata['namespace']}', but this environment "
            f"deploys to '{namespace}'",
            metadata.value_span("namespace"),
            "remove metadata.namespace: the overlay sets it",
        )
    return secret_keys(obj)


def _check_sealed_file(
    project: Project, name: str, entry: YMap, namespace: str, out: Collector
) -> set[str] | None:
    rel = entry["file"]
    where = entry.value_span("file")
    if entry.get("scope") is not None:
        out.error(
            Code.SEALED_SECRET_MISMATCH,
            f"sealedSecrets.{name}: scope comes from the file's annotations",
            entry.key_span("scope"),
            "remove scope, or use encryptedData",
        )
    docs = spec_objects(project, rel, where, out)
    if not docs:
        return None
    if len(docs) != 1:
        out.error(
            Code.SEALED_SECRET_MISMATCH,
            f"'{rel}' holds {len(docs)} objects; one SealedSecret per file",
            where,
        )
        return None
    obj = docs[0]
    if obj.get("kind") == "Secret":
        out.error(
            Code.SECRET_OBJECT,
            f"'{rel}' is a plain Secret: its values are only base64-encoded",
            obj.value_span("kind"),
            f"seal it with: kubeseal -o yaml < secret.yaml > {rel} (and never commit the Secret)",
        )
        return None
    if obj.get("apiVersion") != SEALED_SECRET_API or obj.get("kind") != "SealedSecret":
        wrong = "kind" if obj.get("kind") != "SealedSecret" else "apiVersion"
        out.error(
            Code.SEALED_SECRET_MISMATCH,
            f"'{rel}' is not a SealedSecret ({SEALED_SECRET_API})",
            obj.value_span(wrong) if wrong in obj else obj.span,
            "write it with: kubeseal -o yaml < secret.yaml",
        )
        return None
    if not _sealed_shape(rel, obj, out):
        return None
    metadata, body = obj["metadata"], obj["spec"]
    scope = sealed_scope(obj)
    if metadata["name"] != name:
        # Whatever the scope, the Secret it unseals to takes this name, and the pods read `name`.
        how = f"reseal with --name {name}" if scope != "cluster-wide" else f"set metadata.name: {name}"
        out.error(
            Code.SEALED_SECRET_MISMATCH,
            f"'{rel}' is sealed for the name '{metadata['name']}', not '{name}'",
            metadata.value_span("name"),
            f"{scope} sealed secrets unseal to a Secret of their own name; {how}",
        )
    if scope != "cluster-wide" and metadata.get("namespace") != namespace:
        out.error(
            Code.SEALED_SECRET_MISMATCH,
            f"'{rel}' is sealed for the namespace '{metadata.get('namespace')}', but this environment deploys to '{namespace}'",
            metadata.value_span("namespace") if "namespace" in metadata else metadata.key_span("name"),
            f"reseal it with: kubeseal --namespace {namespace} -o yaml < secret.yaml",
        )
    template_meta = (body.get("template") or {}).get("metadata")
    if isinstance(template_meta, YMap):
        for key, expected in (("name", name), ("namespace", namespace)):
            if scope == "strict" and template_meta.get(key) not in (None, expected):
                out.error(
                    Code.SEALED_SECRET_MISMATCH,
                    f"'{rel}': spec.template.metadata.{key} is '{template_meta[key]}', not '{expected}'",
                    template_meta.value_span(key),
                    f"reseal it for {key} '{expected}'",
                )
    return set(body["encryptedData"])


# What a SealedSecret file must look like for kompile to pass it on: (path, type, required).
_SEALED_FIELDS = (
    (("metadata",), dict, True),
    (("metadata", "name"), str, True),
    (("metadata", "namespace"), str, False),
    (("metadata", "labels"), "strings", False),
    (("metadata", "annotations"), "strings", False),
    (("spec",), dict, True),
    (("spec", "encryptedData"), "strings", True),
    (("spec", "template"), dict, False),
    (("spec", "template", "type"), str, False),
    (("spec", "template", "metadata"), dict, False),
    (("spec", "template", "metadata", "name"), str, False),
    (("spec", "template", "metadata", "namespace"), str, False),
    (("spec", "template", "metadata", "labels"), "strings", False),
    (("spec", "template", "metadata", "annotations"), "strings", False),
    (("spec", "template", "data"), "strings", False),
)


def _sealed_shape(rel: str, obj: YMap, out: Collector) -> bool:
    """The fields kompile reads or passes on, with the types kubeseal writes."""
    problems = len(out.items)
    check_fields(
        obj,
        _SEALED_FIELDS,
        Code.SEALED_SECRET_MISMATCH,
        out,
        missing_hint="write it with: kubeseal -o yaml < secret.yaml",
        wrong_hint="kubeseal -o yaml writes it; reseal rather than editing by hand",
    )
    data = (obj.get("spec") or {}).get("encryptedData") if isinstance(obj.get("spec"), dict) else None
    if isinstance(data, YMap) and not data:
        out.error(
            Code.SEALED_SECRET_MISMATCH,
            f"'{rel}': spec.encryptedData is empty",
            obj["spec"].value_span("encryptedData"),
            "write it with: kubeseal -o yaml < secret.yaml",
        )
    return len(out.items) == problems


def sealed_scope(obj: dict) -> str:
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    for scope, annotation in SCOPE_ANNOTATIONS.items():
        if str(annotations.get(annotation, "")).lower() == "true":
            return scope
    return "strict"
