"""GitOps wiring: every Argo CD / Flux object validates against its CRD schema, every path it points at
exists in the output and builds with kubectl kustomize, and the AppProject allows exactly what is deployed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator

from kompile.compiler import compile_project
from kompile.render import object_id

from conftest import CRD_SCHEMAS, copy_example, kustomize_build, write_files


def crd_validator(obj: dict) -> Draft202012Validator:
    group, _, version = obj["apiVersion"].rpartition("/")
    path = CRD_SCHEMAS / group / f"{obj['kind'].lower()}_{version}.json"
    assert path.exists(), f"no CRD schema for {obj['apiVersion']} {obj['kind']}"
    return Draft202012Validator(json.loads(path.read_text()))


def set_gitops(root: Path, block: str) -> None:
    app = root / "environments/app.yaml"
    text = app.read_text()
    app.write_text(text[: text.index("  gitops:")] + block)


def set_cluster(root: Path, env: str, cluster: str) -> None:
    path = root / f"environments/{env}.yaml"
    lines = [line for line in path.read_text().splitlines(keepends=True) if not line.startswith("  cluster:")]
    index = next(i for i, line in enumerate(lines) if line.startswith("  namespace:"))
    lines.insert(index + 1, f"  cluster: {cluster}\n")
    path.write_text("".join(lines))


FLUX = """  gitops:
    tool: flux
    repoURL: ssh://git@github.com/acme/shop-deploy.git
    revision: main
"""
ARGO_MONOREPO = """  gitops:
    tool: argocd
    repoURL: https://github.com/acme/platform.git
    revision: release
    path: deploy/shop
"""
ARGO_SET = """  gitops:
    tool: argocd
    repoURL: https://github.com/acme/shop-deploy.git
    revision: main
    argocd: {applicationSet: true, namespace: gitops}
