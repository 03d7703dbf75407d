"""Writes that never lose anyone's work: ownership, hand edits, foreign files, deletions, no-op builds."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kompile.compiler import compile_project
from kompile.errors import Code, KompileError
from kompile.output.manifest import MANIFEST, read_manifest
from kompile.output.write import apply_plan, plan_write

from conftest import run_kompile


def build(root: Path, force: bool = False, only=None):
    """What `kompile build` does (without the messages)."""
    output = compile_project(root, only)
    plan = plan_write(
        root, output.files, output.owned, output.inputs, force, output.warnings, output.tiers, output.partial
    )
    apply_plan(root, plan)
    return plan


def snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_first_build_writes_every_file_and_a_manifest(example):
    plan = build(example)
    manifest = read_manifest(example)
    assert plan.added and not plan.changed and not plan.deletes
    assert sorted(manifest.files) == sorted(plan.added)
    assert set(manifest.inputs) == {
        "environments/app.yaml",
        "environments/dev.yaml",
        "environments/prod.yaml",
        "environments/staging.yaml",
        "secrets/dev/shop-django.yaml",
        "secrets/prod/shop-django.yaml",
    }


def test_second_build_touches_nothing(example):
    def times():
        # Every file but kompile's local cache, whose index may learn that a spec is old enough to trust.
        return {
            p: p.stat().st_mtime_ns
            for p in example.rglob("*")
            if p.is_file() and ".kompile-cache" not in p.parts
        }

    build(example)
    before = times()
    plan = build(example)
    assert plan.is_noop
    assert times() == before


def test_only_changed_files_are_rewritten(example):
    build(example)
    untouched = example / "overlays/prod/kustomization.yaml"
    mtime = untouched.stat().st_mtime_ns
    spec = example / "environments/staging.yaml"
    spec.write_text(spec.read_text().replace('tag: "1.4.3"', 'tag: "1.4.4"'))
    plan = build(example)
    assert "overlays/staging/kustomization.yaml" in plan.changed
    assert all(path.startswith("overlays/staging/") for path in plan.changed)
    assert untouched.stat().st_mtime_ns == mtime


def test_foreign_file_in_the_way_is_an_error_not_an_overwrite(example):
    target = example / "overlays/dev/kustomization.yaml"
    target.parent.mkdir(parents=True)
    target.write_text("# mine\n")
    with pytest.raises(KompileError) as caught:
        build(example)
    assert [d.code for d in caught.value.diagnostics] == [Code.FOREIGN_FILE]
    assert caught.value.diagnostics[0].span.path == "overlays/dev/kustomization.yaml"
    assert target.read_text() == "# mine\n"
    assert not (example / "bases").exists() and not (example / MANIFEST).exists()


def test_foreign_files_beside_the_output_are_left_alone(example):
    build(example)
    notes = {
        "overlays/prod/NOTES.md": b"runbook\n",
        "bases/shop/extra/mine.yaml": b"kind: Mine\n",
        "gitops/custom.yaml": b"x: 1\n",
    }
    for rel, data in notes.items():
        (example / rel).parent.mkdir(parents=True, exist_ok=True)
        (example / rel).write_bytes(data)
    (example / "environments/staging.yaml").unlink()  # staging's overlay is now stale and gets removed
    build(example)
    for rel, data in notes.items():
        assert (example / rel).read_bytes() == data
    assert not (example / "overlays/staging").exists()


def test_hand_edited_file_is_refused_with_the_edit_and_a_way_out(example):
    build(example)
    target = example / "bases/shop/deployment-shop-web.yaml"
    target.write_text(target.read_text().replace("revisionHistoryLimit: 5", "revisionHistoryLimit: 9"))
    spec = example / "environments/app.yaml"
    spec.write_text(spec.read_text().replace("--workers=3", "--workers=4"))
    before = snapshot(example)
    with pytest.raises(KompileError) as caught:
        build(example)
    (diagnostic,) = caught.value.diagnostics
    assert diagnostic.code is Code.HAND_EDITED
    assert "revisionHistoryLimit: 9" in diagnostic.message and "revisionHistoryLimit: 5" in diagnostic.message
    assert "spec.patches" in diagnostic.hint and "--force" in diagnostic.hint
    assert snapshot(example) == before  # nothing written, the edit included


def test_force_replaces_a_hand_edit(example):
    build(example)
    target = example / "bases/shop/deployment-shop-web.yaml"
    generated = target.read_bytes()
    target.write_text("edited\n")
    build(example, force=True)
    assert target.read_bytes() == generated


def test_hand_edited_stale_file_is_not_deleted(example):
    build(example)
    stale = example / "overlays/staging/kustomization.yaml"
    stale.write_text(stale.read_text() + "# my note\n")
    (example / "environments/staging.yaml").unlink()
    with pytest.raises(KompileError) as caught:
        build(example)
    assert [d.code for d in caught.value.diagnostics] == [Code.HAND_EDITED]
    assert stale.read_text().endswith("# my note\n")


def test_removed_environment_removes_only_its_generated_files(example):
    build(example)
    (example / "environments/staging.yaml").unlink()
    plan = build(example)
    assert "gitops/argocd/application-shop-staging.yaml" in plan.deletes
    assert all(p.startswith("overlays/staging/") for p in plan.deletes if not p.startswith("gitops/"))
    assert not (example / "overlays/staging").exists()
    assert not any(p.startswith("overlays/staging/") for p in read_manifest(example).files)


def test_building_some_environments_keeps_the_others(example):
    build(example)
    before = snapshot(example)
    spec = example / "environments/staging.yaml"
    spec.write_text(spec.read_text().replace('tag: "1.4.3"', 'tag: "1.4.4"'))
    build(example, only=["dev"])
    after = snapshot(example)
    del after[MANIFEST], before[MANIFEST]
    assert after == {**before, "environments/staging.yaml": spec.read_bytes()}
    assert read_manifest(example).inputs == {}  # a partial build vouches for no inputs
    assert run_kompile("check", "--root", str(example)).returncode == 1  # staging is stale
    plan = build(example, only=["staging"])
    assert plan.changed and all(p.startswith("overlays/staging/") for p in plan.changed)
    assert sorted(read_manifest(example).files) == sorted(
        p for p in before if p.startswith(("bases/", "overlays/", "gitops/"))
    )
    assert run_kompile("check", "--root", str(example)).returncode == 0


def test_building_one_environment_of_an_unchanged_repo_changes_nothing(example):
    """With no spec changed since the last full build, a partial build still vouches for every input:
    the manifest (inputs, warnings) stays byte for byte, and the working tree stays clean."""
    build(example)
    before = snapshot(example)
    plan = build(example, only=["prod"])
    assert plan.is_noop and snapshot(example) == before
    assert run_kompile("check", "--root", str(example)).returncode == 0


def test_symlinked_output_folder_leading_outside_is_refused(example, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (example / "overlays").symlink_to(outside, target_is_directory=True)
    with pytest.raises(KompileError) as caught:
        build(example)
    assert {d.code for d in caught.value.diagnostics} == {Code.FOREIGN_FILE}
    assert list(outside.iterdir()) == []


def test_interrupted_build_leftovers_are_owned_and_completed(example):
    """A build killed after recording its intent: the pending manifest owns old and new contents."""
    from kompile.output.write import plan_write, record_intent
    from kompile.safefs import Root

    build(example)
    spec = example / "environments/app.yaml"
    spec.write_text(spec.read_text().replace("--workers=3", "--workers=4"))
    output = compile_project(example)
    plan = plan_write(example, output.files, output.owned, output.project.inputs)
    with Root(example) as disk:
        record_intent(disk, plan)
    first = next(iter(plan.writes))
    (example / first).write_bytes(plan.writes[first])  # as if killed right after the first rename
    # The next build, after yet another spec change, still recognises both versions as its own.
    spec.write_text(spec.read_text().replace("--workers=4", "--workers=5"))
    build(example)
    assert run_kompile("check", "--root", str(example)).returncode == 0


GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@t",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@t",
}


def _commit_all(root: Path) -> None:
    subprocess.run(["git", "-C", str(root), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(root), "commit", "-qm", "x"], check=True, env={**os.environ, **GIT_ENV})


def test_build_warns_about_uncommitted_output_in_the_folders_it_writes(example):
    subprocess.run(["git", "init", "-q", str(example)], check=True)
    first = run_kompile("build", "--root", str(example))
    # Every output folder is new: none holds anyone's work, and the staged files are not theirs.
    assert first.returncode == 0 and "K704" not in first.stderr, first.stderr
    _commit_all(example)
    for env in ("dev", "prod", "staging"):
        (example / f"overlays/{env}/NOTES.md").write_text("wip\n")
    spec = example / "environments/dev.yaml"
    spec.write_text(spec.read_text().replace("replicas: 1}", "replicas: 2}", 1))
    result = run_kompile("build", "--root", str(example))
    assert result.returncode == 0
    # dev's overlay is rewritten: the note beside its files is named; prod's and staging's are untouched.
    assert "1 file(s) in the output folders this build writes have uncommitted changes" in result.stderr
    assert "overlays/dev/NOTES.md" in result.stderr and "overlays/prod" not in result.stderr
    # Files deleted count as written: staging's overlay goes, and the note left in it is named.
    _commit_all(example)
    (example / "overlays/staging/NOTES.md").write_text("more wip\n")
    (example / "environments/staging.yaml").unlink()
    removed = run_kompile("build", "--root", str(example), "--remove", "staging")
    assert removed.returncode == 0, removed.stderr
    assert "overlays/staging/NOTES.md" in removed.stderr
    assert (example / "overlays/staging/NOTES.md").read_text() == "more wip\n"


def test_past_so_many_folders_git_is_asked_about_the_output_folders_whole(example, monkeypatch):
    from kompile.load import git

    subprocess.run(["git", "init", "-q", str(example)], check=True)
    build(example)
    _commit_all(example)
    (example / "overlays/prod/NOTES.md").write_text("wip\n")
    touched = ["overlays/dev/kustomization.yaml", "overlays/staging/kustomization.yaml"]
    assert git.uncommitted_outputs(example, touched) == []
    monkeypatch.setattr(git, "FOLDERS_ASKED", 1)
    assert git.uncommitted_outputs(example, touched) == ["overlays/prod/NOTES.md"]
    assert git.uncommitted_outputs(example, ["environments/dev.yaml"]) == []  # not an output file


def test_a_build_of_one_environment_names_the_uncommitted_files_in_its_folders_only(example):
    # The repo's top is above kompile's root: git names files from the top, the warning from the root.
    top = example.parent / f"{example.name}-top"
    shutil.move(example, top / "deploy")
    root = top / "deploy"
    subprocess.run(["git", "init", "-q", str(top)], check=True)
    assert run_kompile("build", "--root", str(root)).returncode == 0
    _commit_all(top)
    (root / 'overlays/dev/my notes "v2".md').write_text("wip\n")  # a name git would quote
    (root / "overlays/prod/NOTES.md").write_text("wip\n")
    spec = root / "environments/dev.yaml"
    spec.write_text(spec.read_text().replace("replicas: 1}", "replicas: 2}", 1))
    result = run_kompile("build", "--env", "dev", "--root", str(root))
    assert result.returncode == 0, result.stderr
    assert (
        "1 file(s) in the output folders this build writes have uncommitted changes (e.g. 'overlays/dev/my notes \"v2\".md')"
        in result.stderr
    )
    assert "overlays/prod" not in result.stderr and "deploy/" not in result.stderr


def test_git_asked_early_answers_only_for_the_folders_it_was_asked_about(example):
    from kompile.load.git import Status, uncommitted_outputs

    subprocess.run(["git", "init", "-q", str(example)], check=True)
    build(example)
    _commit_all(example)
    for env in ("dev", "prod"):
        (example / f"overlays/{env}/NOTES.md").write_text("wip\n")
    with Status(example, ["overlays/dev", "overlays/prod"]) as early:  # answers for dev's folder alone
        touched = ["overlays/dev/kustomization.yaml"]
        assert uncommitted_outputs(example, touched, early) == ["overlays/dev/NOTES.md"]
    with Status(example, ["overlays/dev"]) as early:  # prod's folder was not asked about: asked now
        touched = ["overlays/dev/kustomization.yaml", "overlays/prod/kustomization.yaml"]
        assert uncommitted_outputs(example, touched, early) == [
            "overlays/dev/NOTES.md",
            "overlays/prod/NOTES.md",
        ]
    with Status(example.parent / "elsewhere", ["overlays/dev"]) as outside:  # not a git repo: nothing
        assert outside.files() == []


def _git_repo_with_output(top: Path, root: Path, example: Path) -> None:
    shutil.move(example, root)
    subprocess.run(["git", "init", "-q", str(top)], check=True)
    build(root)
    _commit_all(top)


def test_odd_names_where_git_answers_neither_crash_nor_reach_the_terminal_raw(example):
    # The root's folder is not UTF-8 (git names it in bytes), and a file name holds a newline and an
    # escape code: the build warns, on one line, with every control character escaped.
    top = example.parent / f"{example.name}-top"
    root = top / os.fsdecode(b"deploy\xff")
    _git_repo_with_output(top, root, example)
    odd = "overlays/dev/x\n\x1b[2J\x1b]0;pwned\ay.txt"
    (root / odd).write_text("wip\n")
    spec = root / "environments/dev.yaml"
    spec.write_text(spec.read_text().replace("replicas: 1}", "replicas: 2}", 1))
    for args in (["--env", "dev"], []):
        result = subprocess.run(
            [sys.executable, "-m", "kompile", "build", "--root", os.fsencode(root), *args],
            capture_output=True,
        )
        assert result.returncode == 0, result.stderr
        assert b"\x1b" not in result.stderr and b"\x07" not in result.stderr
        (line,) = [row for row in result.stderr.split(b"\n") if b"K704" in row]
        assert b"overlays/dev/x\\n\\x1b[2J\\x1b]0;pwned\\x07y.txt" in line
        # (What the build wrote committed, the odd file left untracked, for the next build.)
        _commit_all(top)
        subprocess.run(
            ["git", "-C", str(top), "rm", "-q", "--cached", "--", os.fsencode(root / odd)], check=True
        )
        subprocess.run(
            ["git", "-C", str(top), "commit", "-qm", "x"], check=True, env={**os.environ, **GIT_ENV}
        )
        spec.write_text(spec.read_text().replace("replicas: 2}", "replicas: 3}", 1))


def test_renames_git_reports_name_both_files_in_either_column(example):
    from kompile.load.git import Status, uncommitted_outputs

    # A root whose folder begins with C or R: a misread source entry would look like a rename itself.
    top = example.parent / f"{example.name}-top"
    root = top / "Cfg"
    _git_repo_with_output(top, root, example)
    git = ["git", "-C", str(root)]
    # In the work tree (intent to add): git says " R new\0old"; in the index (git mv): "R  new\0old".
    (root / "overlays/dev/ingress-shop-web.yaml").rename(root / "overlays/dev/my-ingress.yaml")
    subprocess.run([*git, "add", "-N", "overlays/dev/my-ingress.yaml"], check=True)
    (root / "overlays/prod/NOTES.md").write_text("wip\n")
    subprocess.run(
        [*git, "mv", "overlays/staging/ingress-shop-web.yaml", "overlays/prod/moved.yaml"], check=True
    )
    with Status(root, ["overlays/dev", "overlays/prod", "overlays/staging"]) as status:
        assert sorted(status.files()) == [
            "overlays/dev/ingress-shop-web.yaml",
            "overlays/dev/my-ingress.yaml",
            "overlays/prod/NOTES.md",
            "overlays/prod/moved.yaml",
            "overlays/staging/ingress-shop-web.yaml",
        ]
    # Asked early about two folders, git pairs a move between them: a build touching only the folder it
    # left still names what left it.
    with Status(root, ["overlays/prod", "overlays/staging"]) as early:
        touched = ["overlays/staging/kustomization.yaml"]
        assert uncommitted_outputs(root, touched, early) == ["overlays/staging/ingress-shop-web.yaml"]


def test_git_is_asked_early_only_about_environment_names(example):
    from kompile.api import _git_status_early
    from kompile.load.git import Status

    for names in (
        ["dev", "pr-1"],
        None,
        [],
        ["dev\n"],
        ["dev", "../x"],
        ["Dev"],
        [f"e{n}" for n in range(300)],
    ):
        with _git_status_early(example, names) as early:
            assert isinstance(early, Status) == (names == ["dev", "pr-1"]), names


def test_a_build_refused_late_leaves_nothing_behind(example):
    """Files are staged as each environment compiles: when a later environment fails to render, every
    staged file and every folder made for them is removed, and nothing visible has changed."""
    assert run_kompile("build", "--root", str(example)).returncode == 0
    dev = example / "environments/dev.yaml"
    dev.write_text(dev.read_text().replace("replicas: 1}", "replicas: 3}", 1))  # dev's files change
    shutil.rmtree(example / "overlays/staging")  # staging's files are written again, in a folder made anew
    prod = example / "environments/prod.yaml"  # compiled after dev and qa, and refused while rendering
    prod.write_text(
        prod.read_text() + "  patches:\n    - target: {kind: Deployment, name: nothing}\n"
        "      patch: [{op: add, path: /x, value: 1}]\n"
    )
    before = snapshot(example)
    folders = sorted(p.relative_to(example).as_posix() for p in example.rglob("*") if p.is_dir())
    result = run_kompile("build", "--root", str(example))
    assert result.returncode == 2 and "K407" in result.stderr, result.stderr
    assert snapshot(example) == before
    assert sorted(p.relative_to(example).as_posix() for p in example.rglob("*") if p.is_dir()) == folders


def test_a_killed_builds_temporary_files_are_found_wherever_they_are(example):
    """A build killed while staging an environment whose spec is then removed leaves temporary files in
    a folder no later build reads: check reports them, and the next build removes them and the folder."""
    assert run_kompile("build", "--root", str(example)).returncode == 0
    stray = [
        example / "overlays/gone/.kompile-0123456789abcdef.tmp",
        example / "overlays/gone/patches/.kompile-fedcba9876543210.tmp",
    ]
    for path in stray:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("partial\n")
    check = run_kompile("check", "--root", str(example))
    assert check.returncode == 1 and "overlays/gone/patches/.kompile-fedcba9876543210.tmp" in check.stdout, (
        check.stdout
    )
    assert run_kompile("build", "--root", str(example)).returncode == 0
    assert not (example / "overlays/gone").exists()
    assert run_kompile("check", "--root", str(example)).returncode == 0


def test_a_folder_a_killed_build_staged_is_removed_without_following_its_links(example, tmp_path: Path):
    """A new environment's folder is staged whole under a temporary name: one left by a killed build is
    reported by check and removed by the next build, links inside it removed, never followed."""
    assert run_kompile("build", "--root", str(example)).returncode == 0
    outside = tmp_path / "outside"
    (outside / "keep").mkdir(parents=True)
    (outside / "keep/file.yaml").write_text("mine\n")
    staged = example / "overlays/.kompile-0123456789abcdef.tmp"
    (staged / "patches").mkdir(parents=True)
    (staged / "kustomization.yaml").write_text("partial\n")
    (staged / "patches/deployment.yaml").write_text("partial\n")
    (staged / "patches/link").symlink_to(outside / "keep")
    check = run_kompile("check", "--root", str(example))
    assert check.returncode == 1 and "removed  overlays/.kompile-0123456789abcdef.tmp\n" in check.stdout, (
        check.stdout
    )
    assert run_kompile("build", "--root", str(example)).returncode == 0
    assert not staged.exists() and not staged.is_symlink()
    assert (outside / "keep/file.yaml").read_text() == "mine\n"
    assert run_kompile("check", "--root", str(example)).returncode == 0


def test_what_a_killed_build_staged_is_never_taken_for_output(example):
    """A staged folder left in overlays/ is no environment to diff (it is no removed one), and an empty one
    still makes check say the output is not current; a folder of that name beside the output folders,
    at the root, is not kompile's: left alone."""
    assert run_kompile("build", "--root", str(example)).returncode == 0
    shutil.copytree(example / "overlays/dev", example / "overlays/.kompile-00000000000000ae.tmp")
    (example / "overlays/.kompile-00000000000000af.tmp").mkdir()
    mine = example / ".kompile-0123456789abcdef.tmp"
    mine.mkdir()
    (mine / "mine.txt").write_text("precious\n")
    notes = example / "notes.kompile-tmp"  # (older builds' suffix, but not MANIFEST's: a user's file)
    notes.write_text("mine\n")
    shutil.rmtree(example / ".kompile-cache")  # (diff compiles everything: no record to trust)
    diff = run_kompile("diff", "--root", str(example))
    assert diff.returncode == 0 and ".kompile-" not in diff.stdout, diff.stdout
    check = run_kompile("check", "--root", str(example))
    assert check.returncode == 1 and "overlays/.kompile-00000000000000af.tmp" in check.stdout, check.stdout
    assert run_kompile("build", "--root", str(example)).returncode == 0
    assert not (example / "overlays/.kompile-00000000000000ae.tmp").exists()
    assert not (example / "overlays/.kompile-00000000000000af.tmp").exists()
    assert (mine / "mine.txt").read_text() == "precious\n"
    assert notes.read_text() == "mine\n"
    assert run_kompile("check", "--root", str(example)).returncode == 0


