"""The one gate: every object an environment deploys, as the cluster receives it, against every rule.

It sees the stream `kubectl kustomize overlays/<env>` produces (kompile models kustomize exactly, and
the tests hold the two equal). Per-kind facts come from the kinds table; a kind no cluster would serve
is refused, not skipped; a custom kind is searched for pod specs."""

from __future__ import annotations

from dataclasses import dataclass, field

from kompile.errors import Code
from kompile.k8s.kinds import Kind, Unknown, classify
from kompile.policy import Finding
from kompile.policy.controllers import (
    EXPOSING,
    MERGE_KEY,
    MONITORING,
    TOKEN_SENDERS,
    keys_anywhere,
    scrape_problems,
    snippet_keys,
)
from kompile.policy.images import image_problem
from kompile.policy.network import check_policies, only_opens_host_names
from kompile.policy.plaintext import SERVICE_ACCOUNT_TOKEN
from kompile.policy.plaintext import scan as scan_values
from kompile.policy.pods import (
    Unclassifiable,
    _map,
    check_pod,
    check_pod_settings,
    containers,
    pod_specs,
    stray_pod_settings,
)
from kompile.policy.pods import images as pod_images
from kompile.policy.rbac import check_rbac
from kompile.policy.sops import is_sops_encrypted

PSS_MODES = ("enforce", "audit", "warn")
PSS_LABEL = "pod-security.kubernetes.io/"
# Annotations kustomize itself acts on: an object carrying one may be dropped or changed by the build
# in ways kompile's model of it does not follow.
KUSTOMIZE_PREFIXES = (
    "config.kubernetes.io/",
    "internal.config.kubernetes.io/",
    "kustomize.config.k8s.io/",
    "config.k8s.io/",
)
# Keys that make Argo CD or Flux skip, delay, freeze or keep an object instead of applying it as written.
CONTROLLER_PREFIXES = ("argocd.argoproj.io/", "helm.sh/", "kustomize.toolkit.fluxcd.io/")
# Objects that carry the environment's security: none may carry a controller key (the sync wave excepted).
GUARDS = {
    "Namespace": "pod-security",
    "NetworkPolicy": "network-policy",
    "Role": "rbac",
    "RoleBinding": "rbac",
    "ServiceAccount": "service-account-token",
    "ResourceQuota": "resources",
    "LimitRange": "resources",
}
ARGOCD_WAVE = "argocd.argoproj.io/sync-wave"


@dataclass(frozen=True)
class Scope:
    """What the rules need to know about the environment whose objects they check."""

    namespace: str | None  # None for the shared base
    production: bool
    api_accounts: frozenset = (
        frozenset()
    )  # ServiceAccounts the spec grants Kubernetes API access (a component's rbac)
    default_deny: str = ""  # the name of kompile's default-deny NetworkPolicy
    declared: dict = field(
        default_factory=dict
    )  # (group, kind) -> namespaced, for custom kinds the App lists
    decrypts_sops: bool = (
        False  # Flux decrypts sops-encrypted Secrets before it applies them; Argo CD does not
    )
    own: frozenset = frozenset()  # (group, kind, name) of what kompile wrote and no patch changed


