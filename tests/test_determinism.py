"""Deterministic output: the same specs give the same bytes, whatever the run, the folder, the hash seed
or the YAML emitter; and nothing in the output betrays where or when or with which kompile it was built.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kompile import __version__
from kompile.compiler import compile_project
from kompile.emit import PurePythonDumper, emit_yaml
from kompile.emit.kustomize import PurePythonDumper as PurePythonKustomizeDumper
from kompile.emit.kustomize import emit_kustomize
from kompile.k8s.transformers import in_kustomize_order

from conftest import GOLDEN, REPO, copy_golden_input, golden_cases

CASES = golden_cases()
TIMESTAMP = re.compile(rb"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


PureSafeDumper = PurePythonDumper  # PyYAML's pure-Python emitter, configured as kompile's own

# Compiles every case given on the command line and prints {case: {path: sha256}} as JSON.
HASH_SCRIPT = """
import hashlib, json, sys
from pathlib import Path
from kompile.compiler import compile_project
print(json.dumps({Path(root).parent.name: {path: hashlib.sha256(data).hexdigest()
                  for path, data in compile_project(Path(root)).files.items()} for root in sys.argv[1:]}))
"""


def digests(files: dict[str, bytes]) -> dict[str, str]:
    return {path: hashlib.sha256(data).hexdigest() for path, data in files.items()}


@pytest.mark.parametrize("case", CASES)
def test_building_twice_gives_the_same_bytes(case: str, tmp_path: Path):
    first = compile_project(copy_golden_input(case, tmp_path / "one" / "repo")).files
    again = compile_project(tmp_path / "one" / "repo").files
    elsewhere = compile_project(copy_golden_input(case, tmp_path / "another" / "place")).files
    assert list(first) == list(again) == list(elsewhere), "the same files, in the same order"
    assert first == again, "a second build differs from the first"
    assert first == elsewhere, "the output depends on the folder it was built in"


def test_hash_seed_does_not_change_the_output(tmp_path: Path):
    roots = [str(copy_golden_input(case, tmp_path / case / "repo")) for case in CASES]
    runs = {}
    for seed in ("0", "1"):
        environment = {**os.environ, "PYTHONHASHSEED": seed}
        result = subprocess.run(
            [sys.executable, "-c", HASH_SCRIPT, *roots],
            capture_output=True,
            text=True,
            env=environment,
            cwd=tmp_path,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr
        runs[seed] = json.loads(result.stdout)
    assert set(runs["0"]) == set(CASES)
    for case in CASES:
        zero, one = runs["0"][case], runs["1"][case]
        changed = sorted(path for path in zero.keys() | one.keys() if zero.get(path) != one.get(path))
        assert not changed, f"{case}: PYTHONHASHSEED=0 and =1 give different bytes for {changed}"
        here = digests(compile_project(Path(roots[CASES.index(case)])).files)
        assert here == zero, f"{case}: this process and a fresh one with PYTHONHASHSEED=0 disagree"


def split_header(data: bytes) -> tuple[str, list]:
    """A generated file's leading comment lines and its YAML documents."""
    text = data.decode("utf-8")
    lines = text.splitlines(keepends=True)
    count = next(i for i, line in enumerate(lines) if not line.startswith("#"))
    return "".join(lines[:count]), list(yaml.safe_load_all(text))


def emit_file(head: str, documents: list, dumper: type | None = None) -> bytes:
    """As kompile writes a file: the header, then each document (after the first, behind `---`)."""
    options = {"dumper": dumper} if dumper else {}
    return b"".join(
        emit_yaml(doc, head if index == 0 else "---\n", **options) for index, doc in enumerate(documents)
    )


@pytest.mark.parametrize("case", CASES)
def test_pure_python_emitter_gives_the_same_bytes(case: str):
    """Every file, read back and emitted again by PyYAML's pure-Python SafeDumper, is byte for byte
    what kompile wrote with libyaml's emitter: the output does not depend on libyaml being present,
    and reading it back loses nothing (no value changes type on the way)."""
    output = compile_project(GOLDEN / case / "input")
    for path, data in output.files.items():
        if path.startswith("rendered/"):  # kustomize's printing, held to kubectl's bytes (test_rendered.py)
            objects = in_kustomize_order(output.environments[path.split("/")[1]].objects)
            assert emit_kustomize(objects, PurePythonKustomizeDumper) == data, path
            continue
        head, documents = split_header(data)
        assert emit_file(head, documents, PureSafeDumper) == data, (
            f"{path}: the pure-Python emitter writes other bytes"
        )
        assert emit_file(head, documents) == data, f"{path}: does not survive a read and a write"


def test_kompile_emits_with_libyaml_when_it_is_there():
    """Otherwise the comparison above would compare the pure-Python emitter with itself."""
    if not getattr(yaml, "__with_libyaml__", False):
        pytest.skip("PyYAML was built without libyaml")
    assert issubclass(emit_yaml.__defaults__[-1], yaml.CSafeDumper)


@pytest.mark.parametrize("case", CASES)
def test_no_paths_times_or_versions_in_the_output(case: str, tmp_path: Path):
    root = copy_golden_input(case, tmp_path / "repo")
    inputs = b"".join(path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file())
    assert __version__.encode() not in inputs, (
        f"the case's input mentions {__version__}; this test needs it not to"
    )
    files = compile_project(root).files
    # (/tmp itself is fine: the pods mount their scratch space there.)
    forbidden = {str(tmp_path), str(root.resolve()), str(REPO), f"kompile {__version__}", __version__}
    for path, data in files.items():
        text = data.decode("utf-8")
        found = [word for word in forbidden if word in text]
        assert not found, f"{path} contains {found}"
        # (sops writes when it encrypted a file into the file: input kompile passes on, not a time of its own)
        assert not TIMESTAMP.search(re.sub(rb"\n  lastmodified: .*", b"", data)), (
            f"{path} contains a timestamp"
        )
        assert not path.startswith("/") and ".." not in Path(path).parts, path
