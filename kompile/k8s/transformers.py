"""What kustomize's built-in transformers do to objects, for the fields kompile's overlays use:
`namespace`, `labels` (with includeTemplates) and `images`. The renderer applies them to its model
and overlay.py applies them when reading an overlay back; the tests hold both equal to kustomize."""

from __future__ import annotations

import re
from collections.abc import Mapping

from kompile.k8s import kinds

BINDINGS = ("RoleBinding", "ClusterRoleBinding")


def with_namespace(obj: dict, namespace: str) -> dict:
    """obj in `namespace` (the namespace transformer). Like every function here it returns a new object
    that shares what it did not change with obj, which stays as it was. Kinds kustomize deems
    cluster-scoped keep their metadata; an APIService's and a CRD conversion webhook's service follow."""
    if not kinds.kustomize_namespaced(obj["apiVersion"], obj["kind"]):
        return _with_service_namespace(obj, namespace)
    metadata = obj["metadata"]
    # The conventional order: name, namespace, then the rest.
    return {
        **obj,
        "metadata": {
            "name": metadata["name"],
            "namespace": namespace,
            **{k: v for k, v in metadata.items() if k not in ("name", "namespace")},
        },
    }


def _with_service_namespace(obj: dict, namespace: str) -> dict:
    group = kinds.group_of(obj["apiVersion"])
    if obj["kind"] == "APIService" and group == "apiregistration.k8s.io":
        return _update_in(
            obj,
            ("spec", "service"),
            lambda service: {**(service if isinstance(service, dict) else {}), "namespace": namespace},
        )
    if obj["kind"] == "CustomResourceDefinition" and group == "apiextensions.k8s.io":
        path = ("spec", "conversion", "webhook", "clientConfig", "service")
        node = obj
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict) and "namespace" in node:
            return _update_in(obj, path, lambda service: {**service, "namespace": namespace})
    return obj


def with_subject_namespaces(obj: dict, namespace: str, service_accounts: Mapping[str, str | None]) -> dict:
    """The namespace a (Cluster)RoleBinding's subjects get in an overlay with `namespace:`.

    kustomize's namespace transformer sets it on every subject named "default"; its name references
    then point subjects that name a ServiceAccount of the build (service_accounts: name -> the namespace
    its file states, or None) at that account: subjects without a namespace, and subjects in "default"
    when the account's file names no other. Like kustomize, this goes by the subject's name alone."""
    if obj["kind"] not in BINDINGS or not isinstance(obj.get("subjects"), list):
        return obj
    subjects = []
    for subject in obj["subjects"]:
        if isinstance(subject, dict):
            name, current = subject.get("name"), subject.get("namespace")
            account = name in service_accounts and (
                current is None or (current == "default" and service_accounts[name] in (None, "default"))
            )
            if name == "default" or account:
                subject = {**subject, "namespace": namespace}
        subjects.append(subject)
    return {**obj, "subjects": subjects}


def with_labels(obj: dict, labels: dict[str, str], include_templates: bool) -> dict:
    def merged(metadata) -> dict:
        metadata = metadata if isinstance(metadata, dict) else {}
        return {**metadata, "labels": dict(sorted({**(metadata.get("labels") or {}), **labels}.items()))}

    obj = {**obj, "metadata": merged(obj["metadata"])}
    if include_templates:
        for path in kinds.template_label_paths(obj["apiVersion"], obj["kind"]):
            if path[-1] == []:  # every item of a list (a StatefulSet's volumeClaimTemplates)
                obj = _update_items(obj, path[:-1], merged)
            else:
                obj = _update_in(obj, (*path, "metadata"), merged)
    return obj


def _update_items(node: dict, path: tuple[str, ...], change) -> dict:
    items = node
    for key in path:
        items = items.get(key) if isinstance(items, dict) else None
    if not isinstance(items, list):
        return node
    new = [
        {**item, "metadata": change(item.get("metadata"))} if isinstance(item, dict) else item
        for item in items
    ]
    return _update_in(node, path, lambda _: new)


def _update_in(node: dict, path: tuple[str, ...], change) -> dict:
    """node with change() applied at path, creating mappings on the way as kustomize does."""
    key, rest = path[0], path[1:]
    child = node.get(key)
    if not rest:
        return {**node, key: change(child)}
    return {**node, key: _update_in(child if isinstance(child, dict) else {}, rest, change)}


def image_name(ref: str) -> str:
    """An image reference without its tag and digest."""
    ref = ref.split("@", 1)[0]
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    return ref[:colon] if colon > slash else ref


def with_images(
    node, name: str, new_name: str | None = None, new_tag: str | None = None, digest: str | None = None
):
    """Every container running image `name` (any tag) pointed at the new name, tag and digest (the
    images transformer, which looks at every containers and initContainers list, in any kind)."""
    if isinstance(node, dict):
        changed = None
        for key, value in node.items():
            if not isinstance(value, dict | list):
                continue
            if key in ("containers", "initContainers") and isinstance(value, list):
                new = _same_or(
                    [
                        with_images(
                            _retag(item, name, new_name, new_tag, digest), name, new_name, new_tag, digest
                        )
                        for item in value
                    ],
                    value,
                )
            else:
                new = with_images(value, name, new_name, new_tag, digest)
            if new is not value:
                changed = dict(node) if changed is None else changed
                changed[key] = new
        return node if changed is None else changed
    if isinstance(node, list):
        return _same_or([with_images(item, name, new_name, new_tag, digest) for item in node], node)
    return node


