"""Rules for a concrete environment: its namespace, previews, egress, and the production tier."""

from __future__ import annotations

import re

from kompile import names
from kompile.errors import Code, Collector, Span
from kompile.load.project import Project
from kompile.policy.network import WIDEST, covers_half, network
from kompile.source import YMap
from kompile.validate.resolved import IMAGE_FIELDS_HINT, gitops_tool
from kompile.validate.secrets import check_secrets, sealed_scope

# Namespaces an environment never takes: the cluster's own, and where the GitOps controller runs.
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
# Where the controllers kompile's output relies on usually run: an environment there would put a
# restricted Namespace label and a default deny on them.
CONTROLLER_NAMESPACES = (
    "argocd",
    "flux-system",
    "cert-manager",
    "ingress-nginx",
    "keda",
    "external-secrets",
    "monitoring",
    "sealed-secrets",
    "gatekeeper-system",
    "kyverno",
    "envoy-gateway-system",
    "istio-system",
    "cilium",
    "calico-system",
    "tigera-operator",
    "gke-managed-system",
)


def _peer_namespaces(settings: YMap) -> dict[str, str]:
    """Namespaces the spec itself names as others' (the ingress controller's, Prometheus', DNS'): what names them."""
    network = settings.get("network") or {}
    named = {
        str(p.get("namespace")): "network.ingressFrom"
        for p in network.get("ingressFrom") or ()
        if isinstance(p, dict)
    }
    named |= {
        str(t.get("namespace")): "network.dns"
        for t in network.get("dns") or ()
        if isinstance(t, dict) and t.get("namespace")
    }
    monitoring = settings.get("monitoring")
    if isinstance(monitoring, dict):
        named[str(monitoring.get("namespace", "monitoring"))] = "monitoring"
    return named


def _gitops_namespace(project: Project) -> str | None:
    gitops = project.app.spec.get("gitops")
    if not isinstance(gitops, YMap):
        return None
    tool = gitops.get("tool")
    settings = gitops.get(tool) if isinstance(gitops.get(tool), YMap) else {}
    return settings.get("namespace") or {"argocd": "argocd", "flux": "flux-system"}.get(tool)


def check_environment(project: Project, name: str, settings: YMap, out: Collector) -> None:
    namespace = settings["namespace"]
    env_file = project.environments[name]
    controller = _gitops_namespace(project)
    peers = _peer_namespaces(settings)
    if (
        namespace in SYSTEM_NAMESPACES
        or namespace.startswith("kube-")
        or namespace == controller
        or namespace in CONTROLLER_NAMESPACES
        or namespace in peers
    ):
        owner = (
            "the GitOps controller"
            if namespace == controller
            else f"what {peers[namespace]} names"
            if namespace in peers
            else "a controller"
            if namespace in CONTROLLER_NAMESPACES
            else "the cluster"
        )
        where = (
            settings.value_span("namespace")
            if "namespace" in settings.value_spans
            else env_file.doc["metadata"].value_span("name")
        )
        out.error(
            Code.INVALID_NAME,
            f"namespace '{namespace}' belongs to {owner}: an environment takes it over (its "
            "Namespace labels, a default deny, pruning)",
            where,
            "give the environment a namespace of its own",
        )
    if len(names.instance(project.name, name)) > 63:
        out.error(
            Code.INVALID_NAME,
            f"'{project.name}-{name}' (app and environment) is longer than 63 characters",
            env_file.doc["metadata"].value_span("name"),
            "shorten the environment's name: it names the namespace (by default) and labels every object",
        )
    image = settings["image"]
    if not image.get("tag") and not image.get("digest"):
        # Point at the environment's own image when it has one, else at its spec: the tag goes there.
        image_span = settings.value_span("image")
        where = (
            image_span
            if image_span.path != project.app.rel
            else env_file.doc.key_span("spec")
            if "spec" in env_file.doc
            else env_file.doc.span
        )
        out.error(
            Code.LATEST_TAG,
            f"image: environment '{name}' sets no tag or digest, so Kubernetes would pull 'latest'",
            where,
            f"pin what it runs in {env_file.rel}: image: {{tag: 1.4.3}} or image: {{digest: sha256:...}}",
        )
    check_secrets(project, name, settings, namespace, out)
    _check_egress(project, settings, out)
    if isinstance(settings.get("pullRequests"), YMap):
        _check_previews(project, settings, out)
    if settings.get("tier") == "production":
        _check_production(settings, name, out)


