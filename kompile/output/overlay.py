"""Reading a generated overlay back into the objects it deploys: the part of kustomize that kompile's
own output uses (resources, strategic merge patches, namespace, labels, images).

`kompile diff` compares these objects, as committed, with what the specs now produce, without running
kustomize. tests/test_overlay.py holds this reader equal to `kubectl kustomize` on every golden case.
"""

from __future__ import annotations

import stat
from pathlib import Path, PurePosixPath

from kompile.errors import KompileError, Span
from kompile.inputs import decode_utf8
from kompile.k8s.strategic import DIRECTIVE, PatchError, apply_patch, as_kustomize_reads
from kompile.k8s.transformers import with_labels, with_namespace, with_object_images, with_subject_namespaces
from kompile.layout import overlay_dir
from kompile.safefs import Refused, Root
from kompile.source import YList, YMap, parse_manifests, plain

MAX_OUTPUT_BYTES = 16 << 20


class OverlayError(ValueError):
    """The overlay on disk is not one kompile could have written (a hand edit, a missing or damaged file)."""

    def __init__(self, message: str, span: Span) -> None:
        super().__init__(message)
        self.span = span


def read_overlay(root: Path, env: str) -> list[dict] | None:
    """The objects overlays/<env> deploys, or None when there is no such overlay."""
    with Root(root) as disk:
        try:
            info = disk.lstat(f"{overlay_dir(env)}/kustomization.yaml")
        except Refused as exc:  # (overlays/<env> a file, or a link: never followed)
            raise OverlayError(f"cannot read {exc.rel}: {exc.why}", Span(exc.rel)) from None
        if info is None or not stat.S_ISREG(info.st_mode):
            return None
        return _build(disk, PurePosixPath(overlay_dir(env)), depth=0)


def _load(disk: Root, rel: PurePosixPath) -> list[YMap]:
    """The documents of a committed file, read with kompile's own bounded loader (no links, no bombs)."""
    try:
        data = disk.read(rel.as_posix(), MAX_OUTPUT_BYTES)
        return parse_manifests(decode_utf8(data, rel.as_posix()), rel.as_posix())
    except Refused as exc:
        raise OverlayError(f"cannot read {rel}: {exc.why}", Span(rel.as_posix())) from None
    except KompileError as exc:
        first = exc.diagnostics[0]
        raise OverlayError(f"{rel} is damaged: {first.message}", first.span or Span(rel.as_posix())) from None
    except OSError as exc:
        raise OverlayError(f"cannot read {rel}: {exc.strerror}", Span(rel.as_posix())) from None


def _kustomization(disk: Root, folder: PurePosixPath) -> YMap:
    rel = folder / "kustomization.yaml"
    docs = _load(disk, rel)
    if len(docs) != 1:
        raise OverlayError(f"{rel} holds {len(docs)} documents, not one kustomization", Span(rel.as_posix()))
    body = docs[0]
    for key, shape in (("resources", str), ("patches", dict), ("labels", dict), ("images", dict)):
        value = body.get(key)
        if value is not None and not (
            isinstance(value, YList) and all(isinstance(item, shape) for item in value)
        ):
            raise OverlayError(f"{rel}: {key} is not a list kompile writes", body.value_span(key))
    namespace = body.get("namespace")
    if namespace is not None and not isinstance(namespace, str):
        raise OverlayError(f"{rel}: namespace is not a string", body.value_span("namespace"))
    for index, patch in enumerate(body.get("patches") or ()):
        if not isinstance(patch.get("path"), str):
            raise OverlayError(f"{rel}: patches[{index}] names no path", body["patches"].item_span(index))
    for index, labels in enumerate(body.get("labels") or ()):
        pairs = labels.get("pairs")
        if pairs is not None and not (
            isinstance(pairs, dict) and all(isinstance(v, str) for v in pairs.values())
        ):
            raise OverlayError(
                f"{rel}: labels[{index}].pairs is not a mapping of strings", body["labels"].item_span(index)
            )
    for index, image in enumerate(body.get("images") or ()):
        fields = [image.get(k) for k in ("name", "newName", "newTag", "digest")]
        if not isinstance(fields[0], str) or not all(f is None or isinstance(f, str) for f in fields[1:]):
            raise OverlayError(
                f"{rel}: images[{index}] is not an image kompile writes", body["images"].item_span(index)
            )
    return body


