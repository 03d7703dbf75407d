"""Bots edit specs, never output: the configurations in examples/bots/ find and change the image each
environment pins, and kompile then compiles what they wrote.

Renovate, Kargo and Argo CD Image Updater do not run here (Renovate needs Node 24 and 530 MB; the others
are controllers), so each is exercised as far as its documented behaviour can be: Renovate's regex
manager on every environment file (RE2 syntax, replacement inside the match), Kargo's yaml-update as its
code edits a line, Image Updater's keys against kompile's schema."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from kompile.compiler import compile_project
from kompile.load.git import OUTPUT_FOLDERS
from kompile.source import parse_document

from conftest import GOLDEN, REPO, copy_example, edit

BOTS = REPO / "examples" / "bots"
RENOVATE = json.loads((BOTS / "renovate.json").read_text())
MANAGER = RENOVATE["customManagers"][0]
# What Renovate accepts in a custom manager (its validator refuses any other key).
MANAGER_FIELDS = {
    "customType",
    "description",
    "managerFilePatterns",
    "matchStrings",
    "matchStringsStrategy",
    "depNameTemplate",
    "packageNameTemplate",
    "datasourceTemplate",
    "versioningTemplate",
    "registryUrlTemplate",
    "currentValueTemplate",
    "extractVersionTemplate",
    "autoReplaceStringTemplate",
    "depTypeTemplate",
}


def _python(pattern: str) -> re.Pattern:
    """A Renovate (JavaScript/RE2) pattern in Python's syntax: only the named groups differ."""
    return re.compile(pattern.replace("(?<", "(?P<"))


def _file_patterns() -> list[re.Pattern]:
    patterns = MANAGER["managerFilePatterns"]
    assert all(p.startswith("/") and p.endswith("/") for p in patterns)  # regex form, not a glob
    return [re.compile(p[1:-1]) for p in patterns]


def _repos() -> list[Path]:
    return [REPO, *(p / "input" for p in sorted(GOLDEN.iterdir()) if (p / "input").is_dir())]


def test_the_renovate_configuration_is_current_and_ignores_every_output_folder():
    assert set(MANAGER) <= MANAGER_FIELDS and "fileMatch" not in MANAGER  # renamed in Renovate 40.2
    for pattern in MANAGER["matchStrings"]:
        # RE2: no lookaround, no backreference.
        assert not re.search(r"\(\?<?[=!]|\\[1-9]", pattern), pattern
    assert sorted(RENOVATE["ignorePaths"]) == sorted(f"{folder}/**" for folder in OUTPUT_FOLDERS)


def test_renovate_finds_the_tag_and_digest_every_environment_pins():
    matchers = [_python(p) for p in MANAGER["matchStrings"]]
    found = 0
    for root in _repos():
        output = compile_project(root)
        for name, compiled in output.environments.items():
            rel = output.project.environments[name].rel
            assert any(p.search(rel) for p in _file_patterns()), rel
            text = (root / rel).read_text()
            matches = [m for matcher in matchers for m in matcher.finditer(text)]
            image = compiled.env.image
            if image.tag is None or "tag" not in text:  # a digest alone (prod), or the App's tag
                assert not matches, (root, rel)
                continue
            assert len(matches) == 1, (root, rel)
            assert matches[0]["currentValue"] == image.tag
            if matches[0]["currentDigest"]:
                assert matches[0]["currentDigest"] == image.digest
            found += 1
    assert found >= 5
    # Never a generated file: the patterns cannot name one.
    for folder in OUTPUT_FOLDERS:
        assert not any(p.search(f"{folder}/dev/kustomization.yaml") for p in _file_patterns())


