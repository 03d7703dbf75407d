"""Writing a compiled tree without ever losing anyone's work.

- kompile writes and deletes only files its manifest says it generated; an unknown file where it
  wants to write, a generated file edited by hand, or an obstacle (a link, or a file where a folder
  belongs) stops the build before anything is written.
- Nothing is followed through a symbolic link (kompile/safefs.py): not the output folders, not a file,
  not a temporary file, which is created exclusively under an unpredictable name.
- Every new file is first written in full beside its target (staged); a folder not there yet (a new
  environment's, or every one in a first build) is written whole under a temporary name beside it.
  Only when all of them are, the manifest records both the old and the new hash of every file it may
  touch, then each staged file is renamed over its target and each staged folder to its name. A reader
  (or a kill) sees old or new bytes, never a mix, and the next build after an interrupted one still
  owns every file, removes what the interrupted one staged, and completes the job. A file system that
  refuses (no room, a name too long) stops the build while nothing visible has changed.
"""

from __future__ import annotations

import contextlib
import difflib
import time
from dataclasses import dataclass, field
from pathlib import Path

from kompile.errors import Code, Diagnostic, KompileError, Span
from kompile.output.disk import REFUSED, Disk
from kompile.output.manifest import (
    FORMAT,
    MANIFEST,
    RECORDS,
    Files,
    Manifest,
    digest,
    read_manifest,
    record_of,
    record_path,
    recorded_environments,
)
from kompile.safefs import Refused, Root, file_identity, path_problem


@dataclass
class WritePlan:
    writes: dict[str, bytes | None] = field(default_factory=dict)  # None: already staged (`staged`)
    deletes: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)  # the subset of writes that are new files
    leftovers: list[str] = field(default_factory=list)  # temporary files of an interrupted build
    manifest: Manifest = field(default_factory=Manifest)
    old_manifest: Manifest | None = None
    removed_environments: dict[str, str | None] = field(default_factory=dict)  # name -> tier (None: unknown)
    staged: list[tuple[str, str]] = field(
        default_factory=list
    )  # (path, temporary name) written while planning
    # (folder, temporary folder) written while planning: a folder not on disk yet is written whole
    # under a temporary name beside it, its files under their own names, then renamed at once.
    staged_folders: list[tuple[str, str]] = field(default_factory=list)

    @property
    def changed(self) -> list[str]:
        added = set(self.added)
        return [path for path in self.writes if path not in added]

    @property
    def is_noop(self) -> bool:
        # The record's bytes are a function of its fields (sorted when written): comparing them is enough.
        return (
            not self.writes and not self.deletes and not self.leftovers and self.old_manifest == self.manifest
        )


