"""The manifest in two parts (kompile/output/manifest.py): MANIFEST for the inputs and the files outside
the environments' folders, .kompile-manifest/<env>.json for each environment's. A build of one
environment reads and writes its own record; format 1 (one file) is read and rewritten; a forged or
stray record is refused, never believed; a killed build leaves records that still own every file."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from test_write import build

import kompile.output.manifest
from kompile.compiler import compile_project
from kompile.output.manifest import MANIFEST, RECORDS, read_manifest
from kompile.output.write import plan_write, record_intent
from kompile.safefs import Root

from conftest import edit, run_kompile


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): (p.read_bytes() if p.is_file() and not p.is_symlink() else b"<other>")
        for p in sorted(root.rglob("*"))
        if ".kompile-cache" not in p.parts
    }


def as_format_1(root: Path) -> None:
    """The repo's manifest as kompile 0.4 wrote it: every file in MANIFEST, no records."""
    body = json.loads((root / MANIFEST).read_text())
    files = dict(body["files"])
    for record in sorted((root / RECORDS).iterdir()):
        files.update(json.loads(record.read_text())["files"])
        record.unlink()
    (root / RECORDS).rmdir()
    body["format"], body["files"] = 1, dict(sorted(files.items()))
    (root / MANIFEST).write_text(json.dumps(body, indent=1) + "\n")


def test_each_environment_has_a_record_of_its_folders_files(example):
    build(example)
    top = json.loads((example / MANIFEST).read_text())
    assert top["format"] == 2
    assert all(not p.startswith(("overlays/", "rendered/")) for p in top["files"])
    names = sorted(p.stem for p in (example / RECORDS).iterdir())
    assert names == ["dev", "prod", "staging"]
    for name in names:
        listed = json.loads((example / RECORDS / f"{name}.json").read_text())["files"]
        on_disk = sorted(
            p.relative_to(example).as_posix() for p in (example / "overlays" / name).rglob("*") if p.is_file()
        )
        assert sorted(listed) == on_disk
        assert all(
            hashlib.sha256((example / path).read_bytes()).hexdigest() == digest
            for path, digest in listed.items()
        )


def test_a_build_of_one_environment_reads_and_writes_only_its_record(example, monkeypatch):
    build(example)
    read: list[str] = []
    real = kompile.output.manifest._Records.read
    monkeypatch.setattr(
        kompile.output.manifest._Records, "read", lambda self, names: read.extend(names) or real(self, names)
    )
    before = snapshot(example)
    edit(example, "environments/dev.yaml", "replicas: 1}", "replicas: 2}")
    build(example, only=["dev"])
    assert read == ["dev"]
    after = snapshot(example)
    changed = sorted(p for p in after if after[p] != before.get(p))
    assert f"{RECORDS}/dev.json" in changed
    assert not [p for p in changed if p.startswith(f"{RECORDS}/") and p != f"{RECORDS}/dev.json"]
    assert run_kompile("check", "--root", str(example)).returncode == 0


def test_a_format_1_manifest_is_read_and_rewritten_as_format_2(example):
    assert run_kompile("build", "--root", str(example)).returncode == 0
    expected = snapshot(example)
    as_format_1(example)
    check = run_kompile("check", "--root", str(example))
    assert check.returncode == 1
    assert f"added    {RECORDS}/dev.json" in check.stdout and f"changed  {MANIFEST}" in check.stdout, (
        check.stdout
    )
    # Format 1 still says what kompile owns: a hand edit is found, a foreign file refused.
    edit(example, "overlays/dev/kustomization.yaml", "namespace:", "namespace: x\n# namespace:")
    result = run_kompile("build", "--root", str(example))
    assert result.returncode == 2 and "K702" in result.stderr or "edited by hand" in result.stderr, (
        result.stderr
    )
    (example / "overlays/dev/kustomization.yaml").write_bytes(expected["overlays/dev/kustomization.yaml"])
    result = run_kompile("build", "--root", str(example))
    assert result.returncode == 0, result.stderr
    assert "format 1" in result.stderr and "warning[K703]" in result.stderr
    assert snapshot(example) == expected
    assert run_kompile("check", "--root", str(example)).returncode == 0


def test_a_migration_killed_before_manifest_is_rewritten_keeps_format_1_whole(example):
    """Records written, MANIFEST still format 1 (the kill came between): format 1 is what is read, and
    the next build writes every record again."""
    build(example)
    expected = snapshot(example)
    as_format_1(example)
    (example / RECORDS).mkdir()
    (example / RECORDS / "dev.json").write_text(json.dumps({"files": {"overlays/dev/gone.yaml": "0" * 64}}))
    edit(example, "environments/dev.yaml", "replicas: 1}", "replicas: 2}")
    build(example)
    edit(example, "environments/dev.yaml", "replicas: 2}", "replicas: 1}")
    build(example)
    assert snapshot(example) == expected