def test_a_renovate_replacement_is_a_spec_change_kompile_compiles(tmp_path: Path):
    root = copy_example(tmp_path / "repo")
    path = root / "environments" / "staging.yaml"
    text = path.read_text()
    match = _python(MANAGER["matchStrings"][0]).search(text)
    # Renovate replaces currentValue inside the matched string, and nothing else in the file.
    start, end = match.span("currentValue")
    path.write_text(text[:start] + "1.4.4" + text[end:])
    assert compile_project(root).environments["staging"].env.image.tag == "1.4.4"
    assert path.read_text().replace("1.4.4", "1.4.3") == text


def _kargo_update(text: str, rel: str, key: str, value: str) -> str:
    """Kargo's yaml-update (pkg/yaml SetValuesInBytes): the new value from the old one's column to the
    end of its line, quoted only when it would read as a number, a boolean or JSON."""
    node = parse_document(text, rel)
    *parents, last = key.split(".")
    for part in parents:
        node = node[part]
    span = node.value_span(last)
    lines = text.split("\n")
    line = lines[span.line - 1]
    try:
        json.loads(value)  # a number, a boolean, null or JSON: Kargo quotes it to keep it a string
        quoted = json.dumps(value)
    except ValueError:
        quoted = value
    lines[span.line - 1] = line[: span.col - 1] + quoted
    return "\n".join(lines)


def test_kargos_yaml_update_on_a_block_style_image(tmp_path: Path):
    stage = yaml.safe_load((BOTS / "kargo-stage.yaml").read_text())
    update = next(
        s for s in stage["spec"]["promotionTemplate"]["spec"]["steps"] if s["uses"] == "yaml-update"
    )
    rel = update["config"]["path"].removeprefix("./repo/")
    keys = [u["key"] for u in update["config"]["updates"]]
    assert keys == ["spec.image.tag", "spec.image.digest"]
    root = copy_example(tmp_path / "repo")
    digest = "sha256:" + "ab" * 32
    # What the comments ask for: block style, one value per line (yaml-update edits existing keys only).
    edit(root, rel, 'image: {tag: "1.4.3"}', f'image:\n    tag: "1.4.3"\n    digest: sha256:{"cd" * 32}')
    text = (root / rel).read_text()
    text = _kargo_update(text, rel, keys[0], "1.5.0")
    text = _kargo_update(text, rel, keys[1], digest)
    (root / rel).write_text(text)
    image = compile_project(root).environments["staging"].env.image
    assert (image.tag, image.digest) == ("1.5.0", digest)


def test_kargos_yaml_update_breaks_a_flow_style_image_as_the_example_warns():
    text = (REPO / "environments" / "staging.yaml").read_text()
    assert 'image: {tag: "1.4.3"}' in text
    broken = _kargo_update(text, "environments/staging.yaml", "spec.image.tag", "1.5.0")
    assert "image: {tag: 1.5.0\n" in broken  # the closing brace is gone: why the example asks for block style
    assert "block style" in (BOTS / "kargo-stage.yaml").read_text()


def test_image_updaters_keys_are_environment_settings():
    updater = yaml.safe_load((BOTS / "image-updater.yaml").read_text())
    ref = updater["spec"]["applicationRefs"][0]
    target = ref["writeBackConfig"]["gitConfig"]["writeBackTarget"]
    assert target == "helmvalues:/environments/staging.yaml" and (REPO / target.split(":/", 1)[1]).is_file()
    assert ref["namePattern"] in {
        p.stem.removeprefix("application-") for p in (REPO / "gitops" / "argocd").glob("application-*.yaml")
    }
    schema = json.loads((REPO / "kompile.schema.json").read_text())
    image = schema["$defs"]["Environment"]["properties"]["spec"]["properties"]["image"]
    variants = image.get("anyOf") or image.get("oneOf") or [image]
    props = next(v["properties"] for v in variants if v.get("type") == "object")
    helm = ref["images"][0]["manifestTargets"]["helm"]
    for key in helm.values():
        assert key.startswith("spec.image.") and key.removeprefix("spec.image.") in props
    assert ref["images"][0]["commonUpdateSettings"]["updateStrategy"] != "digest"