def _object(doc, rel: PurePosixPath) -> dict:
    metadata = doc.get("metadata")
    if not (
        isinstance(doc.get("apiVersion"), str)
        and isinstance(doc.get("kind"), str)
        and isinstance(metadata, dict)
        and isinstance(metadata.get("name"), str)
    ):
        raise OverlayError(f"{rel}: an object without apiVersion, kind or metadata.name", doc.span)
    return plain(doc)


def _build(disk: Root, folder: PurePosixPath, depth: int) -> list[dict]:
    if depth > 4:
        raise OverlayError(f"{folder}: bases nest too deeply", Span(folder.as_posix()))
    kustomization = _kustomization(disk, folder)
    objects: list[dict] = []
    for entry in kustomization.get("resources") or ():
        rel = _join(folder, entry)
        info = disk.lstat(rel.as_posix())
        if info is not None and stat.S_ISDIR(info.st_mode):
            objects.extend(_build(disk, rel, depth + 1))
        else:
            objects.extend(_object(doc, rel) for doc in _load(disk, rel))
    for entry in kustomization.get("patches") or ():
        rel = _join(folder, entry["path"])
        for patch in _load(disk, rel):
            objects = _patch(objects, plain(patch), rel)
    namespace = kustomization.get("namespace")
    # Service accounts of the build, with the namespace their files state (kustomize's name references).
    accounts = {
        o["metadata"]["name"]: o["metadata"].get("namespace")
        for o in objects
        if o.get("kind") == "ServiceAccount"
    }
    labels = [plain(item.get("pairs") or {}) for item in kustomization.get("labels") or ()]
    templates = [bool(item.get("includeTemplates")) for item in kustomization.get("labels") or ()]
    images = [plain(item) for item in kustomization.get("images") or ()]
    built = []
    for obj in objects:
        if namespace:
            obj = with_subject_namespaces(with_namespace(obj, namespace), namespace, accounts)
        for pairs, include in zip(labels, templates, strict=True):
            obj = with_labels(obj, pairs, include)
        for image in images:
            obj = with_object_images(
                obj, image["name"], image.get("newName"), image.get("newTag"), image.get("digest")
            )
        built.append(as_kustomize_reads(obj))
    return built


def _join(folder: PurePosixPath, entry: str) -> PurePosixPath:
    parts: list[str] = []
    for part in (folder / entry).parts:
        if part == "..":
            if not parts:
                raise OverlayError(
                    f"{entry} leaves the repo", Span((folder / "kustomization.yaml").as_posix())
                )
            parts.pop()
        elif part not in (".", "/"):
            parts.append(part)
    if not parts:
        raise OverlayError(f"{entry} names the repo itself", Span((folder / "kustomization.yaml").as_posix()))
    return PurePosixPath(*parts)


def _patch(objects: list[dict], patch: dict, rel: PurePosixPath) -> list[dict]:
    kind, name = (
        patch.get("kind"),
        (patch.get("metadata") or {}).get("name") if isinstance(patch.get("metadata"), dict) else None,
    )
    matches = [
        i for i, obj in enumerate(objects) if obj.get("kind") == kind and obj["metadata"].get("name") == name
    ]
    if len(matches) != 1:
        raise OverlayError(f"{rel}: patch {kind}/{name} matches {len(matches)} objects", Span(rel.as_posix()))
    index = matches[0]
    if patch.get(DIRECTIVE) == "delete":
        return objects[:index] + objects[index + 1 :]
    try:
        objects[index] = apply_patch(objects[index], patch)
    except PatchError as exc:
        raise OverlayError(f"{rel}: {exc}", Span(rel.as_posix())) from None
    return objects
