"""The output on a real Kubernetes API server (tests/envtest.py: kube-apiserver and etcd from $KUBEBUILDER_ASSETS,
with the real CRDs from tests/vendor/crds installed). For every overlay and GitOps folder of every golden case
(the committed expected trees) and of the repo itself:

1. `kubectl apply --server-side --dry-run=server` succeeds with no `Warning:` line;
2. a real server-side apply succeeds, `kubectl diff --server-side` is then empty, and a second apply changes
   no object's resourceVersion (no drift: what Argo CD or Flux would see as out of sync). One write is let
   through: the first update after a create may store what the server defaults on read, if nothing readable
   changes and the next apply writes nothing;
3. every pod template of an overlay is admitted as a Pod by PodSecurity `restricted`, which kompile's
   Namespaces enforce (and a privileged Pod there is rejected, so the check can fail).

Namespaces of different sources can clash (the repo is the shop example), and a Namespace can never be
deleted here (no controller-manager), so sources are grouped so that no two in a group claim the same
Namespace or GitOps object, and each group gets its own API server.

Without KUBEBUILDER_ASSETS these tests skip, and fail with CI=true (as a missing kubectl does).
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest
import yaml
from deepdiff import DeepDiff

from conftest import (
    CRDS,
    GOLDEN,
    IN_CI,
    REPO,
    as_flux_applies,
    golden_cases,
    kustomize_build,
    require_kubectl,
)
from envtest import ControlPlane, find_assets

KUSTOMIZATION_API = "kustomize.config.k8s.io/v1beta1"
# The field manager of what the tests add that is not kompile's output (controller namespaces, default accounts).
SETUP_MANAGER = "envtest-setup"


@dataclass(frozen=True)
class Target:
    """One thing to apply: a kustomization folder (`-k`) or a file (`-f`) of a source's output tree."""

    source: str  # "golden/<case>" or "repo"
    root: Path
    path: str  # "overlays/dev", "gitops/argocd", "gitops/argocd/bootstrap.yaml"

    @property
    def id(self) -> str:
        return f"{self.source}:{self.path}"

    @property
    def is_overlay(self) -> bool:
        return self.path.startswith("overlays/")

    def args(self) -> list[str]:
        full = self.root / self.path
        if full.is_dir() and any("\nsops:" in p.read_text() for p in full.rglob("*.yaml")):
            # Flux decrypts sops Secrets before it applies; the API server gets them decrypted.
            decrypted = (
                Path(tempfile.gettempdir())
                / "kompile-apiserver"
                / f"{self.id.replace('/', '_').replace(':', '_')}.json"
            )
            decrypted.parent.mkdir(exist_ok=True)
            decrypted.write_text(as_list(built(self)))
            return ["-f", str(decrypted)]
        return ["-k", str(full)] if full.is_dir() else ["-f", str(full)]


def sources() -> dict[str, Path]:
    """Output trees: each golden case's expected/ (what kompile builds from its input) and the repo."""
    trees = {f"golden/{case}": GOLDEN / case / "expected" for case in golden_cases()}
    return {**trees, "repo": REPO}


def targets_of(source: str, root: Path) -> list[Target]:
    paths = [p.parent for p in sorted(root.glob("overlays/*/kustomization.yaml"))]
    for folder in sorted(p.parent for p in root.glob("gitops/*/kustomization.yaml")):
        paths += [folder, *([folder / "bootstrap.yaml"] if (folder / "bootstrap.yaml").is_file() else [])]
    return [Target(source, root, path.relative_to(root).as_posix()) for path in paths]