def _check_previews(project: Project, settings: YMap, out: Collector) -> None:
    """A preview template: what one instance per pull request needs to work in a namespace of its own."""
    pr = settings["pullRequests"]
    where = settings.key_span("pullRequests")
    if gitops_tool(project) != "argocd":
        out.error(
            Code.COMPONENT_SHAPE,
            "pullRequests: previews per pull request need Argo CD's ApplicationSet",
            where,
            "Flux has no pull-request generator without Flux Operator (a separate controller); with Flux, let CI "
            "write an environment file per pull request",
        )
    for key, allowed in (
        ("host", {"{number}"}),
        ("imageTag", {"{number}", "{head_sha}", "{head_short_sha}"}),
    ):
        for placeholder in re.findall(r"\{[^}]*\}", str(pr.get(key, ""))):
            if placeholder not in allowed:
                out.error(
                    Code.INVALID_VALUE,
                    f"pullRequests.{key}: {placeholder} is not a pull request's parameter",
                    pr.value_span(key),
                    "use " + ", ".join(sorted(allowed)),
                )
    if (settings.get("image") or {}).get("digest"):
        out.error(
            Code.INVALID_VALUE,
            "pullRequests: a preview template pins its image by digest",
            settings.value_span("image"),
            "a digest would win over each pull request's tag; pin a tag (any: each preview replaces it)",
        )
    ingress = settings.get("ingress")
    if (
        isinstance(ingress, YMap)
        and len([*([ingress["host"]] if ingress.get("host") else []), *(ingress.get("hosts") or ())]) > 1
    ):
        out.error(
            Code.INVALID_VALUE,
            "pullRequests: a preview answers on one host",
            settings.key_span("ingress"),
            "give the template one host; pullRequests.host is each preview's",
        )
    for secret_name, entry in (settings.get("sealedSecrets") or {}).items():
        scope = (
            entry.get("scope", "strict")
            if entry.get("file") is None
            else next((sealed_scope(obj) for obj in project.objects(entry["file"], None)[:1]), "strict")
        )
        if scope != "cluster-wide":
            out.error(
                Code.SEALED_SECRET_MISMATCH,
                f"sealedSecrets.{secret_name}: sealed with scope {scope}, it cannot be "
                f"unsealed in a preview's namespace ({names.preview(project.name, '<number>')})",
                settings["sealedSecrets"].key_span(secret_name),
                "seal the preview's values with --scope cluster-wide, or take them from a store with externalSecrets",
            )


def _check_egress(project: Project, settings: YMap, out: Collector) -> None:
    """An egress block as wide as a large part of the internet undoes the default deny. Said here, at the
    rule, rather than by the gate once per NetworkPolicy it lands in: network.egress for every component
    (unless the environment opts out of network-policy for every object), a component's own egress for
    it (unless the opt-out names its NetworkPolicy). An opt-out leaves the exact check to the gate."""
    allows = [
        a
        for a in (settings.get("security") or {}).get("allow") or ()
        if isinstance(a, dict) and a.get("rule") == "network-policy"
    ]
    opted_out = {a.get("object") for a in allows}
    hint = (
        "name the networks the app talks to; to reach the internet on purpose opt out visibly: "
        "security: {allow: [{rule: network-policy, object: NetworkPolicy/<name>, reason: ...}]}"
    )
    scopes = [("every component", (settings.get("network") or YMap(settings.span)), None)]
    scopes += [
        (f"component {name}", component, f"NetworkPolicy/{project.name}-{name}")
        for name, component in (settings.get("components") or {}).items()
        if isinstance(component, YMap)
    ]
    for who, holder, policy in scopes:
        if None in opted_out or policy in opted_out:
            continue
        rules = holder.get("egress") or ()
        narrow: dict[int, list] = {4: [], 6: []}
        for rule in rules:
            if not isinstance(rule, YMap) or rule.get("cidr") is None:
                continue
            net = network(rule["cidr"])
            if net is not None and net.prefixlen >= WIDEST[net.version]:
                narrow[net.version].append(net)
            elif net is not None:
                reaches = "" if str(net) == str(rule["cidr"]) else f", which reaches {net},"
                share = (
                    "every address"
                    if net.prefixlen == 0
                    else f"a large part of all addresses (wider than /{WIDEST[net.version]} for IPv{net.version})"
                )
                out.error(
                    Code.HARDENING,
                    f"egress to {rule['cidr']}{reaches} opens {share} to {who}",
                    rule.value_span("cidr"),
                    hint,
                )
        for version, nets in narrow.items():
            # Many narrow blocks are as wide as one wide block: the gate's rule, said once at the list.
            if nets and covers_half(nets, version):
                out.error(
                    Code.HARDENING,
                    f"the egress rules together open half or more of all {'IPv4' if version == 4 else 'routable IPv6'} "
                    f"addresses to {who}",
                    holder.key_span("egress"),
                    hint,
                )


