"""kompile diff compares each environment where it compiles: every environment is compiled once (on the
workers of a large repo, which send back changes, not objects), and the result is the diff a plain
comparison of every environment's objects gives."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from deepdiff import DeepDiff
from hypothesis import given, settings
from hypothesis import strategies as st

import kompile.compiler
import kompile.output.diff
from kompile import api
from kompile.errors import KompileError
from kompile.output.diff import ChangeKind, _object_changes, diff_environment
from kompile.output.overlay import read_overlay

from conftest import copy_example, edit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from fleet import PREVIEW  # noqa: E402


def _git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@e", *args], cwd=root, check=True, capture_output=True
    )


def _preview(index: int, name: str) -> str:
    return PREVIEW.format(name=name, index=index, replicas=1 + index % 3)


def _fleet(root: Path, count: int) -> Path:
    """The example and count previews (pr-0, pr-1, ...), built and committed."""
    copy_example(root)
    for index in range(count):
        (root / "environments" / f"pr-{index}.yaml").write_text(
            _preview(index, f"pr-{index}"), encoding="utf-8"
        )
    api.build(root)
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "built")
    shutil.rmtree(root / ".kompile-cache", ignore_errors=True)  # no record: the full diff
    return root


def _reference(root: Path, base: str | None, only: list[str] | None) -> list:
    """Every environment's objects compared, before and now, with nothing skipped and nothing reused."""
    after = {name: c.objects for name, c in kompile.compiler.compile_project(root).environments.items()}
    if base is None:
        names = sorted({p.name for p in (root / "overlays").iterdir() if p.is_dir()} | after.keys())
        before = {name: read_overlay(root, name) for name in names}
    else:
        scratch = root.parent / f"{root.name}-at-{base.replace('~', '-')}"
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir()
        archive = subprocess.run(["git", "archive", base], cwd=root, check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(scratch)], input=archive, check=True)
        before = {n: c.objects for n, c in kompile.compiler.compile_project(scratch).environments.items()}
        names = sorted(before.keys() | after.keys())
    changes = []
    for name in names:
        if only and name not in only:
            continue
        old, new = before.get(name), after.get(name)
        if old == new:
            continue
        if new is None:
            changes.append((name, "(the whole environment)", "removed", "", None, None))
        elif old is None:
            changes.append((name, "(the whole environment)", "added", "", None, None))
        changes += [tuple(c.as_dict().values()) for c in diff_environment(name, old, new)]
    return changes


def _edits(root: Path) -> None:
    edit(
        root,
        "environments/staging.yaml",
        "DJANGO_ALLOWED_HOSTS: shop.staging.example.com",
        "DJANGO_ALLOWED_HOSTS: shop.staging.example.com\n    FEATURE_X: 'on'",
    )
    edit(root, "environments/pr-3.yaml", "className: nginx", "className: traefik")
    (root / "environments" / "pr-5.yaml").unlink()
    (root / "environments" / "pr-new.yaml").write_text(_preview(99, "pr-new"), encoding="utf-8")


@pytest.mark.parametrize("workers", [0, 2], ids=["one process", "forked workers"])
@pytest.mark.parametrize("base", [None, "HEAD"], ids=["against the committed output", "against a revision"])
@pytest.mark.parametrize("only", [None, ["pr-3", "pr-5", "pr-new", "dev"]], ids=["all", "some"])
def test_a_diff_is_every_environment_compared_and_compiles_each_once(
    tmp_path, monkeypatch, workers, base, only
):
    root = _fleet(tmp_path / "repo", 8)
    _edits(root)
    expected = _reference(root, base, only)
    edited = {"staging", "pr-3", "pr-5", "pr-new"}
    assert {c[0] for c in expected} >= (edited & set(only) if only else edited)
    monkeypatch.setattr(kompile.compiler, "cores", lambda count: workers)
    calls = []
    real = kompile.compiler.compile_project
    monkeypatch.setattr(kompile.compiler, "compile_project", lambda *a, **k: calls.append(k) or real(*a, **k))
    names, changes = api.diff(root, base=base, envs=only)
    assert [tuple(c.as_dict().values()) for c in changes] == expected
    # The specs now, compiled once, keeping no objects (and the revision's once, to digests).
    assert len(calls) == (1 if base is None else 2)
    assert all(call.get("keep_objects") is False for call in calls)


def test_a_diff_after_an_app_change_compares_every_environment_on_the_workers(tmp_path, monkeypatch):
    """A change to the base (every environment's files alike) is found by each worker, which has the
    base's files from before it started."""
    root = _fleet(tmp_path / "repo", 6)
    edit(
        root,
        "environments/app.yaml",
        "requests: {cpu: 250m, memory: 256Mi}",
        "requests: {cpu: 300m, memory: 256Mi}",
    )
    expected = _reference(root, None, None)
    monkeypatch.setattr(kompile.compiler, "cores", lambda count: 2)
    _, changes = api.diff(root)
    assert [tuple(c.as_dict().values()) for c in changes] == expected
    assert {c.environment for c in changes} >= {"dev", "staging", *(f"pr-{i}" for i in range(6))}