def claims(root: Path) -> set[tuple[str, str, str]]:
    """What a source's output takes on a cluster: its overlays' namespaces and its GitOps objects."""
    found = {
        ("Namespace", "", yaml.safe_load(k.read_text()).get("namespace") or "")
        for k in root.glob("overlays/*/kustomization.yaml")
    }
    for path in root.glob("gitops/*/*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("apiVersion") != KUSTOMIZATION_API:
                found.add((doc["kind"], doc["metadata"].get("namespace", ""), doc["metadata"]["name"]))
    return found


def group_sources(trees: dict[str, Path]) -> list[list[str]]:
    """Sources in as few groups as possible (greedily) such that no two in a group claim the same thing."""
    groups: list[tuple[list[str], set]] = []
    for source, root in trees.items():
        taken = claims(root)
        for members, claimed in groups:
            if not taken & claimed:
                members.append(source)
                claimed |= taken
                break
        else:
            groups.append(([source], taken))
    return [members for members, _ in groups]


GROUPS = group_sources(sources())


def group_targets(index: int) -> list[Target]:
    return [target for source in GROUPS[index] for target in targets_of(source, sources()[source])]


class Cluster(ControlPlane):
    """A control plane that remembers which targets it has prepared and applied."""

    def __init__(self, assets: Path, workdir: Path):
        super().__init__(assets, workdir)
        self.prepared: set[Target] = set()
        self.applied: set[Target] = set()


@pytest.fixture(scope="class")
def cluster(request, tmp_path_factory) -> Cluster:
    """The API server of the test class's group, stopped when the class is done."""
    assets, why = find_assets()
    if assets is None:
        if IN_CI:
            pytest.fail(f"the API-server tier needs kube-apiserver and etcd in CI: {why}")
        pytest.skip(why)
    require_kubectl()
    plane = Cluster(assets, tmp_path_factory.mktemp(f"envtest-{request.cls.group}"))
    try:
        plane.start()
        plane.install_crds(CRDS)
        yield plane
    finally:
        plane.stop()


def pytest_generate_tests(metafunc):
    """A ServerChecks class checks its own group's targets: all of them, the overlays, or the first overlay."""
    if metafunc.cls is None or not issubclass(metafunc.cls, ServerChecks):
        return
    targets = group_targets(metafunc.cls.group)
    overlays = [target for target in targets if target.is_overlay]
    for name, chosen in (("target", targets), ("overlay", overlays), ("first_overlay", overlays[:1])):
        if name in metafunc.fixturenames:
            metafunc.parametrize(name, chosen, ids=[target.id for target in chosen])


# ---------------------------------------------------------------------------------------------
# Helpers


@cache
def built(target: Target) -> tuple[dict, ...]:
    """The objects a target holds, as kustomize builds them (never mutate them)."""
    full = target.root / target.path
    text = kustomize_build(full) if full.is_dir() else full.read_text()
    return tuple(as_flux_applies([doc for doc in yaml.safe_load_all(text) if doc]))


def as_list(objects) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)})


def warning_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("Warning:")]


def run(cluster: Cluster, *args: str, input: str | None = None) -> str:
    """kubectl's stdout; a non-zero exit fails the test with its stderr."""
    result = cluster.kubectl(*args, input=input)
    assert result.returncode == 0, f"kubectl {' '.join(args)} failed:\n{result.stderr}"
    return result.stdout


def prepare(cluster: Cluster, target: Target) -> None:
    """What must exist before a target can be applied: an overlay's own Namespaces (kompile's, applied as they
    are, the way Argo CD's sync wave -1 does), a GitOps folder's controller namespace (argocd, flux-system:
    not kompile's to make), and in each the `default` ServiceAccount the controller-manager would add."""
    if target in cluster.prepared:
        return
    objects = built(target)
    if target.is_overlay:
        namespaces = [obj for obj in objects if obj["kind"] == "Namespace"]
    else:
        names = sorted({obj["metadata"]["namespace"] for obj in objects if obj["metadata"].get("namespace")})
        namespaces = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}} for name in names]
    accounts = [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "default", "namespace": ns["metadata"]["name"]},
        }
        for ns in namespaces
    ]
    if namespaces:
        run(
            cluster,
            "apply",
            "--server-side",
            f"--field-manager={SETUP_MANAGER}",
            "-f",
            "-",
            input=as_list(namespaces + accounts),
        )
    cluster.prepared.add(target)


def apply(cluster: Cluster, target: Target) -> None:
    prepare(cluster, target)
    run(cluster, "apply", "--server-side", *target.args())
    cluster.applied.add(target)


def live_objects(cluster: Cluster, target: Target) -> dict[str, dict]:
    """{"Kind namespace/name": the live object} for every object of the target."""
    answer = json.loads(run(cluster, "get", "-o", "json", *target.args()))
    items = answer["items"] if answer.get("kind") == "List" else [answer]
    return {object_name(obj): obj for obj in items}


def object_name(obj: dict) -> str:
    metadata = obj["metadata"]
    return (
        f"{obj['kind']} {metadata['namespace'] + '/' if metadata.get('namespace') else ''}{metadata['name']}"
    )


NOTHING_ELSE = "nothing else changed"


def apply_again(cluster: Cluster, target: Target) -> list[str]:
    """Apply the target once more; what changed, as resource_version_changes says."""
    before = live_objects(cluster, target)
    run(cluster, "apply", "--server-side", *target.args())
    return resource_version_changes(before, live_objects(cluster, target))


def resource_version_changes(before: dict[str, dict], after: dict[str, dict]) -> list[str]:
    """One line per object whose resourceVersion changed, naming the fields that changed."""
    problems = []
    for name in sorted(before.keys() | after.keys()):
        old, new = before.get(name), after.get(name)
        if old is None or new is None:
            problems.append(f"{name}: {'appeared' if old is None else 'disappeared'}")
            continue
        old_version, new_version = old["metadata"]["resourceVersion"], new["metadata"]["resourceVersion"]
        if old_version == new_version:
            continue
        diff = DeepDiff(without_bookkeeping(old), without_bookkeeping(new), verbose_level=2)
        fields = DeepDiff(
            old["metadata"].get("managedFields"), new["metadata"].get("managedFields"), verbose_level=2
        )
        if diff:
            what = diff.pretty()
        elif fields:
            what = f"only metadata.managedFields changed:\n{fields.pretty()}"
        else:
            what = NOTHING_ELSE
        problems.append(f"{name}: resourceVersion {old_version} -> {new_version}: {what}")
    return problems


