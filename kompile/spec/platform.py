"""The settings around workloads: secrets, network, ingress, monitoring, sealed secrets, security,
patches, the image and GitOps."""

from __future__ import annotations

from kompile.model import DEFAULT_BRANCH_PREFIX
from kompile.policy import RULES
from kompile.spec.checks import check_cidr, check_no_latest
from kompile.spec.structure import Collection, Either, ListOf, MapOf, Obj
from kompile.spec.types import (
    IMAGE_DIGEST,
    IMAGE_REPOSITORY,
    IMAGE_TAG,
    LABEL_KEY,
    NAME,
    URL_PATH,
    Anything,
    Bool,
    Field,
    Int,
    Quantity,
    Str,
)
from kompile.spec.workloads import EGRESS_RULE, ENV_KEY, LABELS, PATH, SUBDOMAIN

SECRET = Obj(
    {
        "name": Field(
            SUBDOMAIN, "Name of the Secret (and of the SealedSecret that unseals to it)", required=True
        ),
        "keys": Field(ListOf(ENV_KEY, 1), "Keys every environment must provide", required=True),
        "mount": Field(
            Str(enum=("env", "files")),
            "env: keys as environment variables; files: a read-only volume",
            default="env",
        ),
        "mountPath": Field(Str(r"^/[^\x00]*$", "an absolute path"), "Where files are mounted (mount: files)"),
    }
)

DNS_TARGET = Obj(
    {
        "name": Field(NAME, "A name, by which an environment replaces or removes it"),
        "namespace": Field(NAME, "Namespace of the DNS pods"),
        "podSelector": Field(LABELS, "Their labels"),
        "cidr": Field(
            Str(checks=(check_cidr,)),
            "An address that answers DNS (NodeLocal DNSCache, the GKE metadata server)",
        ),
    },
    one_of=("namespace", "cidr"),
)

NETWORK = Obj(
    {
        "ingressFrom": Field(
            Collection(
                Obj(
                    {
                        "name": Field(NAME, "A name, by which an environment replaces or removes it"),
                        "namespace": Field(NAME, "Namespace allowed to reach web components", required=True),
                        "podSelector": Field(LABELS, "Only pods with these labels in that namespace"),
                    }
                ),
                what="peer",
            ),
            "Who may reach web components; everything else is denied",
        ),
        "egress": Field(
            Collection(EGRESS_RULE, what="egress rule"), "Where every pod may connect; DNS is always allowed"
        ),
        "dns": Field(
            Collection(DNS_TARGET, what="DNS target"),
            "Where pods resolve names (default: the kube-dns pods and NodeLocal DNSCache's 169.254.20.10)",
        ),
        "cni": Field(
            Str(enum=("cilium", "other")),
            "The cluster's network plugin, for what plain NetworkPolicy cannot say (egress to host names)",
            default="other",
        ),
    }
)

ROUTE = Obj(
    {
        "name": Field(NAME, "A name, by which an environment replaces or removes it"),
        "path": Field(
            Str(URL_PATH, "a URL path starting with '/'"),
            "Path prefix (the longest matching prefix wins)",
            required=True,
        ),
        "component": Field(NAME, "The web component that serves it", required=True),
        "timeoutSeconds": Field(
            Int(1, 86400), "How long a request (or an idle websocket) may last, e.g. 3600 for websockets"
        ),
    }
)

