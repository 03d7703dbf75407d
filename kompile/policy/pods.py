"""Pod specs wherever they are, and the rules every one of them must keep.

Where a kind keeps its pod spec comes from the kinds table. A custom resource kompile has no row for
(an Argo Rollout of another version, a Knative Service, anything a CRD adds) is searched generically:
every mapping that holds `containers`, `initContainers` or `ephemeralContainers` is a pod spec, and a
container-like mapping (one with an `image`) outside any pod spec is a finding, because kompile cannot
check what it will run.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from kompile.k8s.kinds import Kind
from kompile.k8s.quantity import parse_quantity

QUANTITY = re.compile(r"[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?")

MIN_ID = 10000
CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")
SAFE_SECCOMP = ("RuntimeDefault", "Localhost")
SAFE_APPARMOR = ("RuntimeDefault", "Localhost")
# pod-security-admission's allow-lists (policy/check_*.go). "latest" means the newest policy the cluster's
# API server knows, so the sysctls are those the oldest Kubernetes kompile supports (1.30) deems safe.
SAFE_SYSCTLS = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
    }
)
SELINUX_TYPES = frozenset({"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"})
VOLUME_TYPES = frozenset(
    {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "image",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
)
APPARMOR_ANNOTATION = "container.apparmor.security.beta.kubernetes.io/"
# The annotations that set seccomp before the field did; a kubelet or admission plugin may still read them.
SECCOMP_ANNOTATIONS = (
    "seccomp.security.alpha.kubernetes.io/pod",
    "container.seccomp.security.alpha.kubernetes.io/",
)
# Multus attaches a pod to further networks, which no NetworkPolicy covers.
NETWORK_ANNOTATIONS = ("k8s.v1.cni.cncf.io/networks", "v1.multus-cni.io/default-network")
SYSTEM_PRIORITY = re.compile(r"system-.*")
CONTROL_PLANE_TAINTS = ("node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master")

Report = Callable[[str, str], None]  # (rule, message)


class Unclassifiable(Exception):
    """A pod spec or container list in a shape no API server accepts: kompile cannot tell what runs."""


def _map(value) -> dict:
    return value if isinstance(value, dict) else {}


def _list(value) -> list:
    return value if isinstance(value, list) else []


def pod_specs(obj: dict, kind: Kind) -> tuple[list[tuple[dict, dict]], list[dict]]:
    """(pod spec, its template's metadata) of every pod spec in obj, and the container-like mappings (ones
    naming an image) that are in none of their container lists (custom kinds only: an operator may run
    them, as the Prometheus Operator runs spec.image). Built-in kinds keep their pod spec where the table
    says; custom kinds are searched. Unclassifiable when a pod spec is not a mapping."""
    if kind.builtin:
        if kind.pod_spec is None:
            return [], []
        node, parent = obj, obj
        for key in kind.pod_spec:
            if node is not None and not isinstance(node, dict):
                raise Unclassifiable(f"{'.'.join(kind.pod_spec)} is not a mapping")
            parent, node = node, (node or {}).get(key)
        if node is None:
            return [], []
        if not isinstance(node, dict):
            raise Unclassifiable(f"{'.'.join(kind.pod_spec)} is not a mapping")
        return [(node, _map(parent.get("metadata")))], []
    found: list[tuple[dict, dict]] = []
    images: list[dict] = []
    _search(obj, obj, found, images)
    listed = {id(container) for pod, _ in found for _, container in containers(pod)}
    return found, [node for node in images if id(node) not in listed]


def _search(node, parent, found: list, images: list) -> None:
    """Pod specs of a custom resource (mappings holding a container list; the mapping above one is the
    template, whose metadata holds the pod's annotations), and every mapping that names an image."""
    if isinstance(node, dict):
        holds = [key for key in CONTAINER_LISTS if key in node]
        for key in holds:
            if not isinstance(node[key], list) or not all(isinstance(c, dict) for c in node[key]):
                raise Unclassifiable(f"'{key}' is not a list of containers")
        if holds:
            found.append((node, _map(parent.get("metadata")) if isinstance(parent, dict) else {}))
        if "image" in node and not isinstance(node.get("image"), dict):
            images.append(node)
        for value in node.values():
            if isinstance(value, dict | list):
                _search(value, node, found, images)
    elif isinstance(node, list):
        for item in node:
            _search(item, parent, found, images)


def containers(pod: dict) -> Iterator[tuple[str, dict]]:
    """(which list, container) for every container of a pod spec."""
    for key in CONTAINER_LISTS:
        for container in _list(pod.get(key)):
            if isinstance(container, dict):
                yield key, container


def images(pod: dict) -> Iterator[tuple[str, object]]:
    """(who, image reference) for every image a pod runs or mounts: containers and image volumes."""
    for _, container in containers(pod):
        yield f"container '{container.get('name')}'", container.get("image")
    for volume in _list(pod.get("volumes")):
        source = _map(volume).get("image")
        if source is not None:
            yield f"image volume '{_map(volume).get('name')}'", _map(source).get("reference")


def check_pod(pod: dict, template_metadata: dict, api_access: bool, report: Report) -> None:
    """Pod Security Standards "restricted" (latest) and kompile's own rules on one pod spec."""
    context = _map(pod.get("securityContext"))
    if any(pod.get(key) is True for key in ("hostNetwork", "hostPID", "hostIPC")):
        report("host-access", "the pod shares a host namespace (hostNetwork, hostPID or hostIPC)")
    if pod.get("automountServiceAccountToken") is not False and not api_access:
        report(
            "service-account-token",
            "the pod mounts a ServiceAccount token (automountServiceAccountToken is not false)",
        )
    for volume in _list(pod.get("volumes")):
        _check_volume(_map(volume), api_access, report)
    _check_context(context, "the pod", report)
    # Checked at the pod level on its own too: PSA refuses a pod-level false, Unconfined or 0 whatever the containers say.
    if context.get("runAsNonRoot") is False:
        report("non-root", "the pod allows root (securityContext.runAsNonRoot: false)")
    _check_ids(context, "the pod", report)
    annotations = _map(template_metadata.get("annotations"))
    for key, value in annotations.items():
        confined = value in ("", "runtime/default") or (
            isinstance(value, str) and value.startswith("localhost/")
        )
        if not isinstance(key, str):
            continue
        if key.startswith(APPARMOR_ANNOTATION) and not confined:
            report(
                "apparmor",
                f"annotation {key} is {value!r}; only runtime/default or localhost/<profile> keep AppArmor on",
            )
        if key.startswith(SECCOMP_ANNOTATIONS) and not (confined or value == "docker/default"):
            report(
                "seccomp",
                f"annotation {key} is {value!r}; only runtime/default or localhost/<profile> keep seccomp on",
            )
        if key.startswith(NETWORK_ANNOTATIONS):
            report(
                "network-policy",
                f"annotation {key} attaches the pod to networks its NetworkPolicies do not cover",
            )
    _check_placement(pod, report)
    for which, container in containers(pod):
        _check_container(container, which, context, report)


def _check_placement(pod: dict, report: Report) -> None:
    """An app's pods stay off the control plane and out of the way of the system's own."""
    priority = pod.get("priorityClassName")
    if isinstance(priority, str) and SYSTEM_PRIORITY.fullmatch(priority):
        report(
            "host-access",
            f"priorityClassName {priority} lets the pod preempt or outlast the cluster's own components",
        )
    if pod.get("nodeName"):
        report("host-access", "nodeName places the pod on a node past the scheduler and its rules")
    for toleration in _list(pod.get("tolerations")):
        toleration = _map(toleration)
        if toleration.get("operator") == "Exists" and not toleration.get("key"):
            report(
                "host-access",
                "a toleration with operator Exists and no key tolerates every taint, the control plane's included",
            )
        elif toleration.get("key") in CONTROL_PLANE_TAINTS:
            report(
                "host-access",
                f"a toleration of {toleration.get('key')} lets the pod run on control-plane nodes",
            )


def _check_ids(context: dict, who: str, report: Report) -> None:
    """User and group IDs a security context sets, and its sysctls (whatever else it leaves out)."""
    user = context.get("runAsUser")
    if user is not None and (not isinstance(user, int) or isinstance(user, bool) or user < MIN_ID):
        report("non-root", f"{who} runs as user {user!r} (runAsUser must be at least {MIN_ID})")
    groups = [
        ("runAsGroup", context.get("runAsGroup")),
        ("fsGroup", context.get("fsGroup")),
        *(("supplementalGroups", g) for g in _list(context.get("supplementalGroups"))),
    ]
    low = [
        f"{key} {value!r}"
        for key, value in groups
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < MIN_ID)
    ]
    if low:
        report(
            "non-root",
            f"{who} runs with a low group ID ({', '.join(low)}; at least {MIN_ID}, never the root group)",
        )
    sysctls = [_map(s).get("name") for s in _list(context.get("sysctls"))]
    unsafe = [str(name) for name in sysctls if name not in SAFE_SYSCTLS]
    if unsafe:
        report("sysctls", f"{who} sets sysctls outside the safe set: {', '.join(unsafe)}")