"""


def variant(tmp_path: Path, name: str) -> Path:
    root = copy_example(tmp_path / name)
    if name == "flux":
        set_gitops(root, FLUX)
    elif name == "monorepo":
        set_gitops(root, ARGO_MONOREPO)
    elif name == "applicationset":
        set_gitops(root, ARGO_SET)
    elif name == "multicluster-names":
        for env, cluster in (("dev", "in-cluster"), ("staging", "eu-staging"), ("prod", "eu-prod")):
            set_cluster(root, env, cluster)
        set_gitops(root, ARGO_SET)
    return root


VARIANTS = ["argocd", "flux", "monorepo", "applicationset", "multicluster-names"]


@pytest.mark.parametrize("name", VARIANTS)
def test_gitops_objects_validate_against_their_crds(tmp_path: Path, name: str):
    output = compile_project(variant(tmp_path, name))
    folder = "gitops/flux/" if name == "flux" else "gitops/argocd/"
    paths = [p for p in output.files if p.startswith(folder)]
    assert f"{folder}kustomization.yaml" in paths and f"{folder}bootstrap.yaml" in paths
    checked = 0
    for path in paths:
        for obj in yaml.safe_load_all(output.files[path]):
            if obj["kind"] == "Kustomization" and obj["apiVersion"].startswith("kustomize.config.k8s.io"):
                continue
            errors = sorted(crd_validator(obj).iter_errors(obj), key=str)
            assert not errors, f"{path}: {errors[0].message} at {list(errors[0].absolute_path)}"
            checked += 1
    assert checked >= 3


@pytest.mark.kubectl
@pytest.mark.parametrize("name", VARIANTS)
def test_every_path_exists_and_builds(tmp_path: Path, name: str):
    root = variant(tmp_path, name)
    output = compile_project(root)
    out = tmp_path / "out"
    prefix = "deploy/shop/" if name == "monorepo" else ""
    write_files(out / prefix, output.files)
    paths = []
    for path, data in output.files.items():
        if path.startswith("gitops/") and path.endswith(".yaml"):
            for obj in yaml.safe_load_all(data):
                spec = obj.get("spec", {})
                if obj["kind"] == "Application":
                    paths.append(spec["source"]["path"])
                elif obj["kind"] == "ApplicationSet":
                    paths += [e["path"] for e in spec["generators"][0]["list"]["elements"]]
                elif obj["kind"] == "Kustomization" and "sourceRef" in spec:
                    assert spec["path"].startswith("./")
                    paths.append(spec["path"][2:])
    assert sorted(set(paths)) == sorted(
        {f"{prefix}overlays/{e}" for e in ("dev", "staging", "prod")}
        | {f"{prefix}gitops/{'flux' if name == 'flux' else 'argocd'}"}
    )
    for path in set(paths):
        built = list(yaml.safe_load_all(kustomize_build(out / path)))
        assert built
        if "/overlays/" in f"/{path}":
            env = path.rsplit("/", 1)[1]
            assert {object_id(o) for o in built} == {object_id(o) for o in output.environments[env].objects}


def test_argocd_applications_point_each_environment_at_its_cluster(tmp_path: Path):
    output = compile_project(variant(tmp_path, "argocd"))
    apps = {
        obj["metadata"]["name"]: obj
        for path, data in output.files.items()
        if "/application-" in path
        for obj in [yaml.safe_load(data)]
    }
    assert sorted(apps) == ["shop-dev", "shop-prod", "shop-staging"]
    prod = apps["shop-prod"]["spec"]
    assert prod["destination"] == {"server": "https://prod.k8s.acme.internal", "namespace": "shop-prod"}
    assert prod["source"] == {
        "path": "overlays/prod",
        "repoURL": "https://github.com/acme/shop-deploy.git",
        "targetRevision": "refs/heads/main",
    }
    assert prod["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}
    assert "ServerSideApply=true" in prod["syncPolicy"]["syncOptions"]
    assert not any(o.startswith("CreateNamespace") for o in prod["syncPolicy"]["syncOptions"])
    assert prod["syncPolicy"]["retry"]["limit"] >= 1
    assert all(app["spec"]["project"] == "shop" for app in apps.values())


def test_appproject_is_least_privilege(tmp_path: Path):
    output = compile_project(variant(tmp_path, "argocd"))
    project = yaml.safe_load(output.files["gitops/argocd/appproject-shop.yaml"])["spec"]
    deployed = {
        (o["apiVersion"].rpartition("/")[0], o["kind"])
        for c in output.environments.values()
        for o in c.objects
    }
    allowed = {
        (k["group"], k["kind"])
        for k in project["namespaceResourceWhitelist"] + project["clusterResourceWhitelist"]
    }
    assert allowed == deployed
    assert project["clusterResourceWhitelist"] == [{"group": "", "kind": "Namespace"}]
    assert project["sourceRepos"] == ["https://github.com/acme/shop-deploy.git"]
    assert {(d.get("server"), d["namespace"]) for d in project["destinations"]} == {
        ("https://kubernetes.default.svc", "shop-dev"),
        ("https://staging.k8s.acme.internal", "shop-staging"),
        ("https://prod.k8s.acme.internal", "shop-prod"),
    }
    assert not any("*" in json.dumps(v) for v in project.values())


def test_flux_kustomizations(tmp_path: Path):
    output = compile_project(variant(tmp_path, "flux"))
    docs = {
        obj["metadata"]["name"]: obj
        for path, data in output.files.items()
        if path.startswith("gitops/flux/kustomization-")
        for obj in [yaml.safe_load(data)]
    }
    assert sorted(docs) == ["shop-dev", "shop-prod", "shop-staging"]
    for doc in docs.values():
        spec = doc["spec"]
        assert spec["prune"] is True and spec["wait"] is True and spec["timeout"]
        assert "targetNamespace" not in spec
        assert spec["sourceRef"] == {"kind": "GitRepository", "name": "shop"}
    assert "kubeConfig" not in docs["shop-dev"]["spec"]  # in-cluster
    assert docs["shop-prod"]["spec"]["kubeConfig"] == {
        "secretRef": {"name": "prod-k8s-acme-internal-kubeconfig"}
    }
    repo = yaml.safe_load(output.files["gitops/flux/gitrepository-shop.yaml"])
    assert repo["spec"]["url"] == "ssh://git@github.com/acme/shop-deploy.git" and repo["spec"]["ref"] == {
        "name": "refs/heads/main"
    }
    job = next(o for o in output.environments["prod"].objects if o["kind"] == "Job")
    assert job["metadata"]["annotations"]["kustomize.toolkit.fluxcd.io/force"] == "enabled"
    assert not any(
        "argocd.argoproj.io" in json.dumps(o) for c in output.environments.values() for o in c.objects
    )


def test_applicationset_with_cluster_names(tmp_path: Path):
    output = compile_project(variant(tmp_path, "multicluster-names"))
    appset = yaml.safe_load(output.files["gitops/argocd/applicationset-shop.yaml"])
    assert appset["metadata"]["namespace"] == "gitops"
    elements = appset["spec"]["generators"][0]["list"]["elements"]
    assert {e["env"]: e["name"] for e in elements} == {
        "dev": "in-cluster",
        "prod": "eu-prod",
        "staging": "eu-staging",
    }
    assert appset["spec"]["template"]["spec"]["destination"] == {
        "name": "{{.name}}",
        "namespace": "{{.namespace}}",
    }
    assert not any(p.startswith("gitops/argocd/application-") for p in output.files)


def test_switching_tools_replaces_the_gitops_folder(tmp_path: Path):
    from kompile.output.write import write_tree

    root = variant(tmp_path, "argocd")
    output = compile_project(root)
    write_tree(root, output.files, output.owned, output.inputs)
    set_gitops(root, FLUX)
    output = compile_project(root)
    write_tree(root, output.files, output.owned, output.inputs)
    assert not (root / "gitops/argocd").exists() and (root / "gitops/flux/kustomization.yaml").exists()


# ---------------------------------------------------------------------------------------------
# At scale: what Argo CD and Flux need to stay fast in a monorepo


def gitops_objects(root: Path, tool: str) -> dict[tuple[str, str], dict]:
    """The GitOps objects kompile writes for a tool (bootstrap included), by kind and name."""
    files = compile_project(root).files
    docs = [
        doc
        for path, data in files.items()
        if path.startswith(f"gitops/{tool}/") and path.endswith(".yaml")
        for doc in yaml.safe_load_all(data)
    ]
    return {(doc["kind"], doc["metadata"]["name"]): doc for doc in docs if doc and "metadata" in doc}


@pytest.mark.parametrize(
    ("name", "paths", "ref"),
    [
        ("argocd", ".;/bases/shop", "refs/heads/main"),
        ("monorepo", ".;/deploy/shop/bases/shop", "refs/heads/release"),
    ],
)
def test_applications_say_which_paths_they_depend_on(tmp_path: Path, name: str, paths: str, ref: str):
    objects = gitops_objects(variant(tmp_path, name), "argocd")
    apps = [
        o
        for (kind, _), o in objects.items()
        if kind == "Application" and not o["metadata"]["name"].endswith("-gitops")
    ]
    assert apps
    for app in apps:
        annotations = app["metadata"]["annotations"]
        assert annotations["argocd.argoproj.io/manifest-generate-paths"] == paths
        assert annotations["argocd.argoproj.io/compare-options"] == "ServerSideDiff=true"
        assert app["spec"]["source"]["targetRevision"] == ref
        assert crd_validator(app).is_valid(app)
    root_app = objects[("Application", "shop-gitops")]
    assert root_app["metadata"]["annotations"]["argocd.argoproj.io/manifest-generate-paths"] == "."


def test_an_application_set_template_says_so_too(tmp_path: Path):
    objects = gitops_objects(variant(tmp_path, "applicationset"), "argocd")
    template = objects[("ApplicationSet", "shop")]["spec"]["template"]
    assert (
        template["metadata"]["annotations"]["argocd.argoproj.io/manifest-generate-paths"] == ".;/bases/shop"
    )
    assert template["spec"]["source"]["targetRevision"] == "refs/heads/main"


@pytest.mark.parametrize(
    ("revision", "argo", "flux"),
    [
        ("main", "refs/heads/main", {"name": "refs/heads/main"}),
        ("refs/tags/v1.2.0", "refs/tags/v1.2.0", {"name": "refs/tags/v1.2.0"}),
        ("a" * 40, "a" * 40, {"commit": "a" * 40}),
    ],
)
def test_revisions_are_fully_qualified(tmp_path: Path, revision: str, argo: str, flux: str):
    root = copy_example(tmp_path / "argo")
    set_gitops(
        root,
        f"  gitops:\n    tool: argocd\n    repoURL: https://github.com/acme/shop-deploy.git\n    revision: '{revision}'\n",
    )
    app = gitops_objects(root, "argocd")[("Application", "shop-dev")]
    assert app["spec"]["source"]["targetRevision"] == argo
    root = copy_example(tmp_path / "flux")
    set_gitops(root, FLUX.replace("revision: main", f"revision: '{revision}'"))
    source = gitops_objects(root, "flux")[("GitRepository", "shop")]
    assert source["spec"]["ref"] == flux
    assert crd_validator(source).is_valid(source)


@pytest.mark.parametrize("path", ["", "deploy/shop"])
def test_flux_fetches_only_the_output(tmp_path: Path, path: str):
    """The GitRepository's ignore rules, read by git itself (they are .gitignore syntax): the output
    folders stay in the artifact, everything else (specs, sources, other apps) is left out."""
    import shutil
    import subprocess

    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    root = copy_example(tmp_path / "repo")
    set_gitops(root, FLUX + (f"    path: {path}\n" if path else ""))
    ignore = gitops_objects(root, "flux")[("GitRepository", "shop")]["spec"]["ignore"]
    repo = tmp_path / "probe"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / ".gitignore").write_text(ignore)
    prefix = f"{path}/" if path else ""
    kept = [
        f"{prefix}bases/shop/kustomization.yaml",
        f"{prefix}overlays/dev/kustomization.yaml",
        f"{prefix}gitops/flux/kustomization.yaml",
    ]
    left = [
        "environments/dev.yaml",
        "README.md",
        "src/app.py",
        f"{prefix}environments/dev.yaml",
        "deploy/other/overlays/x.yaml",
    ]
    result = subprocess.run(
        ["git", "-C", str(repo), "check-ignore", "--no-index", *kept, *left], capture_output=True, text=True
    )
    assert set(result.stdout.split()) == set(left), (ignore, result.stdout)


def test_output_folders_are_marked_generated(tmp_path: Path):
    """git (as GitHub's linguist) reads the .gitattributes `kompile init` writes: the output is generated
    and folds in review, the specs are not. An existing .gitattributes is left as it was."""
    import shutil
    import subprocess

    from kompile import api

    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    root = tmp_path / "orders"
    assert ".gitattributes" in api.init(root, "orders", ["dev", "prod"], "argocd")
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    paths = [
        "overlays/prod/kustomization.yaml",
        "bases/orders/x.yaml",
        "gitops/argocd/kustomization.yaml",
        "rendered/prod/manifest.yaml",
        ".kompile-manifest.json",
        "environments/prod.yaml",
        "README.md",
    ]
    result = subprocess.run(
        ["git", "-C", str(root), "check-attr", "linguist-generated", "--", *paths],
        capture_output=True,
        text=True,
        check=True,
    )
    marked = {line.split(":")[0]: line.rsplit(": ", 1)[1] for line in result.stdout.splitlines()}
    assert marked == {
        **{p: "true" for p in paths[:5]},
        "environments/prod.yaml": "unspecified",
        "README.md": "unspecified",
    }
    other = tmp_path / "other"
    other.mkdir()
    (other / ".gitattributes").write_text("*.png binary\n")
    assert ".gitattributes" not in api.init(other, "other", ["dev"], "flux")
    assert (other / ".gitattributes").read_text() == "*.png binary\n"


@pytest.mark.parametrize("path", ["../other", "deploy/../..", "/deploy", "deploy/", "a//b", "x\n!/secrets/"])
def test_the_output_folder_is_a_plain_relative_path(tmp_path: Path, path: str):
    """gitops.path lands in Argo CD's source paths and manifest-generate-paths and in Flux's ignore rules:
    no way out of the repository, no second line."""
    from kompile.errors import KompileError

    root = copy_example(tmp_path / "repo")
    set_gitops(root, FLUX + f"    path: {json.dumps(path)}\n")
    with pytest.raises(KompileError) as caught:
        compile_project(root)
    assert any("gitops.path" in d.message for d in caught.value.diagnostics)