INGRESS = Obj(
    {
        "host": Field(SUBDOMAIN, "Public host name; also sent as the Host header of HTTP probes"),
        "hosts": Field(
            ListOf(SUBDOMAIN, 1), "More public host names (the first of host and hosts is the probes' Host)"
        ),
        "className": Field(Str(), "IngressClass to use (Ingress only)"),
        "tlsSecret": Field(SUBDOMAIN, "Secret holding the TLS certificate of every host (Ingress only)"),
        "annotations": Field(
            MapOf(Str(), Str(LABEL_KEY, "an annotation key"), "annotation"),
            "Annotations for the ingress controller",
        ),
        "component": Field(
            NAME, "The web component to route to; needed only when there are several (without routes)"
        ),
        "path": Field(
            Str(URL_PATH, "a URL path starting with '/'"),
            "Path prefix routed to the component (without routes)",
            default="/",
        ),
        "routes": Field(
            Collection(ROUTE, what="route"),
            "Path prefixes routed to components, e.g. /ws to an ASGI component",
        ),
        "certificate": Field(
            Obj(
                {
                    "issuer": Field(NAME, "The cert-manager issuer", required=True),
                    "kind": Field(Str(enum=("ClusterIssuer", "Issuer")), "Its kind", default="ClusterIssuer"),
                    "http01": Field(
                        Bool(),
                        "The issuer solves HTTP-01 challenges: let the ingress controller reach cert-manager's "
                        "solver pods through the default deny",
                        default=False,
                    ),
                }
            ),
            "A cert-manager Certificate for tlsSecret, covering every host",
        ),
        "gateway": Field(
            Obj(
                {
                    "name": Field(NAME, "The Gateway", required=True),
                    "namespace": Field(
                        NAME, "Its namespace (the platform's; it must allow routes from this one)"
                    ),
                    "sectionName": Field(NAME, "The listener to attach to"),
                }
            ),
            "Route through a Gateway API Gateway (an HTTPRoute) instead of an Ingress; TLS is the Gateway's",
        ),
    }
)

MONITORING = Obj(
    {
        "namespace": Field(NAME, "Where Prometheus runs", default="monitoring"),
        "podSelector": Field(
            LABELS, "Prometheus' pod labels", default={"app.kubernetes.io/name": "prometheus"}
        ),
        "labels": Field(
            LABELS,
            "Labels every ServiceMonitor carries, so Prometheus selects it (e.g. release: kube-prometheus-stack)",
        ),
        "interval": Field(
            Str(r"^[0-9]+(ms|s|m|h)$", "a duration such as 30s"),
            "How often Prometheus scrapes",
            default="30s",
        ),
    }
)

SEALED_SECRET = Obj(
    {
        "encryptedData": Field(
            MapOf(
                Str(r"^[A-Za-z0-9+/=_-]+(\s+[A-Za-z0-9+/=_-]+)*$", "ciphertext as printed by kubeseal --raw"),
                ENV_KEY,
            ),
            "Ciphertext per key, as `kubeseal --raw` prints it",
        ),
        "scope": Field(
            Str(enum=("strict", "namespace-wide", "cluster-wide")),
            "The scope it was sealed with",
            default="strict",
        ),
        "file": Field(
            PATH, "A SealedSecret manifest written by `kubeseal -o yaml`, relative to the repo root"
        ),
    },
    one_of=("encryptedData", "file"),
)

SECURITY = Obj(
    {
        "runAsUser": Field(Int(10000, 2147483647), "User ID of every container", default=10001),
        "runAsGroup": Field(Int(10000, 2147483647), "Group ID of every container", default=10001),
        "fsGroup": Field(Int(10000, 2147483647), "Group that owns mounted volumes", default=10001),
        "tmpSize": Field(Quantity(), "Size limit of the writable /tmp (an emptyDir)", default="256Mi"),
        "allow": Field(
            ListOf(
                Obj(
                    {
                        "rule": Field(
                            Str(enum=tuple(RULES)),
                            "The hardening rule a patch or an extra resource may break",
                            required=True,
                        ),
                        "object": Field(
                            Str(
                                r"^[A-Za-z][A-Za-z0-9]*/[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
                                "Kind/name, e.g. Deployment/shop-web",
                            ),
                            "Only this object (all objects when absent)",
                        ),
                        "reason": Field(
                            Str(r"^\s*\S.{9,}", "a reason of at least ten characters"),
                            "Why: shown by `kompile validate`",
                            required=True,
                        ),
                    }
                )
            ),
            "Visible opt-outs from the hardening rules, each with a reason (none by default)",
        ),
    }
)

PATCH = Obj(
    {
        "name": Field(NAME, "A name, by which an environment replaces or removes it"),
        "path": Field(PATH, "A patch file relative to the repo root"),
        "patch": Field(
            Either(
                (Anything(dict), ListOf(Anything(dict, "a JSON patch operation"))),
                "a strategic merge patch (mapping) or JSON patch operations (list)",
            ),
            "An inline strategic merge patch (a mapping) or JSON patch (a list of operations)",
        ),
        "target": Field(
            Obj(
                {
                    "group": Field(Str(), "API group"),
                    "version": Field(Str(), "API version"),
                    "kind": Field(Str(), "Kind"),
                    "name": Field(Str(), "Object name"),
                }
            ),
            "Which object to patch; a strategic merge patch names it itself",
        ),
    },
    one_of=("path", "patch"),
)

