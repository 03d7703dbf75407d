"""kompile hydrate on a real git repository: branch layout, hydrator.metadata, idempotence, stale files,
GitOps Promoter's -next convention, and the refusals that keep a branch true to its dry commit."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import datetime
from pathlib import Path

import pytest

from kompile.compiler import compile_project
from kompile.layout.rendered import rendered_manifest

from conftest import copy_golden_input, edit, kustomize_build, run_kompile

APP = "billing"  # the flux golden case: gitops.hydration mode branches, Flux follows environments/<env>


def git(root: Path, *args: str, stdin: bytes | None = None) -> str:
    result = subprocess.run(["git", "-C", str(root), *args], input=stdin, capture_output=True, check=False)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode().strip()


def commit_all(root: Path, message: str) -> str:
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)
    return git(root, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = copy_golden_input("flux", tmp_path / "repo")
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "dev@example.com")
    git(root, "config", "user.name", "Dev Eloper")
    assert run_kompile("build", cwd=root).returncode == 0
    commit_all(root, "Billing: first cut\n\nWhy it changed.")
    return root


def hydrate(root: Path, *args: str) -> list[dict]:
    result = run_kompile("hydrate", "--format", "json", *args, cwd=root)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def show(root: Path, branch: str, path: str) -> str:
    return git(root, "show", f"{branch}:{path}")


def test_each_environment_gets_a_next_branch_with_the_hydrator_contract(repo: Path):
    dry = git(repo, "rev-parse", "HEAD")
    results = hydrate(repo)
    assert [(r["environment"], r["branch"], r["changed"]) for r in results] == [
        ("prod", "environments/prod-next", True),
        ("staging", "environments/staging-next", True),
    ]
    files = git(repo, "ls-tree", "-r", "--name-only", "environments/prod-next").splitlines()
    assert files == [
        ".gitattributes",
        f"{APP}/README.md",
        f"{APP}/hydrator.metadata",
        f"{APP}/manifest.yaml",
        "hydrator.metadata",
    ]
    top = json.loads(show(repo, "environments/prod-next", "hydrator.metadata"))
    assert list(top) == ["repoURL", "drySha", "author", "date", "subject", "body"]  # Argo CD's order
    assert top["drySha"] == dry and top["author"] == "Dev Eloper <dev@example.com>"
    assert top["subject"] == "Billing: first cut" and top["body"] == "Why it changed."
    assert datetime.fromisoformat(top["date"].replace("Z", "+00:00"))  # RFC 3339: GitOps Promoter parses it
    folder = json.loads(show(repo, "environments/prod-next", f"{APP}/hydrator.metadata"))
    assert folder == {
        "repoURL": top["repoURL"],
        "drySha": dry,
        "commands": ["kubectl kustomize overlays/prod"],
    }
    readme = show(repo, "environments/prod-next", f"{APP}/README.md")
    assert f"git checkout {dry}\nkubectl kustomize overlays/prod\n```" in readme
    manifest = git(repo, "show", f"environments/prod-next:{APP}/manifest.yaml").encode() + b"\n"
    assert manifest == rendered_manifest(compile_project(repo).environments["prod"])
    note = git(repo, "notes", "--ref=hydrator.metadata", "show", "environments/prod-next")
    assert json.loads(note) == {"drySha": dry}
    message = git(repo, "log", "-1", "--format=%B", "environments/prod-next")
    assert message.startswith(f"{dry[:7]}: Billing: first cut") and "Co-authored-by: Dev Eloper" in message
    # The working tree, the index and the current branch are untouched.
    assert git(repo, "status", "--porcelain") == "" and git(repo, "branch", "--show-current") == "main"


@pytest.mark.kubectl
def test_the_branch_holds_what_kubectl_kustomize_prints_at_the_dry_commit(repo: Path):
    hydrate(repo)
    for env in ("prod", "staging"):
        held = subprocess.run(
            ["git", "-C", str(repo), "show", f"environments/{env}-next:{APP}/manifest.yaml"],
            capture_output=True,
            check=True,
        ).stdout
        assert held == kustomize_build(repo / "overlays" / env).encode()


def test_hydrating_again_commits_nothing_and_a_dry_commit_without_manifest_changes_only_moves_the_note(
    repo: Path,
):
    first = {r["environment"]: r["commit"] for r in hydrate(repo)}
    assert all(not r["changed"] for r in hydrate(repo))
    (repo / "NOTES.md").write_text("a change that renders nothing\n")
    dry = commit_all(repo, "Notes")
    again = hydrate(repo)
    assert {r["environment"]: r["commit"] for r in again} == first and not any(r["changed"] for r in again)
    note = git(repo, "notes", "--ref=hydrator.metadata", "show", "environments/prod-next")
    assert json.loads(note) == {"drySha": dry}


def test_a_spec_change_commits_only_its_environment_on_top_of_the_last_one(repo: Path):
    first = {r["environment"]: r["commit"] for r in hydrate(repo)}
    edit(repo, "environments/staging.yaml", "api: {replicas: 2}", "api: {replicas: 3}")
    assert run_kompile("build", cwd=repo).returncode == 0
    commit_all(repo, "More staging workers")
    second = {r["environment"]: (r["commit"], r["changed"]) for r in hydrate(repo)}
    assert second["prod"] == (first["prod"], False)
    assert second["staging"][1] and git(repo, "rev-parse", f"{second['staging'][0]}^") == first["staging"]


def test_files_the_output_no_longer_has_leave_the_branch_and_other_apps_stay(repo: Path):
    hydrate(repo)
    tip = git(repo, "rev-parse", "environments/prod-next")
    # Someone else's app shares the branch; a stale file sits in this app's folder.
    index = repo / ".git" / "scratch-index"
    env = {"GIT_INDEX_FILE": str(index)}
    blob = git(repo, "hash-object", "-w", "--stdin", stdin=b"stale\n")
    for args in (
        ["read-tree", tip],
        ["update-index", "--add", "--cacheinfo", f"100644,{blob},{APP}/old.yaml"],
    ):
        subprocess.run(["git", "-C", str(repo), *args], env={**os.environ, **env}, check=True)
    subprocess.run(
        [
            "git",
            "-C",
            str(repo),
            "update-index",
            "--add",
            "--cacheinfo",
            f"100644,{blob},other-app/manifest.yaml",
        ],
        env={**os.environ, **env},
        check=True,
    )
    tree = subprocess.run(
        ["git", "-C", str(repo), "write-tree"], env={**os.environ, **env}, capture_output=True, text=True
    ).stdout.strip()
    commit = git(repo, "commit-tree", tree, "-p", tip, "-m", "hand edit")
    git(repo, "update-ref", "refs/heads/environments/prod-next", commit)
    result = {r["environment"]: r for r in hydrate(repo)}
    assert result["prod"]["changed"]
    files = git(repo, "ls-tree", "-r", "--name-only", "environments/prod-next").splitlines()
    assert f"{APP}/old.yaml" not in files and "other-app/manifest.yaml" in files


def test_a_new_next_branch_continues_the_promoted_branch(repo: Path):
    hydrate(repo)
    git(repo, "branch", "environments/prod", "environments/prod-next")  # what the promoter merged
    git(repo, "branch", "-D", "environments/prod-next")
    result = {r["environment"]: r for r in hydrate(repo)}
    assert (
        result["prod"]["commit"] == git(repo, "rev-parse", "environments/prod")
        and not result["prod"]["changed"]
    )
    assert git(repo, "rev-parse", "environments/prod-next") == git(repo, "rev-parse", "environments/prod")


def test_hydrate_refuses_uncommitted_specs_stale_output_and_other_modes(repo: Path):
    edit(repo, "environments/prod.yaml", "namespace: billing", "namespace: billing  # edited")
    result = run_kompile("hydrate", cwd=repo)
    assert result.returncode == 2 and "K704" in result.stderr and "uncommitted" in result.stderr
    commit_all(repo, "spec change without a build")
    edit(repo, "environments/prod.yaml", "minReplicas: 3, maxReplicas: 9", "minReplicas: 4, maxReplicas: 9")
    commit_all(repo, "replicas without a build")
    result = run_kompile("hydrate", cwd=repo)
    assert result.returncode == 2 and "not what the specs produce" in result.stderr
    assert git(repo, "branch", "--list", "environments/*") == ""
    edit(
        repo,
        "environments/app.yaml",
        "    hydration:\n      mode: branches",
        "    hydration:\n      mode: rendered",
    )
    result = run_kompile("hydrate", cwd=repo)
    assert result.returncode == 2 and "K204" in result.stderr and "mode is rendered" in result.stderr


def test_an_environment_named_like_a_proposed_branch_is_refused(tmp_path: Path):
    root = copy_golden_input("flux", tmp_path / "repo")
    text = (root / "environments/staging.yaml").read_text()
    (root / "environments/staging-next.yaml").write_text(
        text.replace("name: staging", "name: staging-next").replace("billing-staging", "billing-staging-next")
    )
    result = run_kompile("validate", cwd=root)
    assert result.returncode == 2 and "K309" in result.stderr and "staging-next.yaml:4:" in result.stderr
    edit(root, "environments/app.yaml", "      mode: branches", "      mode: branches\n      promoter: false")
    assert run_kompile("validate", cwd=root).returncode == 0  # no -next branches: no clash


def test_hydrating_from_an_older_commit_is_refused_and_moves_nothing(repo: Path):
    first = git(repo, "rev-parse", "HEAD")
    edit(repo, "environments/staging.yaml", "api: {replicas: 2}", "api: {replicas: 3}")
    assert run_kompile("build", cwd=repo).returncode == 0
    commit_all(repo, "More staging workers")
    hydrate(repo)
    tips = git(repo, "for-each-ref", "refs/heads/environments/", "refs/notes/")
    git(repo, "checkout", "-q", first)  # an old CI job, run again
    result = run_kompile("hydrate", cwd=repo)
    assert result.returncode == 2 and "back in time" in result.stderr
    assert git(repo, "for-each-ref", "refs/heads/environments/", "refs/notes/") == tips


def test_a_branch_git_cannot_create_stops_everything_before_anything_moves(repo: Path):
    git(repo, "branch", "environments/prod-next/x")
    result = run_kompile("hydrate", cwd=repo)
    assert result.returncode == 2 and "cannot be created beside" in result.stderr
    assert git(
        repo,
        "for-each-ref",
        "--format=%(refname)",
        "refs/heads/environments/",
        "refs/notes/",
        "refs/kompile/",
    ) == ("refs/heads/environments/prod-next/x")


def test_a_symbolic_ref_is_never_written_through(repo: Path):
    main = git(repo, "rev-parse", "main")
    git(repo, "symbolic-ref", "refs/heads/environments/prod-next", "refs/heads/main")
    result = run_kompile("hydrate", cwd=repo)
    assert result.returncode == 2 and "symbolic ref" in result.stderr
    assert git(repo, "rev-parse", "main") == main and git(repo, "status", "--porcelain") == ""


def test_odd_commits_and_identities_are_described_not_fatal(repo: Path):
    git(repo, "config", "i18n.logOutputEncoding", "ISO-8859-1")
    git(repo, "config", "user.name", "Zoë\u202eeviL")
    (repo / "NOTES.md").write_text("x\n")
    git(repo, "add", "-A")
    env = {**os.environ, "GIT_AUTHOR_DATE": "@253402300800 +0000"}  # the year 10000
    subprocess.run(
        ["git", "-C", str(repo), "commit", "-q", "-m", "Caf\u00e9 \u202eRLO\u202c subject"],
        env=env,
        check=True,
    )
    results = hydrate(repo)
    assert all(r["changed"] for r in results)
    raw = subprocess.run(
        ["git", "-C", str(repo), "show", "environments/prod-next:hydrator.metadata"],
        capture_output=True,
        check=True,
    ).stdout
    top = json.loads(raw)
    assert "date" not in top  # RFC 3339 cannot hold the year 10000: left out, as GitOps Promoter needs
    assert top["subject"] == "Caf\u00e9 \u202eRLO\u202c subject"
    assert "\u202e".encode() not in raw and b"\\u202e" in raw  # escaped: the file shows what it says


def test_branch_prefixes_git_would_refuse_are_spec_errors(tmp_path: Path):
    root = copy_golden_input("flux", tmp_path / "repo")
    for prefix in (".hydrated/", "env/.x/", "-env/", "a..b/", "env.lock/x/"):
        edit(
            root,
            "environments/app.yaml",
            "      mode: branches",
            f"      mode: branches\n      branchPrefix: {prefix}",
        )
        result = run_kompile("validate", cwd=root)
        assert result.returncode == 2 and "branchPrefix" in result.stderr, prefix
        edit(root, "environments/app.yaml", f"\n      branchPrefix: {prefix}", "")
        checked = subprocess.run(
            ["git", "check-ref-format", "--branch", f"{prefix}prod"], capture_output=True
        )
        assert checked.returncode != 0, prefix  # git agrees


def test_apps_of_a_monorepo_hydrate_into_their_own_folders():
    from kompile import names

    assert names.hydrated_folder("shop", "deploy/shop") == "deploy/shop"
    assert names.hydrated_folder("shop", "") == "shop"


def test_a_worktree_receives_one_environments_branch_files(repo: Path, tmp_path: Path):
    hydrate(repo)
    worktree = tmp_path / "prod-next"
    git(repo, "worktree", "add", "-q", str(worktree), "environments/prod-next")
    (worktree / APP / "old.yaml").write_text("stale\n")
    (worktree / "other-app").mkdir()
    (worktree / "other-app" / "manifest.yaml").write_text("kept\n")
    result = run_kompile("hydrate", "--env", "prod", "--worktree", str(worktree), cwd=repo)
    assert result.returncode == 0, result.stderr
    assert not (worktree / APP / "old.yaml").exists() and (worktree / "other-app" / "manifest.yaml").exists()
    # The same bytes the branch holds: only the stale file and the other app differ from its tip.
    status = git(worktree, "status", "--porcelain", "--untracked-files=all").splitlines()
    assert sorted(status) == ["?? other-app/manifest.yaml"]
    for refused, args in (
        ("not another worktree", ["--env", "prod", "--worktree", str(repo)]),
        ("not a checkout", ["--env", "prod", "--worktree", str(tmp_path)]),
        ("one environment", ["--worktree", str(worktree)]),
    ):
        result = run_kompile("hydrate", *args, cwd=repo)
        assert result.returncode == 2 and refused in result.stderr, (refused, result.stderr)


def test_every_new_branch_starts_from_nothing_and_holds_only_its_own_manifest(repo: Path):
    hydrate(repo)
    for env in ("prod", "staging"):
        branch = f"environments/{env}-next"
        assert git(repo, "rev-list", "--count", branch) == "1"  # a root commit: no other branch's history
        manifest = show(repo, branch, f"{APP}/manifest.yaml")
        namespace = "billing" if env == "prod" else "billing-staging"
        assert f"namespace: {namespace}\n" in manifest


def test_previews_have_nothing_to_hydrate(tmp_path: Path):
    root = copy_golden_input("django-platform", tmp_path / "repo")
    edit(root, "environments/app.yaml", "      mode: argocd ", "      mode: branches ")
    (root / "environments/preview-big.yaml").write_text(  # a preview too: pullRequests is inherited
        "apiVersion: kompile.dev/v1alpha1\nkind: Environment\nmetadata:\n  name: preview-big\nspec:\n  extends: preview\n"
    )
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "dev@example.com")
    git(root, "config", "user.name", "Dev")
    assert run_kompile("build", cwd=root).returncode == 0
    commit_all(root, "forum")
    results = hydrate(root)
    assert [r["environment"] for r in results] == ["dev", "prod"]  # preview (pullRequests) is a template
    result = run_kompile("hydrate", "--env", "preview", cwd=root)
    assert result.returncode == 2 and "is a preview" in result.stderr


def test_a_worktree_on_another_branch_is_refused(repo: Path, tmp_path: Path):
    hydrate(repo)
    worktree = tmp_path / "wt"
    git(repo, "worktree", "add", "-q", str(worktree), "environments/staging-next")
    result = run_kompile("hydrate", "--env", "prod", "--worktree", str(worktree), cwd=repo)
    assert result.returncode == 2 and "not refs/heads/environments/prod-next" in result.stderr


def test_a_sha256_repository_is_hydrated_too(tmp_path: Path):
    root = copy_golden_input("flux", tmp_path / "repo")
    init = subprocess.run(["git", "-C", str(root), "init", "-q", "--object-format=sha256", "-b", "main"])
    if init.returncode != 0:
        pytest.skip("this git cannot make SHA-256 repositories")
    git(root, "config", "user.email", "dev@example.com")
    git(root, "config", "user.name", "Dev")
    assert run_kompile("build", cwd=root).returncode == 0
    dry = commit_all(root, "sha256")
    assert len(dry) == 64
    first = hydrate(root)
    assert all(r["changed"] and len(r["commit"]) == 64 for r in first)
    assert json.loads(show(root, "environments/prod-next", "hydrator.metadata"))["drySha"] == dry
    assert not any(r["changed"] for r in hydrate(root))  # blob ids computed as SHA-256: nothing changed
