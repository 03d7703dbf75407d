"""`kompile build` killed at any moment leaves every file with its old or its new content, and the
next build completes the job. The tree alternates between two spec versions so every kill lands in
a build with thousands of files to write."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kompile.compiler import compile_project
from kompile.output.manifest import MANIFEST, RECORDS
from kompile.safefs import TEMP

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from fleet import generate_fleet  # noqa: E402

KILLS = 50
ENVIRONMENTS = 150


def _set_version(root: Path, version: str) -> None:
    app = root / "environments/app.yaml"
    text = app.read_text()
    marker = "    DJANGO_SETTINGS_MODULE: shop.settings.production\n"
    head, _, tail = text.partition(marker)
    lines = tail.split("\n", 1)
    if lines[0].startswith("    RELEASE_TRAIN:"):
        tail = lines[1]
    app.write_text(f'{head}{marker}    RELEASE_TRAIN: "{version}"\n{tail}')


def _expected(root: Path, version: str) -> dict[str, bytes]:
    _set_version(root, version)
    return compile_project(root).files


def _build(root: Path) -> subprocess.Popen:
    # stderr to a file, never an unread pipe: a build with much to say would block on a full pipe.
    with (root.parent / "build.err").open("wb") as errors:
        return subprocess.Popen(
            [sys.executable, "-m", "kompile", "build", "--root", str(root)],
            stdout=subprocess.DEVNULL,
            stderr=errors,
        )


@pytest.mark.slow
def test_sigkill_at_any_moment_never_leaves_a_partial_file(tmp_path: Path):
    root = generate_fleet(tmp_path / "fleet", ENVIRONMENTS)
    versions = {"a": _expected(root, "a"), "b": _expected(root, "b")}
    paths = set(versions["a"]) | set(versions["b"])
    _set_version(root, "a")
    started = time.monotonic()
    assert _build(root).wait() == 0
    duration = time.monotonic() - started

    real_kills = 0
    attempt = 0
    while real_kills < KILLS:
        attempt += 1
        assert attempt < KILLS * 3, f"only {real_kills} of {attempt} kills landed while kompile was running"
        _set_version(root, "b" if attempt % 2 else "a")
        # Spread the kills over the whole run: start-up, compile, and the writes at the end.
        delay = duration * (0.2 + 0.9 * ((attempt * 7919) % 97) / 97)
        process = _build(root)
        time.sleep(delay)
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            real_kills += 1
        process.wait()
        for path in paths:
            target = root / path
            if target.exists():
                data = target.read_bytes()
                assert data in (versions["a"].get(path), versions["b"].get(path)), (
                    f"{path} is neither old nor new"
                )

    _set_version(root, "b")
    finish = _build(root)
    assert finish.wait() == 0, (root.parent / "build.err").read_text()
    check = subprocess.run(
        [sys.executable, "-m", "kompile", "check", "--root", str(root)], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert {p: (root / p).read_bytes() for p in versions["b"]} == versions["b"]
    assert not [p for p in root.rglob("*") if TEMP.fullmatch(p.name)], (
        "the last build cleans up what killed builds left"
    )


@pytest.mark.slow
def test_a_first_build_killed_at_any_moment_is_finished_by_the_next(tmp_path: Path):
    """A first build writes each environment's folder whole under a temporary name and renames it into
    place: killed at any moment, every file is absent or complete, `check` says the output is not
    current, and the next build finishes the job and removes what the killed one staged."""
    root = generate_fleet(tmp_path / "fleet", ENVIRONMENTS)
    expected = _expected(root, "a")
    started = time.monotonic()
    assert _build(root).wait() == 0
    duration = time.monotonic() - started
    kills = 0
    for attempt in range(12):
        for top in ("bases", "overlays", "gitops", "rendered", RECORDS, ".kompile-cache"):
            if (root / top).exists():
                shutil.rmtree(root / top)
        (root / MANIFEST).unlink(missing_ok=True)
        process = _build(root)
        time.sleep(duration * (0.3 + 0.7 * attempt / 11))
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            kills += 1
        process.wait()
        for path, data in expected.items():
            target = root / path
            assert not target.exists() or target.read_bytes() == data, f"{path} is neither absent nor new"
        staged = [p for p in root.rglob("*") if TEMP.fullmatch(p.name)]
        if staged:
            check = subprocess.run(
                [sys.executable, "-m", "kompile", "check", "--root", str(root)],
                capture_output=True,
                text=True,
            )
            assert check.returncode != 0, "check vouched for a tree a killed build left half made"
        assert _build(root).wait() == 0, (root.parent / "build.err").read_text()
        assert {p: (root / p).read_bytes() for p in expected} == expected
        assert not [p for p in root.rglob("*") if TEMP.fullmatch(p.name)]
    assert kills >= 6, f"only {kills} of 12 kills landed while kompile was running"
