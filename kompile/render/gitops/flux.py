"""Flux: a GitRepository for this repo, one Kustomization per environment, and a root Kustomization
that reconciles them (bootstrap)."""

from __future__ import annotations

import re

from kompile import names
from kompile.k8s import meta
from kompile.model import Environment, Hydration

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
        "spec": {
            "ignore": source_ignore(gitops.path, _kept(gitops.hydration)),
            "interval": "1m",
            "ref": ref,
            "url": gitops.repo_url,
        },
    }


def _kept(hydration: Hydration) -> tuple[str, ...]:
    """The output folders the controller reads: rendered/ only when it syncs rendered manifests."""
    return tuple(f for f in names.OUTPUT_FOLDERS if f != names.RENDERED or hydration is Hydration.RENDERED)


def hydrated_repository(base: Environment, env: Environment) -> dict:
    """The branch an environment's hydrated manifests are committed to (kompile hydrate), holding only
    this app's folder in the artifact."""
    gitops = base.gitops
    return {
        "apiVersion": SOURCE_API,
        "kind": "GitRepository",
        "metadata": {"name": env.instance, "namespace": gitops.namespace, "labels": meta.labels(base.app)},
        "spec": {
            "ignore": source_ignore("", (names.hydrated_folder(base.app, base.gitops.path),)),
            "interval": "1m",
            "ref": {"name": f"refs/heads/{gitops.sync_branch(env.name)}"},
            "url": gitops.repo_url,
        },
    }


def source_ignore(path: str, kept: tuple[str, ...] = ("bases", "overlays", "gitops")) -> str:
    """.sourceignore lines that leave only the kept folders under path (the output's folder)."""
    lines, parent = ["/*"], ""
    for part in [p for p in path.split("/") if p]:
        parent = f"{parent}/{part}"
        lines += [f"!{parent}/", f"{parent}/*"]
    lines += [f"!{parent}/{folder}/" for folder in kept]
    return "\n".join(lines) + "\n"


def kustomization(
    base: Environment,
    name: str,
    path: str,
    cluster: str | None,
    decrypt: bool = False,
    source: str | None = None,
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
            "sourceRef": {"kind": "GitRepository", "name": source or base.app},
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


def render_flux(base: Environment) -> tuple[list[dict], list[dict]]:
    """The object the root syncs that every environment shares (the GitRepository), and the bootstrap.
    Each environment's own objects come from flux_objects."""
    root = kustomization(base, names.gitops_root(base.app), base.gitops.source_path("gitops/flux"), None)
    return [git_repository(base)], [git_repository(base), root]


def flux_objects(base: Environment, env: Environment) -> list[dict]:
    """What the root syncs for this environment alone: its Kustomization (and, hydrated to a branch, the
    GitRepository of that branch)."""
    gitops = base.gitops
    decrypt = bool(env.sops_secrets)
    if gitops.hydration is Hydration.BRANCHES:
        path = names.hydrated_folder(base.app, base.gitops.path)
        return [
            hydrated_repository(base, env),
            kustomization(base, env.instance, path, env.cluster, decrypt, source=env.instance),
        ]
    folder = names.RENDERED if gitops.hydration is Hydration.RENDERED else "overlays"
    return [
        kustomization(base, env.instance, gitops.source_path(f"{folder}/{env.name}"), env.cluster, decrypt)
    ]
