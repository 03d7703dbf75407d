"""The objects that make Argo CD or Flux sync the output: gitops/argocd/ or gitops/flux/.

Each tool gets one object per environment pointing at overlays/<env> on that environment's
cluster, a kustomization.yaml listing them (what the root syncs), and bootstrap.yaml: the one
file a person applies by hand to hand the repo to the controller.
"""

from __future__ import annotations

from collections.abc import Iterable

from kompile.emit import emit_yaml, header
from kompile.k8s.meta import file_name
from kompile.model import Environment, GitOpsTool
from kompile.render.gitops import argocd, flux

GITOPS = "gitops"
KUSTOMIZATION = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization"}


def gitops_header(base: Environment, sources: list[str]) -> str:
    """What heads every GitOps file, given each environment's own spec file."""
    return header(
        (base.sources[0], *sources) if len(sources) < 6 else (base.sources[0], "environments/*.yaml")
    )


def _folder(base: Environment) -> str:
    return f"{GITOPS}/{'argocd' if base.gitops.tool is GitOpsTool.ARGOCD else 'flux'}"


def environment_gitops(base: Environment, env: Environment, head: str) -> dict[str, bytes]:
    """The GitOps files of one environment alone (its Application or Kustomization): a large repo's are
    made where the environment compiles, beside its overlay."""
    if base.gitops is None:
        return {}
    objects = (argocd.argocd_objects if base.gitops.tool is GitOpsTool.ARGOCD else flux.flux_objects)(
        base, env
    )
    folder = _folder(base)
    return {f"{folder}/{file_name(obj)}": emit_yaml(obj, head) for obj in objects}


def layout_gitops(
    base: Environment,
    envs: list[Environment],
    kinds: set[tuple[str, str]],
    made: Iterable[str] | None = None,
) -> dict[str, bytes]:
    """The GitOps files for these environments; kinds are the (API group, kind) pairs they deploy. With
    `made`, the paths of every environment's own files made already (environment_gitops), only the files
    that describe them all are made here."""
    gitops = base.gitops
    if gitops is None:
        return {}
    if gitops.tool is GitOpsTool.ARGOCD:
        shared, bootstrap = argocd.render_argocd(base, envs, kinds)
    else:
        shared, bootstrap = flux.render_flux(base)
    head = gitops_header(base, [e.sources[-1] for e in envs])
    folder = _folder(base)
    files = {f"{folder}/{file_name(obj)}": emit_yaml(obj, head) for obj in shared}
    if made is None:
        for env in envs:  # each environment's files written out as they are made: only the bytes are kept
            files.update(environment_gitops(base, env, head))
        made = ()
    listed = sorted(path.rpartition("/")[2] for path in (*files, *made))
    files[f"{folder}/kustomization.yaml"] = emit_yaml({**KUSTOMIZATION, "resources": listed}, head)
    files[f"{folder}/bootstrap.yaml"] = b"".join(
        emit_yaml(obj, head if index == 0 else "---\n") for index, obj in enumerate(bootstrap)
    )
    return files
