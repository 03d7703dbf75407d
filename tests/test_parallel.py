"""Large repos compile on every core; the result must not depend on it, and errors must still be errors."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from kompile.compiler import PARALLEL_MIN, compile_project
from kompile.errors import Code, KompileError

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from fleet import environment_name, generate_fleet  # noqa: E402

COUNT = PARALLEL_MIN + 20
# A fleet of 220 environments compiled twice: the full suite's, not the fast loop's.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fleet(tmp_path_factory) -> Path:
    return generate_fleet(tmp_path_factory.mktemp("fleet"), COUNT)


def test_parallel_and_sequential_compilation_give_the_same_bytes(fleet: Path):
    parallel = compile_project(fleet, keep_objects=False)
    sequential = compile_project(fleet, keep_objects=True)
    assert not parallel.environments and len(parallel.names) == COUNT
    assert parallel.names == sequential.names
    assert parallel.files == sequential.files


def test_an_error_in_a_worker_is_reported(tmp_path: Path):
    root = generate_fleet(tmp_path / "fleet", COUNT)
    broken = root / "environments" / f"{environment_name(COUNT - 10)}.yaml"
    broken.write_text(
        broken.read_text() + "  patches:\n    - patch: {kind: Deployment, metadata: {name: no-such-thing}}\n"
    )
    with pytest.raises(KompileError) as caught:
        compile_project(root, keep_objects=False)
    (diagnostic,) = caught.value.diagnostics
    assert diagnostic.code is Code.PATCH and diagnostic.span.path == f"environments/{broken.name}"
