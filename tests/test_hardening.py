"""kompile's own promises, asserted on every rendered environment of every golden case: Pod Security
Standards "restricted" and the NSA/CISA hardening guide in every pod, network isolation, safe scaling
and rollouts, GitOps ordering, labels and generated-file headers.

These run on kompile's model (`compiled.objects`); tests/test_kustomize.py proves that model equal to
what `kubectl kustomize` builds from the overlays, so the promises hold for what a cluster receives.

Which pods: those kompile generates (the components' Deployments and the migrate Job). Objects from
`extraResources` are the user's escape hatch and are included as written (kompile only sets their
namespace, labels and image as kustomize would); asserting kompile's defaults on them would test the
golden inputs' authors, not kompile. What protects the cluster from an unhardened extra pod is the
Namespace's `pod-security.kubernetes.io/enforce: restricted`, which is asserted here. User patches, on
the other hand, change kompile's own objects, so those objects are checked after patching.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

from kompile.compiler import Output, compile_project
from kompile.k8s import meta
from kompile.k8s.quantity import parse_quantity
from kompile.layout import Compiled
from kompile.model import ComponentType, GitOpsTool, Probe, SecretMount, Tier
from kompile.normalise.defaults import PRE_STOP_SECONDS, SERVER_GRACEFUL_TIMEOUT
from kompile.policy.sops import is_sops_encrypted
from kompile.render import object_id
from kompile.spec.commands import graceful_timeout

from conftest import GOLDEN, copy_golden_input, golden_cases, golden_overlays

OVERLAYS = golden_overlays()
IDS = [f"{case}/{env}" for case, env in OVERLAYS]
PSS = ("enforce", "audit", "warn")
RESOURCES = ("cpu", "memory", "ephemeral-storage")
MIN_ID = 10000
BOTH_TYPES = {"Ingress", "Egress"}
ARGOCD_WAVE = "argocd.argoproj.io/sync-wave"
POD_OWNERS = ("Deployment", "Job", "StatefulSet", "DaemonSet", "CronJob")
# What the API server accepts (apimachinery's validation); kubernetes-validate's schemas do not check it.
LABEL_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


@cache
def output(case: str) -> Output:
    """Compiled once per case; tests only read it."""
    return compile_project(GOLDEN / case / "input")


def compiled(case: str, env: str) -> Compiled:
    return output(case).environments[env]


def generated(c: Compiled) -> list[dict]:
    """The objects kompile generates: everything but the extra resources included as written."""
    extra = {object_id(item.body) for item in c.env.extra_objects}
    return [obj for obj in c.objects if object_id(obj) not in extra]


def pod_template(obj: dict) -> dict | None:
    spec = obj.get("spec") or {}
    if obj["kind"] == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    return spec.get("template") if obj["kind"] in POD_OWNERS else None


def pods(objects: list[dict]) -> Iterator[tuple[str, dict]]:
    """(kind/name, pod template) of every workload."""
    for obj in objects:
        template = pod_template(obj)
        if template is not None:
            yield f"{obj['kind']}/{obj['metadata']['name']}", template


def containers(template: dict) -> list[dict]:
    spec = template["spec"]
    return [*spec.get("initContainers", ()), *spec["containers"]]


def of_kind(objects: list[dict], kind: str) -> list[dict]:
    return [obj for obj in objects if obj["kind"] == kind]


def component_workload(c: Compiled, component: str) -> dict:
    """The one Deployment (or, for "migrate", Job) labelled with this component."""
    found = [
        obj
        for obj in generated(c)
        if obj["kind"] in ("Deployment", "Job", "CronJob")
        and obj["metadata"]["labels"].get(meta.COMPONENT) == component
    ]
    assert len(found) == 1, f"{len(found)} workloads labelled {meta.COMPONENT}={component}"
    return found[0]


def selects(selector: dict, labels: dict) -> bool:
    """A matchLabels selector (non-empty) that these labels satisfy."""
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def parametrize_overlays(test):
    return pytest.mark.parametrize(("case", "env"), OVERLAYS, ids=IDS)(test)


# ---------------------------------------------------------------------------------------------
# Every pod kompile generates


@parametrize_overlays
def test_there_are_pods(case, env):
    c = compiled(case, env)
    names = [name for name, _ in pods(generated(c))]
    assert len(names) == len(c.env.components) + (c.env.migrate is not None), names


@parametrize_overlays
def test_pod_security_context(case, env):
    c = compiled(case, env)
    security = c.env.security
    for name, template in pods(generated(c)):
        context = template["spec"]["securityContext"]
        assert context["runAsNonRoot"] is True, name
        for key, configured in (
            ("runAsUser", security.run_as_user),
            ("runAsGroup", security.run_as_group),
            ("fsGroup", security.fs_group),
        ):
            value = context[key]
            assert type(value) is int and value >= MIN_ID, f"{name}: {key} {value!r}"
            assert value == configured, f"{name}: {key} {value} is not the spec's {configured}"
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}, name


@parametrize_overlays
def test_container_security_context(case, env):
    for name, template in pods(generated(compiled(case, env))):
        pod_context = template["spec"]["securityContext"]
        for container in containers(template):
            where = f"{name} container {container['name']}"
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, where
            assert "ALL" in context["capabilities"]["drop"], where
            assert not context["capabilities"].get("add"), where
            assert context["readOnlyRootFilesystem"] is True, where
            assert context.get("privileged") is not True, where
            assert context.get("runAsNonRoot", pod_context["runAsNonRoot"]) is True, where
            assert context.get("runAsUser", pod_context["runAsUser"]) >= MIN_ID, where
            assert context.get("seccompProfile", pod_context["seccompProfile"]) == {
                "type": "RuntimeDefault"
            }, where


@parametrize_overlays
def test_tmp_is_a_bounded_empty_dir(case, env):
    c = compiled(case, env)
    for name, template in pods(generated(c)):
        volumes = {v["name"]: v for v in template["spec"]["volumes"]}
        for container in containers(template):
            tmp = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
            assert len(tmp) == 1, f"{name} container {container['name']}: no /tmp mount"
            volume = volumes[tmp[0]["name"]]
            assert set(volume) == {"name", "emptyDir"}, f"{name}: /tmp is not an emptyDir: {volume}"
            assert volume["emptyDir"]["sizeLimit"] == c.env.security.tmp_size, name
            assert parse_quantity(volume["emptyDir"]["sizeLimit"]) > 0, name


@parametrize_overlays
def test_requests_and_limits(case, env):
    for name, template in pods(generated(compiled(case, env))):
        for container in containers(template):
            resources = container["resources"]
            for resource in RESOURCES:
                request = resources["requests"][resource]
                limit = resources["limits"][resource]
                assert parse_quantity(request) <= parse_quantity(limit), (
                    f"{name}: {resource} request {request} > limit {limit}"
                )


@parametrize_overlays
def test_images_are_pulled_always_and_pinned(case, env):
    """The app's containers run the environment's image; sidecars and init containers their own, pinned
    (by digest in production)."""
    c = compiled(case, env)
    helpers = {h.name: h.image for comp in c.env.components for h in (*comp.sidecars, *comp.init_containers)}
    if c.env.migrate:
        helpers |= {h.name: h.image for h in (*c.env.migrate.sidecars, *c.env.migrate.init_containers)}
    for name, template in pods(generated(c)):
        for container in containers(template):
            assert container["imagePullPolicy"] == "Always", name
            expected = (
                helpers[container["name"]]
                if container in template["spec"].get("initContainers", ())
                else c.env.image.ref
            )
            assert container["image"] == expected, name
            assert ":" in expected.rpartition("/")[2] or "@" in expected, f"{name}: {expected} is not pinned"
            if c.env.tier is Tier.PRODUCTION:
                assert "@sha256:" in expected, f"{name}: production runs images by digest"
            assert c.env.image.tag or c.env.image.digest, "an environment always pins its image"


@parametrize_overlays
def test_service_account_token_only_with_rbac(case, env):
    c = compiled(case, env)
    objects = generated(c)
    """A token only in the pods of a component whose own ServiceAccount has a Role; migrate runs as the app's."""
    objects = generated(c)
    accounts = {a["metadata"]["name"]: a for a in of_kind(objects, "ServiceAccount")}
    assert sorted(accounts) == sorted(a.name for a in c.env.accounts) and c.env.accounts[0].name == c.env.app
    assert all(a["automountServiceAccountToken"] is False for a in accounts.values())
    by_component = {comp.name: comp.account for comp in c.env.components} | {"migrate": c.env.accounts[0]}
    for name, template in pods(objects):
        account = by_component[template["metadata"]["labels"][meta.COMPONENT]]
        assert template["spec"]["serviceAccountName"] == account.name, name
        assert template["spec"]["automountServiceAccountToken"] is account.api_access, name
    assert not c.env.accounts[0].api_access, "the app's own account (migrate's) never has API access"
    roles = {r["metadata"]["name"]: r for r in of_kind(objects, "Role")}
    bindings = {b["metadata"]["name"]: b for b in of_kind(objects, "RoleBinding")}
    with_rules = [a for a in c.env.accounts if a.rules]
    assert sorted(roles) == sorted(bindings) == sorted(a.name for a in with_rules)
    for account in with_rules:
        assert roles[account.name]["rules"] == list(account.rules)
        assert bindings[account.name]["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": account.name,
        }
        assert bindings[account.name]["subjects"] == [
            {"kind": "ServiceAccount", "name": account.name, "namespace": c.env.namespace}
        ]
    assert not [o for o in c.objects if o["kind"] in ("ClusterRole", "ClusterRoleBinding")]


