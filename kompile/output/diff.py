"""Comparing a compiled tree with what is on disk (kompile check)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from kompile.errors import KompileError, Span
from kompile.k8s.strategic import same
from kompile.output.check import MAX_OUTPUT_BYTES
from kompile.output.committed import Stale, stale_environments
from kompile.output.manifest import digest
from kompile.safefs import TEMP, Refused, Root

if TYPE_CHECKING:
    from kompile.layout import Compiled
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


# DeepDiff reports a mapping whose keys are mostly new (fewer than this share of them in both) as one new
# value, not key by key (its default, given here so that _differing keeps to the same rule).
WHOLE_BELOW = 0.33


def _differing(before, after):
    """The two trees without (most of) the mapping entries they hold alike, at any depth: DeepDiff reports
    the same (the entries left keep their paths; lists, whose paths are positions, are kept whole; a
    mapping DeepDiff reports whole is kept whole, and enough alike entries are kept in the others for it
    to go on reporting them key by key), and walks only what changed (an environment variable added to a
    ConfigMap of thousands)."""
    if type(before) is not dict or type(after) is not dict:
        return before, after
    shared = sum(1 for key in before if key in after)
    union = len(before) + len(after) - shared
    if union > 1 and shared / union < WHOLE_BELOW:
        return before, after  # (reported whole: as it is)
    # Pruning k alike keys leaves (shared - k) / (union - k) of them shared: kept at or over the threshold.
    prunable = shared
    while prunable and union - prunable > 1 and (shared - prunable) / (union - prunable) < WHOLE_BELOW:
        prunable = max(0, min(prunable - 1, int((shared - WHOLE_BELOW * union) / (1 - WHOLE_BELOW))))
    left, right = {}, {}
    for key, value in before.items():
        if key not in after:
            left[key] = value
            continue
        other = after[key]
        if prunable and same(value, other):  # (equal, kinds and all: nothing DeepDiff could report)
            prunable -= 1
            continue
        left[key], right[key] = _differing(value, other)
    for key, value in after.items():
        if key not in before:
            right[key] = value
    return left, right


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
        elif not same(old[name], new[name]):  # (kinds and all: 1 to true is a change)
            changes.extend(_object_changes(environment, name, old[name], new[name]))
    return changes


def _object_changes(environment: str, name: str, old: dict, new: dict) -> list[Change]:
    from deepdiff import DeepDiff  # heavy: imported only when something did change

    before, after = _differing(_by_name(old), _by_name(new))
    tree = DeepDiff(before, after, view="tree", verbose_level=2, threshold_to_diff_deeper=WHOLE_BELOW)
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

    Bytes first: the specs now are compiled to files (on every core, keeping no objects, each file
    reduced to its digest as it is made, so memory never holds a whole tree), and only an environment
    whose files differ from before is compared object by object, where it was compiled: a worker sends
    back its changes, not its objects, and nothing is compiled twice."""
    import tempfile

    from kompile.compiler import compile_project
    from kompile.errors import Code, Diagnostic
    from kompile.load.git import GitError, export_revision
    from kompile.load.project import require_environments

    if base is None:
        stale = stale_environments(root)
        if stale is not None:
            return _diff_stale(root, stale, only)
        try:
            committed = _files_on_disk(root)
        except KompileError:
            _specs_first(root)
            raise
        comparison = _Comparison(committed, only, committed=root)
        now = compile_project(root, keep_objects=False, sink=comparison.add, examine=comparison.examine)
        if only:  # an environment removed from the specs still has its committed overlay
            require_environments(now.project, only, also=tuple(sorted(_environments(comparison.before))))
        names = comparison.names()
        return _compared(comparison, names, now.examined, set(names) - set(now.names))
    with tempfile.TemporaryDirectory(prefix="kompile-base-") as scratch:
        try:
            export_revision(root, base, Path(scratch))
        except GitError as exc:
            _specs_first(root)
            raise KompileError(
                [Diagnostic(Code.GIT, str(exc), Span("."), "--base takes a branch, tag or commit")]
            ) from None
        old_files: dict[str, str] = {}
        try:
            then = compile_project(Path(scratch), keep_objects=False, sink=_digests_into(old_files))
        except KompileError as exc:  # said so, so nobody looks for them in the working tree
            _specs_first(root)
            raise KompileError(
                [
                    Diagnostic(d.code, f"at {base}: {d.message}", d.span, d.hint, d.severity)
                    for d in exc.diagnostics
                ]
            ) from None
        comparison = _Comparison(old_files, only, revision=then.project, names=then.names)
        now = compile_project(root, keep_objects=False, sink=comparison.add, examine=comparison.examine)
        if only:
            require_environments(now.project, only, also=then.names)
        names = comparison.names()
        return _compared(comparison, names, now.examined, set(names) - set(now.names))


def _specs_first(root: Path) -> None:
    """Raises the problems of the specs now, if they have any: those come first (a diff reads what it
    compares with first, so that its workers hold it; the problems of the specs are still the first said)."""
    from kompile.compiler import compile_project

    compile_project(root, keep_objects=False, sink=lambda files: None)