def killed_after_intent(root: Path, only=None):
    """A build's plan, carried out as far as recording its intent (a kill right after): nothing renamed."""
    output = compile_project(root, only)
    plan = plan_write(
        root, output.files, output.owned, output.inputs, False, output.warnings, output.tiers, output.partial
    )
    with Root(root) as disk:
        record_intent(disk, plan)
    return plan


@pytest.mark.parametrize("only", [None, ["dev"]], ids=["every-environment", "one-environment"])
def test_a_build_killed_after_its_intent_is_completed_by_the_next(example, only):
    build(example)
    edit(example, "environments/dev.yaml", "replicas: 1}", "replicas: 3}")
    plan = killed_after_intent(example, only)
    first = next(p for p in plan.writes if p.startswith("overlays/dev/"))
    (example / first).write_bytes(plan.writes[first])  # as if killed right after the first rename
    pending = json.loads((example / RECORDS / "dev.json").read_text())["files"][first]
    assert isinstance(pending, list) and len(pending) == 2  # the old bytes and the new
    edit(example, "environments/dev.yaml", "replicas: 3}", "replicas: 4}")
    build(example, only=only)
    assert run_kompile("check", "--root", str(example)).returncode == 0


def test_removing_an_environment_removes_its_record(example):
    build(example)
    (example / "environments/staging.yaml").unlink()
    build(example)
    assert not (example / RECORDS / "staging.json").exists()
    assert run_kompile("check", "--root", str(example)).returncode == 0


def _forge_record(name: str, files: dict):
    def forge(root: Path) -> None:
        (root / RECORDS / f"{name}.json").write_text(json.dumps({"files": files}, indent=1))

    return forge


def _forge_top(path: str):
    def forge(root: Path) -> None:
        body = json.loads((root / MANIFEST).read_text())
        body["files"][path] = hashlib.sha256(b"").hexdigest()
        (root / MANIFEST).write_text(json.dumps(body, indent=1))

    return forge


def _write(rel: str, data: str):
    return lambda root: (root / rel).write_text(data)


def _link(rel: str, target: str):
    def forge(root: Path) -> None:
        path = root / rel
        if path.is_dir():
            for child in path.iterdir():
                child.unlink()
            path.rmdir()
        else:
            path.unlink(missing_ok=True)
        path.symlink_to(root.parent / target)

    return forge


def _remove(rel: str):
    return lambda root: (root / rel).unlink()


FORGERIES = {
    "a record listing another environment's file": _forge_record(
        "dev", {"overlays/prod/kustomization.yaml": "0" * 64}
    ),
    "a record listing a file outside the repo": _forge_record(
        "dev", {"overlays/dev/../../../victim": "0" * 64}
    ),
    "a record listing a base": _forge_record("dev", {"bases/shop/kustomization.yaml": "0" * 64}),
    "a record of an environment folder's neighbour": _forge_record(
        "dev", {"overlays/dev-2/x.yaml": "0" * 64}
    ),
    "a record that is not JSON": _write(f"{RECORDS}/dev.json", "{"),
    "a record with more than files": _write(f"{RECORDS}/dev.json", '{"files": {}, "format": 9}'),
    "a record whose hash is not one": _forge_record("dev", {"overlays/dev/x.yaml": "not-a-hash"}),
    "MANIFEST listing an environment's file": _forge_top("overlays/dev/kustomization.yaml"),
    "a stray file among the records": _write(f"{RECORDS}/notes.txt", "hello\n"),
    "a record under a name no environment has": _write(f"{RECORDS}/Dev.json", '{"files": {}}'),
    "the records' folder a link outside": _link(RECORDS, "elsewhere"),
    "records without MANIFEST": _remove(MANIFEST),
    "a record named with a line break": _write(f"{RECORDS}/zz.json\n", '{"files": {}}'),
    "a record a link outside": _link(f"{RECORDS}/dev.json", "elsewhere/dev.json"),
}


@pytest.mark.parametrize("forgery", sorted(FORGERIES))
def test_a_forged_or_stray_record_is_refused_and_nothing_changes(tmp_path, forgery):
    root = tmp_path / "repo"
    from conftest import copy_example

    copy_example(root)
    assert run_kompile("build", "--root", str(root)).returncode == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "dev.json").write_text((root / RECORDS / "dev.json").read_text())
    victim = tmp_path / "victim"
    victim.write_text("keep me\n")
    FORGERIES[forgery](root)
    edit(root, "environments/dev.yaml", "replicas: 1}", "replicas: 2}")  # something to write
    before, outside = snapshot(root), snapshot(elsewhere)
    for command in (["build"], ["build", "--env", "dev"], ["check"]):
        result = run_kompile(*command, "--root", str(root))
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        assert "error[K703]" in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert snapshot(root) == before and snapshot(elsewhere) == outside
    assert victim.read_text() == "keep me\n"


