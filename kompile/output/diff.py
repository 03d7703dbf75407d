"""Comparing a compiled tree with what is on disk (kompile check)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from kompile.errors import Span
from kompile.output.check import MAX_OUTPUT_BYTES
from kompile.output.committed import Stale, stale_environments
from kompile.output.manifest import digest
from kompile.safefs import TEMP, Refused, Root

if TYPE_CHECKING:
    from kompile.load.project import Project

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
        return {
            "environment": self.environment,
            "object": self.object,
            "change": self.kind.value,
            "path": self.path,
            "old": self.old,
            "new": self.new,
        }


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
        if (
            key
            and all(isinstance(item, dict) and isinstance(item.get(key), str | int) for item in items)
            and len({item[key] for item in items}) == len(items)
        ):
            return {
                _Named(f"{label} {item[key]}"): {k: v for k, v in item.items() if k != key} for item in items
            }
        return items
    return node


def _describe_path(parts: list) -> str:
    # "containers", "container web" -> "container web": the item's label already names its list.
    parts = [p for i, p in enumerate(parts) if not (i + 1 < len(parts) and isinstance(parts[i + 1], _Named))]
    for prefix in POD_TEMPLATE_PREFIXES:
        if (
            tuple(parts[: len(prefix)]) == prefix
            and len(parts) > len(prefix)
            and isinstance(parts[len(prefix)], _Named)
        ):
            parts = parts[len(prefix) :]
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


def diff_environment(
    environment: str, old_objects: list[dict] | None, new_objects: list[dict] | None
) -> list[Change]:
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
    for report, kind in (
        ("dictionary_item_added", ChangeKind.ADDED),
        ("iterable_item_added", ChangeKind.ADDED),
        ("dictionary_item_removed", ChangeKind.REMOVED),
        ("iterable_item_removed", ChangeKind.REMOVED),
        ("values_changed", ChangeKind.CHANGED),
        ("type_changes", ChangeKind.CHANGED),
    ):
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
                twin = index.get(
                    (change.path[len(prefix) :], change.kind, repr(change.old), repr(change.new))
                )
                if twin is not None:
                    break
        else:
            twin = None
        if twin is not None:
            continue  # reported once, on the workload
        if any(
            index.get((prefix + change.path, change.kind, repr(change.old), repr(change.new)))
            for prefix in ("spec.template.", "spec.jobTemplate.spec.template.")
        ):
            change = Change(
                change.environment,
                change.object,
                change.kind,
                change.path + " (and its pods)",
                change.old,
                change.new,
            )
        folded.append(change)
    return folded


def diff_project(
    root: Path, base: str | None = None, only: list[str] | None = None
) -> tuple[list[str], list[Change]]:
    """(environments compared, changes). Without `base`: the committed overlays against what the specs
    now produce. With `base`: the specs as they were at that git revision against the specs now.

    Bytes first: both sides are compiled to files (on every core, keeping no objects, each file reduced
    to its digest as it is made, so memory never holds a whole tree), and only the environments whose
    files differ are compiled again to objects and compared semantically."""
    import tempfile

    from kompile.compiler import compile_project
    from kompile.errors import Code, Diagnostic, KompileError, Span
    from kompile.load.git import GitError, export_revision
    from kompile.load.project import require_environments

    if base is None:
        stale = stale_environments(root)
        if stale is not None:
            return _diff_stale(root, stale, only)
    new_files: dict[str, str] = {}
    now = compile_project(root, keep_objects=False, sink=_digests_into(new_files))
    if base is None:
        old_files = _files_on_disk(root)
        if only:  # an environment removed from the specs still has its committed overlay
            require_environments(now.project, only, also=tuple(sorted(_environments(old_files))))
        changed = _changed_environments(old_files, new_files, only)
        before = _committed_objects(root, changed)
    else:
        with tempfile.TemporaryDirectory(prefix="kompile-base-") as scratch:
            try:
                export_revision(root, base, Path(scratch))
            except GitError as exc:
                raise KompileError(
                    [Diagnostic(Code.GIT, str(exc), Span("."), "--base takes a branch, tag or commit")]
                ) from None
            old_files = {}
            try:
                then = compile_project(Path(scratch), keep_objects=False, sink=_digests_into(old_files))
            except (
                KompileError
            ) as exc:  # the specs as they were: say so, so nobody looks for it in the working tree
                raise KompileError(
                    [
                        Diagnostic(d.code, f"at {base}: {d.message}", d.span, d.hint, d.severity)
                        for d in exc.diagnostics
                    ]
                ) from None
            if only:
                require_environments(now.project, only, also=then.names)
            changed = _changed_environments(old_files, new_files, only)
            before = _objects(Path(scratch), [n for n in changed if n in then.names], then.project)
    after = _objects(root, [n for n in changed if n in now.names], now.project)
    names = sorted(_environments(new_files) | _environments(old_files))
    names = [n for n in names if not only or n in only]
    return names, _changes(names, changed, set(now.names), before, after)


def _changes(names: list[str], changed, present: set[str], before: dict, after: dict) -> list[Change]:
    """What each environment of `changed` (in the order of names) changes, object by object; one that is
    no longer `present` is said to go first, and once."""
    changes = []
    for name in names:
        if name not in changed:
            continue
        if name not in present:
            changes.append(Change(name, "(the whole environment)", ChangeKind.REMOVED))
        elif before.get(name) is None:
            changes.append(Change(name, "(the whole environment)", ChangeKind.ADDED))
        changes.extend(diff_environment(name, before.get(name), after.get(name)))
    return changes


def _diff_stale(root: Path, stale: Stale, only: list[str] | None) -> tuple[list[str], list[Change]]:
    """diff_project against the committed output, compiling only the environments whose overlays the
    record of the last build cannot vouch for (every one of them, whatever `only` says: their problems
    are raised as a full diff would)."""
    from kompile.compiler import compile_project
    from kompile.load.project import unknown_environments

    names = sorted(stale.environments | stale.unchanged | stale.removed)
    after = (
        {
            name: c.objects
            for name, c in compile_project(root, sorted(stale.environments)).environments.items()
        }
        if stale.environments
        else {}
    )
    if only:  # after the checks, as a full diff does
        unknown_environments(
            sorted(stale.environments | stale.unchanged), only, also=tuple(sorted(stale.removed))
        )
    wanted = [name for name in names if not only or name in only]
    before = _committed_objects(root, {n for n in wanted if n in stale.environments or n in stale.removed})
    changed = stale.environments | stale.removed
    return wanted, _changes(wanted, changed, set(stale.environments | stale.unchanged), before, after)


def _environments(files) -> set[str]:
    return {path.split("/")[1] for path in files if path.startswith("overlays/") and path.count("/") >= 2}


def _digests_into(digests: dict[str, str]):
    """A compiler sink that keeps each base and overlay file's digest, not its bytes."""

    def add(files: dict[str, bytes]) -> None:
        digests.update(
            {path: digest(data) for path, data in files.items() if path.startswith(("bases/", "overlays/"))}
        )

    return add