class _Comparison:
    """What a compile of the specs now changes against the files before (by digest): `add` takes the
    files as they are made (the base's first), `examine` runs where each environment compiles and
    compares its objects with those before (the committed overlay, or the revision's specs compiled
    again) only when its files differ, or the base's do. What it returns is small and picklable: a
    worker sends it back instead of the objects."""

    def __init__(
        self,
        before: dict[str, str] | None,  # None: compare every environment compiled, whatever its files
        only: list[str] | None,
        committed: Path | None = None,
        revision: Project | None = None,
        names: tuple[str, ...] = (),
    ):
        self.before = before
        self.only = set(only) if only else None
        self.committed = committed
        self.revision = revision
        self.revision_names = set(names)
        self.after: dict[str, str] = {}
        self.by_environment: dict[str, dict[str, str]] = {}
        for path, value in (before or {}).items():
            if path.startswith("overlays/") and path.count("/") >= 2:
                self.by_environment.setdefault(path.split("/")[1], {})[path] = value
        self._base_differs: bool | None = None
        self._revision_base = None  # the revision's base, compiled once per process when needed

    def add(self, files: dict[str, bytes]) -> None:
        self.after.update(
            {path: digest(data) for path, data in files.items() if path.startswith(("bases/", "overlays/"))}
        )

    def base_differs(self) -> bool:
        if self._base_differs is None:
            self._base_differs = {p: d for p, d in self.after.items() if p.startswith("bases/")} != {
                p: d for p, d in (self.before or {}).items() if p.startswith("bases/")
            }
        return self._base_differs

    def names(self) -> list[str]:
        """Every environment with files before or now that the diff is about, in order."""
        names = _environments(self.after) | _environments(self.before or {})
        return sorted(name for name in names if self.wanted(name))

    def wanted(self, name: str) -> bool:
        return self.only is None or name in self.only

    def examine(
        self, compiled: Compiled, files: dict[str, bytes]
    ) -> tuple[list[Change], KompileError | None] | None:
        """None when the environment's files are as before; else (its changes, or what kept them from
        being read: raised once the compile is known to be sound)."""
        name = compiled.env.name
        if not self.wanted(name):
            return None
        if self.before is not None:
            prefix = f"overlays/{name}/"
            files_now = {path: digest(data) for path, data in files.items() if path.startswith(prefix)}
            if files_now == self.by_environment.get(name, {}) and not self.base_differs():
                return None
        try:
            before = self._before(name)
        except KompileError as exc:  # (a damaged committed overlay: said after the compile's own problems)
            return [], exc
        whole = [] if before is not None else [Change(name, "(the whole environment)", ChangeKind.ADDED)]
        return [*whole, *diff_environment(name, before, compiled.objects)], None

    def removed(self, name: str) -> list[Change]:
        """The changes of an environment that is no longer in the specs."""
        return [
            Change(name, "(the whole environment)", ChangeKind.REMOVED),
            *diff_environment(name, self._before(name), None),
        ]

    def _before(self, name: str) -> list[dict] | None:
        if self.committed is not None:
            return _committed_objects(self.committed, {name})[name]
        if name not in self.revision_names:
            return None
        from kompile.compiler import compiled_base, environment_objects

        if self._revision_base is None:
            self._revision_base = compiled_base(self.revision)
        return environment_objects(self.revision, self._revision_base, name)


def _compared(
    comparison: _Comparison, names: list[str], examined: dict, gone: set[str]
) -> tuple[list[str], list[Change]]:
    """(the environments compared, their changes in that order): each one compiled as its compile
    examined it, each one `gone` removed whole."""
    changes: list[Change] = []
    for name in names:
        if name in gone:
            changes.extend(comparison.removed(name))
            continue
        found = examined.get(name)
        if found is None:
            continue
        found_changes, problem = found
        if problem is not None:
            raise problem
        changes.extend(found_changes)
    return names, changes


def _diff_stale(root: Path, stale: Stale, only: list[str] | None) -> tuple[list[str], list[Change]]:
    """diff_project against the committed output, compiling only the environments whose overlays the
    record of the last build cannot vouch for (every one of them, whatever `only` says: their problems
    are raised as a full diff would), each compared with its committed overlay where it compiles."""
    from kompile.compiler import compile_project
    from kompile.load.project import unknown_environments

    comparison = _Comparison(None, only, committed=root)
    examined = (
        compile_project(
            root, sorted(stale.environments), keep_objects=False, layout=False, examine=comparison.examine
        ).examined
        if stale.environments
        else {}
    )
    if only:  # after the checks, as a full diff does
        unknown_environments(
            sorted(stale.environments | stale.unchanged), only, also=tuple(sorted(stale.removed))
        )
    names = sorted(stale.environments | stale.unchanged | stale.removed)
    return _compared(comparison, [n for n in names if comparison.wanted(n)], examined, stale.removed)


def _environments(files) -> set[str]:
    return {path.split("/")[1] for path in files if path.startswith("overlays/") and path.count("/") >= 2}


def _digests_into(digests: dict[str, str]):
    """A compiler sink that keeps each base and overlay file's digest, not its bytes."""

    def add(files: dict[str, bytes]) -> None:
        digests.update(
            {path: digest(data) for path, data in files.items() if path.startswith(("bases/", "overlays/"))}
        )

    return add


def _files_on_disk(root: Path) -> dict[str, str]:
    """The committed bases/ and overlays/ by digest: regular files only, bounded in size; a link is an error."""
    from kompile.errors import Code, Diagnostic

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


def _committed_objects(root: Path, names: set[str]) -> dict[str, list[dict] | None]:
    from kompile.errors import Code, Diagnostic
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
