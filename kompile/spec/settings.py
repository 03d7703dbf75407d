"""Where settings may be written (App, Environment or both), which lists are collections, and which
settings moved (with what to write instead)."""

from __future__ import annotations

from kompile.spec.platform import (
    GITOPS,
    IMAGE,
    INGRESS,
    MONITORING,
    NETWORK,
    PATCH,
    SEALED_SECRET,
    SECRET,
    SECURITY,
)
from kompile.spec.structure import Collection, ListOf, MapOf, Obj
from kompile.spec.types import CLUSTER, NAME, Bool, Field, Int, Str
from kompile.spec.workloads import (
    COMMAND,
    COMPONENT,
    ENV_KEY,
    IDENTITY,
    PATH,
    RESOURCES,
    SIDECAR,
    SUBDOMAIN,
)

SHARED_FIELDS: dict[str, Field] = {
    "image": Field(IMAGE, "The app's image: the App names the repository, each environment a tag or digest"),
    "env": Field(
        MapOf(Str(), ENV_KEY, "variable"), "Plain settings, as a ConfigMap the pods read (never secrets)"
    ),
    "secrets": Field(
        Collection(SECRET, what="secret"), "Secrets the pods read; every environment provides them sealed"
    ),
    "components": Field(MapOf(COMPONENT, NAME, "component"), "The processes of the app, by name"),
    "sidecars": Field(
        Collection(SIDECAR, what="sidecar"),
        "Containers that run beside a component's (native sidecars), "
        "used by name from components and migrate",
    ),
    "initContainers": Field(
        Collection(SIDECAR, what="init container"),
        "Containers that run to completion before a component's, used by name from components and migrate",
    ),
    "identity": Field(
        IDENTITY,
        "Cloud identities of the app's ServiceAccount (every component without one of its own, and migrate)",
    ),
    "migrate": Field(
        Obj(
            {
                "command": Field(COMMAND, "The migration command", required=True),
                "timeoutSeconds": Field(Int(30, 86400), "Deadline of the migration Job", default=900),
                "backoffLimit": Field(Int(0, 10), "Retries before the Job fails", default=1),
                "resources": Field(RESOURCES, "Requests and limits of the Job"),
                "sidecars": Field(
                    ListOf(NAME), "Sidecars it needs (a database proxy); they stop when the migration ends"
                ),
                "secrets": Field(
                    ListOf(SUBDOMAIN), "Only these of the App's secrets reach it (all when absent)"
                ),
                "initContainers": Field(ListOf(NAME), "Init containers it needs"),
            }
        ),
        "A Job that runs before each release reaches the pods",
    ),
    "network": Field(NETWORK, "Who may connect to the app and where it may connect"),
    "ingress": Field(INGRESS, "Public HTTP(S) entry to a web component"),
    "cluster": Field(
        Str(CLUSTER, "an API server URL (https://...) or a cluster name"),
        "The cluster this environment deploys to",
    ),
    "security": Field(SECURITY, "Identity of the pods' processes"),
    "monitoring": Field(MONITORING, "Where Prometheus runs and how it finds the ServiceMonitors"),
    "extraResources": Field(
        Collection(PATH, key=None, what="manifest"),
        "Extra Kubernetes manifests to include, relative to the repo root (a list, or a map of name: path)",
    ),
    "patches": Field(
        Collection(PATCH, what="patch"), "Kustomize-style patches applied to what kompile generates"
    ),
}


def collection_paths(fields: dict[str, Field], prefix: tuple[str, ...] = ()):
    """Where the Collections among these settings are ((path, collection) pairs): the lists that add up."""
    for key, spec_field in fields.items():
        if isinstance(spec_field.type, Collection):
            yield (*prefix, key), spec_field.type
        elif isinstance(spec_field.type, Obj):
            yield from collection_paths(spec_field.type.fields, (*prefix, key))
        elif isinstance(spec_field.type, MapOf) and isinstance(
            spec_field.type.value, Obj
        ):  # in every entry: "*"
            yield from collection_paths(spec_field.type.value.fields, (*prefix, key, "*"))


# Settings that moved: where they are now (a clear error instead of a silent change).
MOVED = {
    "rbac": "rbac moved into the components that call the Kubernetes API: `components.<name>.rbac: {rules: [...]}` "
    "(only their pods get an API token, and migrate none)",
}

COLLECTIONS = tuple(collection_paths(SHARED_FIELDS))

ALLOW_KINDS = ListOf(
    Obj(
        {
            "group": Field(
                Str(
                    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)?$",
                    "an API group ('' for the core group)",
                ),
                "API group ('' for the core group)",
                required=True,
            ),
            "kind": Field(
                Str(r"^[A-Za-z]([-A-Za-z0-9]*[A-Za-z0-9])?$", "a kind such as ScaledObject"),
                "Kind",
                required=True,
            ),
            "namespaced": Field(
                Bool(), "Whether its objects live in a namespace; required for kinds kompile does not know"
            ),
        }
    )
)