def without_bookkeeping(obj: dict) -> dict:
    """obj without what every write changes (resourceVersion) or is reported apart (managedFields)."""
    metadata = {k: v for k, v in obj["metadata"].items() if k not in ("managedFields", "resourceVersion")}
    return {**obj, "metadata": metadata}


def pod_templates(obj: dict, path: str = "") -> list[tuple[str, dict]]:
    """(path, template) for every pod template in obj, at any depth (Deployment, Job, CronJob, ...)."""
    found = []
    for key, value in obj.items():
        if not isinstance(value, dict):
            continue
        if key == "template" and isinstance(value.get("spec"), dict) and "containers" in value["spec"]:
            found.append((f"{path}.{key}", value))
        else:
            found += pod_templates(value, f"{path}.{key}")
    return found


def pods_of(objects) -> list[dict]:
    """A Pod for each pod template, in its object's namespace, as the object's controller would create it."""
    pods = []
    for obj in objects:
        for _, template in pod_templates(obj):
            metadata = {
                key: value
                for key, value in (template.get("metadata") or {}).items()
                if key in ("labels", "annotations")
            }
            name = f"{obj['kind'].lower()}-{obj['metadata']['name']}"[:63].rstrip("-")
            pods.append(
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "spec": template["spec"],
                    "metadata": {**metadata, "name": name, "namespace": obj["metadata"]["namespace"]},
                }
            )
    return pods


# ---------------------------------------------------------------------------------------------
# The checks, on one API server per group of sources


@pytest.mark.apiserver
@pytest.mark.kubectl
class ServerChecks:
    group: int  # set by each TestServer<N> below

    def test_server_side_dry_run_has_no_warnings(self, cluster: Cluster, target: Target):
        prepare(cluster, target)
        result = cluster.kubectl("apply", "--server-side", "--dry-run=server", *target.args())
        assert result.returncode == 0, f"{target.id}: the API server rejects the output:\n{result.stderr}"
        warnings = warning_lines(result.stderr)
        assert not warnings, f"{target.id}: the API server warns:\n" + "\n".join(warnings)

    def test_apply_leaves_no_drift(self, cluster: Cluster, target: Target):
        apply(cluster, target)
        diff = cluster.kubectl("diff", "--server-side", *target.args())
        assert diff.returncode == 0 and not diff.stdout, (
            f"{target.id}: `kubectl diff --server-side` right after an apply is not empty (exit {diff.returncode}):\n"
            f"{diff.stdout}{diff.stderr}"
        )
        changes = apply_again(cluster, target)
        if changes and all(change.endswith(NOTHING_ELSE) for change in changes):
            # The first update after a create stores what the server defaults on read: Flux's CRDs default
            # status.observedGeneration to -1, and a create drops status. Invisible, and once only.
            changes = apply_again(cluster, target)
        assert not changes, f"{target.id}: a second apply changed objects:\n" + "\n".join(changes)

    def test_every_pod_template_is_admitted_as_a_pod(self, cluster: Cluster, overlay: Target):
        if overlay not in cluster.applied:
            apply(cluster, overlay)  # the Pods name the output's ServiceAccounts
        pods = pods_of(built(overlay))
        assert pods, f"{overlay.id} has no pod template"
        result = cluster.kubectl("create", "--dry-run=server", "-f", "-", input=as_list(pods))
        assert result.returncode == 0, (
            f"{overlay.id}: pods from its templates are not admitted:\n{result.stderr}"
        )
        warnings = warning_lines(result.stderr)
        assert not warnings, f"{overlay.id}: pods from its templates draw warnings:\n" + "\n".join(warnings)

    def test_a_privileged_pod_is_rejected_in_a_kompile_namespace(
        self, cluster: Cluster, first_overlay: Target
    ):
        """The admission check can fail: kompile's Namespace enforces restricted."""
        prepare(cluster, first_overlay)
        [namespace] = [obj["metadata"]["name"] for obj in built(first_overlay) if obj["kind"] == "Namespace"]
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "privileged", "namespace": namespace},
            "spec": {
                "containers": [{"name": "root", "image": "busybox", "securityContext": {"privileged": True}}]
            },
        }
        result = cluster.kubectl("create", "--dry-run=server", "-f", "-", input=json.dumps(pod))
        assert result.returncode != 0, f"a privileged Pod was admitted in {namespace}"
        assert 'violates PodSecurity "restricted' in result.stderr, result.stderr

    def test_warnings_and_drift_are_seen(self, cluster: Cluster):
        """The other two checks can fail too: a template PodSecurity warns about, a field someone else changed."""
        namespace = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": "e2e-probe", "labels": {"pod-security.kubernetes.io/warn": "restricted"}},
        }
        run(cluster, "apply", "--server-side", "-f", "-", input=json.dumps(namespace))
        deployment = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "loose", "namespace": "e2e-probe"},
            "spec": {
                "selector": {"matchLabels": {"app": "loose"}},
                "template": {
                    "metadata": {"labels": {"app": "loose"}},
                    "spec": {"containers": [{"name": "c", "image": "busybox"}]},
                },
            },
        }
        result = cluster.kubectl(
            "apply", "--server-side", "--dry-run=server", "-f", "-", input=json.dumps(deployment)
        )
        assert result.returncode == 0, result.stderr
        assert any("restricted" in line for line in warning_lines(result.stderr)), result.stderr

        config = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "drift", "namespace": "e2e-probe"},
            "data": {"k": "1"},
        }
        run(cluster, "apply", "--server-side", "-f", "-", input=json.dumps(config))
        before = {
            object_name(config): json.loads(
                run(cluster, "get", "-o", "json", "-n", "e2e-probe", "configmap", "drift")
            )
        }
        run(cluster, "patch", "-n", "e2e-probe", "configmap", "drift", "-p", '{"data": {"k": "2"}}')
        diff = cluster.kubectl(
            "diff", "--server-side", "--force-conflicts", "-f", "-", input=json.dumps(config)
        )
        assert diff.returncode == 1 and "ConfigMap.e2e-probe.drift" in diff.stdout, diff
        after = {
            object_name(config): json.loads(
                run(cluster, "get", "-o", "json", "-n", "e2e-probe", "configmap", "drift")
            )
        }
        [change] = resource_version_changes(before, after)
        assert (
            change.startswith("ConfigMap e2e-probe/drift: resourceVersion") and "root['data']['k']" in change
        ), change


