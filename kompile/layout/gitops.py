"""The objects that make Argo CD or Flux sync the output: gitops/argocd/ or gitops/flux/.

Each tool gets one object per environment pointing at overlays/<env> on that environment's
cluster, a kustomization.yaml listing them (what the root syncs), and bootstrap.yaml: the one
file a person applies by hand to hand the repo to the controller.
"""

from __future__ import annotations

from kompile.emit import emit_yaml, header
from kompile.k8s.meta import file_name
from kompile.model import Environment, GitOpsTool
from kompile.render.gitops import argocd, flux

GITOPS = "gitops"
KUSTOMIZATION = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization"}


def layout_gitops(
    base: Environment, envs: list[Environment], kinds: set[tuple[str, str]]
) -> dict[str, bytes]:
    """The GitOps files for these environments; kinds are the (API group, kind) pairs they deploy."""
    gitops = base.gitops
    if gitops is None:
        return {}
    if gitops.tool is GitOpsTool.ARGOCD:
        folder = f"{GITOPS}/argocd"
        managed, bootstrap = argocd.render_argocd(base, envs, kinds)
    else:
        folder = f"{GITOPS}/flux"
        managed, bootstrap = flux.render_flux(base, envs)
    head = header(
        (base.sources[0], *(e.sources[-1] for e in envs))
        if len(envs) < 6
        else (base.sources[0], "environments/*.yaml")
    )
    files, listed = {}, []
    for obj in managed:  # each object written out as it is made: only the bytes are kept
        listed.append(file_name(obj))
        files[f"{folder}/{listed[-1]}"] = emit_yaml(obj, head)
    files[f"{folder}/kustomization.yaml"] = emit_yaml({**KUSTOMIZATION, "resources": sorted(listed)}, head)
    files[f"{folder}/bootstrap.yaml"] = b"".join(
        emit_yaml(obj, head if index == 0 else "---\n") for index, obj in enumerate(bootstrap)
    )
    return files
