"""An environment merged and checked, and what the rules share: limits, the GitOps tool, sealing scopes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from kompile.load.project import Project
from kompile.source import YMap

if TYPE_CHECKING:
    from kompile.validate.clusters import Placement

SEALED_SECRET_API = "bitnami.com/v1alpha1"
SCOPE_ANNOTATIONS = {
    "namespace-wide": "sealedsecrets.bitnami.com/namespace-wide",
    "cluster-wide": "sealedsecrets.bitnami.com/cluster-wide",
}

IMAGE_FIELDS_HINT = "pin the image by digest: image: {digest: sha256:...}"


@dataclass(frozen=True)
class Resolved:
    """One environment, merged and checked: what normalise/ turns into the model."""

    name: str
    settings: YMap | None  # None once checked, in a large repo: resolve() merges it again to compile
    chain: tuple[str, ...]
    sources: tuple[str, ...]  # the App's file and the environments' files, in merge order
    placement: Placement | None = None  # what the rules across environments read
    reads: tuple[str, ...] = ()  # the other files its rules read (sealed secrets, extra resources, patches)


MAX_COMPONENTS = 100  # more is a mistake (or an attempt at the CI machine's time), not an app


MAX_EXTRA_OBJECTS = 1000


def gitops_tool(project: Project) -> str | None:
    gitops = project.app.spec.get("gitops")
    return gitops.get("tool") if isinstance(gitops, YMap) else None
