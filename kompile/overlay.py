"""Reading a generated overlay back into the objects it deploys: the part of kustomize that kompile's
own output uses (resources, strategic merge patches, namespace, labels, images).

`kompile diff` compares these objects, as committed, with what the specs now produce, without running
kustomize. tests/test_overlay.py holds this reader equal to `kubectl kustomize` on every golden case.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import yaml

from kompile.k8s.strategic import DIRECTIVE, apply_patch, as_kustomize_reads
from kompile.k8s.transformers import with_labels, with_namespace, with_object_images, with_subject_namespaces
from kompile.layout import overlay_dir

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class OverlayError(ValueError):
    """The overlay on disk is not one kompile could have written (a hand edit, or a missing file)."""


def read_overlay(root: Path, env: str) -> list[dict] | None:
    """The objects overlays/<env> deploys, or None when there is no such overlay."""
    folder = root / overlay_dir(env)
    if not (folder / "kustomization.yaml").is_file():
        return None
    return _build(root, PurePosixPath(overlay_dir(env)), depth=0)


def _load(path: Path) -> list:
    try:
        return [doc for doc in yaml.load_all(path.read_bytes(), Loader=_Loader) if doc is not None]
    except (OSError, yaml.YAMLError) as exc:
        raise OverlayError(f"cannot read {path}: {exc}") from None


def _build(root: Path, folder: PurePosixPath, depth: int) -> list[dict]:
    if depth > 4:
        raise OverlayError(f"{folder}: bases nest too deeply")
    kustomization = _load(root / folder / "kustomization.yaml")[0]
    objects: list[dict] = []
    for entry in kustomization.get("resources") or ():
        rel = _join(folder, entry)
        if (root / rel).is_dir():
            objects.extend(_build(root, rel, depth + 1))
        else:
            objects.extend(_load(root / rel))
    for entry in kustomization.get("patches") or ():
        for patch in _load(root / _join(folder, entry["path"])):
            objects = _patch(objects, patch)
    namespace = kustomization.get("namespace")
    # Service accounts of the build, with the namespace their files state (kustomize's name references).
    accounts = {o["metadata"]["name"]: o["metadata"].get("namespace") for o in objects if o.get("kind") == "ServiceAccount"}
    built = []
    for obj in objects:
        if namespace:
            obj = with_subject_namespaces(with_namespace(obj, namespace), namespace, accounts)
        for labels in kustomization.get("labels") or ():
            obj = with_labels(obj, labels.get("pairs") or {}, bool(labels.get("includeTemplates")))
        for image in kustomization.get("images") or ():
            obj = with_object_images(obj, image["name"], image.get("newName"), image.get("newTag"), image.get("digest"))
        built.append(as_kustomize_reads(obj))
    return built


def _join(folder: PurePosixPath, entry: str) -> PurePosixPath:
    parts: list[str] = []
    for part in (folder / entry).parts:
        if part == "..":
            if not parts:
                raise OverlayError(f"{entry} leaves the repo")
            parts.pop()
        elif part != ".":
            parts.append(part)
    return PurePosixPath(*parts)


def _patch(objects: list[dict], patch: dict) -> list[dict]:
    kind, name = patch.get("kind"), (patch.get("metadata") or {}).get("name")
    matches = [i for i, obj in enumerate(objects) if obj.get("kind") == kind and obj["metadata"].get("name") == name]
    if len(matches) != 1:
        raise OverlayError(f"patch {kind}/{name} matches {len(matches)} objects")
    index = matches[0]
    if patch.get(DIRECTIVE) == "delete":
        return objects[:index] + objects[index + 1:]
    objects[index] = apply_patch(objects[index], patch)
    return objects
