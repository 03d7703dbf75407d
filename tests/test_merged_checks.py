"""Environments that extend others: each file's entries are merged and checked once per process, however
many environments extend it (kompile/source.py: Merged, kompile/spec/structure.py: entry_problems), and
what that finds is exactly what checking each environment's merged settings whole finds."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kompile.load.merge as merge
import kompile.spec.structure as structure
from kompile import api
from kompile.compiler import _work
from kompile.errors import KompileError
from kompile.load.merge import effective_spec
from kompile.load.project import load_project
from kompile.parallel import PARALLEL_MIN
from kompile.policy import credentials
from kompile.source import YList, YMap
from kompile.validate import validate_project

from conftest import copy_example

HEAD = "apiVersion: kompile.dev/v1alpha1\nkind: Environment\nmetadata:\n  name: {name}\nspec:\n"


def chain_file(name: str, parent: str, env: dict, components: dict | None = None) -> str:
    spec = {"extends": parent, "namespace": f"shop-{name}", "env": env}
    if components is not None:
        spec["components"] = components
    body = yaml.safe_dump(spec, sort_keys=False, default_flow_style=False)
    return HEAD.format(name=name) + "".join(f"  {line}\n" for line in body.splitlines())


def findings(root: Path) -> tuple:
    """Every diagnostic loading and validating finds, and each environment's merged settings with every
    position (a chain's environments have dev's sealed secret, sealed for another namespace: an error)."""
    try:
        project = load_project(root)
    except KompileError as exc:
        return tuple(exc.diagnostics), ()
    merged = tuple((name, walk(effective_spec(project, name)[0])) for name in project.environments)
    try:
        validate_project(project)
    except KompileError as exc:
        return tuple(exc.diagnostics), merged
    return (), merged


def validated(root: Path) -> None:
    """Every environment checked (each chain environment's sealed secret is the one of dev, sealed for
    another namespace: an error, found after every other check)."""
    with pytest.raises(KompileError):
        validate_project(load_project(root))


def walk(value, path: str = "") -> tuple:
    if isinstance(value, YMap):
        return tuple(
            (f"{path}.{key}", value.key_span(key), value.value_span(key), walk(item, f"{path}.{key}"))
            for key, item in value.items()
        )
    if isinstance(value, YList):
        return tuple(
            (f"{path}[{i}]", value.item_span(i), walk(item, f"{path}[{i}]")) for i, item in enumerate(value)
        )
    return (value,)


def forget() -> None:
    """No finding of an earlier check kept (the tables are per process)."""
    structure._ENTRIES.clear()
    structure._CLEAN.clear()


class _Never:
    """A type no value is an instance of: with it, every merged map is checked whole."""


def whole(monkeypatch: pytest.MonkeyPatch) -> None:
    """The reference: every map merged key by key and checked whole, nothing reused."""
    monkeypatch.setattr(structure, "Merged", _Never)
    monkeypatch.setattr(merge, "_spanned", lambda source: False)
    monkeypatch.setattr(merge, "_merge_below", lambda base, over, memo, keep: merge.merge_maps(base, over))


# Valid files (an error in a file stops loading before anything is merged): what is found merged is a
# credential in plain text (a strong key's value, a URL with a password) and its removal or override.
KEYS = st.sampled_from(["A", "B_1", "DB_PASSWORD", "API_TOKEN", "SIGNING_KEY", *[f"K{i}" for i in range(40)]])
VALUES = st.sampled_from(
    ["v", "info", "hunter2", "postgres://u:p4ss@db/x", "", "${X}", "AKIAIOSFODNN7EXAMPLE", None]
)
# Small maps, and large ones (32 entries or more are merged whole and their findings kept).
LAYER = st.one_of(st.dictionaries(KEYS, VALUES, max_size=8), st.dictionaries(KEYS, VALUES, min_size=32))
# Components are checked whole once merged (a required field may come from another file): their
# findings depend on whether the settings are partial.
COMPONENTS = st.one_of(
    st.none(),
    st.dictionaries(
        st.sampled_from(["web", "worker", "extra"]),
        st.one_of(st.none(), st.fixed_dictionaries({"replicas": st.integers(0, 2)}), st.just({})),
        max_size=3,
    ),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layers=st.lists(st.tuples(LAYER, COMPONENTS), min_size=1, max_size=5), branch=st.booleans())
def test_checking_each_file_once_finds_what_checking_each_environment_whole_finds(layers, branch):
    with tempfile.TemporaryDirectory() as tmp:
        root = copy_example(Path(tmp) / "repo")
        # A chain from dev (c0 -> c1 -> ...), and optionally a second branch from its middle, checked
        # before and after the environments it shares files with (names in order: b, c0, c1, ..., z).
        parent = "dev"
        for i, (env, components) in enumerate(layers):
            (root / f"environments/c{i}.yaml").write_text(chain_file(f"c{i}", parent, env, components))
            parent = f"c{i}"
        if branch:
            middle = f"c{len(layers) // 2}"
            for name in ("b", "z"):
                (root / f"environments/{name}.yaml").write_text(
                    chain_file(name, middle, {"K1": "w", "A": None})
                )
        forget()
        found = findings(root)
        forget()
        with pytest.MonkeyPatch.context() as patch:
            whole(patch)
            reference = findings(root)
        forget()
        assert found == reference


def test_a_chain_checks_each_variable_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """16 environments each adding 100 variables: each variable is judged once for plaintext, not once
    for every environment below it (1,600 rather than 13,600, as checking each environment whole does)."""
    root = copy_example(tmp_path / "repo")
    parent = "dev"
    for i in range(16):
        (root / f"environments/c{i}.yaml").write_text(
            chain_file(f"c{i}", parent, {f"C{i}_{j}": "v" for j in range(100)})
        )
        parent = f"c{i}"
    judged: list[str] = []
    real = credentials.credential_in
    monkeypatch.setattr(
        "kompile.validate.objects.credential_in", lambda key, value: judged.append(key) or real(key, value)
    )
    forget()
    validated(root)
    ours = [key for key in judged if key.startswith("C")]
    assert len(ours) == 1600 and len(set(ours)) == 1600
    forget()
    judged.clear()
    with pytest.MonkeyPatch.context() as patch:
        whole(patch)
        validated(root)
    assert len([key for key in judged if key.startswith("C")]) == sum(100 * (i + 1) for i in range(16))
    forget()


def test_the_work_of_a_chain_of_large_files_is_spread_over_the_cores(tmp_path: Path):
    root = copy_example(tmp_path / "repo")
    small = load_project(root)
    assert _work(small, list(small.environments)) == len(small.environments)  # the example: one each
    parent = "dev"
    for i in range(16):
        env = {f"C{i}_{j}": "v" for j in range(400)}
        (root / f"environments/c{i}.yaml").write_text(chain_file(f"c{i}", parent, env))
        parent = f"c{i}"
    large = load_project(root)
    assert len(large.environments) < PARALLEL_MIN <= _work(large, list(large.environments))
    # An environment that extends itself (an error validate reports) does not hang the estimate.
    (root / "environments/c0.yaml").write_text(chain_file("c0", "c15", {"A": "v"}))
    looped = load_project(root)
    assert _work(looped, list(looped.environments)) >= len(looped.environments)


def test_set_image_parses_each_spec_once_and_the_edited_text_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    root = copy_example(tmp_path / "repo")
    api.build(root)
    import kompile.load.project as project_module
    import kompile.tools.edit as edit_module

    parsed: list[str] = []
    real = project_module.parse_document
    for module in (project_module, edit_module):  # (loading, and the edit's check of its own result)
        monkeypatch.setattr(module, "parse_document", lambda text, rel: parsed.append(rel) or real(text, rel))
    edited = api.set_image(root, "staging", "1.4.4", None)
    assert edited.changed and edited.build is not None
    specs = sorted(p.relative_to(root).as_posix() for p in (root / "environments").glob("*.yaml"))
    assert sorted(parsed) == sorted([*specs, "environments/staging.yaml"])
    monkeypatch.undo()
    # What it built is what reading every file again builds: check compiles from scratch and compares.
    assert not api.check(root).changes
    assert api.build(root).plan.is_noop


def test_a_full_table_keeps_what_it_holds(monkeypatch: pytest.MonkeyPatch):
    """Emptied when full, a table a little smaller than what a run asks over and over answered nothing."""
    monkeypatch.setattr(credentials, "_memo", {})
    monkeypatch.setattr(credentials, "MEMO_LIMIT", 10)
    for i in range(25):
        credentials.credential_in(f"KEY_{i}", "v")
    assert len(credentials._memo) == 10
    assert ("KEY_0", "v") in credentials._memo  # the first ones are still answered
    assert credentials.credential_in("DB_PASSWORD", "hunter2") == "what looks like a secret"  # still judged


def test_after_an_edit_the_build_reads_the_file_as_it_is_on_disk(tmp_path: Path):
    """The parse an edit made is used only while the file holds the text it parsed: a file changed
    after the edit was written is read again (and recorded as read)."""
    from kompile.tools import edit as edits

    root = copy_example(tmp_path / "repo")
    edit = edits.set_image(root, "staging", "1.4.4", None)
    edits.write_edit(root, edit)
    assert edits.reloaded(edit).environments["staging"].doc is edit.doc
    changed = edit.after.replace("1.4.4", "1.4.5")
    (root / edit.path).write_text(changed)
    reread = edits.reloaded(edit)
    assert reread.environments["staging"].doc is not edit.doc
    assert reread.environments["staging"].spec["image"]["tag"] == "1.4.5"
    assert reread.inputs[edit.path] != edit.project.inputs[edit.path]


def test_what_was_found_in_one_project_does_not_keep_it_alive_when_the_next_is_read(tmp_path: Path):
    """A process that reads project after project (a server, a test run) holds the findings of the last
    one only: the table kept every large map it had seen, 1.6 MB a load, until 4,096 loads."""
    root = copy_example(tmp_path / "repo")
    dev = root / "environments/dev.yaml"
    dev.write_text(
        dev.read_text().replace("  env:\n", "  env:\n" + "".join(f"    V{j}: x\n" for j in range(100)))
    )
    first = load_project(root)
    held = [entry[0] for entry in structure._ENTRIES.values()]
    assert any(value is first.environments["dev"].spec["env"] for value in held)  # (it was kept)
    second = load_project(root)
    held = [entry[0] for entry in structure._ENTRIES.values()] + [
        entry[0] for entry in structure._CLEAN.values()
    ]
    assert not any(value is first.environments["dev"].spec["env"] for value in held)
    assert any(value is second.environments["dev"].spec["env"] for value in held)
