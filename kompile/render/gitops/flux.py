"""Flux: a GitRepository for this repo, one Kustomization per environment, and a root Kustomization
that reconciles them (bootstrap)."""

from __future__ import annotations

import re

from kompile import names
from kompile.k8s import meta
from kompile.model import Environment

SOURCE_API = "source.toolkit.fluxcd.io/v1"
KUSTOMIZE_API = "kustomize.toolkit.fluxcd.io/v1"
IN_CLUSTER = ("https://kubernetes.default.svc", "in-cluster")


def git_repository(base: Environment) -> dict:
    gitops = base.gitops
    ref = (
        {"commit": gitops.revision}
        if re.fullmatch(r"[0-9a-f]{40}", gitops.revision)
        else {"name": gitops.ref}
    )
    return {
        "apiVersion": SOURCE_API,
        "kind": "GitRepository",
        "metadata": {"name": base.app, "namespace": gitops.namespace, "labels": meta.labels(base.app)},
        # The artifact holds only the output folders: a commit that changes nothing in them changes no
        # artifact, so no Kustomization reconciles for it (what Argo CD's manifest-generate-paths does).
        "spec": {"ignore": source_ignore(gitops.path), "interval": "1m", "ref": ref, "url": gitops.repo_url},
    }


def source_ignore(path: str) -> str:
    """.sourceignore lines that leave only bases/, overlays/ and gitops/ (under the output's folder)."""
    lines, parent = ["/*"], ""
    for part in [p for p in path.split("/") if p]:
        parent = f"{parent}/{part}"
        lines += [f"!{parent}/", f"{parent}/*"]
    lines += [f"!{parent}/{folder}/" for folder in ("bases", "overlays", "gitops")]
    return "\n".join(lines) + "\n"


def kustomization(
    base: Environment, name: str, path: str, cluster: str | None, decrypt: bool = False
) -> dict:
    gitops = base.gitops
    spec: dict = {}
    if (
        decrypt
    ):  # the overlay holds sops-encrypted Secrets: Flux decrypts them with this key before it applies
        spec["decryption"] = {"provider": "sops", "secretRef": {"name": gitops.sops_key_secret}}
    spec["interval"] = gitops.interval
    if cluster is not None and cluster not in IN_CLUSTER:
        # A remote cluster: Flux reads its kubeconfig from this Secret (create it once per cluster).
        spec["kubeConfig"] = {"secretRef": {"name": names.kubeconfig_secret(cluster)}}
    # No targetNamespace: the overlay sets every object's namespace itself.
    spec.update(
        {
            "path": f"./{path}",
            "prune": True,
            "retryInterval": "1m",
            "sourceRef": {"kind": "GitRepository", "name": base.app},
            "timeout": gitops.timeout,
            "wait": True,
        }
    )
    return {
        "apiVersion": KUSTOMIZE_API,
        "kind": "Kustomization",
        "metadata": {"name": name, "namespace": gitops.namespace, "labels": meta.labels(base.app)},
        "spec": spec,
    }


def render_flux(base: Environment, envs: list[Environment]) -> tuple[list[dict], list[dict]]:
    managed = [git_repository(base)]
    managed.extend(
        kustomization(
            base,
            env.instance,
            base.gitops.source_path(f"overlays/{env.name}"),
            env.cluster,
            decrypt=bool(env.sops_secrets),
        )
        for env in envs
    )
    root = kustomization(base, names.gitops_root(base.app), base.gitops.source_path("gitops/flux"), None)
    return managed, [git_repository(base), root]
