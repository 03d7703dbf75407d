"""overlay.py, the reader behind `kompile diff`, builds exactly what `kubectl kustomize` builds from
every golden overlay (it implements the part of kustomize kompile's output uses)."""

from __future__ import annotations

import pytest
import yaml

from kompile.output.overlay import read_overlay
from kompile.render import object_id

from conftest import GOLDEN, golden_overlays, kustomize_build

pytestmark = pytest.mark.kubectl


@pytest.mark.parametrize(("case", "env"), golden_overlays(), ids=[f"{c}/{e}" for c, e in golden_overlays()])
def test_reader_equals_kustomize(case: str, env: str):
    root = GOLDEN / case / "expected"
    theirs = {object_id(o): o for o in yaml.safe_load_all(kustomize_build(root / "overlays" / env)) if o}
    ours = {object_id(o): o for o in read_overlay(root, env)}
    assert ours.keys() == theirs.keys()
    for key, obj in theirs.items():
        assert ours[key] == obj, key


def test_no_overlay_reads_as_none(tmp_path):
    assert read_overlay(tmp_path, "nowhere") is None