@parametrize_overlays
def test_no_host_access_or_privilege(case, env):
    for name, template in pods(generated(compiled(case, env))):
        spec = template["spec"]
        for key in ("hostNetwork", "hostPID", "hostIPC"):
            assert spec.get(key) is not True, f"{name}: {key}"
        assert not [v for v in spec.get("volumes", ()) if "hostPath" in v], f"{name}: hostPath volume"
        for container in containers(template):
            assert container["securityContext"].get("privileged") is not True, name
            assert not [p for p in container.get("ports", ()) if "hostPort" in p], f"{name}: hostPort"


@parametrize_overlays
def test_no_secret_objects(case, env):
    """Secrets arrive sealed, from a store, or (with Flux) encrypted with sops: never a Secret in plain text."""
    c = compiled(case, env)
    flux = c.env.gitops is not None and c.env.gitops.tool is GitOpsTool.FLUX
    assert not [s for s in of_kind(c.objects, "Secret") if not (flux and is_sops_encrypted(s))]


# ---------------------------------------------------------------------------------------------
# Namespace and network


@parametrize_overlays
def test_namespace_enforces_restricted(case, env):
    c = compiled(case, env)
    namespaces = of_kind(c.objects, "Namespace")
    assert [n["metadata"]["name"] for n in namespaces] == [c.env.namespace]
    labels = namespaces[0]["metadata"]["labels"]
    for mode in PSS:
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted", mode
    others = [o for o in c.objects if o["kind"] != "Namespace"]
    assert all(o["metadata"]["namespace"] == c.env.namespace for o in others), (
        "every object lands in the environment's namespace"
    )