def test_a_fast_check_notices_a_record_added_beside_those_it_verified(example):
    assert run_kompile("build", "--root", str(example)).returncode == 0
    assert run_kompile("check", "--fast", "--root", str(example)).returncode == 0  # records what it verified
    (example / RECORDS / "qa.json").write_text(
        json.dumps({"files": {"overlays/qa/kustomization.yaml": "0" * 64}}, indent=1) + "\n"
    )
    result = run_kompile("check", "--fast", "--root", str(example))
    assert result.returncode == 1 and f"{RECORDS}/qa.json" in result.stdout, result.stdout + result.stderr


def test_a_partial_build_manifest_equals_a_full_builds_when_nothing_else_changed(example):
    """The records of a build of one environment are the ones a full build writes (same bytes)."""
    build(example)
    edit(example, "environments/prod.yaml", "maxReplicas: 12", "maxReplicas: 14")
    build(example, only=["prod"])
    partial = {p: d for p, d in snapshot(example).items() if p.startswith(f"{RECORDS}/")}
    build(example)
    assert {p: d for p, d in snapshot(example).items() if p.startswith(f"{RECORDS}/")} == partial
    assert read_manifest(example).files == {
        p: (hashlib.sha256(d).hexdigest(),)
        for p, d in snapshot(example).items()
        if p.startswith(("bases/", "overlays/", "gitops/")) and (example / p).is_file()
    }


def test_a_migration_that_removes_an_environment_leaves_no_record_of_it(example):
    """The records written first (owning the removed environment's files until they are gone) go with
    them: found by an attack on format 1 plus a removal."""
    build(example)
    as_format_1(example)
    (example / "environments/staging.yaml").unlink()
    build(example)
    assert sorted(p.name for p in (example / RECORDS).iterdir()) == ["dev.json", "prod.json"]
    assert run_kompile("check", "--root", str(example)).returncode == 0


def test_a_fast_check_vouches_for_neither_format_1_nor_a_missing_record(example):
    assert run_kompile("build", "--root", str(example)).returncode == 0
    (example / RECORDS / "dev.json").unlink()  # (a record never committed)
    result = run_kompile("check", "--fast", "--root", str(example))
    assert result.returncode == 1 and f"added    {RECORDS}/dev.json" in result.stdout, result.stdout
    assert run_kompile("build", "--root", str(example)).returncode == 0
    as_format_1(example)
    result = run_kompile("check", "--fast", "--root", str(example))
    assert result.returncode == 1 and f"changed  {MANIFEST}" in result.stdout, result.stdout


def test_a_killed_builds_temporary_record_is_reported_and_removed(example):
    assert run_kompile("build", "--root", str(example)).returncode == 0
    stray = example / RECORDS / ".kompile-0123456789abcdef.tmp"
    stray.write_text("{")
    result = run_kompile("check", "--root", str(example))
    assert result.returncode == 1 and f"{RECORDS}/{stray.name}" in result.stdout, result.stdout
    assert run_kompile("build", "--root", str(example)).returncode == 0
    assert not stray.exists()
    assert run_kompile("check", "--root", str(example)).returncode == 0


def test_a_build_killed_while_removing_an_environment_is_finished_without_asking_again(example):
    """The intent keeps the removed environment's tier beside its record: the next build knows it is not
    production (found by an attack: it asked for --remove, the tier unknown)."""
    build(example)
    (example / "environments/staging.yaml").unlink()
    plan = killed_after_intent(example)
    (example / plan.deletes[0]).unlink()  # as if killed after the first removal
    result = run_kompile("build", "--root", str(example))
    assert result.returncode == 0, result.stderr
    assert not (example / "overlays/staging").exists() and not (example / RECORDS / "staging.json").exists()
    assert run_kompile("check", "--root", str(example)).returncode == 0


def test_a_record_that_is_not_a_file_is_named_and_nothing_changes(example):
    assert run_kompile("build", "--root", str(example)).returncode == 0
    edit(example, "environments/dev.yaml", "replicas: 1}", "replicas: 2}")
    record = example / RECORDS / "dev.json"
    record.unlink()
    record.mkdir()
    before = snapshot(example)
    for command in (["build", "--env", "dev"], ["build"]):
        result = run_kompile(*command, "--root", str(example))
        assert result.returncode == 2 and f"{RECORDS}/dev.json" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
    assert snapshot(example) == before
