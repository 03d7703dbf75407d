"""Objects -> files: bases/<app>/ holds what the App alone compiles to, overlays/<env>/ holds what each
environment changes, as kustomize would read it.

An overlay lists the base, adds the objects only it has, patches base objects that differ (strategic
merge patches, written by k8s/strategic.py) and lets kustomize's own transformers set what every
object of an environment shares: namespace, instance and version labels, and the image tag or digest.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from kompile.emit import emit_yaml, header
from kompile.k8s.strategic import DIRECTIVE, diff_patch
from kompile.k8s.transformers import CLUSTER_SCOPED, TEMPLATES
from kompile.model import Environment
from kompile.render import environment_labels, object_id

KUSTOMIZATION = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization"}
BASES = "bases"
OVERLAYS = "overlays"


@dataclass(frozen=True)
class Compiled:
    """One environment's model and its rendered objects."""

    env: Environment
    objects: list[dict]


def file_name(obj: dict) -> str:
    return f"{obj['kind'].lower()}-{obj['metadata']['name']}.yaml"


def base_dir(app: str) -> str:
    return f"{BASES}/{app}"


def overlay_dir(env: str) -> str:
    return f"{OVERLAYS}/{env}"


def layout_base(base: Compiled) -> dict[str, bytes]:
    folder = base_dir(base.env.app)
    head = header(base.env.sources)
    files = {f"{folder}/{file_name(obj)}": emit_yaml(obj, head) for obj in base.objects}
    kustomization = {**KUSTOMIZATION, "resources": sorted(name.rsplit("/", 1)[1] for name in files)}
    files[f"{folder}/kustomization.yaml"] = emit_yaml(kustomization, head)
    return files


def layout_overlay(base: Compiled, compiled: Compiled) -> dict[str, bytes]:
    env = compiled.env
    folder = overlay_dir(env.name)
    head = header(env.sources)
    base_objects = {object_id(obj): obj for obj in base.objects}
    files: dict[str, bytes] = {}
    resources: list[str] = []
    patches: list[str] = []
    seen = set()
    for obj in compiled.objects:
        key = object_id(obj)
        seen.add(key)
        if key not in base_objects:
            resources.append(file_name(obj))
            files[f"{folder}/{file_name(obj)}"] = emit_yaml(obj, head)
            continue
        change = diff_patch(base_objects[key], strip_environment(obj, env, base.env))
        if change:
            patch = {"apiVersion": obj["apiVersion"], "kind": obj["kind"],
                     "metadata": {"name": obj["metadata"]["name"], **change.pop("metadata", {})}, **change}
            patches.append(f"patches/{file_name(obj)}")
            files[f"{folder}/patches/{file_name(obj)}"] = emit_yaml(patch, head)
    for key, obj in base_objects.items():
        if key not in seen:  # the App has it, this environment does not (e.g. `migrate: null`)
            removal = {DIRECTIVE: "delete", "apiVersion": obj["apiVersion"], "kind": obj["kind"],
                       "metadata": {"name": obj["metadata"]["name"]}}
            patches.append(f"patches/{file_name(obj)}")
            files[f"{folder}/patches/{file_name(obj)}"] = emit_yaml(removal, head)
    files[f"{folder}/kustomization.yaml"] = emit_yaml(_overlay_kustomization(base, env, resources, patches), head)
    return files


def _overlay_kustomization(base: Compiled, env: Environment, resources: list[str], patches: list[str]) -> dict:
    kustomization: dict = {**KUSTOMIZATION, "namespace": env.namespace,
                           "resources": [f"../../{base_dir(env.app)}", *sorted(resources)]}
    if patches:
        kustomization["patches"] = [{"path": path} for path in sorted(patches)]
    kustomization["labels"] = [{"pairs": environment_labels(env), "includeTemplates": True}]
    image: dict = {"name": base.env.image.repository}
    if env.image.repository != base.env.image.repository:
        image["newName"] = env.image.repository
    if env.image.tag:
        image["newTag"] = env.image.tag
    if env.image.digest:
        image["digest"] = env.image.digest
    kustomization["images"] = [image]
    return kustomization


def strip_environment(obj: dict, env: Environment, base: Environment) -> dict:
    """Undo what the overlay's transformers will do, leaving what a patch has to say."""
    obj = copy.deepcopy(obj)
    metadata = obj["metadata"]
    if obj["kind"] not in CLUSTER_SCOPED and metadata.get("namespace") == env.namespace:
        del metadata["namespace"]
    added = environment_labels(env)
    _drop_labels(metadata, added)
    for path in TEMPLATES.get(obj["kind"], ()):
        node = obj
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict) and isinstance(node.get("metadata"), dict):
            _drop_labels(node["metadata"], added)
            if not node["metadata"]:
                del node["metadata"]
    _untag_images(obj, env.image.ref, base.image.repository)
    return obj


def _drop_labels(metadata: dict, added: dict[str, str]) -> None:
    labels = metadata.get("labels")
    if not isinstance(labels, dict):
        return
    for key, value in added.items():
        if labels.get(key) == value:
            del labels[key]
    if not labels:
        del metadata["labels"]


def _untag_images(node, ref: str, repository: str) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("containers", "initContainers") and isinstance(value, list):
                for container in value:
                    if isinstance(container, dict) and container.get("image") == ref:
                        container["image"] = repository
            _untag_images(value, ref, repository)
    elif isinstance(node, list):
        for item in node:
            _untag_images(item, ref, repository)

