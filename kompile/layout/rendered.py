"""rendered/<env>/manifest.yaml: what `kubectl kustomize overlays/<env>` prints, byte for byte, for
teams whose controller syncs plain manifests (and for `kompile hydrate`, which commits the same bytes
to a branch)."""

from __future__ import annotations

from kompile.emit.kustomize import emit_kustomize
from kompile.k8s.transformers import in_kustomize_order
from kompile.layout import Compiled

RENDERED = "rendered"
MANIFEST = "manifest.yaml"


def rendered_dir(env: str) -> str:
    return f"{RENDERED}/{env}"


def rendered_manifest(compiled: Compiled) -> bytes:
    """The environment's objects in kustomize's order and its printing (compiled.objects are what the
    overlay's transformers leave; tests/test_rendered.py holds them byte-equal to kubectl kustomize)."""
    return emit_kustomize(in_kustomize_order(compiled.objects))


def layout_rendered(compiled: Compiled) -> dict[str, bytes]:
    return {f"{rendered_dir(compiled.env.name)}/{MANIFEST}": rendered_manifest(compiled)}
