"""Rules on what the spec brings as Kubernetes objects: extra resources, allowKinds, patches, and
values that would not survive as written."""

from __future__ import annotations

import math
import re

from kompile import spec
from kompile.errors import Code, Collector, KompileError, Span
from kompile.k8s import kinds
from kompile.k8s.transformers import image_matches
from kompile.load.merge import app_settings
from kompile.load.project import Project, expand_lists
from kompile.policy.images import image_problem
from kompile.policy.plaintext import credential_in
from kompile.policy.pods import Unclassifiable, pod_specs
from kompile.policy.pods import containers as pod_containers
from kompile.safefs import MAX_NAME_BYTES
from kompile.source import YList, YMap, describe
from kompile.spec.structure import entry_problems
from kompile.validate.resolved import MAX_EXTRA_OBJECTS


def check_plaintext(env: dict, out: Collector) -> None:
    for problems in entry_problems(env, check_plaintext, "env", None, _plaintext_entry).values():
        out.add(problems)


def _plaintext_entry(env: dict, key: str, out: Collector) -> None:
    value = env[key]
    if not isinstance(value, str):
        return
    what = credential_in(key, value)
    if what == "what looks like a secret":
        out.error(
            Code.PLAINTEXT_SECRET,
            f"env.{key} looks like a secret; env values are stored in plain text",
            env.key_span(key) if isinstance(env, YMap) else None,
            "declare the key under secrets: on the App and seal its value with kubeseal",
        )
    elif what:
        out.error(
            Code.PLAINTEXT_SECRET,
            f"env.{key} holds {what} in plain text",
            env.value_span(key) if isinstance(env, YMap) else None,
            "move it to secrets: (declared on the App) and seal the value with kubeseal",
        )


def spec_objects(project: Project, rel: str, span: Span, out: Collector, expand: bool = False) -> list[YMap]:
    try:
        manifests = project.manifests(rel, span)
    except KompileError as exc:
        out.add(exc.diagnostics)
        return []
    return expand_lists(manifests, out) if expand else manifests


def check_extra_resources(project: Project, settings: YMap, env: str | None, out: Collector) -> None:
    paths = settings.get("extraResources") or YList(settings.span)
    listed: dict[str, Span] = {}
    for index, rel in enumerate(paths):
        if isinstance(rel, str) and rel in listed:
            first = listed[rel]
            out.error(
                Code.EXTRA_RESOURCE,
                f"extraResources lists '{rel}' twice",
                paths.item_span(index),
                f"it is listed first at line {first.line}; list each file once",
            )
        listed.setdefault(rel, paths.item_span(index))
    if len(listed) < len(paths):
        return
    allowed = allowed_kinds(project)
    declared = declared_kinds(project)
    count = 0
    app_image = (app_settings(project).get("image") or {}).get("repository")
    for index, rel in enumerate(paths):
        objects = spec_objects(project, rel, paths.item_span(index), out, expand=True)
        count += len(objects)
        if count > MAX_EXTRA_OBJECTS:
            out.error(
                Code.EXTRA_RESOURCE,
                f"extraResources hold more than {MAX_EXTRA_OBJECTS} objects",
                paths.item_span(index),
                "kompile writes a file per object; an environment of this size belongs in its own repo or tool",
            )
            return
        for obj in objects:
            if not check_kubernetes_object(obj, out):
                continue
            kind = kinds.classify(obj["apiVersion"], obj["kind"], declared)
            if isinstance(kind, kinds.Unknown):
                out.error(Code.UNCLASSIFIABLE, kind.message, obj.value_span(kind.field), kind.hint)
                continue
            if kind.group == "" and kind.name == "Secret":
                out.error(
                    Code.SECRET_OBJECT,
                    "a Secret in extraResources would commit its value in plain text",
                    obj.value_span("kind"),
                    "seal it with kubeseal and list it under sealedSecrets",
                )
            elif kind.group == "" and kind.name == "Namespace":
                out.error(
                    Code.EXTRA_RESOURCE,
                    "an environment has one Namespace, the one kompile writes (spec.namespace)",
                    obj.value_span("kind"),
                    "remove it; set the environment's namespace with spec.namespace",
                )
            elif (kind.group, kind.name) not in allowed:
                out.error(
                    Code.EXTRA_RESOURCE,
                    f"{kind.name} ({kind.group or 'core'} group) is not one of kompile's own kinds "
                    "nor one the App allows: kompile never widens what an environment may deploy by itself",
                    obj.value_span("kind"),
                    f"list it in {project.app.rel}: allowKinds: [{{group: '{kind.group}', "
                    f"kind: {kind.name}}}] (every allowed kind is listed on every run)",
                )
            production = settings.get("tier") == "production"
            for container in _containers(obj, kind):
                if isinstance(container.get("image"), str) and image_matches(container["image"], app_image):
                    continue  # the overlay retags the App's image with the environment's tag or digest
                problem = image_problem(container.get("image"), production)
                if problem is not None:
                    code, message, hint = problem
                    where = container.value_span("image") if "image" in container else container.span
                    out.error(code, f"container '{container.get('name')}': {message}", where, hint)