class Planner:
    """Plans a build file by file, as the compiler hands them over, refusing (KompileError, from finish)
    anything that could lose a file. With `stage`, each new or changed file is written at once under a
    temporary name beside its target, so a build holds one batch of output in memory, never the whole
    tree; abort (or leaving the `with` block on an error) removes every staged file."""

    def __init__(self, root: Path, force: bool = False, stage: bool = False) -> None:
        self.root, self.force, self.stage = root, force, stage
        self.old = read_manifest(root)
        self.plan = WritePlan(old_manifest=self.old)
        self.problems: list[Diagnostic] = []
        self.digests: dict[str, str] = {}
        # The identity (safefs.file_identity) each file will have once the plan is carried out, where it is
        # known without looking again: one written into a new folder (as written: renaming the folder
        # changes none of its files), one found unchanged (as read, since `started`: whether it is racily
        # clean is judged from then). record_outputs stats the others.
        self.identities: dict[str, str] = {}
        self.read_identities: dict[str, str] = {}
        self.started = time.time_ns()
        self._created: list[str] = []
        self._handle: Root | None = None
        self._new_folders: dict[str, str | None] = {}  # a file's folder -> the folder new to disk holding it
        self._staged_folders: dict[str, str] = {}  # a folder new to disk -> its temporary folder

    def __enter__(self) -> Planner:
        self._handle = Root(self.root).__enter__()
        self._disk = Disk(self._handle, self.problems)
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is not None:
            self.abort()
        self._handle.__exit__(kind, value, traceback)

    def add(self, files: dict[str, bytes]) -> None:
        plan, disk, old = self.plan, self._disk, self.old
        for path, data in files.items():
            self.digests[path] = digest(data)
            problem = path_problem(path)
            if problem:
                self.problems.append(Diagnostic(Code.WRITE, f"cannot write {path}: {problem}", Span(path)))
                continue
            current = disk.read(path)
            if current is REFUSED:
                continue
            if current is None:
                self._write(path, data)
                plan.added.append(path)
            elif current == data:
                plan.unchanged.append(path)
                self.read_identities[path] = disk.identities.pop(path)
            elif (old is not None and old.owns(path, current)) or (
                self.force and old is not None and old.recorded(path)
            ):
                self._write(path, data)
            elif old is not None and old.recorded(path):
                self.problems.append(_hand_edit(path, current, data))
            else:
                self.problems.append(
                    Diagnostic(
                        Code.FOREIGN_FILE,
                        f"{path} exists and was not generated by kompile",
                        Span(path),
                        "kompile will not overwrite it: move or delete it, then build again",
                    )
                )

    def _write(self, path: str, data: bytes) -> None:
        if not self.stage:
            self.plan.writes[path] = data
            return
        self.plan.writes[path] = None
        if self.problems:
            return  # the build will not happen: staging more would only be undone
        try:
            folder = path.rpartition("/")[0]
            new = self._new_folders[folder] if folder in self._new_folders else self._new_folder(folder)
            if new is None:
                self.plan.staged.append((path, self._handle.stage(path, data, self._created)))
                return
            temporary = self._staged_folders.get(new)
            if temporary is None:
                temporary = self._staged_folders[new] = self._handle.stage_folder(new, self._created)
                self.plan.staged_folders.append((new, temporary))
            self.identities[path] = file_identity(self._handle.create(f"{temporary}{path[len(new) :]}", data))
        except (OSError, Refused) as exc:
            self.problems.append(
                Diagnostic(
                    Code.WRITE,
                    f"cannot write {path}: {_reason(exc)}",
                    Span(path),
                    "nothing was changed; free space or fix the folder, then build again",
                )
            )

    def _new_folder(self, folder: str) -> str | None:
        """The outermost folder of these that is not on disk, below the top output folders (each
        environment's folder is staged whole, not the tree of all of them); None when all are there."""
        parts, new = folder.split("/"), None
        for depth in range(1, len(parts)):
            listing = self._disk.listing("/".join(parts[:depth]))
            if listing is None:
                break  # (refused, and reported: nothing is staged)
            if parts[depth] not in listing:
                new = "/".join(parts[: depth + 1])
                break
        self._new_folders[folder] = new
        return new

    def finish(
        self,
        owned: tuple[str, ...],
        inputs: dict[str, str],
        warnings: tuple[Diagnostic, ...] = (),
        environments: dict[str, str] | None = None,
        partial: bool = False,
    ) -> WritePlan:
        plan, disk, old = self.plan, self._disk, self.old
        if old is not None:
            for path in old.under(owned):
                if path in self.digests:
                    continue
                current = disk.read(path)
                if current is None or current is REFUSED:
                    continue
                if old.owns(path, current) or self.force:
                    plan.deletes.append(path)
                else:
                    self.problems.append(
                        Diagnostic(
                            Code.HAND_EDITED,
                            f"{path} was edited by hand and is no longer generated",
                            Span(path),
                            "keep your version by moving it out of the output folders, "
                            "or run with --force to delete it",
                        )
                    )
        records = old.reader.leftovers if old is not None and old.reader is not None else ()
        plan.leftovers = sorted({*disk.leftovers(), *disk.stray_temporaries(owned), *records})
        if self.problems:
            raise KompileError(self.problems)
        plan.manifest = next_manifest(old, self.digests, owned, inputs, warnings, environments or {}, partial)
        if old is not None and not partial and environments is not None:
            plan.removed_environments = {
                name: tier for name, tier in recorded_environments(old).items() if name not in environments
            }
        return plan

    def abort(self) -> None:
        """Remove every staged file and folder (and the folders made for them): nothing visible has
        changed. (A staged folder already renamed into place is gone by its temporary name.)"""
        for path, temporary in self.plan.staged:
            self._handle.discard(path.rpartition("/")[0], temporary)
        for _, temporary in self.plan.staged_folders:
            with contextlib.suppress(OSError, Refused):
                self._handle.remove_temporary(temporary)
        for folder in reversed(self._created):
            self._handle.rmdir(folder)
        self.plan.staged.clear()
        self.plan.staged_folders.clear()