def test_a_leftover_kompile_cannot_remove_stops_the_build_before_anything_changes(example):
    """A staged folder deeper than kompile ever stages is not removed whole: the build says which, and
    changes nothing (the next one, once it is gone, completes)."""
    assert run_kompile("build", "--root", str(example)).returncode == 0
    dev = example / "environments/dev.yaml"
    dev.write_text(dev.read_text().replace("replicas: 1}", "replicas: 2}", 1))
    leftover = example / "overlays/.kompile-0123456789abcdef.tmp"
    deep = leftover.joinpath(*["d"] * 40)
    deep.mkdir(parents=True)
    (deep / "f.yaml").write_text("partial\n")
    before = snapshot(example)
    result = run_kompile("build", "--root", str(example))
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "cannot remove overlays/.kompile-0123456789abcdef.tmp" in result.stderr, result.stderr
    assert snapshot(example) == before
    shutil.rmtree(leftover)
    assert run_kompile("build", "--root", str(example)).returncode == 0
    assert run_kompile("check", "--root", str(example)).returncode == 0


def test_a_first_build_stages_each_new_folder_whole_and_renames_it_once(tmp_path: Path, monkeypatch):
    """Into an empty tree, each environment's folder is written under a temporary name and renamed once,
    not file by file: a first build renames a few files (those of folders shared by every environment,
    such as gitops/) and one folder per environment. (A count of renames.)"""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    from kompile import api

    from fleet import generate_fleet

    root = generate_fleet(tmp_path / "repo", 30)
    renamed: list[str] = []
    real_replace, real_rename = os.replace, os.rename

    def replacing(source, target, *args, **kwargs):
        renamed.append(str(target))
        return real_replace(source, target, *args, **kwargs)

    def renaming(source, target, *args, **kwargs):
        renamed.append(str(target))
        return real_rename(source, target, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replacing)
    monkeypatch.setattr(os, "rename", renaming)
    built = api.build(root)
    monkeypatch.undo()
    written = len(built.plan.added)
    folders = {path.split("/")[1] for path in built.plan.added if path.startswith("overlays/")}
    assert len(folders) == 30 and written > 10 * 30
    outside_folders = [path for path in built.plan.added if path.count("/") < 2]
    # (the records of each environment, and MANIFEST, are written file by file too)
    assert len(renamed) <= len(outside_folders) + 2 * len(folders) + 40, (len(renamed), written)
    assert run_kompile("check", "--root", str(root)).returncode == 0


