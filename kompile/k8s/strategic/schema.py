"""What kustomize knows of each built-in kind: its merge keys (kustomize's Kubernetes v1.21.2 schema)."""

from __future__ import annotations

DIRECTIVE = "$patch"

# Directive keys of the API server's strategic merge patch that kustomize does not understand: it
# copies them into the object as if they were fields.
UNSUPPORTED_DIRECTIVES = ("$setElementOrder/", "$retainKeys", "$deleteFromPrimitiveList/")

# Every apiVersion and kind in kustomize's built-in schema (Kubernetes v1.21.2).
_KNOWN: dict[str, frozenset[str]] = {
    api: frozenset(kinds.split())
    for api, kinds in {
        "v1": "Binding ComponentStatus ConfigMap Endpoints Event LimitRange Namespace Node PersistentVolume "
        "PersistentVolumeClaim Pod PodTemplate ReplicationController ResourceQuota Secret Service ServiceAccount",
        "admissionregistration.k8s.io/v1": "MutatingWebhookConfiguration ValidatingWebhookConfiguration",
        "admissionregistration.k8s.io/v1beta1": "MutatingWebhookConfiguration ValidatingWebhookConfiguration",
        "apiextensions.k8s.io/v1": "CustomResourceDefinition",
        "apiextensions.k8s.io/v1beta1": "CustomResourceDefinition",
        "apiregistration.k8s.io/v1": "APIService",
        "apiregistration.k8s.io/v1beta1": "APIService",
        "apps/v1": "ControllerRevision DaemonSet Deployment ReplicaSet StatefulSet",
        "authentication.k8s.io/v1": "TokenRequest TokenReview",
        "authentication.k8s.io/v1beta1": "TokenReview",
        "authorization.k8s.io/v1": "LocalSubjectAccessReview SelfSubjectAccessReview SelfSubjectRulesReview SubjectAccessReview",
        "authorization.k8s.io/v1beta1": "LocalSubjectAccessReview SelfSubjectAccessReview SelfSubjectRulesReview "
        "SubjectAccessReview",
        "autoscaling/v1": "HorizontalPodAutoscaler Scale",
        "autoscaling/v2beta1": "HorizontalPodAutoscaler",
        "autoscaling/v2beta2": "HorizontalPodAutoscaler",
        "batch/v1": "CronJob Job",
        "batch/v1beta1": "CronJob",
        "certificates.k8s.io/v1": "CertificateSigningRequest",
        "certificates.k8s.io/v1beta1": "CertificateSigningRequest",
        "coordination.k8s.io/v1": "Lease",
        "coordination.k8s.io/v1beta1": "Lease",
        "discovery.k8s.io/v1": "EndpointSlice",
        "discovery.k8s.io/v1beta1": "EndpointSlice",
        "events.k8s.io/v1": "Event",
        "events.k8s.io/v1beta1": "Event",
        "extensions/v1beta1": "Ingress",
        "flowcontrol.apiserver.k8s.io/v1beta1": "FlowSchema PriorityLevelConfiguration",
        "networking.k8s.io/v1": "Ingress IngressClass NetworkPolicy",
        "networking.k8s.io/v1beta1": "Ingress IngressClass",
        "node.k8s.io/v1": "RuntimeClass",
        "node.k8s.io/v1beta1": "RuntimeClass",
        "policy/v1": "PodDisruptionBudget",
        "policy/v1beta1": "Eviction PodDisruptionBudget PodSecurityPolicy",
        "rbac.authorization.k8s.io/v1": "ClusterRole ClusterRoleBinding Role RoleBinding",
        "rbac.authorization.k8s.io/v1beta1": "ClusterRole ClusterRoleBinding Role RoleBinding",
        "scheduling.k8s.io/v1": "PriorityClass",
        "scheduling.k8s.io/v1beta1": "PriorityClass",
        "storage.k8s.io/v1": "CSIDriver CSINode StorageClass VolumeAttachment",
        "storage.k8s.io/v1beta1": "CSIDriver CSINode CSIStorageCapacity StorageClass VolumeAttachment",
    }.items()
}

