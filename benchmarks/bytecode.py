"""kompile's bytecode compiled once, as pip compiles an installed wheel's, for the benchmarks' processes.

A checkout run with PYTHONDONTWRITEBYTECODE set (as some machines and images set it) compiles every
module from source in every process: about 0.25 s that no installed kompile pays. The benchmarks
compile it once into a cache of their own (PYTHONPYCACHEPREFIX: nothing is written into the checkout)
and run every kompile process with it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def environment(base: dict[str, str], cache: Path | None) -> dict[str, str]:
    """base, for a process that uses the compiled bytecode in cache (None: as it is)."""
    if cache is None:
        return dict(base)
    env = {key: value for key, value in base.items() if key != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "PYTHONPYCACHEPREFIX": str(cache)}


def compile_bytecode(cache: Path) -> Path:
    """Compile the kompile package that `python -m kompile` runs into cache; returns cache."""
    package = Path(__import__("kompile").__file__).parent
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(package)],
        check=True,
        env=environment(dict(os.environ), cache),
    )
    return cache
