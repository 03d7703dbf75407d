"""Changing what an environment runs (set-image, promote) by editing its spec file in place.

A release pipeline calls this, and a person reviews the diff, so the file must keep every comment,
key order, quote and odd indentation: only the image's value changes. A round-trip YAML dumper
re-indents and re-spaces what it re-emits (measured with ruamel.yaml), so instead this module takes
the exact positions of the image's nodes from the loader (libyaml's marks) and splices new text in.
The result is parsed again and must mean exactly the old document with the new image, or nothing is
written. Running the same edit twice changes nothing the second time.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from kompile.errors import Code, Collector, Diagnostic, KompileError, Span
from kompile.inputs import read_bytes
from kompile.load.merge import app_settings, effective_spec
from kompile.load.project import (
    Project,
    Specs,
    input_digest,
    load_project,
    load_spec,
    require_environments,
)
from kompile.safefs import Refused, Root
from kompile.source import YMap, parse_document, plain
from kompile.spec import IMAGE_DIGEST, IMAGE_TAG, check_no_latest

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class Edit:
    path: str  # relative to the root
    before: str
    after: str
    # What was read to make it, and when (time.time_ns() before reading): the build after the edit
    # reads again only the file it changed (reloaded).
    project: Project | None = field(default=None, compare=False, repr=False)
    started: int | None = field(default=None, compare=False)
    doc: YMap | None = field(default=None, compare=False, repr=False)  # `after` as kompile reads it

    @property
    def changed(self) -> bool:
        return self.before != self.after


def set_image(root: Path, environment: str, tag: str | None, digest: str | None) -> Edit:
    """Pin `environment` to exactly this tag and/or digest (what is not given is removed)."""
    _check_reference(tag, digest)
    started = time.time_ns()
    project = load_project(root)
    require_environments(project, [environment])
    return _pin(project, environment, {"tag": tag, "digest": digest}, started)


def promote(root: Path, source: str, target: str) -> Edit:
    """Give `target` the image (tag and digest) that `source` runs."""
    started = time.time_ns()
    project = load_project(root)
    require_environments(project, [source, target])
    image, _ = effective_spec(project, source)
    image = image.get("image") or {}
    if not image.get("tag") and not image.get("digest"):
        raise KompileError(
            [
                Diagnostic(
                    Code.LATEST_TAG,
                    f"environment '{source}' pins no tag or digest to promote",
                    Span(project.environments[source].rel),
                    f"kompile set-image {source} --tag ...",
                )
            ]
        )
    return _pin(project, target, {"tag": image.get("tag"), "digest": image.get("digest")}, started)


def reloaded(edit: Edit) -> Project | None:
    """The project the edit was made from, as it reads once the edit is written: the edited file read
    and checked again, every other as it was read (and no merge of the old file kept). None when the
    edit was made without one."""
    project = edit.project
    if project is None:
        return None
    inputs = {rel: sha for rel, sha in project.inputs.items() if rel != edit.path}
    identities = {rel: seen for rel, seen in project.identities.items() if rel != edit.path}
    out = Collector()
    parsed = (edit.after, edit.doc) if edit.doc is not None else None
    loaded = load_spec(project.root, edit.path, inputs, identities, out, parsed)
    out.raise_if_any()
    files = dict(project.environments.items())
    if (
        loaded is None
        or loaded.kind != "Environment"
        or loaded.name not in files
        or files[loaded.name].rel != edit.path
    ):
        return None  # (an edit of the image changes neither; loading every file says what happened)
    files[loaded.name] = loaded
    return Project(
        root=project.root, app=project.app, environments=Specs.of(files), inputs=inputs, identities=identities
    )


def write_edit(root: Path, edit: Edit) -> None:
    """Replace the spec file in one step (a temporary file renamed over it), never through a link."""
    if edit.changed:
        try:
            with Root(root) as disk:
                disk.write(edit.path, edit.after.encode("utf-8"))
        except (OSError, Refused) as exc:
            why = exc.why if isinstance(exc, Refused) else exc.strerror
            raise KompileError(
                [Diagnostic(Code.WRITE, f"cannot write {edit.path}: {why}", Span(edit.path))]
            ) from None


# ---------------------------------------------------------------------------------------------


def _check_reference(tag: str | None, digest: str | None) -> None:
    if not tag and not digest:
        raise KompileError([Diagnostic(Code.INVALID_VALUE, "give --tag, --digest or both", None)])
    problems = []
    if tag is not None and (not re.match(IMAGE_TAG, tag) or check_no_latest(tag)):
        problems.append(
            Diagnostic(
                Code.INVALID_VALUE if tag != "latest" else Code.LATEST_TAG,
                f"'{tag}' is not an image tag kompile accepts",
                None,
                "letters, digits, '.', '_' and '-', not 'latest'",
            )
        )
    if digest is not None and not re.match(IMAGE_DIGEST, digest):
        problems.append(
            Diagnostic(
                Code.INVALID_VALUE, f"'{digest}' is not an image digest", None, "sha256:<64 hex digits>"
            )
        )
    if problems:
        raise KompileError(problems)


def _pin(project: Project, environment: str, wanted: dict[str, str | None], started: int) -> Edit:
    """The edit that pins `wanted`, with the project it was made from (read from `started` on)."""
    spec_file = project.environments[environment]
    data = read_bytes(project.root, spec_file.rel)
    before = data.decode("utf-8")
    effective, chain = effective_spec(project, environment)
    current = effective.get("image") or {}
    if all(current.get(key) == value for key, value in wanted.items()):
        return Edit(spec_file.rel, before, before)  # already so: running twice changes nothing (no build)
    inherited = _inherited_image(project, chain)
    # What this file must say: each key set to the wanted value, or null where an inherited value must go.
    own: dict[str, str | None] = {key: value for key, value in wanted.items() if value is not None}
    own.update(
        {key: None for key, value in wanted.items() if value is None and inherited.get(key) is not None}
    )
    after = _splice_image(
        before, spec_file.rel, own, drop={k for k, v in wanted.items() if v is None} - set(own)
    )
    # What the project read is the file as it is now (the same digest), or it is read again.
    same = input_digest(data) == project.inputs.get(spec_file.rel)
    old = spec_file.doc if same else parse_document(before, spec_file.rel)
    doc = _verify(old, after, spec_file.rel, own)
    return Edit(spec_file.rel, before, after, project=project, started=started, doc=doc)


def _inherited_image(project: Project, chain: list[str]) -> dict:
    """The image an environment (the last of the chain it extends) would have if its own file said nothing
    about it."""
    inherited = dict(app_settings(project).get("image") or {})
    for name in chain[:-1]:
        layer = project.environments[name].spec.get("image")
        for key, value in layer.items() if isinstance(layer, dict) else ():
            if value is None:
                inherited.pop(key, None)
            else:
                inherited[key] = value
    return inherited


def _compose(text: str, rel: str):
    try:
        return yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError as exc:  # validated already; only a file changed meanwhile gets here
        raise KompileError([Diagnostic(Code.YAML_SYNTAX, f"cannot edit {rel}: {exc}", Span(rel))]) from None


def _entry(mapping, key: str):
    for key_node, value_node in mapping.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
            return key_node, value_node
    return None


def _scalar(value: str | None, style: str | None) -> str:
    """value written as the old one was (style: "'", '"', "" for plain; None for a new key): quoted, or
    plain where that still reads as the same string (a digest does; a tag like 1.10 would be a number)."""
    if value is None:
        return "null"
    if style == "'":
        return "'" + value.replace("'", "''") + "'"
    plain = style == "" or (style is None and value.startswith("sha"))  # new keys: digests plain, tags quoted
    return value if plain and _reads_as_string(value) else json.dumps(value)


def _reads_as_string(value: str) -> bool:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._:@/-]*", value):
        return False
    try:
        return yaml.load(value, Loader=_Loader) == value
    except yaml.YAMLError:
        return False


def _splice_image(text: str, rel: str, own: dict[str, str | None], drop: set[str]) -> str:
    root = _compose(text, rel)
    spec = _entry(root, "spec")
    if spec is None or not isinstance(spec[1], yaml.MappingNode) or not spec[1].value:
        raise KompileError(
            [Diagnostic(Code.MISSING_FIELD, f"{rel} has no spec: mapping to pin the image in", Span(rel))]
        )
    image = _entry(spec[1], "image")
    if image is None:
        return _insert_entry(
            text, spec[1], "image", _flow([(key, value, None) for key, value in own.items()])
        )
    node = image[1]
    if not isinstance(node, yaml.MappingNode):  # `image: repo` shorthand becomes a mapping
        items = (
            [("repository", node.value, node.style)]
            if isinstance(node, yaml.ScalarNode) and node.value
            else []
        )
        items += [(key, value, None) for key, value in own.items()]
        return text[: node.start_mark.index] + _flow(items) + text[node.end_mark.index :]
    present = {key.value: value for key, value in node.value}
    if all(key in present for key in own) and not drop & present.keys():
        # Only values change: replace each scalar where it stands, in its own quoting.
        edits = [
            (present[key].start_mark.index, present[key].end_mark.index, _scalar(value, present[key].style))
            for key, value in own.items()
        ]
        for start, end, replacement in sorted(edits, reverse=True):
            text = text[:start] + replacement + text[end:]
        return text
    if node.flow_style:  # {tag: "1.4.3"} -> {digest: sha256:...}: rewrite the mapping, keys in their order
        items = [
            (key.value, own[key.value], value.style)
            if key.value in own
            else (key.value, value.value, value.style)
            for key, value in node.value
            if key.value not in drop
        ]
        items += [(key, value, None) for key, value in own.items() if key not in present]
        return text[: node.start_mark.index] + _flow(items) + text[node.end_mark.index :]
    return _edit_block(text, node, own, drop)


def _flow(items: list[tuple[str, str | None, str | None]]) -> str:
    return "{" + ", ".join(f"{key}: {_scalar(value, style)}" for key, value, style in items) + "}"


def _line_start(text: str, index: int) -> int:
    return text.rfind("\n", 0, index) + 1


def _line_end(text: str, index: int) -> int:
    end = text.find("\n", index)
    return len(text) if end < 0 else end + 1


def _insert_entry(text: str, mapping, key: str, value_text: str) -> str:
    """A new `key: value` line after the mapping's last entry, indented like its other keys."""
    indent = " " * mapping.value[0][0].start_mark.column
    at = _entry_end(text, mapping.value[-1][1])
    line = f"{indent}{key}: {value_text}\n"
    if at > 0 and not text[:at].endswith("\n"):
        line = "\n" + line
    return text[:at] + line + text[at:]