def pod_spec(obj: dict) -> dict | None:
    """A built-in workload's pod spec, where the kinds table says it is (None for other kinds, or when it
    is malformed)."""
    row = (
        kinds.lookup(obj.get("apiVersion", ""), obj.get("kind"))
        if isinstance(obj.get("apiVersion"), str)
        else None
    )
    if row is None or not row.builtin or row.pod_spec is None:
        return None
    node = obj
    for key in row.pod_spec:
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else None


def with_object_images(
    obj: dict, name: str, new_name: str | None, new_tag: str | None, digest: str | None
) -> dict:
    """with_images for a whole object: built-in kinds are looked at where they keep containers, any
    other kind is walked whole (the images transformer retags every containers list it finds)."""
    if kinds.holds_no_pods(obj["apiVersion"], obj["kind"]):
        return obj
    spec = pod_spec(obj)
    if spec is None:
        return with_images(obj, name, new_name, new_tag, digest)
    new = dict(spec)
    for key in ("containers", "initContainers"):
        if isinstance(spec.get(key), list):
            new[key] = _same_or(
                [_retag(item, name, new_name, new_tag, digest) for item in spec[key]], spec[key]
            )
    if all(new[key] is spec[key] for key in spec):
        return obj
    return _update_in(obj, kinds.pod_spec_path(obj["apiVersion"], obj["kind"]), lambda _: new)


def _same_or(new: list, old: list) -> list:
    return old if all(a is b for a, b in zip(new, old, strict=True)) else new


def _retag(container, name: str, new_name: str | None, new_tag: str | None, digest: str | None):
    if not isinstance(container, dict) or not isinstance(container.get("image"), str):
        return container
    ref = retagged(container["image"], name, new_name, new_tag, digest)
    return container if ref == container["image"] else {**container, "image": ref}


def retagged(value: str, name: str, new_name: str | None, new_tag: str | None, digest: str | None) -> str:
    """An image reference as kustomize's images transformer leaves it (api/filters/imagetag, v5): it
    matches the name as a regular expression, unescaped (so a '.' in the name matches any character),
    and splits the reference at the first ':' or '@' after the first '/'; a new tag or digest replaces
    both the old tag and digest, a new name alone keeps them."""
    if not image_matches(value, name):
        return value
    old_name, tag, old_digest = _split(value)
    ref = new_name or old_name
    if new_tag and digest:
        tag, old_digest = new_tag, digest
    elif new_tag:
        tag, old_digest = new_tag, ""
    elif digest:
        tag, old_digest = "", digest
    return ref + (f":{tag}" if tag else "") + (f"@{old_digest}" if old_digest else "")


def image_matches(value: str, name: str) -> bool:
    """Whether kustomize's images transformer takes value for an image named name (its regular
    expression, with the name unescaped, as api/internal/image does)."""
    return re.fullmatch(name + r"(:[a-zA-Z0-9_.{}-]*)?(@sha256:[a-zA-Z0-9_.{}-]*)?", value) is not None


def _split(ref: str) -> tuple[str, str, str]:
    """kustomize's image.Split: (name, tag, digest)."""
    slash = ref.find("/")
    offset = slash if slash > 0 else 0
    search = ref[offset:]
    at, colon = search.find("@"), search.find(":")
    if colon < 0 and at < 0:
        return ref, "", ""
    if at >= 0 and (at < colon or colon < 0):
        return ref[: offset + at], "", ref[offset + at + 1 :]
    if at >= 0:
        return ref[: offset + colon], ref[offset + colon + 1 : offset + at], ref[offset + at + 1 :]
    return ref[: offset + colon], ref[offset + colon + 1 :], ""


# kustomize's default ("legacy") sort of a build's output: these kinds first and last, in this order, the
# rest between them; then by group, version and kind, then by namespace and name.
_ORDER_FIRST = [
    "Namespace",
    "ResourceQuota",
    "StorageClass",
    "CustomResourceDefinition",
    "ServiceAccount",
    "PodSecurityPolicy",
    "Role",
    "ClusterRole",
    "RoleBinding",
    "ClusterRoleBinding",
    "ConfigMap",
    "Secret",
    "Endpoints",
    "Service",
    "LimitRange",
    "PriorityClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "Deployment",
    "StatefulSet",
    "CronJob",
    "PodDisruptionBudget",
]
_ORDER_LAST = ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")
_KIND_RANK = {
    **{kind: index - len(_ORDER_FIRST) for index, kind in enumerate(_ORDER_FIRST)},
    **{kind: index + 1 for index, kind in enumerate(_ORDER_LAST)},
}


def in_kustomize_order(objects: list[dict]) -> list[dict]:
    """objects as `kustomize build` prints them (its SortOrderTransformer with the legacy order)."""

    def key(obj: dict) -> tuple:
        group, _, version = obj["apiVersion"].rpartition("/")
        kind = obj["kind"]
        metadata = obj.get("metadata") or {}
        gvk = "_".join((group or "~G", version or "~V", kind or "~K"))
        if kind == "Namespace" and not group:
            gvk = ""  # kustomize puts the core Namespace before any other kind named Namespace
        return (_KIND_RANK.get(kind, 0), gvk, metadata.get("namespace") or "~X", metadata.get("name") or "~N")

    return sorted(objects, key=key)
