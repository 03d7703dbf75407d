"""What production clusters run around the app: several hosts and path routes (an Ingress per routed
component, or an HTTPRoute on a Gateway), cert-manager Certificates, NetworkPolicies for the ingress
controller, Prometheus, other components and DNS resolvers, egress to host names through Cilium,
ServiceMonitors, secrets from External Secrets or sops, and a preview per pull request. The
django-platform golden case shows them together (through kubectl kustomize, strict schemas, checkov and
a real API server); these tests pin each rule and each refusal on small changes to it.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml

from kompile.compiler import compile_project
from kompile.errors import KompileError
from kompile.model import Tier
from kompile.policy.gate import Scope, check_stream

from conftest import copy_golden_input, edit, kustomize_build, require_kubectl, write_files
from conftest import objects_by_name as objects

CASE = "django-platform"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return copy_golden_input(CASE, tmp_path / "repo")


def problems(root: Path) -> list[tuple[str, str]]:
    with pytest.raises(KompileError) as caught:
        compile_project(root)
    return [(d.code.value, d.message) for d in caught.value.diagnostics]


def peers(policy: dict, direction: str = "ingress") -> list[list[dict]]:
    return [
        rule.get("from" if direction == "ingress" else "to") for rule in policy["spec"].get(direction, [])
    ]


# ---------------------------------------------------------------------------------------------
# Routes, hosts and certificates


def test_an_ingress_per_routed_component_on_every_host(repo: Path):
    prod = objects(repo, "prod")
    web, realtime = prod[("Ingress", "market-web")], prod[("Ingress", "market-realtime")]
    for ingress, path in ((web, "/"), (realtime, "/ws")):
        assert [r["host"] for r in ingress["spec"]["rules"]] == [
            "market.example.com",
            "www.market.example.com",
        ]
        assert {p["path"] for r in ingress["spec"]["rules"] for p in r["http"]["paths"]} == {path}
        assert ingress["spec"]["tls"] == [
            {
                "hosts": ["market.example.com", "www.market.example.com"],
                "secretName": "market-example-com-tls",
            }
        ]
    # the websocket timeout is on the websocket paths only
    assert realtime["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-read-timeout"] == "3600"
    assert "nginx.ingress.kubernetes.io/proxy-read-timeout" not in web["metadata"].get("annotations", {})


def test_a_certificate_covers_every_host_and_the_solver_gets_in(repo: Path):
    prod = objects(repo, "prod")
    certificate = prod[("Certificate", "market-example-com-tls")]
    assert certificate["spec"] == {
        "dnsNames": ["market.example.com", "www.market.example.com"],
        "issuerRef": {"group": "cert-manager.io", "kind": "ClusterIssuer", "name": "letsencrypt"},
        "secretName": "market-example-com-tls",
    }
    assert (
        certificate["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"] == "2"
    )  # never holds a release back
    solver = prod[("NetworkPolicy", "market-acme-http01-solver")]["spec"]
    assert solver["podSelector"] == {"matchLabels": {"acme.cert-manager.io/http01-solver": "true"}}
    assert solver["ingress"][0]["ports"] == [{"port": 8089, "protocol": "TCP"}]


def test_the_ingress_controller_reaches_only_routed_components(repo: Path):
    edit(
        repo,
        "environments/app.yaml",
        "      - {name: websockets, path: /ws, component: realtime, timeoutSeconds: 3600}\n",
        "",
    )
    prod = objects(repo, "prod")
    assert ("Ingress", "market-realtime") not in prod
    controller = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}},
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "ingress-nginx"}},
    }
    assert [controller] in peers(prod[("NetworkPolicy", "market-web")])
    assert [controller] not in peers(prod[("NetworkPolicy", "market-realtime")])


def test_a_gateway_route_instead_of_ingresses(repo: Path):
    edit(
        repo,
        "environments/app.yaml",
        """    className: nginx
    tlsSecret: market-example-com-tls
    certificate: {issuer: letsencrypt, kind: ClusterIssuer, http01: true}
""",
        """    gateway: {name: public, namespace: gateway-infra, sectionName: https}