def plan_write(
    root: Path,
    files: dict[str, bytes],
    owned: tuple[str, ...],
    inputs: dict[str, str],
    force: bool = False,
    warnings: tuple[Diagnostic, ...] = (),
    environments: dict[str, str] | None = None,
    partial: bool = False,
) -> WritePlan:
    """Decide what a build of these files does, refusing (KompileError) anything that could lose a file."""
    with Planner(root, force) as planner:
        planner.add(files)
        return planner.finish(owned, inputs, warnings, environments, partial)


def digests_of(files: dict[str, bytes]) -> dict[str, str]:
    return {path: digest(data) for path, data in files.items()}


def next_manifest(
    old: Manifest | None,
    digests: dict[str, str],
    owned: tuple[str, ...],
    inputs: dict[str, str],
    warnings: tuple[Diagnostic, ...] = (),
    environments: dict[str, str] | None = None,
    partial: bool = False,
) -> Manifest:
    """The record a build writes: these files (by digest), plus other environments' files (and records)
    when building only some."""
    records = {**(old.environments if old and partial else {}), **(environments or {})}
    listed = tuple(w.as_dict() for w in warnings)
    if partial:
        # A partial build vouches for the environments it skipped only when no spec changed since the
        # record was written: then its inputs and warnings still hold (and the manifest stays as it was).
        unchanged = old is not None and old.inputs == inputs
        inputs, listed = (old.inputs, old.warnings) if unchanged else ({}, listed)
    if old is None:
        return Manifest(
            inputs=inputs,
            files={path: (hashed,) for path, hashed in digests.items()},
            warnings=listed,
            environments=records,
        )
    return old.replaced(owned, digests, inputs, listed, records)


def apply_plan(root: Path, plan: WritePlan) -> None:
    """Carry out a plan. Safe to kill at any moment: the next build finishes what this one started."""
    if plan.is_noop:
        return
    with Root(root) as disk:
        _remove_leftovers(disk, plan.leftovers)
        staged = plan.staged or _stage(disk, plan)
        on_disk = record_intent(disk, plan)
        try:
            for folder, temporary in plan.staged_folders:
                disk.commit_folder(folder, temporary)
            for path, temporary in staged:
                disk.commit(path, temporary)
            for path in plan.deletes:
                disk.unlink(path)
                _remove_empty_parents(disk, path)
            _write_records(disk, plan.manifest, on_disk, removing=True)
        except (OSError, Refused, _Unwritten) as exc:
            # The manifest already owns old and new bytes of every file: the next build completes this one.
            where, reason = (
                (exc.path, exc.reason) if isinstance(exc, _Unwritten) else (MANIFEST, _reason(exc))
            )
            raise KompileError(
                [
                    Diagnostic(
                        Code.WRITE,
                        f"the build stopped half way: {reason}",
                        Span(where),
                        "fix the cause, then run `kompile build` again: it finishes the job",
                    )
                ]
            ) from None


def _remove_leftovers(disk: Root, leftovers: list[str]) -> None:
    """What interrupted builds left (never output anyone reads): removed first, so that one kompile
    cannot remove stops the build before anything has changed, and says which."""
    for path in leftovers:
        try:
            disk.remove_temporary(path)
        except (OSError, Refused) as exc:
            raise KompileError(
                [
                    Diagnostic(
                        Code.WRITE,
                        f"cannot remove {path}, which an interrupted build left: {_reason(exc)}",
                        Span(path),
                        "remove it by hand, then run `kompile build` again",
                    )
                ]
            ) from None
        _remove_empty_parents(disk, path)  # a killed build's folder for an environment now gone


def _stage(disk: Root, plan: WritePlan) -> list[tuple[str, str]]:
    """Every new file written in full under a temporary name; on failure nothing visible has changed."""
    staged: list[tuple[str, str]] = []
    created: list[str] = []
    path = MANIFEST
    try:
        for path, data in plan.writes.items():
            if data is not None:
                staged.append((path, disk.stage(path, data, created)))
    except (OSError, Refused) as exc:
        for done, temporary in staged:
            disk.discard(done.rpartition("/")[0], temporary)
        for folder in reversed(created):
            disk.rmdir(folder)
        raise KompileError(
            [
                Diagnostic(
                    Code.WRITE,
                    f"cannot write {path}: {_reason(exc)}",
                    Span(path),
                    "nothing was changed; free space or fix the folder, then build again",
                )
            ]
        ) from None
    return staged