def stray_pod_settings(obj: dict, checked: set[int]) -> Iterator[dict]:
    """Mappings of a custom resource, outside the pod specs and containers already checked (ids in
    checked), that set what a pod spec or a container sets: a securityContext, host namespaces or
    volumes. An operator merges them into pods it starts (cert-manager's solver podTemplate has no
    containers), so what they set is held to the same rules."""
    stack = [obj]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if id(node) not in checked and (
                isinstance(node.get("securityContext"), dict)
                or "volumes" in node
                or any(key in node for key in ("hostNetwork", "hostPID", "hostIPC"))
            ):
                yield node
            if id(node) not in checked:
                stack.extend(v for v in node.values() if isinstance(v, dict | list))
        elif isinstance(node, list):
            stack.extend(v for v in node if isinstance(v, dict | list))


def check_pod_settings(node: dict, report: Report) -> None:
    """What a pod or container fragment sets (never what it leaves out: its operator fills that in)."""
    context = _map(node.get("securityContext"))
    if any(node.get(key) is True for key in ("hostNetwork", "hostPID", "hostIPC")):
        report("host-access", "it shares a host namespace (hostNetwork, hostPID or hostIPC)")
    for volume in _list(node.get("volumes")):
        _check_volume(_map(volume), False, report)
    _check_context(context, "its securityContext", report)
    if context.get("runAsNonRoot") is False:
        report("non-root", "it allows root (securityContext.runAsNonRoot: false)")
    _check_ids(context, "it", report)
    if context.get("privileged") is True:
        report("privileged", "it is privileged")
    if context.get("allowPrivilegeEscalation") is True:
        report("privilege-escalation", "it may gain privileges (allowPrivilegeEscalation: true)")
    if _list(_map(context.get("capabilities")).get("add")):
        report("capabilities", "it adds Linux capabilities")
    if context.get("procMount") not in (None, "Default"):
        report("proc-mount", f"it unmasks /proc (procMount: {context.get('procMount')})")


