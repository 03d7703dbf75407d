"""kompile check and kompile diff: exit codes, and the exact change reported for each kind of edit."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kompile.output.diff import Change, ChangeKind, diff_project

from conftest import edit, run_kompile


@pytest.fixture
def built(example: Path) -> Path:
    assert run_kompile("build", "--root", str(example)).returncode == 0
    return example


def test_check_exit_codes_and_listing(built: Path):
    ok = run_kompile("check", "--root", str(built))
    assert ok.returncode == 0 and "up to date" in ok.stdout
    edit(built, "environments/staging.yaml", 'tag: "1.4.3"', 'tag: "1.4.4"')
    (built / "environments/dev.yaml").unlink()
    before = {p: p.read_bytes() for p in built.rglob("*") if p.is_file()}
    stale = run_kompile("check", "--root", str(built))
    assert stale.returncode == 1
    lines = stale.stdout.splitlines()
    assert "changed  overlays/staging/kustomization.yaml" in lines
    assert "removed  overlays/dev/kustomization.yaml" in lines
    assert "changed  .kompile-manifest.json" in lines
    assert {p: p.read_bytes() for p in built.rglob("*") if p.is_file()} == before  # check writes nothing
    edit(built, "environments/staging.yaml", "namespace: shop-staging", "namespace: Shop_Staging")
    invalid = run_kompile("check", "--root", str(built))
    assert invalid.returncode == 2 and "K205" in invalid.stderr


def test_check_catches_a_hand_edit(built: Path):
    target = built / "overlays/prod/kustomization.yaml"
    target.write_text(target.read_text() + "# tweak\n")
    result = run_kompile("check", "--root", str(built))
    assert result.returncode == 1
    assert "changed  overlays/prod/kustomization.yaml" in result.stdout.splitlines()


def test_check_reports_a_new_repo_as_all_added(example: Path):
    result = run_kompile("check", "--root", str(example))
    assert result.returncode == 1
    assert "added    bases/shop/kustomization.yaml" in result.stdout.splitlines()


def changes_after(root: Path, *edits: tuple[str, str, str], env: str | None = None) -> list[Change]:
    for rel, old, new in edits:
        edit(root, rel, old, new)
    return diff_project(root, None, [env] if env else None)[1]


def test_diff_image(built: Path):
    changes = changes_after(
        built, ("environments/staging.yaml", 'tag: "1.4.3"', 'tag: "1.4.4"'), env="staging"
    )
    assert (
        Change(
            "staging",
            "Deployment/shop-worker",
            ChangeKind.CHANGED,
            "container worker image",
            "ghcr.io/acme/shop:1.4.3",
            "ghcr.io/acme/shop:1.4.4",
        )
        in changes
    )
    assert (
        Change(
            "staging",
            "Job/shop-migrate",
            ChangeKind.CHANGED,
            "container migrate image",
            "ghcr.io/acme/shop:1.4.3",
            "ghcr.io/acme/shop:1.4.4",
        )
        in changes
    )
    assert {c.object for c in changes} == {
        "Deployment/shop-web",
        "Deployment/shop-worker",
        "Deployment/shop-beat",
        "Job/shop-migrate",
    }
    text = run_kompile("diff", "--root", str(built), "--env", "staging")
    assert text.returncode == 1
    assert re.search(
        r"^staging +Deployment/shop-worker +container worker image +1\.4\.3 -> 1\.4\.4$", text.stdout, re.M
    )


def test_diff_replicas(built: Path):
    changes = changes_after(built, ("environments/dev.yaml", "web: {replicas: 1}", "web: {replicas: 2}"))
    assert changes == [
        Change("dev", "Deployment/shop-web", ChangeKind.CHANGED, "spec.replicas", 1, 2),
        Change("dev", "PodDisruptionBudget/shop-web", ChangeKind.ADDED),  # two pods: a disruption budget
    ]


def test_diff_hpa_bounds(built: Path):
    changes = changes_after(built, ("environments/prod.yaml", "maxReplicas: 12", "maxReplicas: 20"))
    assert changes == [
        Change("prod", "HorizontalPodAutoscaler/shop-web", ChangeKind.CHANGED, "spec.maxReplicas", 12, 20)
    ]
    text = run_kompile("diff", "--root", str(built)).stdout
    assert re.search(r"^prod +HorizontalPodAutoscaler/shop-web +spec\.maxReplicas +12 -> 20$", text, re.M)


def test_diff_egress_rule(built: Path):
    rule = "      - name: mail\n        cidr: 10.40.0.0/24\n        ports: [587]\n  gitops:"
    changes = changes_after(built, ("environments/app.yaml", "  gitops:", rule), env="dev")
    added = {"ports": [{"port": 587, "protocol": "TCP"}], "to": [{"ipBlock": {"cidr": "10.40.0.0/24"}}]}
    assert changes == [
        Change("dev", f"NetworkPolicy/shop-{c}", ChangeKind.ADDED, "spec.egress[3]", None, added)
        for c in ("beat", "migrate", "web", "worker")
    ]


def test_diff_env_var(built: Path):
    changes = changes_after(
        built,
        (
            "environments/prod.yaml",
            "    DJANGO_ALLOWED_HOSTS: shop.example.com\n",
            '    DJANGO_ALLOWED_HOSTS: shop.example.com\n    FEATURE_X: "on"\n',
        ),
    )
    assert Change("prod", "ConfigMap/shop-config", ChangeKind.ADDED, "data.FEATURE_X", None, "on") in changes
    # New settings restart the pods: the config hash of every pod template changes.
    restarted = {
        c.object for c in changes if c.path == "spec.template.metadata.annotations.kompile.dev/config-hash"
    }
    assert restarted == {
        "Deployment/shop-web",
        "Deployment/shop-worker",
        "Deployment/shop-beat",
        "Job/shop-migrate",
    }
    assert len(changes) == 5


def test_diff_secret_key(built: Path):
    changes = changes_after(
        built,
        (
            "environments/staging.yaml",
            "        CELERY_BROKER_URL: Ag",
            "        SENTRY_DSN: AgNEWciphertext\n        CELERY_BROKER_URL: Ag",
        ),
        ("environments/staging.yaml", "DATABASE_URL: AgCo1Yq", "DATABASE_URL: AgResealed"),
        env="staging",
    )
    assert (
        Change(
            "staging",
            "SealedSecret/shop-django",
            ChangeKind.ADDED,
            "spec.encryptedData.SENTRY_DSN",
            None,
            "AgNEWciphertext",
        )
        in changes
    )
    resealed = [c for c in changes if c.path == "spec.encryptedData.DATABASE_URL"]
    assert [(c.kind, c.old[:10], c.new[:10]) for c in resealed] == [
        (ChangeKind.CHANGED, "AgCo1YqSEw", "AgResealed")
    ]
    assert {c.object for c in changes if c.path.endswith("secrets-hash")} == {
        "Deployment/shop-web",
        "Deployment/shop-worker",
        "Deployment/shop-beat",
        "Job/shop-migrate",
    }


def test_diff_named_lists_match_by_name_not_position(built: Path):
    # Reordering the App's secrets reorders nothing in the output; adding a second secret adds an envFrom.
    changes = changes_after(
        built,
        (
            "environments/dev.yaml",
            "shop.dev.example.com\n  components:",
            "shop.dev.example.com\n    EXTRA: x\n  components:",
        ),
        env="dev",
    )
    assert not [c for c in changes if "[0]" in c.path and "container" in c.path]


def test_diff_formats_and_exit_codes(built: Path):
    unchanged = run_kompile("diff", "--root", str(built))
    assert unchanged.returncode == 0 and unchanged.stdout.strip() == "no changes"
    edit(built, "environments/prod.yaml", "maxReplicas: 12", "maxReplicas: 20")
    as_json = run_kompile("diff", "--root", str(built), "--format", "json")
    assert as_json.returncode == 1
    assert json.loads(as_json.stdout) == [
        {
            "environment": "prod",
            "object": "HorizontalPodAutoscaler/shop-web",
            "change": "changed",
            "path": "spec.maxReplicas",
            "old": 12,
            "new": 20,
        }
    ]
    markdown = run_kompile("diff", "--root", str(built), "--format", "markdown")
    assert markdown.returncode == 1
    body = markdown.stdout
    assert "| prod | 0 | 0 | 1 |" in body and "| dev | 0 | 0 | 0 |" in body
    assert "<details><summary><b>prod</b>: 1 change</summary>" in body
    assert "| `HorizontalPodAutoscaler/shop-web` | `spec.maxReplicas` | `12` | `20` |" in body
    broken = run_kompile("diff", "--root", str(built), "--base", "no-such-revision")
    assert broken.returncode == 2 and "K704" in broken.stderr


def _git(root: Path, *args: str) -> None:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    subprocess.run(["git", "-C", str(root), *args], check=True, env=env, capture_output=True)


def test_diff_against_a_git_revision(built: Path):
    _git(built, "init", "-q")
    _git(built, "add", "-A")
    _git(built, "commit", "-qm", "base")
    edit(built, "environments/prod.yaml", "maxReplicas: 12", "maxReplicas: 20")
    edit(built, "environments/staging.yaml", 'tag: "1.4.3"', 'tag: "1.4.4"')
    assert run_kompile("build", "--root", str(built)).returncode == 0
    _git(built, "commit", "-qam", "change")
    # The committed output is current now, so only --base shows what the commit did.
    assert run_kompile("diff", "--root", str(built)).returncode == 0
    result = run_kompile("diff", "--root", str(built), "--base", "HEAD~1", "--env", "prod")
    assert result.returncode == 1
    assert result.stdout.split() == [
        "prod",
        "HorizontalPodAutoscaler/shop-web",
        "spec.maxReplicas",
        "12",
        "->",
        "20",
    ]


def test_diff_in_a_subfolder_of_a_monorepo(tmp_path: Path):
    from conftest import copy_example

    repo = tmp_path / "mono"
    root = copy_example(repo / "deploy" / "shop")
    (repo / "README").write_text("monorepo\n")
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "base")
    edit(root, "environments/dev.yaml", "web: {replicas: 1}", "web: {replicas: 2}")
    names, changes = diff_project(root, "HEAD", ["dev"])
    assert names == ["dev"]
    assert Change("dev", "Deployment/shop-web", ChangeKind.CHANGED, "spec.replicas", 1, 2) in changes


def test_fast_check_trusts_only_what_it_can_prove(built: Path):
    from kompile.output.check import unchanged_since_build

    assert unchanged_since_build(built) is not None
    target = built / "overlays/dev/patches/deployment-shop-web.yaml"
    original = target.read_bytes()
    target.write_bytes(original + b"# tweak\n")
    assert unchanged_since_build(built) is None  # a hand edit of an output file
    assert run_kompile("check", "--root", str(built)).returncode == 1
    target.write_bytes(original)
    assert unchanged_since_build(built) is not None
    (built / "environments/qa.yaml").write_text((built / "environments/dev.yaml").read_text())
    assert unchanged_since_build(built) is None  # a new spec file
    (built / "environments/qa.yaml").unlink()
    edit(built, "secrets/prod/shop-django.yaml", "-Qw2", "-Qw3")
    assert unchanged_since_build(built) is None  # a file a spec refers to
    assert run_kompile("check", "--root", str(built)).returncode == 1
    edit(built, "secrets/prod/shop-django.yaml", "-Qw3", "-Qw2")
    manifest = built / ".kompile-manifest.json"
    manifest.write_text(
        manifest.read_text().replace('"generator": "kompile ', '"generator": "kompile 0.0.0-old-')
    )
    assert unchanged_since_build(built) is None  # another kompile built it
    assert run_kompile("check", "--root", str(built)).returncode == 0  # recompiled: the files are current


@pytest.mark.parametrize("workers", [0, 2], ids=["one process", "forked workers"])
def test_fast_check_remembers_what_it_verified_and_notices_any_change(built: Path, workers, monkeypatch):
    """The second fast check reads no file (not even the manifest) when every file keeps its identity;
    an edit that keeps size and mtime still changes the identity (ctime), a new spec is noticed, and a
    damaged cache is only a slower check. (Files are looked at in forked workers from 200 folders up.)"""
    import os

    from kompile.output import check, statcache

    monkeypatch.setattr(statcache, "RACY_SECONDS", 0)
    monkeypatch.setattr(statcache, "cores", lambda count: workers)
    assert check.unchanged_since_build(built) is not None  # read and hashed: recorded
    cache = built / ".kompile-cache"
    assert (cache / ".gitignore").read_text().endswith("*\n") and (cache / "check").is_file()

    def no_manifest(root):
        raise AssertionError("the manifest was read")

    with monkeypatch.context() as patched:
        patched.setattr(check, "read_manifest", no_manifest)
        assert check.unchanged_since_build(built) is not None
    target = built / "overlays/dev/patches/deployment-shop-web.yaml"
    before = target.stat()
    original = target.read_bytes()
    target.write_bytes(original.replace(b"1.5.0-rc.2", b"1.5.0-rc.3"))  # same size
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))  # same mtime
    assert target.stat().st_size == before.st_size
    assert check.unchanged_since_build(built) is None
    target.write_bytes(original)
    assert check.unchanged_since_build(built) is not None
    records = sorted((built / ".kompile-manifest").iterdir())
    (built / ".kompile-manifest" / "qa.json").write_text(records[0].read_text())  # a record added
    assert check.unchanged_since_build(built) is None
    (built / ".kompile-manifest" / "qa.json").unlink()
    assert check.unchanged_since_build(built) is not None
    (built / "environments/qa.yaml").write_text((built / "environments/dev.yaml").read_text())
    assert check.unchanged_since_build(built) is None
    (built / "environments/qa.yaml").unlink()
    (cache / "check").write_text("kompile-check-cache 1 x\n[]\nnot a line\n")
    assert check.unchanged_since_build(built) is not None  # read the files again, recorded again
    (cache / "check").write_bytes(b"\xff\xfe")
    assert check.unchanged_since_build(built) is not None


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.text("abc/", max_size=6).map(lambda f: f.strip("/")),
            st.lists(
                st.from_regex(r"[0-9]{1,3} [0-9]{1,3} [0-9] [0-9] [a-z.]{1,5}", fullmatch=True), max_size=4
            ),
        ),
        max_size=12,
    ),
    st.integers(1, 20),
)
def test_the_fast_check_listing_is_cut_where_folders_begin(groups, parts):
    """Workers each read their own part of the listing: the parts cover it, each begins with a folder's
    line, and a folder's lines are found when it is listed once (a folder listed twice: none)."""
    from kompile.output.statcache import _cuts, _group

    listing = "".join(f"/{folder}\n" + "".join(f"{line}\n" for line in lines) for folder, lines in groups)
    cuts = _cuts(listing, parts)
    assert "".join(listing[start:end] for start, end in cuts) == listing
    assert all(listing[start:end].startswith("/") for start, end in cuts if listing)
    assert len(cuts) <= parts
    for folder, lines in groups:
        listed = [other for other, _ in groups if other == folder]
        assert _group(listing, folder) == (lines if len(listed) == 1 else None)
    assert _group(listing, "zzz") is None


@pytest.mark.parametrize("separator", ["\x1c", "\r", "\u2028", "\x85"])
def test_a_crafted_check_cache_cannot_hide_a_spec(built: Path, separator: str, monkeypatch):
    """The listing's lines end at "\\n" only, for every reader of it: a name holding another line
    separator must not read as a folder's line in one place and as a spec in another (found by an
    attack: prod's spec moved behind "\\x1c/zz" went unchecked)."""
    from kompile.load.listing import spec_paths
    from kompile.output import check, statcache

    monkeypatch.setattr(statcache, "RACY_SECONDS", 0)
    assert check.unchanged_since_build(built) is not None  # recorded
    cache = built / ".kompile-cache" / "check"
    lines = cache.read_text(encoding="utf-8").split("\n")
    prod = next(i for i, line in enumerate(lines) if line.endswith(" prod.yaml"))
    del lines[prod]
    staging = next(i for i, line in enumerate(lines) if line.endswith(" staging.yaml"))
    lines[staging] += f"{separator}/zz prod.yaml"
    cache.write_text("\n".join(lines), encoding="utf-8")
    edit(built, "environments/prod.yaml", "minReplicas: 3", "minReplicas: 4")
    assert statcache.still_current(built, set(spec_paths(built))) is None