def check_stream(objects: list[dict], scope: Scope) -> list[tuple[int, Finding]]:
    """(index of the object, finding) for every broken promise in the stream."""
    found: list[tuple[int, Finding]] = []
    policies: list[tuple[str, dict]] = []
    policy_index: dict[str, int] = {}
    has_namespace = False
    for index, obj in enumerate(objects):
        name = f"{obj.get('kind')}/{_map(obj.get('metadata')).get('name')}"

        def report(
            rule: str | None,
            message: str,
            code: Code = Code.HARDENING,
            hint: str | None = None,
            index=index,
            name=name,
        ) -> None:
            found.append((index, Finding(code, rule, name, message, hint)))

        kind = classify(obj.get("apiVersion"), obj.get("kind"), scope.declared)
        if isinstance(kind, Unknown):
            report(None, kind.message, Code.UNCLASSIFIABLE, kind.hint)
            continue
        own = (kind.group, kind.name, _map(obj.get("metadata")).get("name")) in scope.own
        if kind.delegates and not own:
            report(
                "gitops-delegation",
                f"{_a(kind.name)} has its controller act with the controller's own rights (deploy or "
                "change objects, read Secrets, call other endpoints, open the namespace to others): kompile cannot "
                "check what it brings",
            )
        if kind.network and not only_opens_host_names(obj):
            report(
                "network-policy",
                f"kompile does not evaluate {_a(kind.name)}: it may open what the default deny closes",
            )
        _check_metadata(obj, kind, report)
        if (
            kind.group == ""
            and kind.name == "Secret"
            and not (scope.decrypts_sops and is_sops_encrypted(obj))
        ):
            report(
                None,
                "a Secret would commit its values in plain text (base64 is not encryption)",
                Code.SECRET_OBJECT,
                "seal it with kubeseal and list it under sealedSecrets"
                if not scope.decrypts_sops
                else "encrypt it with sops (data or stringData) and list it under sopsSecrets, or seal it with kubeseal",
            )
        credentials, odd, tokens, keys = scan_values(obj)
        for where in tokens:  # a token in a Secret never expires; pods with API access get a projected one
            report(
                "service-account-token",
                f"{where} asks for a Secret of type {SERVICE_ACCOUNT_TOKEN}, which the cluster fills "
                "with a ServiceAccount token",
            )
        for where, what in credentials:
            report(
                None,
                f"{where} holds {what} in plain text",
                Code.PLAINTEXT_SECRET,
                "declare it under the App's secrets and seal its value with kubeseal",
            )
        for where, what in odd:
            report(
                None, f"{where} {what}", Code.UNCLASSIFIABLE, "write the value so that it survives as it is"
            )
        if not kind.namespaced:
            if (
                kind.group == ""
                and kind.name == "Namespace"
                and _map(obj.get("metadata")).get("name") == scope.namespace
            ):
                has_namespace = True
                _check_namespace(obj, report)
            elif kind.group != "rbac.authorization.k8s.io":
                report(
                    "cluster-scoped",
                    f"{_a(kind.name)} is cluster-scoped: it reaches beyond the environment's namespace",
                )
        if kind.group == "networking.k8s.io" and kind.name == "NetworkPolicy":
            policies.append((name, obj))
            policy_index[name] = index
        check_rbac(obj, kind.group, scope.namespace, lambda rule, message: report(rule, message))
        if kind.group == "" and kind.name == "Service":
            spec = _map(obj.get("spec"))
            if spec.get("type") in ("NodePort", "LoadBalancer") or spec.get("externalIPs"):
                what = (
                    f"type {spec.get('type')}"
                    if spec.get("type") in ("NodePort", "LoadBalancer")
                    else "externalIPs"
                )
                report(
                    "service-exposure",
                    f"the Service is reachable from outside the cluster ({what}), past the ingress "
                    "and its network policies",
                )
            elif spec.get("type") == "ExternalName" or not _map(spec.get("selector")):
                # Its traffic goes where a name or hand-written endpoints say, and an Ingress to it proxies there.
                what = "type ExternalName" if spec.get("type") == "ExternalName" else "no selector"
                report(
                    "service-exposure",
                    f"the Service sends its traffic to addresses kompile cannot see ({what})",
                )
        if kind.name in EXPOSING.get(kind.group, ()):
            report(
                "service-exposure",
                f"{_a(kind.name)} routes traffic to or from addresses and listeners kompile cannot see, "
                "past the ingress and its network policies",
            )
        if keys_anywhere(keys, MERGE_KEY):
            report(
                None,
                "a '<<' key, which kustomize reads as a YAML merge key and drops: the cluster would not get what the "
                "file says",
                Code.UNCLASSIFIABLE,
                "write the fields it holds where they belong",
            )
        for key in keys_anywhere(keys, TOKEN_SENDERS):
            report(
                "service-account-token",
                f"{key} has a controller mint or send a ServiceAccount token (to a store, "
                "a scraped endpoint or an issuer kompile cannot see)",
            )
        if kind.group == MONITORING:
            for message in scrape_problems(obj, scope.namespace, keys):
                report("scrape-targets", message)
        for key in snippet_keys(keys):
            report(
                "ingress-snippets",
                f"{key} hands raw proxy configuration to an ingress controller, which runs it with "
                "access to every Secret it can read",
            )
        _check_pods(obj, kind, scope, report)
    if scope.namespace is not None:

        def network_report(object_name: str, rule: str, message: str) -> None:
            found.append((policy_index[object_name], Finding(Code.HARDENING, rule, object_name, message)))

        if not check_policies(policies, network_report):
            # Reported at kompile's own default deny when it is there (a patch changed it), else at the environment.
            name = f"NetworkPolicy/{scope.default_deny}"
            found.append(
                (
                    policy_index.get(name, -1),
                    Finding(
                        Code.HARDENING,
                        "network-policy",
                        name,
                        "no NetworkPolicy denies all ingress and egress of every pod (the default deny is gone)",
                    ),
                )
            )
        if not has_namespace:
            found.append(
                (
                    -1,
                    Finding(
                        Code.HARDENING,
                        "pod-security",
                        f"Namespace/{scope.namespace}",
                        "the environment's Namespace is not deployed with it",
                    ),
                )
            )
    return found