def test_a_cold_build_opens_each_output_folder_a_few_times_not_once_per_file(tmp_path: Path, monkeypatch):
    """Folder handles are kept from the nearest open folder, and a folder its parent's listing lacks is
    not walked to: a cold build opens each output folder a few times (list, make, write, rename), not
    once per file and per level, whatever the number of environments. (A count, not a time.)"""
    import os
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    from kompile.compiler import compile_project
    from kompile.output.write import write_tree

    from fleet import generate_fleet

    root = generate_fleet(tmp_path / "repo", 40)
    output = compile_project(root)
    folders = {path.rpartition("/")[0] for path in output.files}
    folders |= {folder.rpartition("/")[0] for folder in folders} - {""}
    opened: list[str] = []
    real_open = os.open

    def counting(path, flags, *args, **kwargs):
        if flags & os.O_DIRECTORY:
            opened.append(path)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", counting)
    write_tree(root, output.files, output.owned, output.inputs)
    monkeypatch.undo()
    assert (root / "overlays/pr-00036/patches").is_dir()
    # (3.1 per folder; 6.8 when every walk started again at the root and missing folders were walked to.)
    assert len(opened) <= 4 * len(folders), (len(opened), len(folders))


def test_loading_many_specs_walks_to_their_folder_a_few_times_not_once_per_file(tmp_path: Path, monkeypatch):
    """Reads while a project is loaded and checked share one handle on the root (kompile.inputs.reading):
    each spec is still opened without following links, but environments/ is not walked to per file."""
    import os
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    from kompile.api import validate

    from fleet import generate_fleet

    root = generate_fleet(tmp_path / "repo", 40)
    opened: list[str] = []
    real_open = os.open

    def counting(path, flags, *args, **kwargs):
        if flags & os.O_DIRECTORY and path == "environments":
            opened.append(path)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", counting)
    validate(root)
    monkeypatch.undo()
    assert len(opened) <= 5, len(opened)  # (2; once per spec before: 42)