# One class per group, so one API server per group (the class-scoped `cluster`), one after another.
for _index, _members in enumerate(GROUPS):
    globals()[f"TestServer{_index}"] = type(
        f"TestServer{_index}",
        (ServerChecks,),
        {"group": _index, "__doc__": f"On one API server: {', '.join(_members)}."},
    )


def test_sources_are_grouped_so_nothing_clashes():
    """The repo is the shop example, so they never share an API server; every golden case is covered."""
    assert sorted(source for members in GROUPS for source in members) == sorted(sources())
    [shop_group] = [members for members in GROUPS if "golden/shop" in members]
    assert "repo" not in shop_group
    for members in GROUPS:
        everything = [claim for source in members for claim in claims(sources()[source])]
        assert len(everything) == len(set(everything)), members


def test_resource_version_changes_name_the_object_and_field():
    old = {
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": "n",
            "resourceVersion": "1",
            "managedFields": [{"manager": "kubectl"}],
        },
        "spec": {"replicas": 1},
    }
    new = {**old, "metadata": {**old["metadata"], "resourceVersion": "2"}, "spec": {"replicas": 2}}
    touched = {
        **old,
        "metadata": {**old["metadata"], "resourceVersion": "2", "managedFields": [{"manager": "other"}]},
    }
    name = object_name(old)
    assert resource_version_changes({name: old}, {name: old}) == []
    [change] = resource_version_changes({name: old}, {name: new})
    assert (
        change.startswith("Deployment n/web: resourceVersion 1 -> 2") and "root['spec']['replicas']" in change
    )
    [change] = resource_version_changes({name: old}, {name: touched})
    assert "only metadata.managedFields changed" in change
    [change] = resource_version_changes(
        {name: old}, {name: {**old, "metadata": {**old["metadata"], "resourceVersion": "2"}}}
    )
    assert change == f"Deployment n/web: resourceVersion 1 -> 2: {NOTHING_ELSE}"
    assert resource_version_changes({name: old}, {}) == ["Deployment n/web: disappeared"]


def test_pod_templates_are_found_at_any_depth():
    template = {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
    cron = {
        "kind": "CronJob",
        "metadata": {"name": "c", "namespace": "n"},
        "spec": {"jobTemplate": {"spec": {"template": template}}},
    }
    assert pod_templates(cron) == [(".spec.jobTemplate.spec.template", template)]
    [pod] = pods_of([cron])
    assert pod["metadata"] == {"labels": {"app": "x"}, "name": "cronjob-c", "namespace": "n"}
    assert pod_templates({"kind": "SealedSecret", "spec": {"template": {"metadata": {}}}}) == []
