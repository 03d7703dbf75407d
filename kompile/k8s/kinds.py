"""What kompile knows about Kubernetes kinds, in one table.

Every rule, transformer and check that needs a per-kind fact reads it here: the API group and the
versions a cluster serves, whether the kind is namespaced, where it keeps its pod spec, and the Argo CD
sync wave kompile gives it. A new kind is one row.

Kinds are matched as the API server matches them: by API group and kind, exactly (case-sensitive).
The built-in rows are what a Kubernetes v1.36 API server serves (`kubectl api-resources`), the custom
ones come from the CustomResourceDefinitions kompile writes or meets (tests/vendor/crds). A kind of a
group kompile does not know is a custom resource: `classify` says so, and the policy gate looks for pod
specs in it generically (policy/pods.py).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

_TEMPLATE = ("spec", "template", "spec")


@dataclass(frozen=True, slots=True)
class Kind:
    group: str  # "" for the core group
    name: str
    versions: tuple[str, ...]  # served versions
    namespaced: bool
    pod_spec: tuple[str, ...] | None = None  # where its pod spec is, for kinds that run pods
    wave: str | None = None  # Argo CD sync wave kompile gives objects of this kind
    builtin: bool = True
    appliable: bool = True  # False for create-only kinds (reviews, Binding) that no repo should hold
    own: bool = False  # kompile renders objects of this kind itself (the AppProject always allows them)
    delegates: bool = False  # its controller deploys or changes other objects with its own rights
    network: bool = (
        False  # a network policy of a CNI or of the Network Policy API, which kompile does not evaluate
    )

    @property
    def holds_pods(self) -> bool:
        return self.pod_spec is not None


def _rows(group: str, versions: str, namespaced: bool, kinds: str, **facts) -> list[Kind]:
    return [Kind(group, kind, tuple(versions.split()), namespaced, **facts) for kind in kinds.split()]


_BUILTIN = [
    *_rows("", "v1", True, "ConfigMap", wave="-1", own=True),
    *_rows("", "v1", True, "ServiceAccount", wave="-1", own=True),
    *_rows("", "v1", True, "Service", wave="1", own=True),
    *_rows("", "v1", True, "Endpoints Event LimitRange PersistentVolumeClaim ResourceQuota"),
    *_rows("", "v1", True, "Secret", wave="-1", own=True),  # only sops-encrypted, for Flux to decrypt
    *_rows("", "v1", True, "Pod", pod_spec=("spec",)),
    *_rows("", "v1", True, "PodTemplate", pod_spec=("template", "spec")),
    *_rows("", "v1", True, "ReplicationController", pod_spec=_TEMPLATE),
    *_rows("", "v1", True, "Binding", appliable=False),
    *_rows("", "v1", False, "Namespace", wave="-1", own=True),
    *_rows("", "v1", False, "ComponentStatus Node PersistentVolume"),
    *_rows(
        "admissionregistration.k8s.io",
        "v1",
        False,
        "MutatingAdmissionPolicy MutatingAdmissionPolicyBinding MutatingWebhookConfiguration "
        "ValidatingAdmissionPolicy ValidatingAdmissionPolicyBinding ValidatingWebhookConfiguration",
    ),
    *_rows("apiextensions.k8s.io", "v1", False, "CustomResourceDefinition"),
    *_rows("apiregistration.k8s.io", "v1", False, "APIService"),
    *_rows(
        "apps", "v1", True, "ControllerRevision", appliable=False
    ),  # written by controllers (a rollback runs it)
    *_rows("apps", "v1", True, "Deployment", pod_spec=_TEMPLATE, wave="1", own=True),
    *_rows("apps", "v1", True, "DaemonSet ReplicaSet StatefulSet", pod_spec=_TEMPLATE),
    *_rows("authentication.k8s.io", "v1", False, "SelfSubjectReview TokenReview", appliable=False),
    *_rows("authorization.k8s.io", "v1", True, "LocalSubjectAccessReview", appliable=False),
    *_rows(
        "authorization.k8s.io",
        "v1",
        False,
        "SelfSubjectAccessReview SelfSubjectRulesReview SubjectAccessReview",
        appliable=False,
    ),
    *_rows("autoscaling", "v2 v1", True, "HorizontalPodAutoscaler", wave="1", own=True),
    *_rows("batch", "v1", True, "Job", pod_spec=_TEMPLATE, wave="0", own=True),
    *_rows("batch", "v1", True, "CronJob", pod_spec=("spec", "jobTemplate", *_TEMPLATE), wave="1", own=True),
    *_rows("certificates.k8s.io", "v1", False, "CertificateSigningRequest"),
    *_rows("coordination.k8s.io", "v1", True, "Lease"),
    *_rows("discovery.k8s.io", "v1", True, "EndpointSlice"),
    *_rows("events.k8s.io", "v1", True, "Event"),
    *_rows("flowcontrol.apiserver.k8s.io", "v1", False, "FlowSchema PriorityLevelConfiguration"),
    *_rows("networking.k8s.io", "v1", False, "IngressClass IPAddress ServiceCIDR"),
    *_rows("networking.k8s.io", "v1", True, "Ingress", wave="1", own=True),
    *_rows("networking.k8s.io", "v1", True, "NetworkPolicy", wave="-1", own=True),
    *_rows("node.k8s.io", "v1", False, "RuntimeClass"),
    *_rows("policy", "v1", True, "PodDisruptionBudget", wave="1", own=True),
    *_rows("rbac.authorization.k8s.io", "v1", False, "ClusterRole ClusterRoleBinding"),
    *_rows("rbac.authorization.k8s.io", "v1", True, "Role RoleBinding", wave="-1", own=True),
    *_rows("resource.k8s.io", "v1", False, "DeviceClass ResourceSlice"),
    *_rows("resource.k8s.io", "v1", True, "ResourceClaim ResourceClaimTemplate"),
    *_rows("scheduling.k8s.io", "v1", False, "PriorityClass"),
    *_rows(
        "storage.k8s.io", "v1", False, "CSIDriver CSINode StorageClass VolumeAttachment VolumeAttributesClass"
    ),
    *_rows("storage.k8s.io", "v1", True, "CSIStorageCapacity"),
]

# Custom resources kompile writes or meets, as their CustomResourceDefinitions declare them.
_CUSTOM = [
    *_rows(
        "argoproj.io",
        "v1alpha1",
        True,
        "Application ApplicationSet AppProject",
        builtin=False,
        delegates=True,
    ),
    *_rows("argoproj.io", "v1alpha1", True, "Rollout", pod_spec=_TEMPLATE, builtin=False),
    *_rows("bitnami.com", "v1alpha1", True, "SealedSecret", wave="-1", own=True, builtin=False),
    *_rows("cert-manager.io", "v1", True, "Issuer", builtin=False),
    # Last: Argo CD waits for a Certificate to be issued, which must not hold the release back.
    *_rows("cert-manager.io", "v1", True, "Certificate", wave="2", own=True, builtin=False),
    *_rows("cert-manager.io", "v1", False, "ClusterIssuer", builtin=False),
    # External Secrets, KEDA and the Gateway API's grants act with their controller's rights: they read
    # Secrets (of a cluster-wide store too), send them to scaler endpoints, or open this namespace to others.
    *_rows("external-secrets.io", "v1", True, "SecretStore", builtin=False, delegates=True),
    *_rows(
        "external-secrets.io",
        "v1",
        True,
        "ExternalSecret",
        wave="-1",
        own=True,
        builtin=False,
        delegates=True,
    ),
    *_rows("external-secrets.io", "v1", False, "ClusterSecretStore", builtin=False),
    *_rows("gateway.networking.k8s.io", "v1 v1beta1", True, "Gateway", builtin=False),
    *_rows("gateway.networking.k8s.io", "v1 v1beta1", True, "ReferenceGrant", builtin=False, delegates=True),
    *_rows("gateway.networking.k8s.io", "v1 v1beta1", True, "HTTPRoute", wave="1", own=True, builtin=False),
    *_rows("gateway.networking.k8s.io", "v1 v1beta1", False, "GatewayClass", builtin=False),
    *_rows(
        "keda.sh",
        "v1alpha1",
        True,
        "TriggerAuthentication",
        wave="-1",
        own=True,
        builtin=False,
        delegates=True,
    ),
    *_rows("keda.sh", "v1alpha1", True, "ScaledObject", wave="1", own=True, builtin=False, delegates=True),
    *_rows(
        "keda.sh",
        "v1alpha1",
        True,
        "ScaledJob",
        pod_spec=("spec", "jobTargetRef", "template", "spec"),
        builtin=False,
        delegates=True,
    ),
    *_rows("keda.sh", "v1alpha1", False, "ClusterTriggerAuthentication", builtin=False, delegates=True),
    *_rows("kustomize.toolkit.fluxcd.io", "v1", True, "Kustomization", builtin=False, delegates=True),
    *_rows("helm.toolkit.fluxcd.io", "v2", True, "HelmRelease", builtin=False, delegates=True),
    *_rows("monitoring.coreos.com", "v1", True, "PodMonitor PrometheusRule", builtin=False),
    *_rows("monitoring.coreos.com", "v1", True, "ServiceMonitor", wave="1", own=True, builtin=False),
    *_rows(
        "source.toolkit.fluxcd.io",
        "v1",
        True,
        "Bucket ExternalArtifact GitRepository HelmChart HelmRepository OCIRepository",
        builtin=False,
        delegates=True,
    ),
    # Policy engines whose rules create or change other objects (Kyverno's generate and mutate rules).
    *_rows("kyverno.io", "v1", True, "Policy", builtin=False, delegates=True),
    *_rows("kyverno.io", "v1", False, "ClusterPolicy", builtin=False, delegates=True),
    # Network policies beside the Kubernetes one: Calico, Cilium, the Network Policy API, GKE.
    *_rows("projectcalico.org", "v3", True, "NetworkPolicy", builtin=False, network=True),
    *_rows("projectcalico.org", "v3", False, "GlobalNetworkPolicy", builtin=False, network=True),
    *_rows("crd.projectcalico.org", "v1", True, "NetworkPolicy", builtin=False, network=True),
    *_rows("crd.projectcalico.org", "v1", False, "GlobalNetworkPolicy", builtin=False, network=True),
    *_rows("cilium.io", "v2", True, "CiliumNetworkPolicy", builtin=False, network=True, wave="-1", own=True),
    *_rows("cilium.io", "v2", False, "CiliumClusterwideNetworkPolicy", builtin=False, network=True),
    *_rows(
        "policy.networking.k8s.io",
        "v1alpha1 v1alpha2",
        False,
        "AdminNetworkPolicy BaselineAdminNetworkPolicy",
        builtin=False,
        network=True,
    ),
    *_rows("networking.gke.io", "v1alpha1", True, "FQDNNetworkPolicy", builtin=False, network=True),
]

KINDS: dict[tuple[str, str], Kind] = {(k.group, k.name): k for k in (*_BUILTIN, *_CUSTOM)}
OWN_KINDS = frozenset(key for key, k in KINDS.items() if k.own)
# The groups Kubernetes itself serves: a kind in one of them that the table lacks does not exist.
BUILTIN_GROUPS = frozenset(k.group for k in _BUILTIN) | {"extensions"}

# What the API server accepts: a group is a DNS subdomain, a version a DNS label, a kind a DNS label when
# lower-cased (CustomResourceDefinition names are validated so).
_LABEL = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?"
_API_VERSION = re.compile(
    rf"(?:(?P<group>{_LABEL}(?:\.{_LABEL})*)/)?(?P<version>[a-z](?:[-a-z0-9]*[a-z0-9])?)"
)
KIND_NAME = re.compile(r"[A-Za-z](?:[-A-Za-z0-9]*[A-Za-z0-9])?")


def split_api_version(api_version: str) -> tuple[str, str] | None:
    """(group, version) of an apiVersion, or None when no API server would accept it."""
    match = _API_VERSION.fullmatch(api_version) if len(api_version) <= 317 else None
    if match is None:
        return None
    return match["group"] or "", match["version"]


def group_of(api_version: str) -> str:
    return api_version.rpartition("/")[0]


def lookup(api_version: str, kind: str) -> Kind | None:
    """The table's row for this kind (any served version), or None."""
    return KINDS.get((group_of(api_version), kind))


