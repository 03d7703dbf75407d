"""Image references: tagged, never latest, pinned by digest in production."""

from __future__ import annotations

from kompile.errors import Code
from kompile.k8s.kinds import Unknown, classify
from kompile.policy.pods import (
    Unclassifiable,
    containers,
    pod_specs,
)


def image_problem(image, production: bool) -> tuple[Code, str, str] | None:
    """What is wrong with a container's image reference: none, an unpinned one, or (production) no digest."""
    if not isinstance(image, str) or not image:
        return Code.UNCLASSIFIABLE, "names no image", "set image: to a repository with a tag or digest"
    name, _, digest = image.partition("@")
    slash, colon = name.rfind("/"), name.rfind(":")
    tag = name[colon + 1 :] if colon > slash else None
    if not digest and not tag:
        return (
            Code.LATEST_TAG,
            f"runs '{image}' with no tag or digest, so Kubernetes would pull 'latest'",
            "pin a version tag or a digest",
        )
    if not digest and tag == "latest":
        return (
            Code.LATEST_TAG,
            f"runs '{image}': the tag 'latest' names no release",
            "pin a version tag or a digest",
        )
    if production and not digest:
        return (
            Code.PROD_DIGEST,
            f"runs '{image}', not pinned by digest (production)",
            "pin the image by digest: <repository>@sha256:...",
        )
    return None


def images_of(obj: dict) -> list[str]:
    """Every container image in an object (for tests and reports)."""
    kind = classify(obj.get("apiVersion"), obj.get("kind"))
    if isinstance(kind, Unknown):
        return []
    try:
        specs, _ = pod_specs(obj, kind)
    except Unclassifiable:
        return []
    return [str(c.get("image")) for pod, _ in specs for _, c in containers(pod)]
