"""What kompile writes is read back the same by every reader on the way to the cluster.

kustomize reads YAML with go-yaml v3 (YAML 1.2, plus Go's number syntax) and kubectl with go-yaml v2
(YAML 1.1 booleans). PyYAML's emitter quotes only what PyYAML itself would misread, so strings such as
0o644, 08, 1e3, y or 2001-1-2 would reach the cluster as numbers, booleans or dates. The real tools are
the oracle here: a ConfigMap holding such strings, as keys and as values, goes through `kubectl
kustomize` and then kubectl's own decoder, and must come out as the same strings.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from ruamel.yaml import YAML

from kompile.emit import emit_yaml

from conftest import kustomize_build, require_kubectl

# Each of these is read as something other than a string by at least one of go-yaml v2, go-yaml v3 or
# PyYAML when written plain; and a few that are strings everywhere, so the test shows both sides.
TRICKY = [
    "0o644",
    "08",
    "09",
    "1e3",
    "1E3",
    "1e+3",
    "1_000",
    "0x1F",
    "0X1F",
    "+12",
    "-0",
    ".5",
    "+.5",
    "-.5e-3",
    "1.",
    "0.",
    "0b101",
    "0644",
    "2001-12-14",
    "2001-1-2",
    "2001-12-14 21:59:43.10",
    "2001-12-14T21:59:43,5Z",  # a comma before the fraction: still a time to go-yaml v3
    "2001-12-14t21:59:43+01:00",
    "y",
    "Y",
    "n",
    "N",
    "yes",
    "No",
    "on",
    "OFF",
    "true",
    "False",
    "~",
    "null",
    "NULL",
    "",
    "1:30",
    "12e",
    "1.4.3",
    "v1.0",
    "10001",
    "0.0.0.0/0",
    "<<",
]


@pytest.mark.kubectl
def test_every_reader_keeps_the_strings_kompile_writes(tmp_path: Path):
    kubectl = require_kubectl()
    # As keys too (kustomize stops at a key it reads as a number); `<<` is no valid ConfigMap key anyway.
    data = {f"k{index}": text for index, text in enumerate(TRICKY)} | {
        text: "as a key" for text in TRICKY if text not in ("", "<<")
    }
    configmap = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "tricky"}, "data": data}
    (tmp_path / "configmap.yaml").write_bytes(emit_yaml(configmap))
    (tmp_path / "kustomization.yaml").write_text("resources: [configmap.yaml]\n")
    built = tmp_path / "built.yaml"
    built.write_text(kustomize_build(tmp_path))
    # kubectl's decoder, as `kubectl apply -f` uses it, on kustomize's output and on kompile's own file.
    for source in (built, tmp_path / "configmap.yaml"):
        result = subprocess.run(
            [kubectl, "label", "--local", "-f", str(source), "checked=yes", "-o", "json"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["data"] == data, f"{source.name}: a string changed on the way"


def test_emitted_strings_read_back_as_strings_in_yaml_1_1_and_1_2():
    """PyYAML (YAML 1.1) and ruamel.yaml (YAML 1.2 core) read every tricky string back unchanged."""
    reader = YAML(typ="safe", pure=True)
    for text in TRICKY:
        emitted = emit_yaml({"value": text, text or "empty": "key"})
        assert yaml.safe_load(emitted)["value"] == text
        assert reader.load(emitted)["value"] == text
        assert (text or "empty") in reader.load(emitted)


@given(st.text(alphabet="0123456789+-._eExXoObB:~yYnN", min_size=1, max_size=6))
def test_number_like_strings_survive_yaml_1_2(text: str):
    """A string kompile leaves plain is one YAML 1.2 reads as that same string."""
    emitted = emit_yaml({"value": text})
    assert YAML(typ="safe", pure=True).load(emitted)["value"] == text


@pytest.mark.parametrize("text", ["hello", "1.4.3", "shop-web", "ghcr.io/acme/shop", "--workers=3", "a1"])
def test_ordinary_strings_stay_plain(text: str):
    assert emit_yaml({"value": text}) == f"value: {text}\n".encode()