""",
    )
    for env in ("dev", "preview"):
        edit(repo, f"environments/{env}.yaml", "    tlsSecret: ", "    # tlsSecret: ")
    edit(repo, "environments/preview.yaml", "    certificate: null", "")
    prod = objects(repo, "prod")
    assert not [key for key in prod if key[0] in ("Ingress", "Certificate")]
    route = prod[("HTTPRoute", "market")]["spec"]
    assert route["parentRefs"] == [
        {
            "group": "gateway.networking.k8s.io",
            "kind": "Gateway",
            "name": "public",
            "namespace": "gateway-infra",
            "sectionName": "https",
        }
    ]
    assert route["rules"][0] == {
        "backendRefs": [
            {"group": "", "kind": "Service", "name": "market-realtime", "port": 8001, "weight": 1}
        ],
        "matches": [{"path": {"type": "PathPrefix", "value": "/ws"}}],
        "timeouts": {"request": "3600s"},
    }


@pytest.mark.parametrize(
    ("rel", "old", "new", "code", "words"),
    [
        (
            "environments/app.yaml",
            "    className: nginx\n",
            "    className: nginx\n    gateway: {name: public}\n",
            "K405",
            "Gateway's listener",
        ),
        ("environments/app.yaml", "    className: nginx\n", "", "K203", "'className' is required"),
        (
            "environments/app.yaml",
            "component: realtime, timeoutSeconds",
            "component: beat, timeoutSeconds",
            "K403",
            "not a web component",
        ),
        (
            "environments/app.yaml",
            "{name: site, path: /, component: web}",
            "{name: site, path: /ws, component: web}",
            "K204",
            "routed twice",
        ),
        (
            "environments/prod.yaml",
            "  components:\n",
            "  ingress:\n    hosts: [shop.example.org]\n  components:\n",
            "K204",
            "not in DJANGO_ALLOWED_HOSTS",
        ),
    ],
)
def test_entry_rules(repo: Path, rel: str, old: str, new: str, code: str, words: str):
    edit(repo, rel, old, new)
    found = problems(repo)
    assert any(c == code and words in message for c, message in found), found


# ---------------------------------------------------------------------------------------------
# Network intents


def test_policies_for_prometheus_peers_and_resolvers(repo: Path):
    prod = objects(repo, "prod")
    web, realtime = prod[("NetworkPolicy", "market-web")], prod[("NetworkPolicy", "market-realtime")]
    prometheus = [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
        }
    ]
    assert {"from": prometheus, "ports": [{"port": 9100, "protocol": "TCP"}]} in web["spec"]["ingress"]
    web_pods = [
        {
            "podSelector": {
                "matchLabels": {"app.kubernetes.io/component": "web", "app.kubernetes.io/name": "market"}
            }
        }
    ]
    assert {"from": web_pods, "ports": [{"port": 8001, "protocol": "TCP"}]} in realtime["spec"]["ingress"]
    assert {
        "ports": [{"port": 8001, "protocol": "TCP"}],
        "to": [
            {
                "podSelector": {
                    "matchLabels": {
                        "app.kubernetes.io/component": "realtime",
                        "app.kubernetes.io/name": "market",
                    }
                }
            }
        ],
    } in web["spec"]["egress"]
    dns = web["spec"]["egress"][0]
    assert [p.get("ipBlock", {}).get("cidr") for p in dns["to"]] == [
        None,
        "169.254.20.10/32",
        "169.254.169.254/32",
    ]


def test_metrics_get_a_service_and_a_service_monitor(repo: Path):
    prod = objects(repo, "prod")
    service = prod[("Service", "market-web-metrics")]["spec"]
    assert service["ports"] == [{"name": "metrics", "port": 9100, "protocol": "TCP", "targetPort": "metrics"}]
    monitor = prod[("ServiceMonitor", "market-web")]
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor["spec"]["endpoints"] == [
        {"interval": "30s", "path": "/metrics", "port": "metrics", "scheme": "http"}
    ]
    container = prod[("Deployment", "market-web")]["spec"]["template"]["spec"]["containers"][0]
    assert {"containerPort": 9100, "name": "metrics", "protocol": "TCP"} in container["ports"]


def test_metrics_on_the_served_port_are_refused(repo: Path):
    edit(repo, "environments/app.yaml", "metrics: {port: 9100}", "metrics: {port: 8000}")
    assert any(code == "K204" and "is the port it serves" in message for code, message in problems(repo))


def test_egress_to_a_host_name_is_a_cilium_policy_the_gate_reads(repo: Path):
    prod = objects(repo, "prod")
    policy = prod[("CiliumNetworkPolicy", "market-web-hosts")]["spec"]
    assert policy["endpointSelector"] == {
        "matchLabels": {"app.kubernetes.io/component": "web", "app.kubernetes.io/name": "market"}
    }
    assert policy["egress"][1] == {
        "toFQDNs": [{"matchName": "api.stripe.com"}],
        "toPorts": [{"ports": [{"port": "443", "protocol": "TCP"}]}],
    }
    # The same kind written by hand, opening the world, is not kompile's shape: a finding.
    wide = copy.deepcopy(prod[("CiliumNetworkPolicy", "market-web-hosts")])
    wide["spec"]["egress"].append({"toEntities": ["world"]})
    scope = Scope(namespace="market-prod", production=True)
    found = [f.message for _, f in check_stream([wide], scope) if f.rule == "network-policy"]
    assert (
        "kompile does not evaluate a CiliumNetworkPolicy: it may open what the default deny closes" in found
    )
    assert not [
        f
        for _, f in check_stream([prod[("CiliumNetworkPolicy", "market-web-hosts")]], scope)
        if "CiliumNetworkPolicy" in f.message
    ], "kompile's own shape is read, not refused"


def test_a_host_name_without_cilium_says_why(repo: Path):
    edit(repo, "environments/app.yaml", "    cni: cilium", "    cni: other")
    found = problems(repo)
    assert any(code == "K405" and "cannot name" in message for code, message in found), found


# ---------------------------------------------------------------------------------------------
# Secret backends


def test_external_secrets_write_every_default(repo: Path):
    prod = objects(repo, "prod")
    external = prod[("ExternalSecret", "market-broker")]
    assert external["spec"] == {
        "data": [
            {
                "remoteRef": {
                    "conversionStrategy": "Default",
                    "decodingStrategy": "None",
                    "key": "market-prod-redis",
                    "metadataPolicy": "None",
                    "property": "address",
                },
                "secretKey": "REDIS_ADDRESS",
            },
            {
                "remoteRef": {
                    "conversionStrategy": "Default",
                    "decodingStrategy": "None",
                    "key": "market-prod-redis",
                    "metadataPolicy": "None",
                    "property": "password",
                },
                "secretKey": "REDIS_PASSWORD",
            },
        ],
        "refreshInterval": "1h0m0s",
        "secretStoreRef": {"kind": "ClusterSecretStore", "name": "gcp-secret-manager"},
        "target": {"creationPolicy": "Owner", "deletionPolicy": "Retain", "name": "market-broker"},
    }
    assert (
        external["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"] == "-1"
    )  # before the migrate Job (0)


@pytest.mark.parametrize(
    ("old", "new", "code", "words"),
    [
        (
            "        properties: {REDIS_ADDRESS: address, REDIS_PASSWORD: password}",
            "        properties: {REDIS_HOST: address}",
            "K409",
            "not a key the App declares",
        ),
        (
            "    market-django:\n      file: secrets/prod/market-django.yaml\n",
            "    market-django:\n      file: secrets/prod/market-django.yaml\n    market-broker:\n      file: secrets/prod/market-broker.yaml\n",
            "K306",
            "also comes from",
        ),
    ],
)
def test_secret_backend_rules(repo: Path, old: str, new: str, code: str, words: str):
    edit(repo, "environments/prod.yaml", old, new)
    found = problems(repo)
    assert any(c == code and words in message for c, message in found), found


def enc(text: str) -> str:
    import base64

    return f"ENC[AES256_GCM,data:{base64.b64encode(text.encode()).decode()},iv:QUJDREVGR0hJSktMTU5PUA==,tag:QUJDREVGR0hJSktMTU5PUA==,type:str]"


def sops_secret(name: str, keys: list[str], clear: str | None = None, change=lambda doc: None) -> str:
    doc = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name},
        "type": "Opaque",
        "stringData": {key: (clear if clear and key == keys[-1] else enc(f"value of {key}")) for key in keys},
        "sops": {
            "age": [
                {
                    "recipient": "age1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq",
                    "enc": "-----BEGIN AGE ENCRYPTED FILE-----",
                }
            ],
            "lastmodified": "2026-11-01T10:00:00Z",
            "mac": enc("mac"),
            "encrypted_regex": "^(data|stringData)$",
            "version": "3.9.0",
        },
    }
    change(doc)
    return yaml.safe_dump(doc, sort_keys=False)


def use_sops(root: Path, tool: str, clear: str | None = None, change=lambda doc: None) -> None:
    edit(root, "environments/app.yaml", "    tool: argocd", f"    tool: {tool}")
    if tool == "flux":  # Argo CD's Source Hydrator is not Flux's
        app = root / "environments" / "app.yaml"
        app.write_text(app.read_text().replace("      mode: argocd ", "      mode: rendered "))
    (root / "secrets" / "prod" / "market-django.sops.yaml").write_text(
        sops_secret("market-django", ["DJANGO_SECRET_KEY", "DATABASE_PASSWORD"], clear, change)
    )
    edit(
        root,
        "environments/prod.yaml",
        "  sealedSecrets:\n    market-django:\n      file: secrets/prod/market-django.yaml\n",
        "  sopsSecrets:\n    market-django: {file: secrets/prod/market-django.sops.yaml}\n",
    )


def test_sops_secrets_are_for_flux(repo: Path):
    edit(repo, "environments/preview.yaml", "  pullRequests:", "  pullRequestsOff:")  # previews are Argo CD's
    repo.joinpath("environments/preview.yaml").unlink()
    use_sops(repo, "argocd")
    assert any(code == "K602" and "only Flux" in message for code, message in problems(repo))


def test_sops_secrets_with_flux(repo: Path):
    repo.joinpath("environments/preview.yaml").unlink()
    use_sops(repo, "flux")
    output = compile_project(repo)
    secret = {(o["kind"], o["metadata"]["name"]): o for o in output.environments["prod"].objects}[
        ("Secret", "market-django")
    ]
    assert secret["sops"]["mac"].startswith("ENC[") and secret["metadata"]["namespace"] == "market-prod"
    kustomization = yaml.safe_load(output.files["gitops/flux/kustomization-market-prod.yaml"])
    assert kustomization["spec"]["decryption"] == {"provider": "sops", "secretRef": {"name": "sops-age"}}
    assert (
        "decryption" not in yaml.safe_load(output.files["gitops/flux/kustomization-market-dev.yaml"])["spec"]
    )


def test_a_sops_file_with_a_value_in_clear_is_refused(repo: Path):
    repo.joinpath("environments/preview.yaml").unlink()
    use_sops(repo, "flux", clear="hunter2-in-clear")
    assert any(code == "K601" and "not encrypted" in message for code, message in problems(repo))


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (
            lambda doc: doc["sops"].update(comment="postgres://market:Hunter2Hunter2@10.0.0.7/market"),
            "sops.comment is not sops metadata",
        ),
        (
            lambda doc: doc["sops"]["age"][0].update(
                recipient="postgres://market:Hunter2Hunter2@10.0.0.7/market"
            ),
            "password",
        ),
        (lambda doc: doc.update(data="aHVudGVyMg=="), "must be maps"),
        (lambda doc: doc.update(stringData=["hunter2"]), "must be maps"),
    ],
)
def test_sops_metadata_and_shapes_hide_nothing(repo: Path, change, words: str):
    """Only ciphertext passes as ciphertext: text beside sops's own metadata, in a recipient, or data that
    is not a map of encrypted values is refused (never an internal error)."""
    repo.joinpath("environments/preview.yaml").unlink()
    use_sops(repo, "flux", change=change)
    assert any(code == "K601" and words in message for code, message in problems(repo)), problems(repo)


# ---------------------------------------------------------------------------------------------
# Previews


def test_previews_are_an_application_set_on_pull_requests(repo: Path):
    output = compile_project(repo)
    assert "gitops/argocd/application-market-preview.yaml" not in output.files
    appset = yaml.safe_load(output.files["gitops/argocd/applicationset-market-previews.yaml"])
    spec = appset["spec"]
    assert spec["generators"] == [
        {
            "pullRequest": {
                "github": {
                    "owner": "acme",
                    "repo": "market",
                    "labels": ["preview"],
                    "tokenRef": {"key": "token", "secretName": "github-token"},
                },
                "requeueAfterSeconds": 300,
            }
        }
    ]
    source = spec["template"]["spec"]["source"]
    assert source["kustomize"]["namespace"] == "market-pr-{{.number}}"
    assert source["kustomize"]["images"] == [
        "europe-docker.pkg.dev/acme-prod/apps/market=europe-docker.pkg.dev/acme-prod/apps/market:pr-{{.number}}"
    ]
    assert spec["template"]["spec"]["project"] == "market"  # fixed, never from the pull request
    project = yaml.safe_load(output.files["gitops/argocd/appproject-market.yaml"])
    assert {"server": "https://dev.gke.acme.internal", "namespace": "market-pr-*"} in project["spec"][
        "destinations"
    ]


def test_an_environment_cannot_take_a_previews_name(repo: Path):
    """Pull request 5's preview is the Application and namespace market-pr-5: an environment of that name
    would have two Argo CD Applications pruning each other's objects."""
    text = repo.joinpath("environments/dev.yaml").read_text()
    repo.joinpath("environments/pr-5.yaml").write_text(
        "apiVersion: kompile.dev/v1alpha1\nkind: Environment\nmetadata:\n  name: pr-5\nspec:\n  extends: dev\n"
    )
    assert any(
        code == "K309" and "pull request's preview ('market-pr-5')" in message
        for code, message in problems(repo)
    )
    repo.joinpath("environments/pr-5.yaml").unlink()
    repo.joinpath("environments/dev.yaml").write_text(
        text.replace("spec:\n", "spec:\n  namespace: market-pr-12\n", 1)
    )
    assert any(code == "K309" and "('market-pr-12')" in message for code, message in problems(repo))