def is_list_kind(kind) -> bool:
    """kustomize reads every kind ending in "List" as a list of objects (its `items`)."""
    return isinstance(kind, str) and kind.endswith("List")


@dataclass(frozen=True, slots=True)
class Unknown:
    """Why an object's kind cannot be placed: shown to the user, with a hint."""

    message: str
    hint: str
    field: str = "kind"  # the field the problem is in (apiVersion for a version no cluster serves)


def classify(api_version, kind, declared: dict[tuple[str, str], bool] | None = None) -> Kind | Unknown:
    """The row for an object's apiVersion and kind. A custom kind kompile has no row for gets one from
    `declared` ((group, kind) -> namespaced, what the App's allowKinds says), its pods found generically.
    Unknown when no cluster would serve it, or when nobody said what it is."""
    if not isinstance(api_version, str) or not isinstance(kind, str):
        return Unknown("apiVersion and kind must be strings", "a manifest starts with apiVersion: and kind:")
    parts = split_api_version(api_version)
    if parts is None:
        return Unknown(
            f"apiVersion '{api_version}' is not GROUP/VERSION or VERSION",
            "for example apps/v1, networking.k8s.io/v1 or v1 (the core group)",
            "apiVersion",
        )
    if len(kind) > 63 or not KIND_NAME.fullmatch(kind):
        return Unknown(f"kind '{kind}' is not a kind name", "kinds are CamelCase names such as Deployment")
    group, version = parts
    row = KINDS.get((group, kind))
    if row is not None:
        if version not in row.versions:
            served = ", ".join(f"{group + '/' if group else ''}{v}" for v in row.versions)
            return Unknown(f"{kind} is not served as {api_version}", f"use {served}", "apiVersion")
        if not row.appliable:
            return Unknown(
                f"{kind} is a request to the API server, not an object a repo can hold",
                "remove it from the manifests",
            )
        return row
    if group in BUILTIN_GROUPS:
        where = f"group '{group}'" if group else "the core group (apiVersion: v1)"
        elsewhere = [k for k in KINDS.values() if k.builtin and k.name == kind]
        if elsewhere:
            row = elsewhere[0]
            return Unknown(
                f"Kubernetes serves no kind '{kind}' in {where}",
                f"{kind} is served as {row.group + '/' if row.group else ''}{row.versions[0]}",
            )
        names = [k.name for k in KINDS.values() if k.group == group]
        same = [name for name in names if name.lower() == kind.lower()]
        close = same or difflib.get_close_matches(kind, names, n=1)
        return Unknown(
            f"Kubernetes serves no kind '{kind}' in {where}",
            f"kinds are case-sensitive: did you mean '{close[0]}'?"
            if close
            else "kubectl api-resources lists the kinds a cluster serves",
        )
    if declared is not None and (group, kind) in declared:
        return Kind(group, kind, (version,), namespaced=declared[(group, kind)], builtin=False)
    return Unknown(
        f"kompile does not know the kind {kind} ({group}): not whether it is cluster-wide, nor what its "
        "controller does",
        f"list it in the App's allowKinds with its scope: {{group: {group}, kind: {kind}, "
        "namespaced: true}} (its pod specs are then found and checked)",
    )