def _check_volume(volume: dict, api_access: bool, report: Report) -> None:
    name = volume.get("name")
    sources = [key for key in volume if key != "name"]
    if "hostPath" in sources:
        report("host-access", f"volume '{name}' mounts a path of the node (hostPath)")
    others = [key for key in sources if key not in VOLUME_TYPES and key != "hostPath"]
    if others:
        report(
            "volume-types",
            f"volume '{name}' is of type {', '.join(map(str, others))}, which \"restricted\" does not allow",
        )
    projected = _map(volume.get("projected"))
    if not api_access and any(
        "serviceAccountToken" in _map(source) for source in _list(projected.get("sources"))
    ):
        report("service-account-token", f"volume '{name}' projects a ServiceAccount token")


def _positive(quantity) -> bool:
    """A quantity above zero (null, "0" or text that is no quantity is none: no limit at all)."""
    if isinstance(quantity, bool) or not isinstance(quantity, int | float | str):
        return False
    text = str(quantity)
    if not QUANTITY.fullmatch(text):
        return False
    try:
        return parse_quantity(text) > 0
    except ArithmeticError:
        return False


def _handlers(container: dict) -> Iterator[tuple[str, dict]]:
    """Probes and lifecycle hooks: the kubelet runs them, from the node."""
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        yield probe, _map(container.get(probe))
    lifecycle = _map(container.get("lifecycle"))
    for hook in ("postStart", "preStop"):
        yield f"lifecycle.{hook}", _map(lifecycle.get(hook))