def _edit_block(text: str, mapping, own: dict[str, str | None], drop: set[str]) -> str:
    """A block mapping: change values in place, delete the lines of dropped keys, add lines for new ones
    after its last entry, indented like its keys. Edits apply from the end, so positions stay valid."""
    present = {key.value: (key, value) for key, value in mapping.value}
    edits: list[tuple[int, int, str]] = []
    for key, value in own.items():
        if key in present:
            node = present[key][1]
            edits.append((node.start_mark.index, node.end_mark.index, _scalar(value, node.style)))
    for key in drop & present.keys():
        key_node, value_node = present[key]
        edits.append((_line_start(text, key_node.start_mark.index), _entry_end(text, value_node), ""))
    added = "".join(
        f"{' ' * mapping.value[0][0].start_mark.column}{key}: {_scalar(value, None)}\n"
        for key, value in own.items()
        if key not in present
    )
    if added:
        at = _entry_end(text, mapping.value[-1][1])
        edits.append((at, at, added if text[:at].endswith("\n") or not at else "\n" + added))
    for start, end, replacement in sorted(edits, key=lambda edit: (edit[0], edit[1]), reverse=True):
        text = text[:start] + replacement + text[end:]
    return text


def _entry_end(text: str, value_node) -> int:
    """Where the line holding the end of an entry's value ends (after its newline)."""
    return _line_end(text, max(value_node.end_mark.index - 1, value_node.start_mark.index))


def _verify(before: YMap, after: str, rel: str, own: dict[str, str | None]) -> YMap:
    """The edited file, as kompile reads it, must mean the old one with the new image: anything else is a
    bug, not a write. Returns its parse."""
    try:
        parsed = parse_document(after, rel)
    except KompileError:
        parsed = None
    old, new = plain(before), plain(parsed) if parsed is not None else {}
    old_spec = old.get("spec") if isinstance(old.get("spec"), dict) else {}
    new_spec = new.get("spec") if isinstance(new.get("spec"), dict) else {}
    old_image, new_image = old_spec.pop("image", None), new_spec.pop("image", None)
    expected = (
        dict(old_image) if isinstance(old_image, dict) else ({"repository": old_image} if old_image else {})
    )
    for key in ("tag", "digest"):
        expected.pop(key, None)
    expected.update(own)
    new_image = dict(new_image) if isinstance(new_image, dict) else {}
    if parsed is None or old != new or new_image != expected:
        raise KompileError(
            [
                Diagnostic(
                    Code.INVALID_VALUE,
                    f"cannot edit the image of {rel} in place (an unusual layout?)",
                    Span(rel),
                    "edit the image by hand; kompile refuses to rewrite more than the image",
                )
            ]
        )
    return parsed