# Where the pod spec sits in the built-in kinds that hold one.
_TEMPLATE = ("spec", "template", "spec")
_POD_SPEC: dict[tuple[str, str], tuple[str, ...]] = {
    ("v1", "Pod"): ("spec",),
    ("v1", "PodTemplate"): ("template", "spec"),
    ("v1", "ReplicationController"): _TEMPLATE,
    **{("apps/v1", kind): _TEMPLATE for kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet")},
    ("batch/v1", "Job"): _TEMPLATE,
    ("batch/v1", "CronJob"): ("spec", "jobTemplate", *_TEMPLATE),
    ("batch/v1beta1", "CronJob"): ("spec", "jobTemplate", *_TEMPLATE),
}
# Built-in kinds whose every list this module knows; the lists of other built-in kinds (outside their
# metadata) raise PatchError rather than guess.
_MODELLED: frozenset[tuple[str, str]] = frozenset(
    {
        *_POD_SPEC,
        ("v1", "Service"),
        ("v1", "ServiceAccount"),
        ("v1", "ConfigMap"),
        ("v1", "Secret"),
        ("v1", "Namespace"),
        ("networking.k8s.io/v1", "NetworkPolicy"),
        ("networking.k8s.io/v1", "Ingress"),
        ("networking.k8s.io/v1beta1", "Ingress"),
        ("extensions/v1beta1", "Ingress"),
        ("policy/v1", "PodDisruptionBudget"),
        ("policy/v1beta1", "PodDisruptionBudget"),
        *(("autoscaling/" + version, "HorizontalPodAutoscaler") for version in ("v1", "v2beta1", "v2beta2")),
        *(
            (f"rbac.authorization.k8s.io/{version}", kind)
            for version in ("v1", "v1beta1")
            for kind in ("Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding")
        ),
    }
)

MergeKey = tuple[str, ...]
SET: MergeKey = ()  # a list of strings merged as a set (metadata.finalizers)

_META_KEYS: dict[str, MergeKey] = {"finalizers": SET, "ownerReferences": ("uid",)}
_POD_KEYS: dict[str, MergeKey] = {
    "containers": ("name",),
    "initContainers": ("name",),
    "ephemeralContainers": ("name",),
    "volumes": ("name",),
    "imagePullSecrets": ("name",),
    "hostAliases": ("ip",),
    "topologySpreadConstraints": ("topologyKey", "whenUnsatisfiable"),
}
_CONTAINER_KEYS: dict[str, MergeKey] = {
    "env": ("name",),
    "volumeMounts": ("mountPath",),
    "volumeDevices": ("devicePath",),
    "ports": ("containerPort", "protocol"),
}
_EPHEMERAL_KEYS: dict[str, MergeKey] = {k: v for k, v in _CONTAINER_KEYS.items() if k != "ports"}
_KIND_KEYS: dict[tuple[str, str], dict[tuple[str, ...], MergeKey]] = {
    ("v1", "Service"): {("spec", "ports"): ("port", "protocol")},
    ("v1", "ServiceAccount"): {("secrets",): ("name",)},
}


class PatchError(ValueError):
    pass


def has_schema(api_version: str, kind: str) -> bool:
    """Whether kustomize knows the kind's schema; without one every list is replaced whole."""
    return kind in _KNOWN.get(api_version, ())


def merge_key(api_version: str, kind: str, path: tuple[str, ...]) -> MergeKey | None:
    """The key(s) kustomize merges the list at `path` (field names from the object's root, list levels
    left out) by: None when the list is replaced whole, SET for a set of strings, else the key fields
    (the first one always present, the others optional). PatchError for a built-in kind not modelled."""
    if not path or not has_schema(api_version, kind):
        return None
    gvk = (api_version, kind)
    *parent, field_name = path
    if parent and parent[-1] == "metadata" and tuple(parent) in _object_metas(gvk):
        return _META_KEYS.get(field_name)
    if gvk not in _MODELLED:
        raise PatchError(
            f"kompile does not model how kustomize merges {'.'.join(path)} of a {kind} ({api_version}); "
            "use a JSON patch (a list of operations) for it"
        )
    pod = _POD_SPEC.get(gvk)
    if pod and tuple(parent) == pod:
        return _POD_KEYS.get(field_name)
    if pod and len(parent) == len(pod) + 1 and tuple(parent[:-1]) == pod:
        if parent[-1] in ("containers", "initContainers"):
            return _CONTAINER_KEYS.get(field_name)
        if parent[-1] == "ephemeralContainers":
            return _EPHEMERAL_KEYS.get(field_name)
    return _KIND_KEYS.get(gvk, {}).get(path)


def _object_metas(gvk: tuple[str, str]) -> set[tuple[str, ...]]:
    """The paths of the ObjectMeta maps in a built-in kind: its own, and its templates'."""
    metas = {("metadata",)}
    pod = _POD_SPEC.get(gvk)
    if pod:
        metas.add((*pod[:-1], "metadata"))
        if "jobTemplate" in pod:
            metas.add(("spec", "jobTemplate", "metadata"))
    return metas