def _check_context(context: dict, who: str, report: Report) -> None:
    """The settings PSS restricts wherever a security context appears (pod or container)."""
    windows = _map(context.get("windowsOptions"))
    if windows.get("hostProcess") is True:
        report("host-process", f"{who} is a Windows HostProcess (windowsOptions.hostProcess)")
    selinux = context.get("seLinuxOptions")
    if selinux is not None:
        selinux = _map(selinux)
        if selinux.get("type", "") not in SELINUX_TYPES or selinux.get("user") or selinux.get("role"):
            report("selinux", f"{who} sets an SELinux user, role or type beyond container_t (seLinuxOptions)")
    apparmor = context.get("appArmorProfile")
    if apparmor is not None and _map(apparmor).get("type") not in SAFE_APPARMOR:
        report(
            "apparmor",
            f"{who} runs without an AppArmor profile (appArmorProfile.type is not RuntimeDefault or Localhost)",
        )
    seccomp = context.get("seccompProfile")
    if seccomp is not None and _map(seccomp).get("type") not in SAFE_SECCOMP:
        report("seccomp", f"{who} sets a seccomp profile other than RuntimeDefault or Localhost")


def _check_container(container: dict, which: str, pod_context: dict, report: Report) -> None:
    label = {"initContainers": "init container", "ephemeralContainers": "ephemeral container"}.get(
        which, "container"
    )
    who = (
        f"{label} '{container['name']}'" if isinstance(container.get("name"), str) else f"an unnamed {label}"
    )
    context = _map(container.get("securityContext"))

    def effective(key):
        return context[key] if context.get(key) is not None else pod_context.get(key)

    _check_context(context, who, report)
    _check_ids({k: context.get(k) for k in ("runAsGroup",)}, who, report)
    user = effective("runAsUser")
    if (
        effective("runAsNonRoot") is not True
        or not isinstance(user, int)
        or isinstance(user, bool)
        or user < MIN_ID
    ):
        report(
            "non-root",
            f"{who} may run as root or with a low user ID (runAsNonRoot true, runAsUser >= {MIN_ID})",
        )
    if context.get("allowPrivilegeEscalation") is not False:
        report("privilege-escalation", f"{who} may gain privileges (allowPrivilegeEscalation is not false)")
    capabilities = _map(context.get("capabilities"))
    if "ALL" not in _list(capabilities.get("drop")) or capabilities.get("add"):
        report("capabilities", f"{who} keeps or adds Linux capabilities (drop: [ALL], no add)")
    if context.get("readOnlyRootFilesystem") is not True:
        report("read-only-root", f"{who} can write to its root filesystem")
    if _map(effective("seccompProfile")).get("type") not in SAFE_SECCOMP:
        report("seccomp", f"{who} runs without the RuntimeDefault seccomp profile")
    if context.get("privileged") is not None and context.get("privileged") is not False:
        report("privileged", f"{who} is privileged")
    if context.get("procMount") not in (None, "Default"):
        report("proc-mount", f"{who} unmasks /proc (procMount: {context.get('procMount')})")
    if any(_map(port).get("hostPort") for port in _list(container.get("ports"))):
        report("host-access", f"{who} binds a port of the node (hostPort)")
    for name, handler in _handlers(container):
        if _map(handler.get("httpGet")).get("host") or _map(handler.get("tcpSocket")).get("host"):
            report("host-access", f"{who}'s {name} reaches another host (httpGet or tcpSocket host)")
    if which != "ephemeralContainers":  # the API gives ephemeral containers no resources
        resources = _map(container.get("resources"))
        for part in ("requests", "limits"):
            missing = [r for r in ("cpu", "memory") if not _positive(_map(resources.get(part)).get(r))]
            if missing:
                report(
                    "resources", f"{who} has no {part} for {' and '.join(missing)} (a quantity above zero)"
                )