@parametrize_overlays
def test_default_deny(case, env):
    policies = of_kind(compiled(case, env).objects, "NetworkPolicy")
    deny = [p for p in policies if p["spec"]["podSelector"] == {}]
    assert len(deny) == 1, "one default-deny policy per namespace"
    assert set(deny[0]["spec"]["policyTypes"]) == BOTH_TYPES
    assert not deny[0]["spec"].get("ingress") and not deny[0]["spec"].get("egress"), "it denies: no rules"


@parametrize_overlays
def test_every_pod_is_selected_by_a_policy_naming_both_types(case, env):
    c = compiled(case, env)
    policies = [p for p in of_kind(c.objects, "NetworkPolicy") if p["spec"]["podSelector"]]
    for name, template in pods(generated(c)):
        labels = template["metadata"]["labels"]
        mine = [p for p in policies if selects(p["spec"]["podSelector"].get("matchLabels", {}), labels)]
        assert mine, f"{name}: no NetworkPolicy selects its pods by label"
        for policy in mine:
            assert set(policy["spec"]["policyTypes"]) == BOTH_TYPES, policy["metadata"]["name"]


@parametrize_overlays
def test_policies_allow_dns_the_listed_egress_and_web_ingress_only(case, env):
    """Each pod's policy allows DNS (to the configured resolvers), the spec's egress, the components it
    connects to; and lets in only: the ingress controller to a routed web component's port, the
    components that call it, and Prometheus to its metrics port."""
    c = compiled(case, env)
    policies = generated(c)
    components = {comp.name: comp for comp in c.env.components}
    routed = (
        c.env.ingress.routed
        if c.env.ingress
        else tuple(n for n, comp in components.items() if comp.type is ComponentType.WEB)
    )
    controller = [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": p.namespace}},
            **({"podSelector": {"matchLabels": p.pod_selector}} if p.pod_selector else {}),
        }
        for p in c.env.network.ingress_from
    ]
    for name, template in pods(policies):
        labels = template["metadata"]["labels"]
        policy = next(
            p
            for p in of_kind(policies, "NetworkPolicy")
            if selects(p["spec"]["podSelector"].get("matchLabels", {}), labels)
        )
        spec = policy["spec"]
        dns = spec["egress"][0]
        assert len(dns["to"]) == len(c.env.network.dns) and dns["to"], name
        assert sorted((p["protocol"], p["port"]) for p in dns["ports"]) == [("TCP", 53), ("UDP", 53)], name
        component = components.get(labels[meta.COMPONENT])
        targets = component.connects_to if component else ()
        plain_egress = [r for r in c.env.network.egress if not r.host]
        assert len(spec["egress"]) == 1 + len(plain_egress) + len(targets), (
            f"{name}: one egress rule per spec entry, after DNS"
        )
        allowed = []
        if component is not None and component.name in routed and controller:
            allowed.append({"from": controller, "ports": [{"port": component.port, "protocol": "TCP"}]})
        callers = [
            n
            for n, comp in components.items()
            if component is not None and component.name in comp.connects_to
        ]
        if callers:
            allowed.append(
                {
                    "from": [
                        {"podSelector": {"matchLabels": meta.selector_labels(c.env.app, n)}} for n in callers
                    ],
                    "ports": [{"port": component.port, "protocol": "TCP"}],
                }
            )
        if component is not None and component.metrics:
            monitoring = c.env.monitoring
            allowed.append(
                {
                    "from": [
                        {
                            "namespaceSelector": {
                                "matchLabels": {"kubernetes.io/metadata.name": monitoring.namespace}
                            },
                            "podSelector": {"matchLabels": monitoring.pod_selector},
                        }
                    ],
                    "ports": [{"port": component.metrics.port, "protocol": "TCP"}],
                }
            )
        assert spec.get("ingress", []) == allowed, name