def _containers(obj: YMap, kind: kinds.Kind) -> list[YMap]:
    try:
        specs, _ = pod_specs(obj, kind)
    except Unclassifiable:
        return []  # the policy gate reports it
    return [c for pod, _ in specs for _, c in pod_containers(pod) if isinstance(c, YMap)]


def allowed_kinds(project: Project) -> set[tuple[str, str]]:
    """The kinds an extra resource may have: kompile's own built-in kinds and those the App lists in
    allowKinds. A custom kind kompile writes itself (a ScaledObject, an ExternalSecret) is listed too
    when a spec author writes one: its controller acts with rights kompile cannot see."""
    listed = {
        (str(k.get("group", "")), str(k.get("kind")))
        for k in project.app.spec.get("allowKinds") or ()
        if isinstance(k, dict)
    }
    return {key for key in kinds.OWN_KINDS if kinds.KINDS[key].builtin} | listed


def declared_kinds(project: Project) -> dict[tuple[str, str], bool]:
    """The App's word on kinds kompile has no row for: (group, kind) -> namespaced."""
    return {
        (str(k.get("group", "")), str(k.get("kind"))): bool(k.get("namespaced", True))
        for k in project.app.spec.get("allowKinds") or ()
        if isinstance(k, dict) and k.get("namespaced") is not None
    }


def check_allow_kinds(project: Project, out: Collector) -> None:
    """Each listed kind exists (kinds are case-sensitive) and says its scope where kompile cannot know it."""
    entries = project.app.spec.get("allowKinds") or YList(project.app.spec.span)
    for index, entry in enumerate(entries):
        where = entries.item_span(index)
        group, kind = str(entry.get("group", "")), str(entry.get("kind"))
        row = kinds.KINDS.get((group, kind))
        if row is None and group in kinds.BUILTIN_GROUPS:
            found = kinds.classify(f"{group}/v1" if group else "v1", kind)
            out.error(
                Code.UNCLASSIFIABLE,
                getattr(found, "message", f"no kind {kind} in {group}"),
                where,
                getattr(found, "hint", None),
            )
        elif row is None and entry.get("namespaced") is None:
            out.error(
                Code.MISSING_FIELD,
                f"allowKinds: say whether {kind} ({group}) is namespaced",
                where,
                "kompile cannot know a custom kind's scope: add namespaced: true (or false for a cluster-wide kind)",
            )
        elif row is not None and entry.get("namespaced") not in (None, row.namespaced):
            out.error(
                Code.INVALID_VALUE,
                f"allowKinds: {kind} ({group or 'core'}) is {'' if row.namespaced else 'not '}namespaced",
                entry.value_span("namespaced"),
                f"remove namespaced, or write namespaced: {str(row.namespaced).lower()}",
            )