APP_ONLY = {
    "gitops": Field(GITOPS, "How Argo CD or Flux syncs the output"),
    "allowKinds": Field(
        ALLOW_KINDS,
        "Kinds extra resources may have besides kompile's own, each listed on every run "
        "(and the only ones an Argo CD AppProject allows besides kompile's own)",
    ),
}
ENVIRONMENT_ONLY = {
    "namespace": Field(NAME, "Namespace of this environment", default="<app>-<environment>"),
    "extends": Field(NAME, "Another environment whose settings this one starts from"),
    "tier": Field(
        Str(enum=("development", "staging", "production", "preview")),
        "production turns on the production rules",
    ),
    "sealedSecrets": Field(
        MapOf(SEALED_SECRET, SUBDOMAIN, "secret"), "The sealed value of each secret the App declares"
    ),
    "externalSecrets": Field(
        Obj(
            {
                "store": Field(
                    Obj(
                        {
                            "name": Field(SUBDOMAIN, "The SecretStore or ClusterSecretStore", required=True),
                            "kind": Field(
                                Str(enum=("SecretStore", "ClusterSecretStore")),
                                "Its kind",
                                default="SecretStore",
                            ),
                        }
                    ),
                    "Where External Secrets Operator reads the values",
                    required=True,
                ),
                "refreshInterval": Field(
                    Str(r"^([0-9]+h)?([0-9]+m)?([0-9]+s)?$", "a duration such as 1h0m0s"),
                    "How often it reads them again",
                    default="1h0m0s",
                ),
                "secrets": Field(
                    MapOf(
                        Obj(
                            {
                                "key": Field(
                                    Str(r"^\S+$", "a key in the store"),
                                    "The entry in the store",
                                    required=True,
                                ),
                                "properties": Field(
                                    MapOf(Str(r"^\S+$", "a property"), ENV_KEY, "key"),
                                    "The property of each declared key (the key's own name when absent)",
                                ),
                            }
                        ),
                        SUBDOMAIN,
                        "secret",
                    ),
                    "Each secret the App declares, from the store",
                    required=True,
                ),
            }
        ),
        "Secrets from an external store (External Secrets Operator), instead of sealed values",
    ),
    "sopsSecrets": Field(
        MapOf(
            Obj(
                {
                    "file": Field(
                        PATH,
                        "A Secret manifest encrypted with sops (data or stringData encrypted), relative to the repo root",
                        required=True,
                    ),
                }
            ),
            SUBDOMAIN,
            "secret",
        ),
        "Secrets encrypted with sops, which Flux decrypts (Flux only)",
    ),
    "pullRequests": Field(
        Obj(
            {
                "github": Field(
                    Obj(
                        {
                            "owner": Field(
                                Str(r"^[A-Za-z0-9][-A-Za-z0-9_.]*$", "a GitHub owner"),
                                "Owner of the app's repository",
                                required=True,
                            ),
                            "repo": Field(
                                Str(r"^[A-Za-z0-9][-A-Za-z0-9_.]*$", "a repository name"),
                                "The app's repository",
                                required=True,
                            ),
                            "tokenSecret": Field(
                                SUBDOMAIN,
                                "Secret (in Argo CD's namespace) whose `token` key reads pull requests",
                            ),
                            "labels": Field(ListOf(Str()), "Only pull requests with these labels"),
                        }
                    ),
                    "Pull requests of a GitHub repository",
                ),
                "gitlab": Field(
                    Obj(
                        {
                            "project": Field(
                                Str(r"^\S+$", "a project ID or path"), "The app's project", required=True
                            ),
                            "api": Field(
                                Str(r"^https://\S+$", "an https:// URL"),
                                "GitLab's URL, for a self-hosted GitLab",
                            ),
                            "tokenSecret": Field(
                                SUBDOMAIN,
                                "Secret (in Argo CD's namespace) whose `token` key reads merge requests",
                            ),
                            "labels": Field(ListOf(Str()), "Only merge requests with these labels"),
                        }
                    ),
                    "Merge requests of a GitLab project",
                ),
                "host": Field(
                    Str(
                        r"^[a-z0-9{}.-]*\{number\}[a-z0-9{}.-]*$",
                        "a host with {number}, e.g. pr-{number}.preview.example.com",
                    ),
                    "Each preview's host",
                    required=True,
                ),
                "imageTag": Field(
                    Str(r"^[A-Za-z0-9_.{}-]+$", "a tag such as pr-{number} or {head_sha}"),
                    "The image tag CI pushes for a pull request ({number}, {head_sha}, {head_short_sha})",
                    default="{head_sha}",
                ),
                "requeueAfterSeconds": Field(
                    Int(30, 86400), "How often Argo CD looks for pull requests", default=300
                ),
            },
            one_of=("github", "gitlab"),
        ),
        "This environment is a template: one preview per open pull request (Argo CD)",
    ),
}
