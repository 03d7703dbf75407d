"""rendered/<env>/manifest.yaml: what `kubectl kustomize overlays/<env>` prints, byte for byte, for
teams whose controller syncs plain manifests (and for `kompile hydrate`, which commits the same bytes
to a branch)."""

from __future__ import annotations

from kompile.emit.kustomize import emit_kustomize
from kompile.k8s.transformers import in_kustomize_order
from kompile.layout import Compiled
from kompile.names import RENDERED, RENDERED_MANIFEST


def rendered_dir(env: str) -> str:
    return f"{RENDERED}/{env}"


def rendered_manifest(compiled: Compiled) -> bytes:
    """The environment's objects in kustomize's order and its printing (compiled.objects are what the
    overlay's transformers leave; tests/test_rendered.py holds them byte-equal to kubectl kustomize)."""
    return emit_kustomize(in_kustomize_order(compiled.objects))


def layout_rendered(compiled: Compiled) -> dict[str, bytes]:
    return {rendered_path(compiled.env.name): rendered_manifest(compiled)}


def rendered_path(env: str) -> str:
    return f"{rendered_dir(env)}/{RENDERED_MANIFEST}"


def rendered_environment(path: str) -> str | None:
    """The environment whose rendered manifest this output path is (None for any other path)."""
    parts = path.split("/")
    return parts[1] if len(parts) == 3 and parts[0] == RENDERED and parts[2] == RENDERED_MANIFEST else None