def template_actions(node) -> list[str]:
    if isinstance(node, str):
        return re.findall(r"\{\{(.*?)\}\}", node)
    items = node.values() if isinstance(node, dict) else node if isinstance(node, list) else []
    return [action for item in items for action in template_actions(item)]


@pytest.mark.parametrize("file", ["applicationset-market-previews.yaml", "applicationset-market.yaml"])
def test_spec_text_is_never_a_template_action(repo: Path, file: str):
    """Whatever part of the spec a string comes from, the ApplicationSet controller prints it as written:
    a `{{ .branch }}` in a spec would otherwise put a pull request's branch name (anyone's) in the cluster."""
    edit(
        repo,
        "environments/dev.yaml",
        "DJANGO_ALLOWED_HOSTS: market.dev.example.com,.preview.market.example.com",
        "DJANGO_ALLOWED_HOSTS: '{{ .branch }},market.dev.example.com,.preview.market.example.com'",
    )
    edit(
        repo,
        "environments/dev.yaml",
        "cluster: https://dev.gke.acme.internal",
        "cluster: 'https://dev.gke.acme.internal/{{.branch}}'",
    )
    edit(
        repo,
        "environments/app.yaml",
        "    tool: argocd\n",
        "    tool: argocd\n    argocd: {applicationSet: true}\n",
    )
    edit(
        repo,
        "environments/app.yaml",
        "repoURL: https://github.com/acme/market-deploy.git",
        "repoURL: 'https://github.com/acme/{{.branch}}.git'",
    )
    template = yaml.safe_load(compile_project(repo).files[f"gitops/argocd/{file}"])["spec"]["template"]
    allowed = (
        {".number", ' "{{" '}
        if "previews" in file
        else {".env", ".path", ".server", ".namespace", ".syncBranch", ".hydrateBranch", ' "{{" '}
    )
    assert set(template_actions(template)) <= allowed, template_actions(template)
    printed = str(template).replace('{{ "{{" }}', "{{")
    assert "https://github.com/acme/{{.branch}}.git" in printed  # the repository URL
    assert ("{{ .branch }}" in printed) == ("previews" in file)  # an env value: the preview template's


