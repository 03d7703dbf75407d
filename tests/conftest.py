"""Shared test helpers. Tests never chdir and never share an output folder: each gets a tmp_path."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import settings

REPO = Path(__file__).resolve().parent.parent
# The canonical example is the repo's own environments/ and secrets/ (EXAMPLE / "environments", ...).
EXAMPLE = REPO
EXAMPLE_FOLDERS = ("environments", "secrets")
# Test data vendored with its licence notes (tests/vendor/README.md): a clone needs nothing beside it.
VENDOR = REPO / "tests" / "vendor"
CRD_SCHEMAS = VENDOR / "schemas" / "crds"
CRDS = VENDOR / "crds"
GOLDEN = REPO / "tests" / "golden"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# Derandomized in CI so a red build can be reproduced; local runs explore new examples.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if IN_CI else "dev")


def pytest_addoption(parser):
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="Rewrite tests/golden/*/expected from the current compiler (the run still fails; review the diff).",
    )


@pytest.fixture
def update_golden(request) -> bool:
    return request.config.getoption("--update-golden")


def run_kompile(
    *args: str, cwd: Path | None = None, env: dict | None = None, timeout: int = 300
) -> subprocess.CompletedProcess:
    """The command line as a user runs it, in a process of its own. Whatever the input, it never shows a
    traceback or calls itself broken."""
    result = subprocess.run(
        [sys.executable, "-m", "kompile", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=timeout,
    )
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    assert "internal error" not in result.stderr, result.stderr
    return result


def edit(root: Path, rel: str, old: str, new: str) -> None:
    """Replace the first `old` in a file of the repo (which must hold it) with `new`."""
    path = root / rel
    text = path.read_text()
    assert old in text, f"{rel} does not contain {old!r}"
    path.write_text(text.replace(old, new, 1))


def objects_by_name(root: Path, env: str) -> dict[tuple[str, str], dict]:
    """An environment's objects as compiled, by (kind, name)."""
    from kompile.compiler import compile_project

    return {(o["kind"], o["metadata"]["name"]): o for o in compile_project(root).environments[env].objects}


def build_file_tree(root: Path, files: dict[str, str | bytes]) -> Path:
    """Write {relative path: text} under root and return root."""
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return root


def copy_example(destination: Path) -> Path:
    """The canonical example (environments/ and secrets/) in a fresh, writable folder."""
    for folder in EXAMPLE_FOLDERS:
        shutil.copytree(EXAMPLE / folder, destination / folder)
    for path in [destination, *destination.rglob("*")]:
        path.chmod(path.stat().st_mode | 0o200)
    return destination


@pytest.fixture
def example(tmp_path: Path) -> Path:
    return copy_example(tmp_path / "repo")


def golden_cases() -> list[str]:
    """The golden cases: tests/golden/<case>/input is a repo, expected/ what kompile builds from it."""
    return sorted(p.name for p in GOLDEN.iterdir() if (p / "input" / "environments").is_dir())


def golden_environments(case: str) -> list[str]:
    """A case's environment names, read from its spec files (collection must not need the compiler)."""
    names = []
    for path in sorted((GOLDEN / case / "input" / "environments").glob("*.y*ml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        if isinstance(doc, dict) and doc.get("kind") == "Environment":
            names.append(path.stem)
    return names


def golden_overlays() -> list[tuple[str, str]]:
    """(case, environment) for every overlay of every golden case."""
    return [(case, env) for case in golden_cases() for env in golden_environments(case)]


def copy_golden_input(case: str, destination: Path) -> Path:
    """A golden case's input repo in a fresh folder."""
    shutil.copytree(GOLDEN / case / "input", destination)
    return destination


_RUNNING: dict[str, pytest.Item | None] = {"item": None}


@pytest.fixture(autouse=True)
def _running_test(request):
    """Which test runs now: require_kubectl holds the `kubectl` marker to the truth."""
    _RUNNING["item"] = request.node
    yield
    _RUNNING["item"] = None


def require_kubectl() -> str:
    """kubectl's path; a missing kubectl skips locally and fails in CI (CI=true). A test that runs kubectl
    without the `kubectl` marker fails: `-m "not kubectl"` (the fast subset) must never need it."""
    item = _RUNNING["item"]
    if item is not None and item.get_closest_marker("kubectl") is None:
        pytest.fail(f"{item.nodeid} runs kubectl: mark it with @pytest.mark.kubectl")
    path = shutil.which("kubectl")
    if path is None:
        if IN_CI:
            pytest.fail("kubectl (with kustomize v5) is required in CI and was not found on PATH")
        pytest.skip("kubectl not installed")
    return path


def kustomize_build(folder: Path) -> str:
    kubectl = require_kubectl()
    result = subprocess.run([kubectl, "kustomize", str(folder)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"kubectl kustomize {folder} failed:\n{result.stderr}"
    return result.stdout


def write_files(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def as_flux_applies(objects: list[dict]) -> list[dict]:
    """What Flux's kustomize-controller applies: sops-encrypted Secrets decrypted. The key is not in the
    repo, so the values here are placeholders; the object's shape is what the cluster gets."""
    applied = []
    for obj in objects:
        if obj.get("kind") == "Secret" and "sops" in obj:
            obj = {key: value for key, value in obj.items() if key != "sops"}
            for field, placeholder in (("data", "ZGVjcnlwdGVk"), ("stringData", "decrypted")):
                if obj.get(field):
                    obj[field] = {key: placeholder for key in obj[field]}
        applied.append(obj)
    return applied
