"""What kustomize's built-in transformers do to objects, for the fields kompile's overlays use:
`namespace`, `labels` (with includeTemplates) and `images`. The renderer applies them to its model
and overlay.py applies them when reading an overlay back; the tests hold both equal to kustomize."""

from __future__ import annotations

from collections.abc import Mapping

# Kinds the namespace transformer leaves alone.
CLUSTER_SCOPED = frozenset({
    "Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "PersistentVolume", "StorageClass",
    "PriorityClass", "IngressClass", "RuntimeClass", "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration",
    "APIService", "CSIDriver", "VolumeSnapshotClass",
})
# Where the labels transformer also writes, with includeTemplates.
TEMPLATES = {
    "Deployment": (("spec", "template"),), "StatefulSet": (("spec", "template"),), "DaemonSet": (("spec", "template"),),
    "ReplicaSet": (("spec", "template"),), "ReplicationController": (("spec", "template"),), "Job": (("spec", "template"),),
    "CronJob": (("spec", "jobTemplate"), ("spec", "jobTemplate", "spec", "template")),
}
BINDINGS = ("RoleBinding", "ClusterRoleBinding")


def set_namespace(obj: dict, namespace: str) -> None:
    if obj["kind"] in CLUSTER_SCOPED:
        return
    metadata = obj["metadata"]
    # The conventional order: name, namespace, then the rest.
    obj["metadata"] = {"name": metadata["name"], "namespace": namespace,
                       **{k: v for k, v in metadata.items() if k not in ("name", "namespace")}}


def set_subject_namespaces(obj: dict, namespace: str, service_accounts: Mapping[str, str | None]) -> None:
    """The namespace a (Cluster)RoleBinding's subjects get in an overlay with `namespace:`.

    kustomize's namespace transformer sets it on every subject named "default"; its name references
    then point subjects that name a ServiceAccount of the build (service_accounts: name -> the namespace
    its file states, or None) at that account: subjects without a namespace, and subjects in "default"
    when the account's file names no other. Like kustomize, this goes by the subject's name alone."""
    if obj["kind"] not in BINDINGS:
        return
    for subject in obj.get("subjects") or ():
        if not isinstance(subject, dict):
            continue
        name, current = subject.get("name"), subject.get("namespace")
        account = name in service_accounts and (
            current is None or (current == "default" and service_accounts[name] in (None, "default")))
        if name == "default" or account:
            subject["namespace"] = namespace


def add_labels(obj: dict, labels: dict[str, str], include_templates: bool) -> None:
    metadata = obj["metadata"]
    metadata["labels"] = dict(sorted({**(metadata.get("labels") or {}), **labels}.items()))
    if not include_templates:
        return
    for path in TEMPLATES.get(obj["kind"], ()):
        node = obj
        for key in path:
            node = node.setdefault(key, {})
        node_meta = node.setdefault("metadata", {})
        node_meta["labels"] = dict(sorted({**(node_meta.get("labels") or {}), **labels}.items()))


def image_name(ref: str) -> str:
    """An image reference without its tag and digest."""
    ref = ref.split("@", 1)[0]
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    return ref[:colon] if colon > slash else ref


def _image_tag(ref: str) -> str | None:
    ref = ref.split("@", 1)[0]
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    return ref[colon + 1:] if colon > slash else None


def set_images(node, name: str, new_name: str | None = None, new_tag: str | None = None, digest: str | None = None) -> None:
    """Point every container running image `name` (any tag) at the new name, tag and digest."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("containers", "initContainers") and isinstance(value, list):
                for container in value:
                    if isinstance(container, dict) and isinstance(container.get("image"), str) \
                            and image_name(container["image"]) == name:
                        tag = new_tag if new_tag is not None else (None if digest else _image_tag(container["image"]))
                        ref = new_name or name
                        if tag:
                            ref += f":{tag}"
                        if digest:
                            ref += f"@{digest}"
                        container["image"] = ref
            set_images(value, name, new_name, new_tag, digest)
    elif isinstance(node, list):
        for item in node:
            set_images(item, name, new_name, new_tag, digest)