@pytest.mark.kubectl
def test_a_preview_instance_passes_the_gate(repo: Path, tmp_path: Path):
    """What Argo CD makes of the template for pull request 7: the overlay with its namespace, image and
    patches set as the ApplicationSet says (kustomize edit's effect, written into a kustomization that
    wraps the overlay), built by kubectl kustomize, and held to the same gate."""
    require_kubectl()
    output = compile_project(repo)
    write_files(repo, output.files)
    source = yaml.safe_load(output.files["gitops/argocd/applicationset-market-previews.yaml"])["spec"][
        "template"
    ]["spec"]["source"]
    fill = lambda text: text.replace("{{.number}}", "7")  # noqa: E731
    overlay = repo / "overlays" / "preview" / "kustomization.yaml"
    kustomization = yaml.safe_load(overlay.read_text())
    kustomization["namespace"] = fill(source["kustomize"]["namespace"])
    name, _, new = fill(source["kustomize"]["images"][0]).partition("=")
    kustomization["images"] = [
        {"name": name, "newName": new.rpartition(":")[0], "newTag": new.rpartition(":")[2]}
    ]
    kustomization.setdefault("patches", []).extend(
        {"patch": fill(p["patch"]), "target": p["target"]} for p in source["kustomize"]["patches"]
    )
    overlay.write_text(yaml.safe_dump(kustomization, sort_keys=False))
    built = [doc for doc in yaml.safe_load_all(kustomize_build(overlay.parent)) if doc]
    assert {doc["metadata"].get("namespace") for doc in built if doc["kind"] != "Namespace"} == {
        "market-pr-7"
    }
    assert [doc["metadata"]["name"] for doc in built if doc["kind"] == "Namespace"] == ["market-pr-7"]
    ingress = next(
        doc for doc in built if doc["kind"] == "Ingress" and doc["metadata"]["name"] == "market-web"
    )
    assert ingress["spec"]["rules"][0]["host"] == "pr-7.preview.market.example.com"
    config = next(doc for doc in built if doc["kind"] == "ConfigMap")
    assert config["data"]["DJANGO_ALLOWED_HOSTS"].startswith("pr-7.preview.market.example.com,")
    bindings = [s for doc in built if doc["kind"] == "RoleBinding" for s in doc["subjects"]]
    assert bindings and all(s["namespace"] == "market-pr-7" for s in bindings), bindings
    env = output.environments["preview"].env
    scope = Scope(
        namespace="market-pr-7",
        production=env.tier is Tier.PRODUCTION,
        api_accounts=frozenset(a.name for a in env.accounts if a.api_access),
        default_deny="market-default-deny",
        own=frozenset(
            (
                "keda.sh"
                if d["kind"] in ("ScaledObject", "TriggerAuthentication")
                else d["apiVersion"].rpartition("/")[0],
                d["kind"],
                d["metadata"]["name"],
            )
            for d in built
        ),
    )
    assert [(i, f.message) for i, f in check_stream(built, scope)] == []


