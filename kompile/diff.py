"""Comparing a compiled tree with what is on disk (kompile check)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path

from kompile.manifest import MANIFEST, Manifest, read_manifest


@dataclass
class TreeChanges:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.added or self.changed or self.removed)


def compare_with_disk(root: Path, files: dict[str, bytes], manifest: Manifest, owned: tuple[str, ...]) -> TreeChanges:
    """What `kompile build` would add, change or remove; empty when it would do nothing.

    `manifest` is the one the build would write; a stale record of owned files counts as a change.
    """
    changes = TreeChanges()
    for path, data in files.items():
        try:
            current = (root / path).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError):
            changes.added.append(path)
            continue
        if current != data:
            changes.changed.append(path)
    old = read_manifest(root)
    for path in old.files if old else ():
        if path not in files and any(path.startswith(folder + "/") for folder in owned) and (root / path).exists():
            changes.removed.append(path)
    # The record of what kompile owns must be current too (the inputs it lists are only a cache key).
    if old is None:
        changes.added.append(MANIFEST)
    elif old.files != manifest.files:
        changes.changed.append(MANIFEST)
    return changes


# ---------------------------------------------------------------------------------------------
# What a change does to each environment, object by object (kompile diff).


class ChangeKind(enum.Enum):
    ADDED = "added"
    REMOVED = "removed"
    CHANGED = "changed"


@dataclass(frozen=True)
class Change:
    environment: str
    object: str  # Kind/name
    kind: ChangeKind
    path: str = ""  # the setting, e.g. "container web image" or "spec.maxReplicas"; empty for a whole object
    old: object = None
    new: object = None

    def as_dict(self) -> dict:
        return {"environment": self.environment, "object": self.object, "change": self.kind.value,
                "path": self.path, "old": self.old, "new": self.new}


# Lists of named things are compared by name, not position: {list field: (key, how a reader names one)}.
NAMED_LISTS = {
    "containers": ("name", "container"),
    "initContainers": ("name", "init container"),
    "env": ("name", "env"),
    "volumes": ("name", "volume"),
    "volumeMounts": ("mountPath", "mount"),
    "ports": ("name", "port"),
    "httpHeaders": ("name", "header"),
    "topologySpreadConstraints": ("topologyKey", "spread"),
    "imagePullSecrets": ("name", "pull secret"),
}
POD_TEMPLATE_PREFIXES = (("spec", "template", "spec"), ("spec", "jobTemplate", "spec", "template", "spec"))


class _Named(str):
    """A key standing for an item of a named list (shown as 'container web')."""


def _by_name(node, field_name: str | None = None):
    if isinstance(node, dict):
        return {key: _by_name(value, key) for key, value in node.items()}
    if isinstance(node, list):
        items = [_by_name(item) for item in node]
        key, label = NAMED_LISTS.get(field_name or "", (None, None))
        if key and all(isinstance(item, dict) and isinstance(item.get(key), str | int) for item in items) \
                and len({item[key] for item in items}) == len(items):
            return {_Named(f"{label} {item[key]}"): {k: v for k, v in item.items() if k != key} for item in items}
        return items
    return node


def _describe_path(parts: list) -> str:
    # "containers", "container web" -> "container web": the item's label already names its list.
    parts = [p for i, p in enumerate(parts) if not (i + 1 < len(parts) and isinstance(parts[i + 1], _Named))]
    for prefix in POD_TEMPLATE_PREFIXES:
        if tuple(parts[:len(prefix)]) == prefix and len(parts) > len(prefix) and isinstance(parts[len(prefix)], _Named):
            parts = parts[len(prefix):]
            break
    tokens: list[str] = []
    plain: list[str] = []
    for part in parts:
        if isinstance(part, _Named):
            if plain:
                tokens.append(".".join(plain))
                plain = []
            tokens.append(str(part))
        elif isinstance(part, int):
            (plain.append(f"{plain.pop()}[{part}]") if plain else tokens.append(f"[{part}]"))
        else:
            plain.append(str(part))
    if plain:
        tokens.append(".".join(plain))
    return " ".join(tokens)


def _plain_value(value):
    if isinstance(value, dict):
        return {str(k): _plain_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain_value(v) for v in value]
    return value


def diff_environment(environment: str, old_objects: list[dict] | None, new_objects: list[dict] | None) -> list[Change]:
    """Semantic changes between two renderings of one environment. DeepDiff runs only on objects whose
    canonical form differs, so unchanged environments cost one comparison each."""
    def key(obj):
        return f"{obj['kind']}/{obj['metadata']['name']}"

    old = {key(o): o for o in old_objects or ()}
    new = {key(o): o for o in new_objects or ()}
    changes: list[Change] = []
    for name in sorted(old.keys() | new.keys()):
        if name not in new:
            changes.append(Change(environment, name, ChangeKind.REMOVED))
        elif name not in old:
            changes.append(Change(environment, name, ChangeKind.ADDED))
        elif old[name] != new[name]:
            changes.extend(_object_changes(environment, name, old[name], new[name]))
    return changes


def _object_changes(environment: str, name: str, old: dict, new: dict) -> list[Change]:
    from deepdiff import DeepDiff  # heavy: imported only when something did change

    before, after = _by_name(old), _by_name(new)
    tree = DeepDiff(before, after, view="tree", verbose_level=2)
    changes = []
    for report, kind in (("dictionary_item_added", ChangeKind.ADDED), ("iterable_item_added", ChangeKind.ADDED),
                         ("dictionary_item_removed", ChangeKind.REMOVED), ("iterable_item_removed", ChangeKind.REMOVED),
                         ("values_changed", ChangeKind.CHANGED), ("type_changes", ChangeKind.CHANGED)):
        for level in tree.get(report, ()):
            path = _describe_path(level.path(output_format="list"))
            old_value = None if kind is ChangeKind.ADDED else _plain_value(level.t1)
            new_value = None if kind is ChangeKind.REMOVED else _plain_value(level.t2)
            changes.append(Change(environment, name, kind, path, old_value, new_value))
    return sorted(_fold_pod_metadata(changes), key=lambda c: (c.path, c.kind.value))


def _fold_pod_metadata(changes: list[Change]) -> list[Change]:
    """A label set on a workload and on its pods alike is one change to a reader."""
    index = {(c.path, c.kind, repr(c.old), repr(c.new)): c for c in changes}
    folded = []
    for change in changes:
        for prefix in ("spec.template.", "spec.jobTemplate.spec.template."):
            if change.path.startswith(prefix + "metadata."):
                twin = index.get((change.path[len(prefix):], change.kind, repr(change.old), repr(change.new)))
                if twin is not None:
                    break
        else:
            twin = None
        if twin is not None:
            continue  # reported once, on the workload
        if any(index.get((prefix + change.path, change.kind, repr(change.old), repr(change.new)))
               for prefix in ("spec.template.", "spec.jobTemplate.spec.template.")):
            change = Change(change.environment, change.object, change.kind, change.path + " (and its pods)", change.old, change.new)
        folded.append(change)
    return folded


def diff_project(root: Path, base: str | None = None, only: list[str] | None = None) -> tuple[list[str], list[Change]]:
    """(environments compared, changes). Without `base`: the committed overlays against what the specs
    now produce. With `base`: the specs as they were at that git revision against the specs now.

    Bytes first: both sides are compiled to files (on every core, keeping no objects), and only the
    environments whose files differ are compiled again to objects and compared semantically."""
    import tempfile

    from kompile.compiler import compile_project
    from kompile.errors import Code, Diagnostic, KompileError, Span
    from kompile.git import GitError, export_revision

    now = compile_project(root, keep_objects=False)
    if base is None:
        old_files = _files_on_disk(root)
        changed = _changed_environments(old_files, now.files, only)
        before = _committed_objects(root, changed)
    else:
        with tempfile.TemporaryDirectory(prefix="kompile-base-") as scratch:
            try:
                export_revision(root, base, Path(scratch))
            except GitError as exc:
                raise KompileError([Diagnostic(Code.GIT, str(exc), Span("."), "--base takes a branch, tag or commit")]) from None
            then = compile_project(Path(scratch), keep_objects=False)
            old_files = then.files
            changed = _changed_environments(old_files, now.files, only)
            before = _objects(Path(scratch), [n for n in changed if n in then.names])
    after = _objects(root, [n for n in changed if n in now.names])
    names = sorted(_environments(now.files) | _environments(old_files))
    names = [n for n in names if not only or n in only]
    changes = [change for name in names if name in changed
               for change in diff_environment(name, before.get(name), after.get(name))]
    return names, changes


def _environments(files) -> set[str]:
    return {path.split("/")[1] for path in files if path.startswith("overlays/") and path.count("/") >= 2}


def _changed_environments(before: dict[str, bytes], after: dict[str, bytes], only: list[str] | None) -> set[str]:
    """Environments whose files differ; all of them when the shared base does."""
    names = _environments(before) | _environments(after)
    differing = {path for path in before.keys() | after.keys()
                 if path.startswith(("bases/", "overlays/")) and before.get(path) != after.get(path)}
    if any(path.startswith("bases/") for path in differing):
        changed = names
    else:
        changed = {path.split("/")[1] for path in differing}
    return {name for name in changed if not only or name in only}


def _files_on_disk(root: Path) -> dict[str, bytes]:
    files = {}
    for folder in ("bases", "overlays"):
        for path in sorted((root / folder).rglob("*.yaml")) if (root / folder).is_dir() else ():
            if path.is_file():
                files[path.relative_to(root).as_posix()] = path.read_bytes()
    return files


def _objects(root: Path, names: list[str]) -> dict[str, list[dict]]:
    from kompile.compiler import compile_project

    if not names:
        return {}
    return {name: c.objects for name, c in compile_project(root, sorted(names)).environments.items()}


def _committed_objects(root: Path, names: set[str]) -> dict[str, list[dict] | None]:
    from kompile.errors import Code, Diagnostic, KompileError, Span
    from kompile.layout import OVERLAYS
    from kompile.overlay import OverlayError, read_overlay

    try:
        return {name: read_overlay(root, name) for name in sorted(names)}
    except OverlayError as exc:
        raise KompileError([Diagnostic(Code.MANIFEST, f"cannot read the committed output: {exc}", Span(OVERLAYS),
                                       "run `kompile check`, or compare revisions with --base")]) from None


def unchanged_since_build(root: Path) -> bool:
    """True when the manifest proves the output current without compiling: the same kompile built it
    from inputs with exactly these bytes, and every output file still has the bytes it wrote.
    (It trusts the manifest; where a pull request could forge it, run `kompile check --full`.)"""
    from kompile import __version__
    from kompile.errors import KompileError
    from kompile.manifest import digest
    from kompile.project import spec_paths

    try:
        manifest = read_manifest(root)
    except KompileError:  # an unreadable manifest is reported by the full check
        return False
    if manifest is None or not manifest.inputs or manifest.generator != f"kompile {__version__}":
        return False
    try:
        specs = set(spec_paths(root))
        if specs != {p for p in manifest.inputs if p.startswith("environments/")}:
            return False
        for path, recorded in manifest.inputs.items():
            if digest((root / path).read_bytes().replace(b"\r\n", b"\n")) != recorded:
                return False
        for path, hashes in manifest.files.items():
            if len(hashes) != 1 or digest((root / path).read_bytes()) != hashes[0]:
                return False
    except (OSError, KompileError):
        return False
    return True