def holds_no_pods(api_version: str, kind: str) -> bool:
    """True for kinds known never to hold a container (the images transformer and secret checks skip them)."""
    row = lookup(api_version, kind)
    return row is not None and row.pod_spec is None and row.builtin


def pod_spec_path(api_version: str, kind: str) -> tuple[str, ...] | None:
    row = lookup(api_version, kind)
    return row.pod_spec if row is not None else None


def is_cluster_scoped(api_version: str, kind: str) -> bool:
    row = lookup(api_version, kind)
    return row is not None and not row.namespaced


# ---------------------------------------------------------------------------------------------
# What kustomize v5.5 believes about kinds. It builds the overlays, so kompile's model of its
# transformers follows these, not the API server: kustomize knows the kinds of its built-in OpenAPI
# document (Kubernetes 1.21.2), matched by exact apiVersion and kind.

# Cluster-scoped for kustomize's namespace transformer (kyaml/openapi precomputedIsNamespaceScoped);
# every other apiVersion and kind, custom kinds included, gets the overlay's namespace.
KUSTOMIZE_CLUSTER_SCOPED = frozenset(
    (api_version, kind)
    for api_versions, kinds in (
        (
            "admissionregistration.k8s.io/v1 admissionregistration.k8s.io/v1beta1",
            "MutatingWebhookConfiguration ValidatingWebhookConfiguration",
        ),
        ("apiextensions.k8s.io/v1 apiextensions.k8s.io/v1beta1", "CustomResourceDefinition"),
        ("apiregistration.k8s.io/v1 apiregistration.k8s.io/v1beta1", "APIService"),
        ("certificates.k8s.io/v1 certificates.k8s.io/v1beta1", "CertificateSigningRequest"),
        ("flowcontrol.apiserver.k8s.io/v1beta1", "FlowSchema PriorityLevelConfiguration"),
        ("networking.k8s.io/v1 networking.k8s.io/v1beta1", "IngressClass"),
        ("node.k8s.io/v1 node.k8s.io/v1beta1", "RuntimeClass"),
        ("policy/v1beta1", "PodSecurityPolicy"),
        ("rbac.authorization.k8s.io/v1 rbac.authorization.k8s.io/v1beta1", "ClusterRole ClusterRoleBinding"),
        ("scheduling.k8s.io/v1 scheduling.k8s.io/v1beta1", "PriorityClass"),
        ("storage.k8s.io/v1 storage.k8s.io/v1beta1", "CSIDriver CSINode StorageClass VolumeAttachment"),
        ("v1", "ComponentStatus Namespace Node NodeProxyOptions PersistentVolume"),
    )
    for api_version in api_versions.split()
    for kind in kinds.split()
)