def check_kubernetes_object(obj: YMap, out: Collector) -> bool:
    """The fields every Kubernetes object needs, so kustomize can place it."""
    problems = len(out.items)
    for key in ("apiVersion", "kind"):
        if not isinstance(obj.get(key), str) or not obj.get(key):
            out.error(
                Code.EXTRA_RESOURCE,
                f"a Kubernetes object needs a string '{key}'",
                obj.value_span(key) if key in obj else obj.span,
                "a manifest starts with apiVersion, kind and metadata.name; kubectl explain <kind> shows the rest",
            )
    metadata = obj.get("metadata")
    if not isinstance(metadata, YMap) or not isinstance(metadata.get("name"), str):
        out.error(
            Code.EXTRA_RESOURCE,
            "a Kubernetes object needs metadata.name",
            obj.key_span("metadata") if "metadata" in obj else obj.span,
            "add metadata: {name: ...}; kompile sets the namespace",
        )
    elif not re.fullmatch(spec.DNS_SUBDOMAIN, metadata["name"]) or len(metadata["name"]) > 253:
        out.error(
            Code.INVALID_NAME,
            f"{spec.shown(metadata['name'])} is not a valid object name",
            metadata.value_span("name"),
            "object names are lower-case letters, digits, '-' and '.'",
        )
    elif (
        isinstance(obj.get("kind"), str)
        and len(f"{obj['kind']}-{metadata['name']}.yaml".encode()) > MAX_NAME_BYTES
    ):
        out.error(
            Code.INVALID_NAME,
            f"{spec.shown(metadata['name'])} is too long: kompile writes each object to a file "
            f"named <kind>-<name>.yaml, at most {MAX_NAME_BYTES} bytes",
            metadata.value_span("name"),
            f"shorten the name to at most {MAX_NAME_BYTES - len(obj['kind']) - 6} characters",
        )
    if len(out.items) == problems:
        kind = kinds.classify(obj["apiVersion"], obj["kind"], {})
        if isinstance(kind, kinds.Unknown) and kind.message.startswith(("apiVersion", "kind '")):
            out.error(Code.UNCLASSIFIABLE, kind.message, obj.value_span(kind.field), kind.hint)
    if len(out.items) == problems:
        # What kompile (and kustomize's transformers) read or write in any object it passes on.
        explain = f"`kubectl explain {obj['kind'].lower()}` shows its fields"
        check_fields(
            obj,
            _object_fields(obj["apiVersion"], obj["kind"]),
            Code.EXTRA_RESOURCE,
            out,
            missing_hint=explain,
            wrong_hint=explain,
        )
        _check_values(obj, out)
    return len(out.items) == problems


def _check_values(node, out: Collector) -> None:
    """Values no Kubernetes object can hold and kustomize stops at: infinite or not-a-number floats."""
    if isinstance(node, YMap):
        for key, value in node.items():
            if isinstance(value, float) and not math.isfinite(value):
                out.error(
                    Code.EXTRA_RESOURCE,
                    f"{key}: {value} is not a number Kubernetes (or kustomize) can hold",
                    node.value_span(key),
                    "quote it if it is text",
                )
            elif isinstance(value, dict | list):
                _check_values(value, out)
    elif isinstance(node, YList):
        for index, value in enumerate(node):
            if isinstance(value, float) and not math.isfinite(value):
                out.error(
                    Code.EXTRA_RESOURCE,
                    f"{value} is not a number Kubernetes (or kustomize) can hold",
                    node.item_span(index),
                    "quote it if it is text",
                )
            elif isinstance(value, dict | list):
                _check_values(value, out)


_METADATA_FIELDS = (
    (("metadata", "namespace"), str, False),
    (("metadata", "labels"), "strings", False),
    (("metadata", "annotations"), "strings", False),
)
_KIND_FIELDS = {
    "SealedSecret": (
        (("spec",), dict, False),
        (("spec", "template"), dict, False),
        (("spec", "template", "metadata"), dict, False),
        (("spec", "template", "metadata", "name"), str, False),
    ),
    "ExternalSecret": (
        (("spec",), dict, False),
        (("spec", "target"), dict, False),
        (("spec", "target", "name"), str, False),
    ),
}


