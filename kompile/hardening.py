"""The security kompile promises, as rules checked on the objects an environment deploys.

kompile's own objects are hardened by construction; what can weaken them is what a spec author
writes: patches and extra resources. So render checks every object a patch touched and every extra
resource against these rules, and refuses a finding unless the spec opts out of that rule visibly
(`security.allow: [{rule, reason}]`), which `kompile validate` then lists.

The rules follow Pod Security Standards "restricted" and the NSA/CISA Kubernetes hardening guide.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kompile.k8s.transformers import pod_spec

MIN_ID = 10000
SAFE_SECCOMP = ("RuntimeDefault", "Localhost")

# rule id -> what it protects (shown in errors and listed in the README and SECURITY.md)
RULES = {
    "non-root": "containers run as a non-root user with a numeric ID of at least 10000",
    "privilege-escalation": "allowPrivilegeEscalation is false in every container",
    "capabilities": "every container drops ALL capabilities and adds none",
    "read-only-root": "every container's root filesystem is read-only",
    "seccomp": "the RuntimeDefault (or a Localhost) seccomp profile applies to every container",
    "privileged": "no container is privileged",
    "host-access": "no host network, PID or IPC namespace, host port or hostPath volume",
    "resources": "every container states cpu and memory requests and limits",
    "service-account-token": "pods get no API token unless the spec grants API access (rbac)",
    "network-policy": "the namespace denies all traffic by default and no policy opens a rule to everything",
    "pod-security": "the namespace enforces Pod Security Standards \"restricted\"",
}


# Keys that name a credential. Values that are plainly numbers, booleans or paths pass
# (TOKEN_TTL: "3600"; DJANGO_SECRET_KEY_FILE: /etc/secrets/... names where the secret is).
SECRET_KEY = re.compile(r"(^|[_.-])(SECRET|PASSWORD|PASSWD|PASSPHRASE|TOKEN|API_?KEY|PRIVATE_?KEY|CREDENTIALS?|ACCESS_?KEY)($|[_.-])",
                        re.IGNORECASE)
HARMLESS_VALUE = re.compile(r"^(|[0-9.]+|true|false|yes|no|on|off|/[A-Za-z0-9._/-]*)$", re.IGNORECASE)
# Values that are credentials whatever their key.
SECRET_VALUES = (
    (re.compile(r"://[^/\s@:]*:[^/\s@]+@"), "a URL with a password in it"),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"), "a private key"),
    (re.compile(r"\bAKIA[0-9A-Z]{16}\b"), "an AWS access key"),
    (re.compile(r"\b(ghp|gho|ghu|ghs|ghr|github_pat)_[A-Za-z0-9_]{20,}"), "a GitHub token"),
    (re.compile(r"\bxox[baprs]-[A-Za-z0-9-]{10,}"), "a Slack token"),
    (re.compile(r"\b[rs]k_live_[A-Za-z0-9]{16,}"), "a Stripe key"),
)


def credential_in(key: str, value: str) -> str | None:
    """What credential a setting holds in plain text ("a private key", ...), or None."""
    for pattern, what in SECRET_VALUES:
        if pattern.search(value):
            return what
    if SECRET_KEY.search(key) and not HARMLESS_VALUE.match(value):
        return "what looks like a secret"
    return None


def plaintext_findings(obj: dict) -> list[tuple[str, str]]:
    """(where in the object, what) for each credential in a ConfigMap's data or a container's env values."""
    found = []
    if obj.get("kind") == "ConfigMap":
        for key, value in (obj.get("data") or {}).items():
            what = credential_in(str(key), value) if isinstance(value, str) else None
            if what:
                found.append((f"data.{key}", what))
    pod = pod_spec(obj)
    for container in [c for key in ("initContainers", "containers") for c in (pod or {}).get(key) or () if isinstance(c, dict)]:
        for variable in container.get("env") or ():
            if isinstance(variable, dict) and isinstance(variable.get("value"), str):
                what = credential_in(str(variable.get("name")), variable["value"])
                if what:
                    found.append((f"container '{container.get('name')}' env {variable.get('name')}", what))
    return found


@dataclass(frozen=True)
class Finding:
    rule: str
    object: str  # Kind/name
    message: str


def check_object(obj: dict, api_access: bool) -> list[Finding]:
    """What this object does against the rules (nothing for kinds the rules do not concern)."""
    name = f"{obj.get('kind')}/{(obj.get('metadata') or {}).get('name')}"
    found: list[Finding] = []

    def finding(rule: str, message: str) -> None:
        found.append(Finding(rule, name, message))

    kind = obj.get("kind")
    if kind == "Namespace":
        labels = (obj.get("metadata") or {}).get("labels") or {}
        if labels.get("pod-security.kubernetes.io/enforce") != "restricted":
            finding("pod-security", "the Namespace does not enforce pod-security.kubernetes.io/enforce: restricted")
    elif kind == "NetworkPolicy":
        _check_policy(obj, finding)
    pod = pod_spec(obj)
    if pod is not None:
        _check_pod(pod, api_access, finding)
    return found


def _check_policy(obj: dict, finding) -> None:
    spec = obj.get("spec") or {}
    denies_all = spec.get("podSelector") == {} and sorted(spec.get("policyTypes") or []) == ["Egress", "Ingress"] \
        and not spec.get("ingress") and not spec.get("egress")
    if obj["metadata"].get("name", "").endswith("-default-deny") and not denies_all:
        finding("network-policy", "the default-deny policy no longer denies all ingress and egress of every pod")
    for direction, peers in (("ingress", "from"), ("egress", "to")):
        for rule in spec.get(direction) or ():
            if not isinstance(rule, dict) or not rule.get(peers):
                finding("network-policy", f"an {direction} rule without '{peers}' allows every peer")


def _check_pod(pod: dict, api_access: bool, finding) -> None:
    context = pod.get("securityContext") or {}
    if any(pod.get(key) is True for key in ("hostNetwork", "hostPID", "hostIPC")):
        finding("host-access", "the pod shares a host namespace (hostNetwork, hostPID or hostIPC)")
    for volume in pod.get("volumes") or ():
        if isinstance(volume, dict) and "hostPath" in volume:
            finding("host-access", f"volume '{volume.get('name')}' mounts a path of the node (hostPath)")
    if pod.get("automountServiceAccountToken") is not False and not api_access:
        finding("service-account-token", "the pod mounts a ServiceAccount token (automountServiceAccountToken is not false)")
    containers = [c for key in ("initContainers", "containers", "ephemeralContainers")
                  for c in pod.get(key) or () if isinstance(c, dict)]
    for container in containers:
        _check_container(container, context, finding)


def _check_container(container: dict, pod_context: dict, finding) -> None:
    who = f"container '{container.get('name')}'"
    context = container.get("securityContext") or {}

    def effective(key):
        return context.get(key, pod_context.get(key))

    user = effective("runAsUser")
    if effective("runAsNonRoot") is not True or not isinstance(user, int) or isinstance(user, bool) or user < MIN_ID:
        finding("non-root", f"{who} may run as root or with a low user ID (runAsNonRoot true, runAsUser >= {MIN_ID})")
    if context.get("allowPrivilegeEscalation") is not False:
        finding("privilege-escalation", f"{who} may gain privileges (allowPrivilegeEscalation is not false)")
    capabilities = context.get("capabilities") or {}
    if "ALL" not in (capabilities.get("drop") or ()) or capabilities.get("add"):
        finding("capabilities", f"{who} keeps or adds Linux capabilities (drop: [ALL], no add)")
    if context.get("readOnlyRootFilesystem") is not True:
        finding("read-only-root", f"{who} can write to its root filesystem")
    if (effective("seccompProfile") or {}).get("type") not in SAFE_SECCOMP:
        finding("seccomp", f"{who} runs without the RuntimeDefault seccomp profile")
    if context.get("privileged") is True:
        finding("privileged", f"{who} is privileged")
    if any(isinstance(port, dict) and port.get("hostPort") for port in container.get("ports") or ()):
        finding("host-access", f"{who} binds a port of the node (hostPort)")
    resources = container.get("resources") or {}
    for part in ("requests", "limits"):
        missing = [r for r in ("cpu", "memory") if r not in (resources.get(part) or {})]
        if missing:
            finding("resources", f"{who} has no {part} for {' and '.join(missing)}")