# ---------------------------------------------------------------------------------------------
# Scaling and rollouts


@parametrize_overlays
def test_hpa_managed_deployments_have_no_replicas(case, env):
    c = compiled(case, env)
    objects = generated(c)
    hpas = {h["spec"]["scaleTargetRef"]["name"]: h for h in of_kind(objects, "HorizontalPodAutoscaler")}
    scaled = {s["spec"]["scaleTargetRef"]["name"]: s for s in of_kind(objects, "ScaledObject")}
    for hpa in hpas.values():
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert hpa["spec"]["scaleTargetRef"]["kind"] == "Deployment"
    assert not set(hpas) & set(scaled), "KEDA's webhook refuses a ScaledObject beside an HPA on one workload"
    for component in c.env.components:
        if component.type is ComponentType.CRON:
            continue
        deployment = component_workload(c, component.name)
        hpa = hpas.get(deployment["metadata"]["name"])
        if component.autoscaling and component.autoscaling.queue:
            keda = scaled[deployment["metadata"]["name"]]
            assert hpa is None and "replicas" not in deployment["spec"], component.name
            assert (keda["spec"]["minReplicaCount"], keda["spec"]["maxReplicaCount"]) == (
                component.autoscaling.min_replicas,
                component.autoscaling.max_replicas,
            )
        elif component.autoscaling:
            assert hpa is not None, component.name
            assert "replicas" not in deployment["spec"], (
                f"{component.name}: an HPA and GitOps would fight over spec.replicas"
            )
            assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (
                component.autoscaling.min_replicas,
                component.autoscaling.max_replicas,
            )
            metrics = {
                m["resource"]["name"]: m["resource"]["target"]["averageUtilization"]
                for m in hpa["spec"]["metrics"]
            }
            expected = {
                k: v
                for k, v in (("cpu", component.autoscaling.cpu), ("memory", component.autoscaling.memory))
                if v
            }
            assert metrics == expected, component.name
        else:
            assert hpa is None, component.name
            assert deployment["spec"]["replicas"] == component.replicas, component.name


