"""Objects -> files: bases/<app>/ holds what the App alone compiles to, overlays/<env>/ holds what each
environment changes, as kustomize would read it.

An overlay lists the base, adds the objects only it has, patches base objects that differ (strategic
merge patches, written by k8s/strategic.py) and lets kustomize's own transformers set what every
object of an environment shares: namespace, instance and version labels, and the image tag or digest.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from kompile.emit import emit_yaml, header
from kompile.errors import Code, Diagnostic, KompileError, Span
from kompile.k8s.meta import file_name
from kompile.k8s.strategic import DIRECTIVE, PatchError, diff_patch
from kompile.model import Environment
from kompile.render import environment_labels, image_change, object_id

KUSTOMIZATION = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization"}
BASES = "bases"
OVERLAYS = "overlays"


@dataclass(frozen=True)
class Compiled:
    """One environment's model and its objects: as deployed, and as the overlay's patches see them
    (before kustomize's namespace, labels and images transformers; the same list for the base)."""

    env: Environment
    objects: list[dict]
    untransformed: list[dict]

    @cached_property
    def ids(self) -> frozenset:
        """The identities of the objects (of the base: what an overlay finds in bases/<app>/)."""
        return frozenset(object_id(obj) for obj in self.untransformed)


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
    for obj, deployed in zip(compiled.untransformed, compiled.objects, strict=True):
        key = object_id(obj)
        seen.add(key)
        if key not in base_objects:  # written as deployed: the transformers leave it as it is
            resources.append(file_name(deployed))
            files[f"{folder}/{file_name(deployed)}"] = emit_yaml(deployed, head)
            continue
        try:
            change = diff_patch(base_objects[key], obj)
        except PatchError as exc:
            raise KompileError(
                [
                    Diagnostic(
                        Code.PATCH,
                        f"{obj['kind']}/{obj['metadata']['name']} differs from the base in a way "
                        f"no kustomize patch can express: {exc}",
                        env.where or Span(env.sources[-1]),
                        "make the App and this environment agree on that list (or move the object "
                        "into the environment with extraResources)",
                    )
                ]
            ) from None
        if change:
            patch = {
                "apiVersion": obj["apiVersion"],
                "kind": obj["kind"],
                "metadata": {"name": obj["metadata"]["name"], **change.pop("metadata", {})},
                **change,
            }
            patches.append(f"patches/{file_name(obj)}")
            files[f"{folder}/patches/{file_name(obj)}"] = emit_yaml(patch, head)
    for key, obj in base_objects.items():
        if key not in seen:  # the App has it, this environment does not (e.g. `migrate: null`)
            removal = {
                DIRECTIVE: "delete",
                "apiVersion": obj["apiVersion"],
                "kind": obj["kind"],
                "metadata": {"name": obj["metadata"]["name"]},
            }
            patches.append(f"patches/{file_name(obj)}")
            files[f"{folder}/patches/{file_name(obj)}"] = emit_yaml(removal, head)
    files[f"{folder}/kustomization.yaml"] = emit_yaml(
        _overlay_kustomization(base, env, resources, patches), head
    )
    return files


def _overlay_kustomization(
    base: Compiled, env: Environment, resources: list[str], patches: list[str]
) -> dict:
    kustomization: dict = {
        **KUSTOMIZATION,
        "namespace": env.namespace,
        "resources": [f"../../{base_dir(env.app)}", *sorted(resources)],
    }
    if patches:
        kustomization["patches"] = [{"path": path} for path in sorted(patches)]
    kustomization["labels"] = [{"pairs": environment_labels(env), "includeTemplates": True}]
    new_name, new_tag, digest = image_change(env)
    image: dict = {"name": env.image_name}
    if new_name:
        image["newName"] = new_name
    if new_tag:
        image["newTag"] = new_tag
    if digest:
        image["digest"] = digest
    kustomization["images"] = [image]
    return kustomization
