"""Rendered output (gitops.hydration): rendered/<env>/manifest.yaml is what `kubectl kustomize
overlays/<env>` prints, byte for byte, and build, check and the GitOps objects treat it as output."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kompile.compiler import compile_project
from kompile.emit import emit_yaml
from kompile.emit.kustomize import _key_less, emit_kustomize
from kompile.goyaml import resolve
from kompile.layout.rendered import rendered_manifest

from conftest import GOLDEN, copy_example, edit, kustomize_build, run_kompile, write_files

CASES = sorted(p.name for p in GOLDEN.iterdir() if (p / "input").is_dir())
HYDRATION = "  gitops:\n    tool: argocd\n"


@pytest.mark.kubectl
@pytest.mark.parametrize("case", CASES)
def test_every_golden_overlay_renders_as_kubectl_kustomize_prints(case: str):
    output = compile_project(GOLDEN / case / "input")
    for name, compiled in output.environments.items():
        printed = kustomize_build(GOLDEN / case / "expected" / "overlays" / name).encode()
        assert rendered_manifest(compiled) == printed, f"{case}/{name}"


@pytest.mark.kubectl
def test_committed_rendered_files_are_what_kubectl_prints():
    checked = 0
    for case in CASES:
        for manifest in sorted((GOLDEN / case / "expected" / "rendered").glob("*/manifest.yaml")):
            overlay = GOLDEN / case / "expected" / "overlays" / manifest.parent.name
            assert manifest.read_bytes() == kustomize_build(overlay).encode(), manifest
            checked += 1
    assert checked >= 4  # files-secrets-rbac and flux-gateway-sops render theirs


# Strings that go-yaml v2 reads as something else when plain (YAML 1.1 words, Go's numbers, dates,
# base 60), strings its emitter must quote for other reasons, and near misses that stay plain.
AWKWARD = [
    *[
        "y",
        "Y",
        "yes",
        "No",
        "on",
        "OFF",
        "true",
        "null",
        "~",
        "1e3",
        "1E3",
        "1e+3",
        "0x1F",
        "0o17",
        "0b101",
        "-0b11",
        "08",
        "0_7",
        "1_000",
        "1__0",
        "_1",
        "1_",
        "+_1",
    ],
    *[
        "12:30",
        "1:20:30.5",
        "-1:20",
        "190:20:30",
        ".5",
        "+.5",
        "-.5e-3",
        "1.",
        "._5",
        ".007_007",
        "1e999",
        ".1e999",
        "0x1p-2",
        "0x_1p0",
        "inf",
    ],
    *[
        "-Infinity",
        "NaN",
        "2024-02-29",
        "2023-02-29",
        "2024-13-01",
        "2024-1-1",
        "2001-12-14t21:59:43+01:00",
        "0.0.1",
        "v1.2",
    ],
    *[
        "9223372036854775807",
        "9223372036854775808",
        "18446744073709551616",
        "-9223372036854775809",
        "1,000",
        "e3",
    ],
    "2024-01-01T10:00:00Z",
    "2024-01-01T10:00:00,5Z",
    "2024-01-01 10:00:00",
    "2024-01-01 10:00:00Z",
    "2024-01-01T25:00:00Z",
    "",
    "-",
    "---",
    "...",
    "<<",
    "- a",
    "? a",
    "a #b",
    "a: b",
    "a:b",
    "  lead",
    "trail ",
    "#x",
    "'q'",
    '"dq"',
    "tab\there",
    "line1\nline2\n",
    "multi\n  indented\n",
    "keep\n\n\n",
    "é ß 中 😀",
    "\u00a0nbsp",
    "cr\rhere",
    " ".join(["word"] * 30),
    "x" * 100,
]
ALPHABET = list("aZ09_-+.:,#&*!|>'\"%@` ?{}[]\t\\/~eExXoObB") + [" ", "\n", "é", "😀", "中", "\u00a0", "\r"]


def _random_strings(seed: int, count: int) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        roll = rng.random()
        if roll < 0.3:
            out.append(rng.choice(AWKWARD))
        elif roll < 0.5:
            out.append(rng.choice(AWKWARD) + rng.choice(ALPHABET) + rng.choice(AWKWARD))
        else:
            length = rng.randint(0, 12 if rng.random() < 0.8 else 120)
            out.append("".join(rng.choice([*ALPHABET, "word "]) for _ in range(length)))
    return out


def _transitive(keys: list[str]) -> list[str]:
    """keys without those that make go-yaml's natural order intransitive (kustomize prints such maps in
    a different order on each run: Go randomises map iteration)."""
    while True:
        bad = next(
            (
                b
                for a, b, c in itertools.permutations(keys, 3)
                if _key_less(a, b) and _key_less(b, c) and not _key_less(a, c)
            ),
            None,
        )
        if bad is None:
            return keys
        keys.remove(bad)


@pytest.mark.kubectl
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_awkward_strings_keys_and_numbers_print_as_kubectl_kustomize(seed: int, tmp_path: Path):
    rng = random.Random(seed)
    strings = AWKWARD + _random_strings(seed, 300)
    keys = _transitive(
        sorted(
            {
                "".join(
                    rng.choice([*"aZz09_-./", "10", "007", "é", "中", "k"]) for _ in range(rng.randint(1, 8))
                )
                for _ in range(45)
            }
        )
    )
    numbers = [0.5, 1.0, -0.0, 1e21, 1e20, 2.5e-7, 1e-6, 123456.0, 1234567.5, 0.1, 1 / 3, 1e19, -1e19]
    numbers += [9007199254740993, 2**63, 2**64 - 1, -(2**63), 100, -5, True, False, None, 3.0e-5, 0.000123]
    objects = [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "strings"},
            "data": {f"k{i}": s for i, s in enumerate(strings)},
        },
        {
            "apiVersion": "example.com/v1",
            "kind": "Thing",
            "metadata": {"name": "values"},
            "spec": {
                "keys": {key: i for i, key in enumerate(keys)},
                "numbers": {f"n{i}": n for i, n in enumerate(numbers)},
                "empty": {"map": {}, "list": []},
                "nested": [[1, "a"], {"b": [None]}],
            },
        },
    ]
    # Written as kompile writes overlays, then built by kustomize: what the cluster would get.
    write_files(
        tmp_path,
        {
            "strings.yaml": emit_yaml(objects[0]),
            "values.yaml": emit_yaml(objects[1]),
            "kustomization.yaml": b"resources:\n- strings.yaml\n- values.yaml\n",
        },
    )
    assert emit_kustomize(objects) == kustomize_build(tmp_path).encode()


def test_go_yaml_reads_these_plain_strings_as_other_types():
    for text in ["yes", "0o17", "08", "1_000", ".007_007", "2024-02-29", "2024-01-01T10:00:00,5Z", "0b101"]:
        assert resolve(text) != "str", text
    for text in [
        "._5",
        "1e999",
        "2023-02-29",
        "2024-13-01",
        "0.0.1",
        "<<",
        "e3",
        "0b2",
        "2024-01-01 10:00:00Z",
    ]:
        assert resolve(text) == "str", text


def test_keys_sort_in_go_yamls_natural_order():
    keys = ["b", "a10", "a9", "a-b", "A", "a_", "a09", "a"]
    ordered = sorted(keys, key=__import__("functools").cmp_to_key(lambda x, y: -1 if _key_less(x, y) else 1))
    assert ordered == ["A", "a", "a-b", "a_", "a9", "a09", "a10", "b"]


def _rendered_example(tmp_path: Path) -> Path:
    root = copy_example(tmp_path / "repo")
    edit(
        root,
        "environments/app.yaml",
        "    tool: argocd                      # or flux",
        "    tool: argocd\n    hydration: {mode: rendered}",
    )
    return root


def test_build_writes_rendered_manifests_and_check_holds_them(tmp_path: Path):
    root = _rendered_example(tmp_path)
    assert run_kompile("build", cwd=root).returncode == 0
    manifests = sorted(p.parent.name for p in (root / "rendered").glob("*/manifest.yaml"))
    assert manifests == ["dev", "prod", "staging"]
    output = compile_project(root)
    assert (root / "rendered/prod/manifest.yaml").read_bytes() == rendered_manifest(
        output.environments["prod"]
    )
    application = (root / "gitops/argocd/application-shop-prod.yaml").read_text()
    assert "path: rendered/prod" in application and "manifest-generate-paths: ." in application
    assert run_kompile("check", cwd=root).returncode == 0
    path = root / "rendered/prod/manifest.yaml"
    path.write_text(path.read_text() + "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: added\n")
    result = run_kompile("check", cwd=root)
    assert result.returncode == 1 and "rendered/prod/manifest.yaml" in result.stdout + result.stderr


def test_a_change_reaches_the_rendered_manifest_and_only_its_environment(tmp_path: Path):
    root = _rendered_example(tmp_path)
    run_kompile("build", cwd=root)
    before = {
        env: (root / f"rendered/{env}/manifest.yaml").read_bytes() for env in ("dev", "prod", "staging")
    }
    edit(root, "environments/staging.yaml", "worker: {replicas: 2}", "worker: {replicas: 4}")
    result = run_kompile("build", "--env", "staging", cwd=root)
    assert result.returncode == 0, result.stderr
    after = {env: (root / f"rendered/{env}/manifest.yaml").read_bytes() for env in ("dev", "prod", "staging")}
    assert after["dev"] == before["dev"] and after["prod"] == before["prod"]
    assert after["staging"] != before["staging"] and b"replicas: 4" in after["staging"]


def test_turning_rendering_off_removes_the_rendered_files_and_says_so(tmp_path: Path):
    root = _rendered_example(tmp_path)
    run_kompile("build", cwd=root)
    edit(root, "environments/app.yaml", "\n    hydration: {mode: rendered}", "")
    result = run_kompile("build", cwd=root)
    assert result.returncode == 0, result.stderr
    assert not (root / "rendered").exists()
    assert "3 removed" in result.stdout  # one rendered manifest per environment, counted as removed
    assert "path: overlays/prod" in (root / "gitops/argocd/application-shop-prod.yaml").read_text()


def test_argocd_hydration_needs_argo_cd(tmp_path: Path):
    root = copy_example(tmp_path / "repo")
    edit(
        root,
        "environments/app.yaml",
        "    tool: argocd                      # or flux",
        "    tool: flux\n    hydration: {mode: argocd}",
    )
    result = run_kompile("validate", cwd=root)
    assert result.returncode == 2
    assert "K204" in result.stderr and "Source Hydrator" in result.stderr and "app.yaml:" in result.stderr


@given(st.text(alphabet=st.sampled_from(list("0123456789+-._eExXoObB:Tt Zabcdef")), max_size=60) | st.text())
def test_go_yamls_resolver_answers_every_text(text: str):
    assert resolve(text or "x", 2) in {"str", "bool", "null", "int", "float", "timestamp"}
    assert resolve(text or "x", 3) in {"str", "bool", "null", "int", "float", "timestamp"}


def test_long_numbers_are_resolved_without_converting_them():
    """Python refuses to convert more than 4,300 decimal digits: go-yaml's limits (64 bits, a float's
    range) are decided from the digits' count first."""
    assert resolve("1" * 5000) == "str"  # past int64, uint64 and float64: text to go-yaml
    assert resolve("2" * 20) == "float" and resolve("18446744073709551615") == "int"
    assert resolve("0" * 50 + "1") == "int" and resolve("0x1" + "0" * 16) == "str"
