"""Every name kompile derives from an app's and an environment's names, defined once.

The cluster, Argo CD and Flux see these names; validate checks their lengths, render writes them, and
the GitOps objects refer to them, so each is spelled in exactly one place.
"""

from __future__ import annotations

import re


def instance(app: str, env: str) -> str:
    """An environment's Application or Kustomization, and its namespace unless the spec names one."""
    return f"{app}-{env}"


def component(app: str, name: str) -> str:
    """A component's Deployment, CronJob, Service, ServiceAccount, Ingress, ..."""
    return f"{app}-{name}"


def config_map(app: str) -> str:
    """The ConfigMap of the App's plain settings."""
    return f"{app}-config"


def default_deny(app: str) -> str:
    """The NetworkPolicy that denies all ingress and egress of every pod."""
    return f"{app}-default-deny"


# What kompile build writes, at the top of the output: the overlays' bases, the overlays, the GitOps
# objects, and (with gitops.hydration mode rendered) each environment's rendered manifests.
OUTPUT_FOLDERS = ("bases", "overlays", "gitops", "rendered")
RENDERED = "rendered"
RENDERED_MANIFEST = "manifest.yaml"  # in rendered/<env>/, and in an app's folder on a hydrated branch


def hydrated_folder(app: str, path: str = "") -> str:
    """The app's folder on a hydrated branch: where its output lives in the repository (gitops.path),
    or its name at the top. Apps of a monorepo share a branch per environment, each in its own folder."""
    return path or app


def gitops_root(app: str) -> str:
    """The root Application or Kustomization that syncs gitops/<tool>/ (so no environment is named gitops)."""
    return f"{app}-gitops"


def preview(app: str, number: str) -> str:
    """A pull request's preview: its Application and its namespace (number may be a template action)."""
    return f"{app}-pr-{number}"


def is_preview(app: str, name: str) -> bool:
    return re.fullmatch(rf"{re.escape(app)}-pr-[0-9]+", name) is not None


def kubeconfig_secret(cluster: str) -> str:
    """The Secret Flux reads a remote cluster's kubeconfig from, named after its host."""
    host = re.sub(r"^https://", "", cluster).split("/", 1)[0].split(":", 1)[0]
    slug = re.sub(r"[^a-z0-9]+", "-", host.lower()).strip("-")[:50] or "cluster"
    return f"{slug}-kubeconfig"
