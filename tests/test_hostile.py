"""Hostile inputs that cannot be files in a case folder: FIFOs, the environment kompile runs in."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kompile.compiler import compile_project
from kompile.errors import Code, KompileError


def test_a_fifo_is_refused_without_blocking(example: Path):
    fifo = example / "secrets/dev/pipe.yaml"
    os.mkfifo(fifo)
    dev = example / "environments/dev.yaml"
    dev.write_text(dev.read_text().replace("secrets/dev/shop-django.yaml", "secrets/dev/pipe.yaml"))
    with pytest.raises(KompileError) as caught:
        compile_project(example)  # opening a FIFO for reading would wait forever
    assert [(d.code, d.span.path, d.span.line) for d in caught.value.diagnostics] == [(Code.UNREADABLE, "environments/dev.yaml", 20)]


def build_in(root: Path, env: dict[str, str]) -> dict[str, bytes]:
    result = subprocess.run([sys.executable, "-m", "kompile", "build", "--root", str(root)], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_nothing_from_the_environment_reaches_the_output(tmp_path: Path):
    from conftest import copy_example

    plain = build_in(copy_example(tmp_path / "a"), {"PATH": os.environ["PATH"]})
    noisy = {
        "PATH": os.environ["PATH"], "HOME": str(tmp_path / "elsewhere"), "USER": "mallory", "LANG": "tr_TR.UTF-8",
        "LC_ALL": "tr_TR.UTF-8", "TZ": "Pacific/Kiritimati", "PYTHONHASHSEED": "12345", "KUBECONFIG": "/etc/shadow",
        "DJANGO_SECRET_KEY": "leak-me-if-you-can", "GITHUB_TOKEN": "ghp_" + "x" * 36, "KOMPILE_DEBUG": "1",
    }
    other = build_in(copy_example(tmp_path / "b"), noisy)
    assert other == plain
    everything = b"".join(other.values())
    for value in ("mallory", "leak-me-if-you-can", "ghp_", str(tmp_path), "Kiritimati"):
        assert value.encode() not in everything
