"""The index: what the last check of every environment found, remembered in .kompile-cache/ (local to
the checkout, never committed) so that a command about one environment (`build --env`, `render`,
`diff`) reads and checks only the environments whose files changed since, as a build tool on a large
monorepo does.

For each input it holds the file's identity when read (inode, size, modification and change times, as
git's index does) and the hash of its bytes; for each environment, every input its check read (the App,
the environments it extends, the sealed secrets, extra resources and patches it names) and its
placement, which the rules across environments read. An environment none of whose inputs changed is
known to pass its own checks again (the same kompile on the same bytes); only the cross-environment
rules run over every one, on placements. The index never vouches for the output: it only saves
reading and checking specs that did not change.

Anything unusual sends the command back to loading and checking every environment: no index, another
kompile version, the App's file changed, a file whose identity cannot be trusted (modified within
RACY_SECONDS of being read, where a rewrite in the same clock tick would keep its identity).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from json.encoder import encode_basestring_ascii as _string  # type: ignore[attr-defined]
from pathlib import Path

from kompile.errors import Collector
from kompile.index_file import NAME, Damaged, Index, Seen, inputs_seen, write_sealed
from kompile.load.project import (
    Project,
    SpecFile,
    Specs,
    load_spec,
    require_environments,
)
from kompile.safefs import RACY_SECONDS
from kompile.spec.structure import forget_checked
from kompile.validate import validate_project
from kompile.validate.clusters import Placement
from kompile.validate.resolved import Resolved


def write_index(
    root: Path, project: Project, resolved: Sequence[Resolved], started_ns: int, old: Index | None = None
) -> Index | None:
    """Remember what this run checked: every environment of `resolved` (and, from `old`, the others,
    unchanged: their entries are copied as text). Files modified within RACY_SECONDS before the run
    started are recorded without an identity, so they are read again next time. Best effort: an index
    that cannot be written only makes the next command check everything."""
    environments = dict(old.environments) if old else {}
    gone: list[tuple[str, str]] = []  # (input, environment) pairs no longer read
    came: list[tuple[str, str]] = []
    try:
        for name in [n for n in environments if n not in project.environments] + [
            item.name for item in resolved if item.placement is not None and item.name in environments
        ]:
            gone += [(rel, name) for rel in old.inputs_of(name)]  # type: ignore[union-attr]
            del environments[name]
    except Damaged:
        return None
    for item in resolved:
        if item.placement is not None:
            inputs = (*item.sources, *item.reads)
            environments[item.name] = json.dumps([inputs, item.placement.as_json()], separators=(",", ":"))
            came += [(rel, item.name) for rel in inputs]
    readers = _readers(old.readers if old else {}, gone, came)
    used = {project.app.rel, *project.app_reads, *project.environments.rels.values()}
    used.update(readers)
    files: dict[str, tuple[str, str]] = {}
    for rel in sorted(used):
        if rel in project.identities and rel in project.inputs:
            files[rel] = (_trusted(project.identities[rel], started_ns), project.inputs[rel])
        elif old is not None and rel in old.files:
            files[rel] = old.files[rel]
        else:
            return None  # an input whose identity is unknown: record nothing rather than something wrong
    if not all(map(NAME, environments)):
        return None
    new = Index(
        project.app.rel,
        tuple(project.app_reads),
        files,
        dict(sorted(environments.items())),
        dict(sorted(readers.items())),
    )
    if new == old:
        return old  # nothing to add: the file stays as it is
    lines = [f"app\t{_string(new.app)}", *(f"read\t{_string(rel)}" for rel in new.app_reads)]
    lines += [f"file\t{ident}\t{sha}\t{_string(rel)}" for rel, (ident, sha) in files.items()]
    lines += [f"env\t{name}\t{entry}" for name, entry in new.environments.items()]
    lines += [f"readers\t{_string(rel)}\t{names}" for rel, names in new.readers.items()]
    write_sealed(root, "index", "\n".join(lines).encode())
    return new


def _readers(old: dict[str, str], gone: list[tuple[str, str]], came: list[tuple[str, str]]) -> dict[str, str]:
    """The readers of each input, with these pairs taken out and added: only the inputs they name are
    split and joined again (the App's file lists every environment)."""
    touched: dict[str, set[str]] = {}
    for rel, name in gone:
        touched.setdefault(rel, set(old.get(rel, "").split())).discard(name)
    for rel, name in came:
        touched.setdefault(rel, set(old.get(rel, "").split())).add(name)
    readers = dict(old)
    for rel, names in touched.items():
        if names:
            readers[rel] = " ".join(sorted(names))
        else:
            readers.pop(rel, None)
    return readers


def _trusted(ident: str, started_ns: int) -> str:
    """The identity, unless the file changed too near the run's start for it to tell a rewrite apart."""
    _, _, mtime, ctime = ident.split()
    return "" if max(int(mtime), int(ctime)) >= started_ns - RACY_SECONDS * 1e9 else ident


def checked_incrementally(
    root: Path, only: Sequence[str], keep_settings: bool, seen: Callable[[], Seen | None] | None = None
) -> tuple[Project, list[Resolved], Index] | None:
    """The project, `only` checked with every environment whose inputs changed since the index was
    written (the others' placements from the index), and the index; None when the index cannot serve,
    and the caller loads and checks everything. Raises what checking everything would raise about
    these files. `seen` gives what inputs_seen(root) gives, when the caller looked ahead."""
    looked = seen() if seen is not None else inputs_seen(root)
    if looked is None:
        return None
    index, changes = looked.index, looked.changes
    paths, problems, changed = changes.paths, changes.problems, changes.changed
    if problems or index.app in changed or index.app not in paths:
        return None
    project = _project(root, index, paths, changed)
    if project is None or not project.environments:
        return None  # (loading everything says what is missing)
    affected = {name for name, rel in project.environments.rels.items() if rel in changed}
    affected.update(name for name in index.read_by(changed) if name in project.environments)
    affected.update(name for name in only if name in project.environments)
    affected.update(name for name in project.environments if name not in index.environments)
    others = [name for name in index.environments if name in project.environments and name not in affected]

    def placed_before(where: Placement) -> bool:
        # The rules across environments read only placements, and the index holds a set of them that
        # passed together: when the environments checked now are placed as they were then, what they
        # form with the others is that set, or a part of it, and passes as well.
        return where.name in index.environments and where.deploys_as(index.placement_of(where.name))

    try:
        resolved = validate_project(
            project,
            keep_settings,
            sorted(affected),
            (index.placement_of(name) for name in others),
            placed_before,
        )
    except Damaged:
        return None
    require_environments(project, only)  # after the checks, as when every environment is checked
    return project, resolved, index


def _project(root: Path, index: Index, paths: list[str], changed: set[str]) -> Project | None:
    """A project whose changed spec files are read and checked now (their problems raised, as loading
    every file would) and whose other environments are read when first asked for. None when a changed
    file is an App (a second one, or the App moved): loading everything says what that means."""
    forget_checked()  # (as loading every file does)
    inputs = {rel: sha for rel, (_, sha) in index.files.items() if rel not in changed}
    identities: dict[str, str] = {}
    out = Collector()
    fresh: dict[str, SpecFile] = {}
    for rel in paths:
        if rel in changed:
            loaded = load_spec(root, rel, inputs, identities, out)
            if loaded is not None:
                if loaded.kind != "Environment":
                    return None
                fresh[loaded.name] = loaded
    out.raise_if_any()
    app = load_spec(root, index.app, inputs, identities, out)
    if app is None or app.kind != "App":
        return None

    def load(rel: str) -> SpecFile:
        problems = Collector()
        loaded = load_spec(root, rel, inputs, identities, problems)
        problems.raise_if_any()  # (a file is None only with its problems said)
        return loaded  # type: ignore[return-value]

    rels = {rel.rpartition("/")[2].rpartition(".")[0]: rel for rel in paths if rel != index.app}
    specs = Specs(dict(sorted(rels.items())), load, fresh)
    return Project(root=root, app=app, environments=specs, inputs=inputs, identities=identities)