def _reason(exc: BaseException) -> str:
    if isinstance(exc, Refused):
        return exc.why
    return getattr(exc, "strerror", None) or str(exc)


def record_intent(disk: Root, plan: WritePlan) -> dict[str, Files]:
    """Before the first change: a manifest that owns both the old and the new content of every file.
    Returns the environments' records as they now are on disk (name -> files)."""
    old = plan.old_manifest
    on_disk = {
        name: files
        for name, files in (old.records.items() if old is not None and old.format == FORMAT else ())
        if files is not None
    }
    touched = [*plan.writes, *plan.deletes]
    # MANIFEST as it is owns its own files still, unless one of them is touched (or it is format 1, which
    # ignores the environments' records this writes first, or there is none yet).
    top = old is None or old.format != FORMAT or any(record_of(path) is None for path in touched)
    try:
        _write_records(disk, plan.manifest.with_hashes(touched, old), on_disk, top=top, top_first=old is None)
    except _Unwritten as exc:
        raise KompileError(
            [
                Diagnostic(
                    Code.WRITE,
                    f"cannot write {exc.path}: {exc.reason}",
                    Span(exc.path),
                    "nothing was changed; free space or fix the folder, then build again",
                )
            ]
        ) from None
    return on_disk


class _Unwritten(Exception):
    def __init__(self, path: str, exc: BaseException) -> None:
        super().__init__(path)
        self.path, self.reason = path, _reason(exc)


def _write_records(
    disk: Root,
    manifest: Manifest,
    on_disk: dict[str, Files],
    removing: bool = False,
    top: bool = True,
    top_first: bool = False,
) -> None:
    """Write the records that are not on disk as they are (`on_disk`, kept current), and MANIFEST (with
    `top`): last, so a build killed before it leaves format 1's record whole, or the last complete one;
    first when there is none yet (records without it are refused). With `removing`, remove the records
    of environments whose files are all gone (and those this build wrote for them). _Unwritten names the
    file that failed."""
    path = MANIFEST
    try:
        if top and top_first:
            disk.write(MANIFEST, manifest.to_bytes())
        for name, files in sorted(manifest.records.items()):
            if files and on_disk.get(name) != files:  # (never read: as on disk)
                path = record_path(name)
                disk.write(path, manifest.record_bytes(name))
                on_disk[name] = files
        for path in manifest.records_removed(set(on_disk)) if removing else ():
            disk.unlink(path)
            on_disk.pop(path[len(RECORDS) + 1 : -len(".json")], None)
        path = MANIFEST
        if top and not top_first:
            disk.write(MANIFEST, manifest.to_bytes())
    except (OSError, Refused) as exc:
        raise _Unwritten(path, exc) from None


def write_tree(
    root: Path, files: dict[str, bytes], owned: tuple[str, ...], inputs: dict[str, str], force: bool = False
) -> WritePlan:
    plan = plan_write(root, files, owned, inputs, force)
    apply_plan(root, plan)
    return plan


def _remove_empty_parents(disk: Root, path: str) -> None:
    parts = path.split("/")[:-1]
    while parts:  # up to the top folder (rendered/ goes when rendering is turned off)
        if not disk.rmdir("/".join(parts)):
            return  # not empty: someone else's file lives here
        parts.pop()


def _hand_edit(path: str, current: bytes, generated: bytes) -> Diagnostic:
    edit = "".join(
        difflib.unified_diff(
            generated.decode("utf-8", "replace").splitlines(keepends=True),
            current.decode("utf-8", "replace").splitlines(keepends=True),
            fromfile=f"{path} (generated)",
            tofile=f"{path} (on disk)",
            n=1,
        )
    )
    lines = edit.splitlines()
    shown = "\n".join(lines[:40]) + ("\n..." if len(lines) > 40 else "")
    return Diagnostic(
        Code.HAND_EDITED,
        f"{path} was edited by hand:\n{shown}",
        Span(path),
        "move the change into environments/ (spec.patches is the escape hatch), "
        "or run `kompile build --force` to discard it",
    )