IMAGE = Either(
    (
        Str(IMAGE_REPOSITORY, "an image repository such as ghcr.io/acme/shop"),
        Obj(
            {
                "repository": Field(
                    Str(IMAGE_REPOSITORY, "an image repository such as ghcr.io/acme/shop"), "Image repository"
                ),
                "tag": Field(
                    Str(IMAGE_TAG, "an image tag", checks=(check_no_latest,)), "Image tag, e.g. 1.4.3"
                ),
                "digest": Field(
                    Str(IMAGE_DIGEST, "a digest such as sha256:<64 hex digits>"),
                    "Image digest; production requires it",
                ),
            }
        ),
    ),
    "an image repository or {repository, tag, digest}",
)

GITOPS = Obj(
    {
        "tool": Field(
            Str(enum=("argocd", "flux")), "Which GitOps controller syncs the output", required=True
        ),
        "repoURL": Field(
            Str(r"^(https://|ssh://|git@)\S+$", "a Git URL (https://, ssh:// or git@)"),
            "The Git repository that holds the output",
            required=True,
        ),
        "revision": Field(
            Str(
                r"^(HEAD|refs/[A-Za-z0-9._/-]+|[0-9a-f]{40}|[A-Za-z0-9._][A-Za-z0-9._/-]*)$",
                "a branch, a commit or a ref such as refs/tags/v1.2",
            ),
            "Branch to follow (written as refs/heads/<branch>), a commit, or a ref written out (refs/tags/v1.2)",
            default="main",
        ),
        "path": Field(
            Str(
                r"^(?!.*(^|/)\.{1,2}(/|$))[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$",
                "a folder relative to the repository's top, such as deploy/shop (no '..', no leading or trailing /)",
            ),
            "Folder of the output inside the repository, for monorepos",
        ),
        "argocd": Field(
            Obj(
                {
                    "namespace": Field(NAME, "Namespace Argo CD runs in", default="argocd"),
                    "applicationSet": Field(
                        Bool(),
                        "One ApplicationSet (list generator) instead of one Application per environment",
                        default=False,
                    ),
                },
                elsewhere={
                    "allowKinds": "allowKinds moved to the App's spec (`spec.allowKinds`), where it covers Flux too; "
                    "add `namespaced: true|false` to each kind kompile does not know"
                },
            ),
            "Argo CD settings",
        ),
        "flux": Field(
            Obj(
                {
                    "namespace": Field(NAME, "Namespace Flux runs in", default="flux-system"),
                    "interval": Field(
                        Str(r"^[0-9]+(ms|s|m|h)$", "a duration such as 5m"),
                        "How often Flux reconciles each environment",
                        default="10m",
                    ),
                    "timeout": Field(
                        Str(r"^[0-9]+(ms|s|m|h)$", "a duration such as 5m"),
                        "How long Flux waits for an environment to become ready",
                        default="5m",
                    ),
                    "sopsKeySecret": Field(
                        SUBDOMAIN,
                        "Secret in Flux's namespace holding the sops key (age: a key ending in .agekey)",
                        default="sops-age",
                    ),
                }
            ),
            "Flux settings",
        ),
        "hydration": Field(
            Obj(
                {
                    "mode": Field(
                        Str(enum=("none", "rendered", "branches", "argocd")),
                        "none: the controller builds overlays/<env>; rendered: kompile build also writes "
                        "rendered/<env>/manifest.yaml (what kubectl kustomize prints) and the controller syncs "
                        "that; branches: kompile hydrate commits it to a branch per environment; argocd: "
                        "Argo CD's Source Hydrator renders the overlay into that branch",
                        required=True,
                    ),
                    "branchPrefix": Field(
                        Str(
                            r"^(?![.-])(?!.*(\.\.|//|@\{|\.lock/|/[.-]))[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*/?$",
                            "a branch name prefix such as environments/",
                        ),
                        "Hydrated branches are named <branchPrefix><environment>",
                        default=DEFAULT_BRANCH_PREFIX,
                    ),
                    "promoter": Field(
                        Bool(),
                        "Hydrate into <branch>-next and let GitOps Promoter (or a person) move it to <branch>; "
                        "false writes <branch> itself",
                        default=True,
                    ),
                }
            ),
            "Rendered manifests beside the overlays, or on branches",
        ),
    }
)