# What DeepDiff is given: the trees without what they hold alike. Its report must be what it gives on the
# whole trees, path for path.
SCALARS = st.sampled_from([0, 1, 1.0, True, False, None, "1", "a", "b", "", 2.5])
KEYS = st.sampled_from(["a", "b", "c", "d", "e", "f", "g", "name", "env", "containers"])


def _trees():
    return st.recursive(
        SCALARS,
        lambda inner: st.one_of(
            st.lists(inner, max_size=3),
            st.dictionaries(KEYS, inner, max_size=7),
            st.lists(
                st.fixed_dictionaries({"name": st.sampled_from(["web", "worker"]), "a": inner}), max_size=2
            ),
        ),
        max_leaves=12,
    )


def _mutated(tree, data):
    """A change to one entry, deep down; or some keys dropped and others added (a map whose keys are mostly
    new, at the threshold or past it); or another tree."""
    how = data.draw(st.sampled_from(["deeper", "rekeyed", "other"]))
    if isinstance(tree, dict) and tree and how == "deeper":
        key = data.draw(st.sampled_from(sorted(tree)))
        return {**tree, key: _mutated(tree[key], data)}
    if isinstance(tree, dict) and how == "rekeyed":
        dropped = data.draw(st.sets(st.sampled_from(sorted(tree)))) if tree else set()
        added = data.draw(st.dictionaries(KEYS, _trees(), max_size=4))
        return {**{k: v for k, v in tree.items() if k not in dropped}, **added}
    return data.draw(_trees())


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(KEYS, _trees(), max_size=7), st.data())
def test_deepdiff_reports_on_the_pruned_trees_what_it_reports_on_the_whole(old, data):
    new = _mutated(old, data)
    if not isinstance(new, dict):
        new = {"a": new}
    pruned = _object_changes("e", "Kind/x", old, new)
    original = kompile.output.diff._differing
    try:
        kompile.output.diff._differing = lambda a, b: (a, b)
        whole = _object_changes("e", "Kind/x", old, new)
    finally:
        kompile.output.diff._differing = original
    assert repr(pruned) == repr(whole)  # (repr: 1, 1.0 and True are equal, but not the same change)


def test_a_type_change_under_equal_values_is_still_reported():
    old = {"spec": {"replicas": 1, "paused": False, "a": {"b": [1, 2]}}}
    new = {"spec": {"replicas": True, "paused": 0, "a": {"b": [1.0, 2]}}}
    changes = _object_changes("e", "Deployment/web", old, new)
    assert [(c.path, c.old, c.new) for c in changes] == [
        ("spec.paused", False, 0),
        ("spec.replicas", 1, True),
    ]
    assert all(c.kind is ChangeKind.CHANGED for c in changes)
    assert DeepDiff(old, new)


def test_pruning_keeps_deepdiffs_choice_between_a_whole_map_and_its_keys():
    """DeepDiff reports a mapping sharing under a third of its keys as one new value, else key by key:
    the entries pruned never change which (a ConfigMap of ten alike entries and one renamed is reported
    key by key, though the two entries left share none)."""
    old = {"kind": "ConfigMap", "data": {"A": "1", "B": "2", "C": "3", "KEPT": "x"}}
    new = {"kind": "ConfigMap", "data": {"D": "1", "E": "2", "F": "3", "KEPT": "x"}}
    [whole] = _object_changes("e", "ConfigMap/c", old, new)
    assert (whole.kind, whole.path, whole.old, whole.new) == (
        ChangeKind.CHANGED,
        "data",
        old["data"],
        new["data"],
    )
    alike = {f"K{i}": "v" for i in range(10)}
    old = {"kind": "ConfigMap", "data": {**alike, "A": "1"}}
    new = {"kind": "ConfigMap", "data": {**alike, "B": "1"}}
    changes = _object_changes("e", "ConfigMap/c", old, new)
    assert [(c.kind.value, c.path) for c in changes] == [("removed", "data.A"), ("added", "data.B")]


def test_the_specs_problems_come_before_a_revision_that_cannot_be_read(tmp_path):
    """(Found by an attack: the revision is read first now, so that the workers hold it.)"""
    root = _fleet(tmp_path / "repo", 0)
    edit(root, "environments/staging.yaml", "worker: {replicas: 2}", 'worker: {replicas: "x"}')
    for base in ("nope", "HEAD"):
        with pytest.raises(KompileError) as raised:
            api.diff(root, base=base)
        [problem] = raised.value.diagnostics
        assert problem.span.path == "environments/staging.yaml", base
        assert "expected an integer" in problem.message


def test_a_value_that_changes_only_its_kind_is_a_change():
    """1 == True in Python: the objects are compared as YAML (kinds and all), as DeepDiff then reports."""
    old = [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "x": {"a": 1}}]
    new = [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "x": {"a": True}}]
    [change] = diff_environment("e", old, new)
    assert (change.path, change.old, change.new) == ("x.a", 1, True)