def _changed_environments(before: dict[str, str], after: dict[str, str], only: list[str] | None) -> set[str]:
    """Environments whose files differ; all of them when the shared base does."""
    names = _environments(before) | _environments(after)
    differing = {
        path
        for path in before.keys() | after.keys()
        if path.startswith(("bases/", "overlays/")) and before.get(path) != after.get(path)
    }
    if any(path.startswith("bases/") for path in differing):
        changed = names
    else:
        changed = {path.split("/")[1] for path in differing}
    return {name for name in changed if not only or name in only}


def _files_on_disk(root: Path) -> dict[str, str]:
    """The committed bases/ and overlays/ by digest: regular files only, bounded in size; a link is an error."""
    from kompile.errors import Code, Diagnostic, KompileError, Span

    files = {}
    try:
        with Root(root) as disk:
            for folder in ("bases", "overlays"):
                for path in disk.walk_files(folder):
                    # (not what an interrupted build staged: the next build removes it)
                    if path.endswith(".yaml") and not any(TEMP.fullmatch(part) for part in path.split("/")):
                        files[path] = digest(disk.read(path, MAX_OUTPUT_BYTES))
    except Refused as exc:
        raise KompileError(
            [
                Diagnostic(
                    Code.MANIFEST,
                    f"cannot read the committed output: {exc.rel}: {exc.why}",
                    Span(exc.rel),
                    "the output folders hold only the files kompile writes; remove it and run "
                    "`kompile build`",
                )
            ]
        ) from None
    except OSError as exc:
        raise KompileError(
            [Diagnostic(Code.MANIFEST, f"cannot read the committed output: {exc.strerror}", Span("overlays"))]
        ) from None
    return files


def _objects(root: Path, names: list[str], project: Project) -> dict[str, list[dict]]:
    """The objects of these environments of a project compiled and checked whole already (their files
    compared): neither read, checked nor laid out again."""
    from kompile.compiler import compile_project

    if not names:
        return {}
    compiled = compile_project(root, sorted(names), loaded=project, layout=False)
    return {name: c.objects for name, c in compiled.environments.items()}


def _committed_objects(root: Path, names: set[str]) -> dict[str, list[dict] | None]:
    from kompile.errors import Code, Diagnostic, KompileError
    from kompile.output.overlay import OverlayError, read_overlay

    try:
        return {name: read_overlay(root, name) for name in sorted(names)}
    except OverlayError as exc:
        raise KompileError(
            [
                Diagnostic(
                    Code.MANIFEST,
                    f"cannot read the committed output: {exc}",
                    exc.span,
                    "run `kompile build` to write it again (or compare revisions with --base)",
                )
            ]
        ) from None
    except OSError as exc:
        raise KompileError(
            [
                Diagnostic(
                    Code.MANIFEST,
                    f"cannot read the committed output: {exc.strerror}",
                    Span("overlays"),
                    "run `kompile build` to write it again",
                )
            ]
        ) from None
