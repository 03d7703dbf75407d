"""RBAC: an environment's identities get rights in their own namespace only, and none that widen them.

Refused without an opt-out: ClusterRoles and ClusterRoleBindings (rights beyond the namespace); a rule
with `*` in its verbs, resources or API groups; the verbs escalate, bind and impersonate (they hand
out rights the holder does not have); a RoleBinding to a ClusterRole (kompile cannot see what it
grants; cluster-admin, admin and edit are named) or to subjects outside the environment (users,
groups, ServiceAccounts of other namespaces); and rights that amount to every other identity's in the
namespace: reading every Secret, running commands in other pods, minting tokens, starting pods (which
may run as any ServiceAccount of the namespace) and changing Roles or their bindings.
"""

from __future__ import annotations

from collections.abc import Callable

from kompile.policy.pods import _list, _map

API_GROUP = "rbac.authorization.k8s.io"
ESCALATING_VERBS = ("escalate", "bind", "impersonate")
POWERFUL_CLUSTER_ROLES = ("cluster-admin", "admin", "edit")
_READ = frozenset({"get", "list", "watch"})
_WRITE = frozenset({"create", "update", "patch"})
# resource -> (verbs that make it powerful, what they allow)
POWERFUL = {
    "secrets": (_READ, "reads Secrets of the namespace, those of every other identity included"),
    **{
        sub: (frozenset({"create", "get"}), "runs commands in, or reaches into, other pods")
        for sub in ("pods/exec", "pods/attach", "pods/portforward", "pods/proxy", "services/proxy")
    },
    "serviceaccounts/token": (frozenset({"create"}), "mints tokens for any ServiceAccount of the namespace"),
    **{
        workload: (_WRITE, "starts or changes pods, which may run as any ServiceAccount of the namespace")
        for workload in (
            "pods",
            "deployments",
            "replicasets",
            "statefulsets",
            "daemonsets",
            "jobs",
            "cronjobs",
            "replicationcontrollers",
            "podtemplates",
        )
    },
    **{
        grant: (_WRITE | {"delete"}, "changes who may do what in the namespace")
        for grant in ("roles", "rolebindings")
    },
    # What keeps the namespace restricted: its Namespace (the Pod Security labels), the policies, the quotas.
    "namespaces": (_WRITE | {"delete"}, "relabels or removes the Namespace (its Pod Security labels)"),
    "networkpolicies": (_WRITE | {"delete", "deletecollection"}, "changes or removes the default deny"),
    "pods/ephemeralcontainers": (_WRITE, "adds containers to running pods"),
    **{
        limit: (_WRITE | {"delete", "deletecollection"}, "lifts the namespace's limits")
        for limit in ("resourcequotas", "limitranges")
    },
}


def check_rbac(obj: dict, group: str, namespace: str | None, report: Callable[[str, str], None]) -> None:
    """Findings (rule "rbac", message) of one object of the RBAC API group."""
    kind = obj.get("kind")
    if group != API_GROUP:
        return
    if kind in ("ClusterRole", "ClusterRoleBinding"):
        report(
            "rbac", f"{'an' if kind[:1] in 'AEIOU' else 'a'} {kind} grants rights across the whole cluster"
        )
    if kind in ("Role", "ClusterRole"):
        for index, rule in enumerate(_list(obj.get("rules"))):
            rule = _map(rule)
            for field in ("verbs", "resources", "apiGroups"):
                values = [str(v) for v in _list(rule.get(field))]
                if any(v == "*" or v.endswith("/*") or v.startswith("*/") for v in values):
                    report("rbac", f"rules[{index}].{field} has a wildcard ({', '.join(values)})")
            escalating = [v for v in _list(rule.get("verbs")) if str(v).lower() in ESCALATING_VERBS]
            if escalating:
                report(
                    "rbac",
                    f"rules[{index}] grants {', '.join(map(str, escalating))}, which hand out rights the holder does not have",
                )
            verbs = {str(v).lower() for v in _list(rule.get("verbs"))}
            named = bool(_list(rule.get("resourceNames")))
            for resource in (str(r).lower() for r in _list(rule.get("resources"))):
                if (
                    resource in POWERFUL
                    and verbs & POWERFUL[resource][0]
                    and not (resource == "secrets" and named)
                ):
                    report(
                        "rbac",
                        f"rules[{index}] grants {', '.join(sorted(verbs & POWERFUL[resource][0]))} on {resource}: "
                        f"it {POWERFUL[resource][1]}",
                    )
    if kind in ("RoleBinding", "ClusterRoleBinding"):
        ref = _map(obj.get("roleRef"))
        if ref.get("kind") == "ClusterRole":
            named = ref.get("name")
            strong = f" ({named} can do almost anything)" if named in POWERFUL_CLUSTER_ROLES else ""
            report(
                "rbac", f"roleRef binds the ClusterRole '{named}'{strong}; kompile cannot see what it grants"
            )
        elif ref.get("kind") != "Role":
            report("rbac", f"roleRef names a {ref.get('kind')!r}, not a Role of this environment")
        for index, subject in enumerate(_list(obj.get("subjects"))):
            subject = _map(subject)
            if subject.get("kind") != "ServiceAccount":
                report(
                    "rbac",
                    f"subjects[{index}] is the {subject.get('kind')} '{subject.get('name')}', not a ServiceAccount of "
                    "this environment",
                )
            elif namespace is not None and subject.get("namespace") not in (None, namespace):
                report(
                    "rbac",
                    f"subjects[{index}] is a ServiceAccount of namespace '{subject.get('namespace')}', not of this "
                    f"environment ('{namespace}')",
                )