def _check_production(settings: YMap, env: str, out: Collector) -> None:
    """The rules of tier: production. Messages name the environment: the setting they point at may be
    inherited from the App or an extended environment."""
    why = f"(environment '{env}' is tier: production)"
    image = settings["image"]
    if not image.get("digest"):
        out.error(
            Code.PROD_DIGEST,
            f"image is not pinned by digest {why}",
            settings.value_span("image"),
            IMAGE_FIELDS_HINT,
        )
    for field_name in ("sidecars", "initContainers"):
        for helper in settings.get(field_name) or ():
            if (
                isinstance(helper, YMap)
                and not helper.get("appImage")
                and "@" not in str(helper.get("image", ""))
            ):
                out.error(
                    Code.PROD_DIGEST,
                    f"{field_name}.{helper.get('name')}.image is not pinned by digest {why}",
                    helper.value_span("image"),
                    "add @sha256:<digest> (an environment may set it: "
                    f"{field_name}: {{{helper.get('name')}: {{image: ...@sha256:...}}}})",
                )
    components = settings["components"]
    for name, component in components.items():
        autoscaling = component.get("autoscaling")
        if isinstance(autoscaling, YMap) and autoscaling.get("minReplicas") == 0:
            out.error(
                Code.AUTOSCALING_BOUNDS,
                f"components.{name}.autoscaling: production never scales to zero {why}",
                autoscaling.value_span("minReplicas"),
                "the first task after a quiet spell would wait for a pod to "
                "start; set minReplicas: 1 or more",
            )
        if component["type"] == "web":
            autoscaling = component.get("autoscaling")
            count = autoscaling["minReplicas"] if autoscaling else component.get("replicas", 1)
            if count < 2:
                where = (
                    autoscaling.value_span("minReplicas")
                    if autoscaling
                    else component.value_span("replicas")
                    if "replicas" in component
                    else components.key_span(name)
                )
                out.error(
                    Code.PROD_REPLICAS,
                    f"components.{name}: a web component runs at least 2 pods, found {count} {why}",
                    where,
                    "one pod means downtime on every node drain and rollout; set replicas: 2 or autoscaling.minReplicas: 2",
                )
        _check_stated_resources(f"components.{name}", component, components.key_span(name), why, out)
    # migrate may keep kompile's defaults (a Job that ends; the canonical example relies on it).
    for field_name in ("sidecars", "initContainers"):
        for helper in settings.get(field_name) or ():
            if isinstance(helper, YMap):
                _check_stated_resources(f"{field_name}.{helper.get('name')}", helper, helper.span, why, out)


def _check_stated_resources(where: str, body: YMap, fallback: Span, why: str, out: Collector) -> None:
    resources = body.get("resources") or {}
    for part in ("requests", "limits"):
        given = resources.get(part) or {}
        missing = [r for r in ("cpu", "memory") if r not in given]
        if missing:
            span = resources.value_span(part) if part in resources else fallback
            out.error(
                Code.PROD_RESOURCES,
                f"{where}.resources.{part}: {' and '.join(missing)} not set {why}",
                span,
                "production pods state what they need and the most they may use",
            )
