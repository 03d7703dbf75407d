"""The security kompile promises, checked on exactly what a cluster receives.

`check_stream` (gate.py) runs once per environment on the object stream that `kubectl kustomize
overlays/<env>` produces: every patch and transformer applied, Lists expanded. kompile's own objects
pass by construction; what can fail is what a spec author wrote (patches, extra resources, settings
such as a wide egress rule). A finding of a rule below is an error unless the spec opts out of that
rule visibly (`security.allow: [{rule, object, reason}]`), and every opt-out is listed by `validate`,
`check` and `build`. Plaintext credentials, Secret objects and unpinned images are errors without an
opt-out.

The pod rules are Pod Security Standards "restricted" as the official admission plugin
(k8s.io/pod-security-admission) implements it at its latest version, plus the NSA/CISA hardening
guide: read-only root, requests and limits, user IDs of at least 10000, no API token.
"""

from __future__ import annotations

from dataclasses import dataclass

from kompile.errors import Code

# rule id -> what it protects (shown in errors; listed in the README and SECURITY.md)
RULES = {
    "non-root": "containers run as a non-root user with a numeric ID of at least 10000",
    "privilege-escalation": "allowPrivilegeEscalation is false in every container",
    "capabilities": "every container drops ALL capabilities and adds none",
    "read-only-root": "every container's root filesystem is read-only",
    "seccomp": "the RuntimeDefault (or a Localhost) seccomp profile applies to every container",
    "privileged": "no container is privileged",
    "host-access": "no host network, PID or IPC namespace, host port or hostPath volume; no system priority class, "
    "nodeName or toleration of every taint or of the control plane",
    "host-process": "no Windows HostProcess container",
    "selinux": "no custom SELinux user, role or type beyond the container types",
    "apparmor": "no container runs unconfined by AppArmor",
    "proc-mount": "every container keeps the default /proc mount",
    "sysctls": "pods set only the sysctls Kubernetes deems safe",
    "volume-types": "pods mount only configMap, csi, downwardAPI, emptyDir, ephemeral, image, persistentVolumeClaim, "
    "projected and secret volumes",
    "resources": "every container states cpu and memory requests and limits",
    "service-account-token": "pods get no API token unless the spec grants API access (rbac)",
    "network-policy": "the namespace denies all traffic by default and no policy opens to every namespace or address",
    "pod-security": 'the namespace enforces, audits and warns at Pod Security Standards "restricted", latest version',
    "rbac": "no cluster-wide RBAC, no wildcard, escalate, bind or impersonate, no binding to a ClusterRole or to "
    "subjects outside the environment",
    "cluster-scoped": "an environment deploys only into its own namespace (no cluster-scoped object but that Namespace)",
    "unknown-workload": "every container kompile finds is in a pod spec it can check",
    "gitops-delegation": "no object makes Argo CD, Flux or a policy engine deploy what kompile has not checked",
    "service-exposure": "Services stay inside the cluster (no NodePort, LoadBalancer or externalIPs): public traffic comes "
    "through the ingress",
    "scrape-targets": "a monitor has Prometheus scrape only the environment's own pods, without credentials from its Secrets",
    "ingress-snippets": "no ingress-nginx snippet annotation (raw nginx configuration the controller runs with its rights)",
}


@dataclass(frozen=True, slots=True)
class Finding:
    """One broken promise, in one object of the stream. `rule` is None when no opt-out can cover it."""

    code: Code
    rule: str | None
    object: str  # Kind/name
    message: str
    hint: str | None = None