@pytest.mark.parametrize(
    ("rel", "old", "new", "code", "words"),
    [
        (
            "environments/app.yaml",
            "    tool: argocd",
            "    tool: flux",
            "K405",
            "need Argo CD's ApplicationSet",
        ),
        (
            "environments/preview.yaml",
            "  sealedSecrets: null                                # strict values cannot be unsealed in a new namespace\n",
            "",
            "K307",
            "cannot be unsealed in a preview",
        ),
        (
            "environments/preview.yaml",
            "  image: {tag: template}",
            "  image: {digest: sha256:" + "a" * 64 + "}",
            "K204",
            "pins its image by digest",
        ),
        (
            "environments/preview.yaml",
            "pr-{number}.preview",
            "pr-{number}-{branch}.preview",
            "K204",
            "not a pull request's parameter",
        ),
    ],
)
def test_preview_rules(repo: Path, rel: str, old: str, new: str, code: str, words: str):
    edit(repo, rel, old, new)
    found = problems(repo)
    assert any(c == code and words in message for c, message in found), found


@pytest.mark.parametrize(
    ("relabeling", "refused"),
    [
        ({"action": "replace", "targetLabel": "__address__", "replacement": "collector.example:443"}, True),
        (
            {
                "action": "replace",
                "sourceLabels": ["__meta_kubernetes_pod_annotation_x"],
                "targetLabel": "$1",
            },
            True,
        ),
        ({"action": "replace", "targetLabel": "${1}", "regex": "(.*)"}, True),
        ({"action": "replace", "targetLabel": "__scrape_interval__", "replacement": "1s"}, True),
        (
            {
                "action": "labelmap",
                "regex": "(__)meta_kubernetes_pod_label_(address)_",
                "replacement": "${1}${2}__",
            },
            True,
        ),
        ({"action": "LabelMap", "regex": "__meta_kubernetes_pod_label_(.+)"}, True),
        ({"action": "replace", "sourceLabels": ["__meta_kubernetes_pod_name"], "targetLabel": "pod"}, False),
        (
            {"action": "replace", "sourceLabels": ["__meta_kubernetes_pod_name"], "targetLabel": "__tmp_pod"},
            False,
        ),
        ({"action": "drop", "sourceLabels": ["__meta_kubernetes_pod_phase"], "regex": "Pending"}, False),
    ],
)
def test_a_relabeling_cannot_move_the_scrape(relabeling: dict, refused: bool):
    """Every spelling that reaches Prometheus' scrape labels: literal, named from the data ($1), or
    renamed wholesale (labelmap); scratch labels and ordinary ones pass."""
    from kompile.policy.controllers import scrape_problems
    from kompile.policy.plaintext import scan

    monitor = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": "m"},
        "spec": {"selector": {}, "endpoints": [{"port": "metrics", "relabelings": [relabeling]}]},
    }
    problems = scrape_problems(monitor, "market-dev", scan(monitor)[3])
    assert bool(problems) is refused, problems