@parametrize_overlays
def test_scheduler_runs_once(case, env):
    c = compiled(case, env)
    objects = generated(c)
    for component in c.env.components:
        if component.type is not ComponentType.SCHEDULER:
            continue
        deployment = component_workload(c, component.name)
        assert deployment["spec"]["replicas"] == 1
        assert deployment["spec"]["strategy"] == {"type": "Recreate"}, (
            "two celery beats would run every task twice"
        )
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert not [
            h
            for h in of_kind(objects, "HorizontalPodAutoscaler")
            if h["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
        ]
        assert not [
            p
            for p in of_kind(objects, "PodDisruptionBudget")
            if selects(p["spec"]["selector"]["matchLabels"], labels)
        ]


@parametrize_overlays
def test_web_with_two_pods_has_a_disruption_budget(case, env):
    c = compiled(case, env)
    budgets = of_kind(generated(c), "PodDisruptionBudget")
    for component in c.env.components:
        if component.type is not ComponentType.WEB:
            continue
        labels = component_workload(c, component.name)["spec"]["template"]["metadata"]["labels"]
        mine = [p for p in budgets if selects(p["spec"]["selector"]["matchLabels"], labels)]
        if component.pods_at_least < 2:
            assert not mine, f"{component.name}: a budget on one pod would block every node drain"
            continue
        assert len(mine) == 1, component.name
        spec = mine[0]["spec"]
        assert spec["maxUnavailable"] == 1 and "minAvailable" not in spec, component.name
        assert spec["unhealthyPodEvictionPolicy"] == "AlwaysAllow", component.name


@parametrize_overlays
def test_components_spread_and_web_stops_gracefully(case, env):
    c = compiled(case, env)
    for component in c.env.components:
        if component.type is ComponentType.CRON:
            continue
        deployment = component_workload(c, component.name)
        spec = deployment["spec"]["template"]["spec"]
        if component.type is ComponentType.SCHEDULER:
            assert "topologySpreadConstraints" not in spec
            continue
        spread = spec["topologySpreadConstraints"]
        assert {s["topologyKey"] for s in spread} == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
        assert all(
            s["labelSelector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"] for s in spread
        )
        if component.type is ComponentType.WEB:
            [container] = spec["containers"]
            assert container["lifecycle"] == {"preStop": {"sleep": {"seconds": PRE_STOP_SECONDS}}}
            argv = [*(component.command or ()), *(component.args or ())]
            graceful = graceful_timeout(argv, c.env.env.get("GUNICORN_CMD_ARGS", ""), SERVER_GRACEFUL_TIMEOUT)
            assert spec["terminationGracePeriodSeconds"] > graceful + PRE_STOP_SECONDS, (
                "the kubelet must not kill the web server before its graceful timeout ends"
            )


@parametrize_overlays
def test_probes(case, env):
    """Every long-running component is ready only when its health check passes; web's HTTP probes send
    the Host header Django allows; liveness never depends on the database or the broker: a web server's
    open port, and for workers and schedulers a local check or none."""
    c = compiled(case, env)
    # ".example.org" allows example.org and its subdomains; "*" names no host to send.
    allowed = [
        h.lstrip(".")
        for h in re.split(r"[,\s]+", c.env.env.get("DJANGO_ALLOWED_HOSTS", ""))
        if h.strip(" .*")
    ]
    for component in c.env.components:
        if component.type is ComponentType.CRON:
            continue
        [container] = component_workload(c, component.name)["spec"]["template"]["spec"]["containers"]
        readiness, liveness = container["readinessProbe"], container.get("livenessProbe")
        if component.type is not ComponentType.WEB:
            assert "exec" in readiness or "httpGet" in readiness
            command = " ".join((liveness or {}).get("exec", {}).get("command", ()))
            assert not re.search(r"celery.*(inspect|status|control)", command), (
                f"{component.name}: liveness through the broker"
            )
            continue
        assert liveness is not None, f"{component.name}: a web server has a liveness probe"
        if component.probes.liveness == Probe(port=component.port):  # the default: the port is open
            assert liveness == {
                "tcpSocket": {"port": "http"},
                "failureThreshold": 3,
                "periodSeconds": 20,
                "timeoutSeconds": 5,
            }
        for probe in (container["startupProbe"], readiness):
            headers = {h["name"]: h["value"] for h in probe["httpGet"]["httpHeaders"]}
            ingress = c.env.ingress
            expected = ingress.hosts[0] if ingress and component.name in ingress.routed else allowed[0]
            assert headers == {"Host": expected}, (
                f"{component.name}: the kubelet's pod-IP Host is rejected by Django"
            )
            assert probe["httpGet"]["path"] in (
                component.probes.readiness.http_path,
                component.probes.startup.http_path,
            )


# ---------------------------------------------------------------------------------------------
# The migrate Job and GitOps ordering


@parametrize_overlays
def test_migrate_job(case, env):
    c = compiled(case, env)
    jobs = of_kind(generated(c), "Job")
    if c.env.migrate is None:
        assert not jobs
        return
    [job] = jobs
    spec = job["spec"]
    assert spec["backoffLimit"] == c.env.migrate.backoff_limit
    assert spec["activeDeadlineSeconds"] == c.env.migrate.timeout_seconds
    assert "ttlSecondsAfterFinished" not in spec, "a Job that deletes itself leaves the app OutOfSync"
    assert spec["template"]["spec"]["restartPolicy"] == "Never"
    [container] = spec["template"]["spec"]["containers"]
    assert container["command"] == list(c.env.migrate.command)
    web = [
        comp
        for comp in c.env.components
        if comp.type in (ComponentType.WEB, ComponentType.WORKER)
        and comp.secrets is None
        and c.env.migrate.secrets is None
    ]
    if web:
        deployment = component_workload(c, web[0].name)
        assert container["envFrom"] == deployment["spec"]["template"]["spec"]["containers"][0]["envFrom"], (
            "the migration reads the settings and secrets of the release it migrates for"
        )


@parametrize_overlays
def test_gitops_annotations(case, env):
    c = compiled(case, env)
    objects = generated(c)
    tool = c.env.gitops.tool if c.env.gitops else None
    job = of_kind(objects, "Job")
    annotations = {object_id(o): (o["metadata"].get("annotations") or {}) for o in objects}
    argocd = {k: a for k, a in annotations.items() if any(key.startswith("argocd.argoproj.io/") for key in a)}
    flux = {
        k: a
        for k, a in annotations.items()
        if any(key.startswith("kustomize.toolkit.fluxcd.io/") for key in a)
    }
    if tool is not GitOpsTool.ARGOCD:
        assert not argocd
    if tool is not GitOpsTool.FLUX:
        assert not flux
    if tool is GitOpsTool.FLUX and job:
        assert job[0]["metadata"]["annotations"]["kustomize.toolkit.fluxcd.io/force"] == "enabled", (
            "a Job's template is immutable: Flux must re-create it on each release"
        )
        assert list(flux) == [object_id(job[0])]
    if tool is not GitOpsTool.ARGOCD:
        return
    waves = {
        kind: {a[ARGOCD_WAVE] for (_, k, _), a in annotations.items() if k == kind}
        for kind in ("ServiceAccount", "ConfigMap", "SealedSecret", "Job", "Deployment")
    }
    for kind in ("ServiceAccount", "ConfigMap", "SealedSecret"):
        assert waves[kind] <= {"-1"}, f"{kind} first: the Job reads it"
    assert waves["Deployment"] == {"1"}, "the new pods start after the migration"
    if job:
        hook = job[0]["metadata"]["annotations"]
        assert hook["argocd.argoproj.io/hook"] == "Sync", (
            "not PreSync: on a first install its Secret would not exist yet"
        )
        assert hook["argocd.argoproj.io/hook-delete-policy"] == "BeforeHookCreation"
        assert hook[ARGOCD_WAVE] == "0"


# ---------------------------------------------------------------------------------------------
# Configuration and sealed secrets


@parametrize_overlays
def test_config_and_secrets_reach_the_pods(case, env):
    c = compiled(case, env)
    objects = generated(c)
    [config] = [m for m in of_kind(objects, "ConfigMap") if m["metadata"]["name"] == f"{c.env.app}-config"]
    assert config["data"] == c.env.env
    env_secrets = [s.name for s in c.env.secrets if s.mount is SecretMount.ENV]
    file_secrets = {s.name: s for s in c.env.secrets if s.mount is SecretMount.FILES}
    selected = {comp.name: comp.secrets for comp in c.env.components} | {
        "migrate": c.env.migrate.secrets if c.env.migrate else None
    }
    for name, template in pods(objects):
        [container] = template["spec"]["containers"]
        chosen = selected[template["metadata"]["labels"][meta.COMPONENT]]
        assert container["envFrom"] == [
            {"configMapRef": {"name": config["metadata"]["name"]}},
            *({"secretRef": {"name": s}} for s in env_secrets if chosen is None or s in chosen),
        ], name
        assert "env" not in container, f"{name}: settings come from the ConfigMap, secrets from their Secret"
        volumes = {v["name"]: v for v in template["spec"]["volumes"]}
        mounted = {
            volumes[m["name"]]["secret"]["secretName"]: m
            for m in container["volumeMounts"]
            if "secret" in volumes[m["name"]]
        }
        assert set(mounted) == {s for s in file_secrets if chosen is None or s in chosen}, name
        for secret, mount in mounted.items():
            assert mount["readOnly"] is True and mount["mountPath"] == file_secrets[secret].mount_path, name


@parametrize_overlays
def test_sealed_secrets_keep_their_sealed_name_and_namespace(case, env):
    c = compiled(case, env)
    sealed = {s["metadata"]["name"]: s for s in of_kind(c.objects, "SealedSecret")}
    assert set(sealed) == {s["metadata"]["name"] for s in c.env.sealed_secrets}
    others = {
        s["metadata"]["name"] for s in of_kind(c.objects, "ExternalSecret") + of_kind(c.objects, "Secret")
    }
    assert not set(sealed) & others, "one backend per secret"
    assert set(sealed) | others == {s.name for s in c.env.secrets}, "exactly the secrets the App declares"
    for name, obj in sealed.items():
        assert obj["metadata"]["namespace"] == c.env.namespace, name
        template = obj["spec"].get("template", {}).get("metadata", {})
        assert (
            template.get("name", name) == name
            and template.get("namespace", c.env.namespace) == c.env.namespace
        ), name


@pytest.mark.parametrize("case", golden_cases())
def test_no_transform_renames_objects(case):
    """namePrefix/nameSuffix would rename SealedSecrets, whose ciphertext is bound to their name."""
    for path, data in output(case).files.items():
        if path.endswith("kustomization.yaml"):
            text = data.decode()
            assert "namePrefix" not in text and "nameSuffix" not in text and "replacements" not in text, path


# ---------------------------------------------------------------------------------------------
# Labels, selectors and generated files


@parametrize_overlays
def test_recommended_labels(case, env):
    c = compiled(case, env)
    for obj in generated(c):
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        labels = obj["metadata"]["labels"]
        assert labels[meta.NAME] == c.env.app, where
        assert labels[meta.PART_OF] == c.env.app, where
        assert labels[meta.MANAGED_BY] == "kompile", where
        assert labels[meta.INSTANCE] == f"{c.env.app}-{env}", where
        template = pod_template(obj)
        if template is None:
            continue
        pod_labels = template["metadata"]["labels"]
        for key in (meta.NAME, meta.INSTANCE, meta.COMPONENT, meta.PART_OF, meta.MANAGED_BY):
            assert pod_labels.get(key) == labels.get(key), f"{where}: pods lack {key}"
        assert pod_labels[meta.COMPONENT], where
        for carrier in (labels, pod_labels):
            assert carrier.get(meta.VERSION) == c.env.image.tag, (
                f"{where}: {meta.VERSION} is the release's tag"
            )


@parametrize_overlays
def test_selectors_never_change_across_releases(case, env):
    """Selectors hold only name and component: never the version (immutable selectors would block every
    release) nor the instance (the namespace already tells environments apart)."""
    c = compiled(case, env)
    selectors = []
    for obj in generated(c):
        spec = obj.get("spec") or {}
        kind = obj["kind"]
        if kind == "Deployment":
            selectors.append((kind, spec["selector"]["matchLabels"]))
            labels = spec["template"]["metadata"]["labels"]
            assert selects(spec["selector"]["matchLabels"], labels), (
                f"Deployment/{obj['metadata']['name']} does not select its pods"
            )
            selectors += [
                ("topologySpread", s["labelSelector"]["matchLabels"])
                for s in spec["template"]["spec"].get("topologySpreadConstraints", ())
            ]
        elif kind == "Service":
            selectors.append((kind, spec["selector"]))
        elif kind == "PodDisruptionBudget":
            selectors.append((kind, spec["selector"]["matchLabels"]))
        elif (
            kind == "NetworkPolicy" and obj["metadata"]["name"] != f"{c.env.app}-acme-http01-solver"
        ):  # cert-manager's pods
            selectors.append((kind, spec["podSelector"].get("matchLabels", {})))
    assert selectors
    for kind, selector in selectors:
        assert set(selector) <= {meta.NAME, meta.COMPONENT}, f"{kind} selects on {sorted(selector)}"


@pytest.mark.parametrize("case", golden_cases())
def test_every_generated_file_says_so(case):
    """Each file opens by saying kompile generated it, from which spec files, and not to edit it."""
    out = output(case)
    sources = {
        f"bases/{out.base.env.app}/": out.base.env.sources,
        **{f"overlays/{name}/": c.env.sources for name, c in out.environments.items()},
    }
    assert all(
        s[0] == "environments/app.yaml" and len(s) >= 2
        for p, s in sources.items()
        if p.startswith("overlays/")
    )
    for path, data in out.files.items():
        if path.startswith("rendered/"):  # kubectl's bytes exactly; .gitattributes marks them generated
            continue
        first, second = data.decode().splitlines()[:2]
        assert first.startswith("# Generated by kompile from environments/app.yaml"), path
        assert second.startswith("# Do not edit"), path
        expected = [s for prefix, s in sources.items() if path.startswith(prefix)]
        if expected:  # gitops/ files name the App and the environments they wire up
            assert first == f"# Generated by kompile from {', '.join(expected[0])}.", path


def label_maps(node, path: str = "") -> Iterator[tuple[str, dict]]:
    """Every labels map and matchLabels/selector map in an object, with where it is."""
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{path}.{key}" if path else key
            # A Service's selector is a plain map of labels; a Deployment's holds matchLabels.
            plain_selector = (
                key == "selector"
                and isinstance(value, dict)
                and all(isinstance(v, str) for v in value.values())
            )
            if (key in ("labels", "matchLabels") and isinstance(value, dict)) or plain_selector:
                yield here, value
            else:
                yield from label_maps(value, here)
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from label_maps(item, f"{path}[{index}]")


def label_problems(objects: list[dict]) -> list[str]:
    problems = []
    for obj in objects:
        if obj["kind"] == "CiliumNetworkPolicy":  # Cilium's selectors name labels with a source prefix (k8s:)
            obj = {"metadata": obj["metadata"]}
        for where, labels in label_maps(obj):
            for key, value in labels.items():
                name = key.rpartition("/")[2]
                if not LABEL_KEY.match(key) or len(name) > 63:
                    problems.append(
                        f"{obj['kind']}/{obj['metadata']['name']} {where}: invalid label key {key!r}"
                    )
                if not isinstance(value, str) or len(value) > 63 or not LABEL_VALUE.match(value):
                    problems.append(
                        f"{obj['kind']}/{obj['metadata']['name']} {where}: invalid value {value!r} for {key}"
                    )
    return problems


@parametrize_overlays
def test_labels_are_valid(case, env):
    """The API server rejects a label value that is too long or does not begin and end with a letter or digit."""
    problems = label_problems(compiled(case, env).objects)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("tag", ["2024.11.3_", "_nightly", "rc-", "v" + "1" * 63])
def test_a_tag_that_is_no_label_value_gives_no_version_label(tag: str, tmp_path: Path):
    """Image tags allow what label values do not (a leading or trailing '_', '-' or '.', 128 characters):
    such a release runs without the version label rather than being rejected by the API server."""
    root = copy_golden_input("web-only", tmp_path / "repo")
    spec = root / "environments" / "staging.yaml"
    spec.write_text(spec.read_text().replace('tag: "2024.11.3"', f'tag: "{tag}"'))
    objects = compile_project(root).environments["staging"].objects
    assert not label_problems(objects), label_problems(objects)
    assert all(meta.VERSION not in labels for obj in objects for _, labels in label_maps(obj))
    images = [c["image"] for _, template in pods(objects) for c in containers(template)]
    assert images and all(image.endswith(f":{tag}") for image in images), "the tag itself is still what runs"