def _object_fields(api_version: str, kind: str) -> tuple:
    fields = list(_METADATA_FIELDS) + list(_KIND_FIELDS.get(kind, ()))
    for path in kinds.template_label_paths(api_version, kind):
        if path[-1] == []:
            continue
        # The labels transformer writes into pod templates (includeTemplates): each step must be a mapping.
        fields += [(path[:end], dict, False) for end in range(1, len(path) + 1)]
        fields += [((*path, "metadata"), dict, False), ((*path, "metadata", "labels"), "strings", False)]
    return tuple(dict.fromkeys(fields))


def check_patches(project: Project, settings: YMap, out: Collector) -> None:
    patches = settings.get("patches") or YList(settings.span)
    for index, entry in enumerate(patches):
        where = patches.item_span(index)
        if entry.get("path") is not None:
            docs = spec_objects(project, entry["path"], entry.value_span("path"), out)
            if len(docs) != 1:
                if docs:
                    out.error(
                        Code.PATCH,
                        f"patch file '{entry['path']}' holds {len(docs)} documents; one patch per file",
                        entry.value_span("path"),
                    )
                continue
            body = docs[0]
        else:
            body = entry["patch"]
        if isinstance(body, list) and entry.get("target") is None:
            out.error(
                Code.PATCH,
                "a JSON patch (a list of operations) needs a target",
                where,
                "target: {kind: Deployment, name: shop-web}",
            )
        if isinstance(body, dict) and entry.get("target") is None:
            metadata = body.get("metadata")
            if not (
                isinstance(body.get("kind"), str)
                and isinstance(metadata, dict)
                and isinstance(metadata.get("name"), str)
            ):
                out.error(
                    Code.PATCH,
                    "a strategic merge patch needs kind and metadata.name (or a target)",
                    where,
                    "name what it patches: kind: Deployment and metadata: {name: shop-web}, or target: {kind: Deployment, name: shop-web}",
                )
        if isinstance(body, list):
            for op_index, op in enumerate(body):
                if (
                    not isinstance(op, dict)
                    or op.get("op") not in ("add", "remove", "replace", "move", "copy", "test")
                    or not isinstance(op.get("path"), str)
                ):
                    op_where = body.item_span(op_index) if isinstance(body, YList) else where
                    out.error(
                        Code.PATCH,
                        "a JSON patch operation needs op (add, remove, replace, move, copy, test) and path",
                        op_where,
                        "for example {op: replace, path: /spec/replicas, value: 3}",
                    )


def check_fields(obj: YMap, fields, code: Code, out: Collector, missing_hint: str, wrong_hint: str) -> None:
    """Type-check the fields at the given paths, each (path, type, required); a field under a parent that is
    absent or wrong is skipped (the parent is reported)."""
    rel = obj.span.path
    for path, kind, required in fields:
        parent = obj
        for key in path[:-1]:
            parent = parent.get(key) if isinstance(parent, YMap) else None
        if not isinstance(parent, YMap):
            continue
        key = path[-1]
        value = parent.get(key)
        dotted = ".".join(path)
        if value is None:
            if required:
                out.error(
                    code,
                    f"'{rel}' has no {dotted}",
                    parent.key_span(key) if key in parent else parent.span,
                    missing_hint,
                )
            continue
        if kind == "strings" and isinstance(value, YMap):
            for item_key, item in value.items():
                if not isinstance(item, str):
                    out.error(
                        code,
                        f"'{rel}': {dotted}.{item_key} must be a string, found {describe(item)}",
                        value.value_span(item_key),
                        wrong_hint
                        if item is None or isinstance(item, dict | list)
                        else f'quote it: {item_key}: "{item}"',
                    )
        elif not isinstance(value, YMap if kind == "strings" else kind):
            out.error(
                code,
                f"'{rel}': {dotted} must be {_SHAPES[kind]}, found {describe(value)}",
                parent.value_span(key),
                wrong_hint,
            )


_SHAPES = {dict: "a mapping", str: "a string", "strings": "a mapping of strings"}