def _a(kind: str) -> str:
    return f"{'an' if kind[:1] in 'AEIOU' else 'a'} {kind}"


def _check_metadata(obj: dict, kind: Kind, report) -> None:
    metadata = _map(obj.get("metadata"))
    if metadata.get("ownerReferences"):
        # The garbage collector deletes an object whose owners are gone: Git would no longer say what runs.
        report(
            None,
            "metadata.ownerReferences hands the object's life to other objects (the garbage collector deletes it "
            "with them)",
            Code.UNCLASSIFIABLE,
            "remove them: controllers set owners on what they create; Git-managed objects have none",
        )
    for part in ("annotations", "labels"):
        for key in _map(metadata.get(part)):
            key = str(key)
            if key.startswith(KUSTOMIZE_PREFIXES):
                report(
                    None,
                    f"{part[:-1]} {key} is read by kustomize, which may drop or change the object for it",
                    Code.UNCLASSIFIABLE,
                    "remove it: kompile writes the kustomizations",
                )
            elif (
                key.startswith(CONTROLLER_PREFIXES)
                and key != ARGOCD_WAVE
                and kind.builtin
                and kind.name in GUARDS
            ):
                report(
                    GUARDS[kind.name],
                    f"{part[:-1]} {key} can make Argo CD or Flux skip, freeze or keep this "
                    f"{kind.name} instead of applying it as written",
                )


def _check_namespace(obj: dict, report) -> None:
    labels = _map(_map(obj.get("metadata")).get("labels"))
    for mode in PSS_MODES:
        if labels.get(PSS_LABEL + mode) != "restricted":
            report("pod-security", f"the Namespace does not set {PSS_LABEL}{mode}: restricted")
        version = labels.get(f"{PSS_LABEL}{mode}-version")
        if version not in (None, "latest"):
            report(
                "pod-security",
                f"the Namespace pins {PSS_LABEL}{mode}-version to {version!r}; only latest keeps every check",
            )


def _check_pods(obj: dict, kind: Kind, scope: Scope, report) -> None:
    try:
        specs, strays = pod_specs(obj, kind)
    except Unclassifiable as exc:
        report(
            None,
            f"kompile cannot tell what this {kind.name} runs: {exc}",
            Code.UNCLASSIFIABLE,
            "write the pod spec as the API server expects it (`kubectl explain` shows the fields)",
        )
        return
    for stray in strays:
        who = (
            f"'{stray['name']}'" if isinstance(stray.get("name"), str) else f"running {stray.get('image')!r}"
        )
        report("unknown-workload", f"a container {who} is not in a pod spec kompile can check")
        _check_image(f"container {who}", stray.get("image"), scope, report)
    if not kind.builtin:
        checked = (
            {id(pod) for pod, _ in specs}
            | {id(c) for pod, _ in specs for _, c in containers(pod)}
            | {id(s) for s in strays}
        )
        for fragment in stray_pod_settings(obj, checked):
            check_pod_settings(
                fragment,
                lambda rule, message: report(
                    rule, f"a pod template or container outside a pod spec: {message}"
                ),
            )
    for pod, template_metadata in specs:
        # The API server reads serviceAccountName, or its deprecated alias when that is empty.
        account = pod.get("serviceAccountName") or pod.get("serviceAccount") or "default"
        api_access = isinstance(account, str) and account in scope.api_accounts
        check_pod(pod, template_metadata, api_access, lambda rule, message: report(rule, message))
        for who, image in pod_images(pod):
            _check_image(who, image, scope, report)


def _check_image(who: str, image, scope: Scope, report) -> None:
    problem = image_problem(image, scope.production)
    if problem is not None:
        code, message, hint = problem
        report(None, f"{who}: {message}", code, hint)
