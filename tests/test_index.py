"""The index (kompile/index.py): a command about one environment checks only the environments whose
files changed, and says exactly what checking every environment would say.

Each scenario edits a built repo the same way twice: one copy runs `build --env` through the index,
the other without one (every environment loaded and checked). Both must refuse with the same
diagnostics, or write the same tree.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import random
import shutil
import sys
import time
import types
from pathlib import Path

import pytest

import kompile.compiler
import kompile.index
import kompile.index_file
import kompile.load.project
import kompile.output.committed
import kompile.output.diff
import kompile.safefs
from kompile import api
from kompile.errors import KompileError
from kompile.index_file import INDEX_FILE, read_index
from kompile.load.project import load_project
from kompile.normalise import normalise_environment
from kompile.validate import validate_project

from conftest import GOLDEN, copy_example, golden_cases

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from fleet import generate_fleet  # noqa: E402

PREVIEW = """apiVersion: kompile.dev/v1alpha1
kind: Environment
metadata:
  name: pr-1
spec:
  extends: staging
  tier: preview
  namespace: shop-pr-1
  image: {tag: "1.5.0"}
  sealedSecrets:
    shop-django:
      encryptedData:
        DJANGO_SECRET_KEY: AgBy3i4OJSWK+PiTySYZZA9rO43cGDEq8Kx7HDNnUzFXBhhkfMtkLqZBPxaOaTT1
        DATABASE_URL: AgCo1YqSEwVT4o3JJoSB+Yxz5Gi5cRQD1SPWxaYTjmydGoVnT6zg+BFXKMeDoa0l
        CELERY_BROKER_URL: AgDFOzH3l2m6o+IC1PNmOSq1DIjvNA72SS4+1HpUt2v8VDIJuJwGoRkzpvB0Gs2r