# Where kustomize's labels transformer also writes with includeTemplates (builtinpluginconsts
# metadataLabelsFieldSpecs): kind, then the group and version it must have (None: any), then paths.
_TEMPLATE_LABELS = (
    ("ReplicationController", None, "v1", (("spec", "template"),)),
    ("Deployment", None, None, (("spec", "template"),)),
    ("ReplicaSet", None, None, (("spec", "template"),)),
    ("DaemonSet", None, None, (("spec", "template"),)),
    ("StatefulSet", "apps", None, (("spec", "template"), ("spec", "volumeClaimTemplates", []))),
    ("Job", "batch", None, (("spec", "template"),)),
    ("CronJob", "batch", None, (("spec", "jobTemplate"), ("spec", "jobTemplate", "spec", "template"))),
)


def kustomize_namespaced(api_version: str, kind: str) -> bool:
    return (api_version, kind) not in KUSTOMIZE_CLUSTER_SCOPED


def template_label_paths(api_version: str, kind: str) -> tuple:
    """The paths whose `metadata.labels` kustomize's labels transformer sets (with includeTemplates). A
    path segment [] stands for every item of a list."""
    group, _, version = api_version.rpartition("/")
    for name, want_group, want_version, paths in _TEMPLATE_LABELS:
        if name == kind and want_group in (None, group) and want_version in (None, version):
            return paths
    return ()