"""


@pytest.fixture(autouse=True)
def trust_at_once(monkeypatch):
    """Files written by a test are a moment old: let the index trust their identities (each edit below
    gets a modification time of its own, so no edit can keep one)."""
    monkeypatch.setattr(kompile.index, "RACY_SECONDS", 0)


def write(root: Path, rel: str, text: str | None) -> None:
    """Write (or remove, for None) a file, giving it a modification time no earlier write had."""
    path = root / rel
    if text is None:
        path.unlink()
        return
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    if path.stat().st_mtime_ns == before:  # within one tick of the clock: move it on, never ahead of now
        os.utime(path, ns=(before + 1000, before + 1000))


def replace_in(rel: str, old: str, new: str):
    def apply(root: Path) -> None:
        text = (root / rel).read_text()
        assert old in text, f"{rel} lacks {old!r}"
        write(root, rel, text.replace(old, new, 1))

    return apply


def both(*edits):
    def apply(root: Path) -> None:
        for change in edits:
            change(root)

    return apply


def new_file(rel: str, text: str | None):
    return lambda root: write(root, rel, text)


def renamed(old: str, new: str):
    def apply(root: Path) -> None:
        text = (root / old).read_text()
        write(root, old, None)
        write(root, new, text)

    return apply


def renamed_copy(old: str, new: str):
    return lambda root: write(root, new, (root / old).read_text().replace("name: shop", "name: other", 1))


QA = PREVIEW.replace("name: pr-1", "name: qa").replace("tier: preview\n", "").replace("pr-1", "qa")

# name -> (edit, the environment built, whether the index can serve)
SCENARIOS = {
    "nothing changed": (lambda root: None, "dev", True),
    "a parent's image": (
        replace_in("environments/staging.yaml", 'tag: "1.4.3"', 'tag: "1.4.4"'),
        "dev",
        True,
    ),
    "the environment built": (
        replace_in("environments/dev.yaml", "replicas: 1}", "replicas: 2}"),
        "dev",
        True,
    ),
    "a namespace taken": (replace_in("environments/staging.yaml", "shop-staging", "shop-dev"), "prod", True),
    "a sealed file loses a key": (
        replace_in("secrets/dev/shop-django.yaml", "DATABASE_URL", "DATABASE_URI"),
        "prod",
        True,
    ),
    "a parent made invalid": (
        replace_in("environments/staging.yaml", "worker: {replicas: 2}", "worker: {replicas: -2}"),
        "dev",
        True,
    ),
    "a parent removed": (new_file("environments/staging.yaml", None), "dev", True),
    "a parent renamed .yml": (renamed("environments/staging.yaml", "environments/staging.yml"), "pr-1", True),
    "a new environment": (new_file("environments/qa.yaml", QA), "qa", True),
    "a new environment's namespace taken": (
        new_file("environments/qa.yaml", QA.replace("namespace: shop-qa", "namespace: shop-prod")),
        "dev",
        True,
    ),
    "a cluster spelled twice": (
        new_file(
            "environments/qa.yaml",
            QA + "  cluster: https://Staging.k8s.acme.internal:443/\n",
        ),
        "dev",
        True,
    ),
    "an environment named gitops": (
        new_file("environments/gitops.yaml", QA.replace("name: qa", "name: gitops")),
        "dev",
        True,
    ),
    "a name that is not the file's": (
        replace_in("environments/staging.yaml", "name: staging", "name: stage"),
        "dev",
        True,
    ),
    "a YAML error": (replace_in("environments/staging.yaml", "spec:", "spec: ["), "dev", True),
    "a second App": (renamed_copy("environments/app.yaml", "environments/other.yaml"), "dev", False),
    "a second App that is not valid": (
        new_file(
            "environments/other.yaml",
            "apiVersion: kompile.dev/v1alpha1\nkind: App\nmetadata: {name: other}\n",
        ),
        "dev",
        True,  # its own problems are said (as loading every file would), before anything is compiled
    ),
    "the App": (
        replace_in("environments/app.yaml", "spec:", "spec:\n  cluster: https://kubernetes.default.svc"),
        "dev",
        False,
    ),
    "an unknown environment asked for": (lambda root: None, "qa", True),
    # The first of two environments (in name order) to claim a namespace or spell a cluster is the one
    # the message names, whichever of them changed (found by an attack).
    "a namespace taken by one that sorts first": (
        both(
            replace_in("environments/dev.yaml", "namespace: shop-dev", "namespace: shop-staging"),
            replace_in("environments/dev.yaml", "kubernetes.default.svc", "staging.k8s.acme.internal"),
        ),
        "dev",
        True,
    ),
    "a cluster respelled by two, a third unchanged": (
        both(
            replace_in(
                "environments/dev.yaml",
                "https://kubernetes.default.svc",
                "https://Staging.k8s.acme.internal:443/",
            ),
            replace_in(
                "environments/staging.yaml",
                "https://staging.k8s.acme.internal",
                "https://Staging.k8s.acme.internal:443/",
            ),
        ),
        "dev",
        True,
    ),
    "an unknown environment asked for, a clash elsewhere": (
        both(
            replace_in("environments/staging.yaml", "namespace: shop-staging", "namespace: shop-prod"),
            replace_in("environments/staging.yaml", "staging.k8s.acme.internal", "prod.k8s.acme.internal"),
        ),
        "nosuch",
        True,
    ),
    "every environment's spec gone": (
        both(*(new_file(f"environments/{name}.yaml", None) for name in ("dev", "staging", "prod", "pr-1"))),
        "dev",
        False,
    ),
}

SCENARIOS["a namespace taken from one whose lines moved since the full build"] = (
    both(
        replace_in("environments/dev.yaml", "namespace: shop-dev", "namespace: shop-staging"),
        replace_in("environments/dev.yaml", "kubernetes.default.svc", "staging.k8s.acme.internal"),
    ),
    "dev",
    True,
)

# Built through the index after the first build, before the scenario's change: (edit, environment).
# Moving staging's lines changes where its namespace is written, not where it deploys: the rules across
# environments need not run again, but the index must hold the new positions for a later message.
PRIOR = {
    "a namespace taken from one whose lines moved since the full build": (
        replace_in("environments/staging.yaml", "spec:", "# two lines down\n\nspec:"),
        "staging",
    ),
}

# Applied before the first build: (what the repo starts as, for the scenarios that need it).
SETUPS = {
    "a cluster respelled by two, a third unchanged": replace_in(
        "environments/prod.yaml", "prod.k8s.acme.internal", "staging.k8s.acme.internal"
    ),
}


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".kompile-cache" not in p.parts
    }


def outcome(root: Path, env: str):
    try:
        api.build(root, [env])
    except KompileError as exc:
        return "refused", sorted((d.code.name, str(d.span), d.message, d.hint) for d in exc.diagnostics)
    return "built", snapshot(root)


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_an_environment_built_through_the_index_is_what_checking_everything_gives(
    scenario, tmp_path, monkeypatch
):
    change, env, served = SCENARIOS[scenario]
    indexed = copy_example(tmp_path / "indexed")
    write(indexed, "environments/pr-1.yaml", PREVIEW)
    SETUPS.get(scenario, lambda root: None)(indexed)
    api.build(indexed)
    assert read_index(indexed) is not None
    if scenario in PRIOR:
        edit, built = PRIOR[scenario]
        edit(indexed)
        api.build(indexed, [built])
    whole = tmp_path / "whole"
    shutil.copytree(indexed, whole)
    shutil.rmtree(whole / ".kompile-cache")
    change(indexed)
    change(whole)

    loads = []
    real = kompile.compiler.load_project
    monkeypatch.setattr(kompile.compiler, "load_project", lambda root: loads.append(root) or real(root))
    through_index = outcome(indexed, env)
    assert bool(loads) != served, "the index served" if loads == [] else "every environment was loaded"
    loads.clear()
    assert outcome(whole, env) == through_index
    assert loads  # (the other copy had no index: everything was loaded and checked)


def test_a_command_about_one_environment_reads_the_files_it_needs(tmp_path, monkeypatch):
    """A preview changed in a fleet of 60: building it reads the App, the preview and what it extends."""
    root = generate_fleet(tmp_path / "fleet", 60)
    api.build(root)
    target = sorted(p.stem for p in (root / "environments").glob("pr-*.yaml"))[7]
    replace_in(f"environments/{target}.yaml", 'tag: "1.', 'tag: "2.')(root)
    parsed = []
    real = kompile.load.project.parse_document
    monkeypatch.setattr(
        kompile.load.project, "parse_document", lambda text, rel: parsed.append(rel) or real(text, rel)
    )
    built = api.build(root, [target])
    assert built.plan.changed and all(target in path for path in built.plan.changed)
    assert sorted(parsed) == sorted(
        {"environments/app.yaml", f"environments/{target}.yaml", "environments/staging.yaml"}
    ), parsed
    # The index now knows the preview's new file: the next command reads only what it builds.
    parsed.clear()
    api.build(root, ["dev"])
    assert sorted(parsed) == ["environments/app.yaml", "environments/dev.yaml"], parsed


def test_an_index_that_cannot_be_trusted_is_ignored(example, monkeypatch):
    api.build(example)
    index = example / INDEX_FILE
    loads = []
    real = kompile.compiler.load_project
    monkeypatch.setattr(kompile.compiler, "load_project", lambda root: loads.append(root) or real(root))
    data = index.read_bytes()
    for damaged in (
        data[:-3],
        data.replace(b"dev", b"deb", 1),
        b"",
        b"\xff" * 10,
        data.replace(b"1", b"2", 1),
    ):
        index.write_bytes(damaged)
        loads.clear()
        api.build(example, ["dev"])  # no error: a damaged cache is only slower
        assert loads, damaged[:40]


def test_files_changed_just_before_a_build_are_read_again(example, monkeypatch):
    """A file modified within RACY_SECONDS of a run could be rewritten in the same clock tick without
    changing its identity: the index records no identity for it, so the next command reads it."""
    monkeypatch.setattr(kompile.index, "RACY_SECONDS", 3600)
    api.build(example)
    index = read_index(example)
    assert index is not None and all(identity == "" for identity, _ in index.files.values())


@pytest.mark.parametrize("case", golden_cases())
def test_an_environment_compiles_from_the_files_its_check_read(case):
    """What the index records as an environment's inputs is complete: compiling it reads no file its
    check did not (else a change to that file would go unnoticed by `build --env`)."""
    project = load_project(GOLDEN / case / "input")
    for item in validate_project(project):
        project.reading = set()
        normalise_environment(project, item)
        assert project.reading <= {*item.sources, *item.reads}, (item.name, project.reading)
        project.reading = None


# ---------------------------------------------------------------------------------------------
# diff through the record of the last full build (kompile/output/committed.py)


def overlay_edit(rel: str, old: str, new: str):
    return replace_in(rel, old, new)


def removed(rel: str):
    def apply(root: Path) -> None:
        path = root / rel
        shutil.rmtree(path) if path.is_dir() else path.unlink()

    return apply


def linked(rel: str, target: str):
    return lambda root: (root / rel).symlink_to(target)


# name -> (edit, environments asked for, whether the record can serve)
DIFFS = {
    "nothing changed": (lambda root: None, None, True),
    "a spec": (replace_in("environments/staging.yaml", 'tag: "1.4.3"', 'tag: "1.4.4"'), None, True),
    "a parent, asked about its child": (
        replace_in("environments/staging.yaml", 'tag: "1.4.3"', 'tag: "1.4.4"'),
        ["pr-1"],
        True,
    ),
    "a sealed file": (replace_in("secrets/dev/shop-django.yaml", "AgB", "AgC"), None, True),
    "an overlay file by hand, same size": (
        overlay_edit("overlays/prod/kustomization.yaml", "namespace: shop-prod", "namespace: shop-prot"),
        None,
        True,
    ),
    "an overlay file gone": (removed("overlays/dev/kustomization.yaml"), None, True),
    "an overlay folder gone": (removed("overlays/staging"), None, True),
    "a stray file in an overlay": (new_file("overlays/dev/notes.yaml", "kind: Note\n"), None, True),
    "an environment's spec gone": (removed("environments/pr-1.yaml"), None, True),
    "an environment's spec gone, asked about": (removed("environments/pr-1.yaml"), ["pr-1"], True),
    "a new environment": (new_file("environments/qa.yaml", QA), None, True),
    "an unknown environment asked about": (lambda root: None, ["qa"], True),
    "an invalid spec elsewhere": (
        replace_in("environments/staging.yaml", "worker: {replicas: 2}", "worker: {replicas: -2}"),
        ["prod"],
        True,
    ),
    "a base file by hand": (
        overlay_edit("bases/shop/kustomization.yaml", "resources:", "resources: "),
        None,
        False,
    ),
    "a link in an overlay": (linked("overlays/dev/extra.yaml", "/etc/hostname"), None, False),
    # diff said "internal error" for these two (found by an attack): now K703, as for any unreadable output.
    "an overlay folder replaced by a file": (
        both(removed("overlays/dev"), new_file("overlays/dev", "x")),
        None,
        True,
    ),
    "an overlay folder replaced by a link": (
        both(removed("overlays/dev"), linked("overlays/dev", "../bases")),
        None,
        False,
    ),
    # An overlay folder without YAML is no environment to diff (found by an attack).
    "an overlay folder without YAML": (new_file("overlays/ghost/.gitkeep", ""), None, True),
    "an overlay folder without YAML, asked about": (new_file("overlays/ghost/.gitkeep", ""), ["ghost"], True),
    "every environment's spec gone": (
        both(*(removed(f"environments/{name}.yaml") for name in ("dev", "staging", "prod", "pr-1"))),
        None,
        False,
    ),
    "an unknown environment asked about, an invalid spec": (
        replace_in("environments/staging.yaml", "worker: {replicas: 2}", "worker: {replicas: -2}"),
        ["nosuch"],
        True,
    ),
}


def diff_outcome(root: Path, envs):
    try:
        return "compared", api.diff(root, envs=envs)
    except KompileError as exc:
        return "refused", sorted((d.code.name, str(d.span), d.message, d.hint) for d in exc.diagnostics)


@pytest.mark.parametrize("workers", [0, 2], ids=["one process", "forked workers"])
@pytest.mark.parametrize("scenario", sorted(DIFFS))
def test_a_diff_through_the_record_is_the_full_diff(scenario, workers, tmp_path, monkeypatch):
    """(The overlay folders are scanned in forked workers from 200 environments up: here at 4.)"""
    monkeypatch.setattr(kompile.output.committed, "cores", lambda count: workers)
    change, envs, served = DIFFS[scenario]
    recorded = copy_example(tmp_path / "recorded")
    write(recorded, "environments/pr-1.yaml", PREVIEW)
    api.build(recorded)
    whole = tmp_path / "whole"
    shutil.copytree(recorded, whole, symlinks=True)
    shutil.rmtree(whole / ".kompile-cache")
    change(recorded)
    change(whole)

    full = []
    real = kompile.compiler.compile_project  # (a full diff compiles every environment)
    monkeypatch.setattr(
        kompile.compiler,
        "compile_project",
        lambda root, only=None, **kw: (None if only else full.append(1)) or real(root, only, **kw),
    )
    through_record = diff_outcome(recorded, envs)
    assert bool(full) != served, "the record served" if not full else "every environment was compiled"
    full.clear()
    assert diff_outcome(whole, envs) == through_record
    assert full


def test_racily_clean_outputs_are_compared_by_their_bytes(example, monkeypatch):
    """A file recorded within RACY_SECONDS of being written may change without its identity showing it
    (a rewrite in the same clock tick): the record keeps its digest, and diff reads the bytes."""
    monkeypatch.setattr(kompile.output.committed, "RACY_SECONDS", 3600)
    api.build(example)
    record = kompile.output.committed._read_record(example)
    entries = [
        (f"{folder}/{name}", entry)
        for folder, files in record["folders"].items()
        for name, entry in files.items()
    ]
    assert entries and all(isinstance(entry, list) for _, entry in entries)  # every one with its digest
    path, (ident, hashed) = entries[0]
    identity = kompile.safefs.file_identity((example / path).lstat())
    with kompile.safefs.Root(example) as disk:
        assert kompile.output.committed._unchanged(disk, path, identity, [ident, hashed])
        assert not kompile.output.committed._unchanged(
            disk, path, identity, [ident, "0" * 64]
        )  # same identity, other bytes
    assert api.diff(example)[1] == []
    edit = example / "overlays/prod/kustomization.yaml"
    edit.write_text(edit.read_text().replace("namespace: shop-prod", "namespace: shop-prot"))
    assert {c.environment for c in api.diff(example)[1]} == {"prod"}


def _recorded_identities(root: Path) -> dict[str, str]:
    record = kompile.output.committed._read_record(root)
    return {
        f"{folder}/{name}": entry[0] if isinstance(entry, list) else entry
        for folder, files in record["folders"].items()
        for name, entry in files.items()
    }


def test_the_identities_recorded_are_those_the_files_have(example, monkeypatch):
    """A build knows most identities without looking again: a file written into a folder new to disk
    (renaming the folder changes none of its files) and a file found unchanged (as read). Each recorded
    identity is the one a stat of the file gives afterwards, after a first build, a build that changes
    nothing, and one that rewrites files one by one in folders that exist (renaming a file changes its
    ctime: those are looked at again)."""
    stats = []  # (the files record_outputs looks at itself)
    counting = types.SimpleNamespace(**vars(os))
    counting.stat = lambda *a, **k: stats.append(a) or os.stat(*a, **k)
    monkeypatch.setattr(kompile.output.committed, "os", counting)

    def check(expected_stats: bool) -> None:
        recorded = _recorded_identities(example)
        assert recorded and set(recorded) == {
            p.relative_to(example).as_posix()
            for folder in ("bases", "overlays")
            for p in (example / folder).rglob("*")
            if p.is_file()
        }
        for path, identity in recorded.items():
            assert identity == kompile.safefs.file_identity((example / path).lstat()), path
        assert bool(stats) == expected_stats
        stats.clear()

    for folder in ("bases", "overlays", "gitops", ".kompile-manifest"):
        shutil.rmtree(example / folder, ignore_errors=True)
    (example / "MANIFEST").unlink(missing_ok=True)
    api.build(example)
    check(expected_stats=False)  # every folder new: every identity known as written
    api.build(example)
    check(expected_stats=False)  # every file unchanged: every identity known as read
    spec = example / "environments" / "app.yaml"
    spec.write_text(spec.read_text().replace("cpu: 250m", "cpu: 251m", 1))
    api.build(example)
    check(expected_stats=True)  # files rewritten in place: their identities looked at again


def test_an_identity_taken_when_read_is_racy_from_when_reading_started(example, monkeypatch):
    """A file found unchanged keeps the identity it had when the build read it, which may be long before
    the record is written: a write in the same clock tick after the read would keep that identity. So a
    file modified within RACY_SECONDS before the build started reading keeps its digest in the record,
    however long the build took."""
    api.build(example)
    touched = example / "overlays/prod/kustomization.yaml"
    touched.write_bytes(touched.read_bytes())  # (same bytes, modified now: found unchanged)
    later = types.SimpleNamespace(time_ns=lambda: time.time_ns() + 3600 * 10**9)
    monkeypatch.setattr(kompile.output.committed, "time", later)  # the record written an hour later
    api.build(example)
    entry = kompile.output.committed._read_record(example)["folders"]["overlays/prod"]["kustomization.yaml"]
    assert isinstance(entry, list) and entry[0] == kompile.safefs.file_identity(touched.lstat())


JUNK = [None, 5, -1, "x", "\x00", [], {}, [1, 2], ["a", 1, 2, 3, 4], True, 1.5, "../../etc/passwd", "/etc"]


def _mutated(value, rng):
    """value with one entry somewhere replaced (or, in a map, added) by something of another shape."""
    if isinstance(value, dict) and value:
        if rng.random() < 0.3:
            value[str(rng.choice(JUNK))] = copy.deepcopy(rng.choice(JUNK))
        else:
            key = rng.choice(list(value))
            value[key] = _mutated(value[key], rng)
        return value
    if isinstance(value, list) and value:
        index = rng.randrange(len(value))
        value[index] = _mutated(value[index], rng)
        return value
    return copy.deepcopy(rng.choice(JUNK))


def test_a_cache_edited_behind_a_valid_header_is_never_an_internal_error(example):
    """Someone who can write .kompile-cache/ can seal anything into it: every shape it holds is checked
    before use, so the commands answer or refuse as usual (found by fuzzing the caches' JSON)."""
    api.build(example)
    original = {name: kompile.index_file.read_sealed(example, name)[1] for name in ("index", "outputs")}
    rng = random.Random(7)
    for _ in range(60):
        name = rng.choice(sorted(original))
        if name == "index":  # text: a line, or a field of one, replaced by another's or by junk
            lines = original[name].decode().split("\n")
            for _ in range(rng.randint(1, 3)):
                at = rng.randrange(len(lines))
                fields = lines[at].split("\t")
                fields[rng.randrange(len(fields))] = rng.choice(
                    [json.dumps(rng.choice(JUNK)), str(rng.choice(JUNK)), rng.choice(lines).split("\t")[-1]]
                )
                lines[at] = "\t".join(fields) if rng.random() < 0.8 else rng.choice(lines)
            data = "\n".join(lines).encode()
        else:
            body = json.loads(original[name])
            for _ in range(rng.randint(1, 3)):
                body = _mutated(body, rng)
            data = json.dumps(body).encode()
        kompile.index_file.write_sealed(example, name, data)
        for command in (
            lambda: api.build(example, ["dev"]),
            lambda: api.diff(example),
            lambda: api.render(example, "prod"),
        ):
            with contextlib.suppress(KompileError):  # (a refusal, with its diagnostics, is an answer)
                command()
        for sealed, data in original.items():
            kompile.index_file.write_sealed(example, sealed, data)
        api.build(example)


@pytest.mark.parametrize("module", ["yaml", "jsonpatch", "tzdata"])
def test_another_version_of_a_library_the_rules_use_is_another_index_format(monkeypatch, module: str):
    """libyaml's parsing, jsonpatch's patching and tzdata's time zones decide what a check finds: an index
    written with other versions of them is not read."""
    import importlib

    from kompile.index_file import index_format

    before = index_format()
    monkeypatch.setattr(importlib.import_module(module), "__version__", "0.0.0-other")
    index_format.cache_clear()
    try:
        assert index_format() != before
    finally:
        monkeypatch.undo()
        index_format.cache_clear()
    assert index_format() == before


def test_a_file_changed_while_build_env_looks_ahead_is_read_again_next_time(tmp_path, monkeypatch):
    """`build --env` stats every input in a forked process while it imports the compiler. A file saved
    after that stat (here staging's, placed where dev is) is read by this build (the preview extends it)
    but not checked on its own; the time the index judges identities by is from before the stat, so its
    identity is not trusted and the next command checks staging, as checking everything does."""
    monkeypatch.setattr(kompile.index, "RACY_SECONDS", 2)  # (the real window: this test is about it)
    root = generate_fleet(tmp_path / "fleet", 20)
    api.build(root)
    time.sleep(2.1)
    api.build(root, ["pr-00000"])  # (every identity now trusted)
    real_build, real_time = api._build, kompile.compiler.time

    def edited_while_importing(root, envs, force, remove, progress, seen=None, started=None):
        seen.args[1]()  # (the forked process has looked)
        both(
            replace_in("environments/staging.yaml", "namespace: shop-staging", "namespace: shop-dev"),
            replace_in(
                "environments/staging.yaml", "cluster: https://staging.k8s", "cluster: https://dev.k8s"
            ),
            replace_in(
                "environments/dev.yaml",
                "cluster: https://kubernetes.default.svc",
                "cluster: https://dev.k8s.acme.internal",
            ),
        )(root)
        # The compiler's import taking more than RACY_SECONDS (a loaded machine, Ctrl-Z): a clock read
        # after it would call the edit old enough to trust.
        later = types.SimpleNamespace(time_ns=lambda: real_time.time_ns() + 5 * 10**9)
        monkeypatch.setattr(kompile.compiler, "time", later)
        try:
            return real_build(root, envs, force, remove, progress, seen, started)
        finally:
            monkeypatch.setattr(kompile.compiler, "time", real_time)

    monkeypatch.setattr(api, "_build", edited_while_importing)
    api.build(root, ["pr-00000"])
    monkeypatch.setattr(api, "_build", real_build)
    with pytest.raises(KompileError) as everything:
        validate_project(load_project(root))
    with pytest.raises(KompileError) as next_time:
        api.build(root, ["pr-00000"])
    assert {d.code for d in next_time.value.diagnostics} == {d.code for d in everything.value.diagnostics}
