"""Writing a compiled tree without ever losing anyone's work.

- kompile writes and deletes only files its manifest says it generated; an unknown file where it
  wants to write, a generated file edited by hand, or an obstacle (a link, or a file where a folder
  belongs) stops the build before anything is written.
- Nothing is followed through a symbolic link (kompile/safefs.py): not the output folders, not a file,
  not a temporary file, which is created exclusively under an unpredictable name.
- Every new file is first written in full beside its target (staged); only when all of them are, the
  manifest records both the old and the new hash of every file it may touch, then each staged file is
  renamed over its target. A reader (or a kill) sees old or new bytes, never a mix, and the next build
  after an interrupted one still owns every file and completes the job. A file system that refuses
  (no room, a name too long) stops the build while nothing visible has changed.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path

from kompile.errors import Code, Diagnostic, KompileError, Span
from kompile.output.manifest import MANIFEST, Manifest, digest, read_manifest, recorded_environments
from kompile.safefs import TEMP, Refused, Root, path_problem

LEGACY_TEMP_SUFFIX = ".kompile-tmp"  # what builds before 0.2 left behind when interrupted
MAX_OUTPUT_BYTES = 16 << 20  # larger files in the output folders are not kompile's


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

    @property
    def changed(self) -> list[str]:
        added = set(self.added)
        return [path for path in self.writes if path not in added]

    @property
    def is_noop(self) -> bool:
        old = self.old_manifest.to_bytes() if self.old_manifest else None
        return not self.writes and not self.deletes and not self.leftovers and old == self.manifest.to_bytes()


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
        self._created: list[str] = []
        self._handle: Root | None = None

    def __enter__(self) -> Planner:
        self._handle = Root(self.root).__enter__()
        self._disk = _Disk(self._handle, self.problems)
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
            if current is _REFUSED:
                continue
            if current is None:
                self._write(path, data)
                plan.added.append(path)
            elif current == data:
                plan.unchanged.append(path)
            elif (old is not None and old.owns(path, current)) or (
                self.force and old is not None and path in old.files
            ):
                self._write(path, data)
            elif old is not None and path in old.files:
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
            self.plan.staged.append((path, self._handle.stage(path, data, self._created)))
        except (OSError, Refused) as exc:
            self.problems.append(
                Diagnostic(
                    Code.WRITE,
                    f"cannot write {path}: {_reason(exc)}",
                    Span(path),
                    "nothing was changed; free space or fix the folder, then build again",
                )
            )

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
            for path in old.files:
                if path in self.digests or not _inside(path, owned):
                    continue
                current = disk.read(path)
                if current is None or current is _REFUSED:
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
        plan.leftovers = sorted({*disk.leftovers(), *disk.stray_temporaries(owned)})
        if self.problems:
            raise KompileError(self.problems)
        plan.manifest = next_manifest(old, self.digests, owned, inputs, warnings, environments or {}, partial)
        if old is not None and not partial and environments is not None:
            plan.removed_environments = {
                name: tier for name, tier in recorded_environments(old).items() if name not in environments
            }
        return plan

    def abort(self) -> None:
        """Remove every staged file (and the folders made for them): nothing visible has changed."""
        for path, temporary in self.plan.staged:
            self._handle.discard(path.rpartition("/")[0], temporary)
        for folder in reversed(self._created):
            self._handle.rmdir(folder)
        self.plan.staged.clear()


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
    kept = {
        path: hashes
        for path, hashes in (old.files.items() if old else ())
        if not _inside(path, owned) and path not in digests
    }
    records = {**(old.environments if old and partial else {}), **(environments or {})}
    listed = tuple(w.as_dict() for w in warnings)
    if partial:
        # A partial build vouches for the environments it skipped only when no spec changed since the
        # record was written: then its inputs and warnings still hold (and the manifest stays as it was).
        unchanged = old is not None and old.inputs == inputs
        inputs, listed = (old.inputs, old.warnings) if unchanged else ({}, listed)
    return Manifest(
        inputs=inputs,
        files={**kept, **{path: (hashed,) for path, hashed in digests.items()}},
        warnings=listed,
        environments=records,
    )


def apply_plan(root: Path, plan: WritePlan) -> None:
    """Carry out a plan. Safe to kill at any moment: the next build finishes what this one started."""
    if plan.is_noop:
        return
    with Root(root) as disk:
        staged = plan.staged or _stage(disk, plan)
        record_intent(disk, plan)
        try:
            for path, temporary in staged:
                disk.commit(path, temporary)
            for path in plan.deletes:
                disk.unlink(path)
                _remove_empty_parents(disk, path)
            for path in plan.leftovers:
                disk.unlink(path)
                _remove_empty_parents(disk, path)  # a killed build's folder for an environment now gone
            disk.write(MANIFEST, plan.manifest.to_bytes())
        except (OSError, Refused) as exc:
            # The manifest already owns old and new bytes of every file: the next build completes this one.
            raise KompileError(
                [
                    Diagnostic(
                        Code.WRITE,
                        f"the build stopped half way: {_reason(exc)}",
                        Span(MANIFEST),
                        "fix the cause, then run `kompile build` again: it finishes the job",
                    )
                ]
            ) from None


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


def record_intent(disk: Root, plan: WritePlan) -> None:
    """Before the first change: a manifest that owns both the old and the new content of every file."""
    old_files = plan.old_manifest.files if plan.old_manifest else {}
    pending = dict(plan.manifest.files)
    for path in [*plan.writes, *plan.deletes]:
        pending[path] = tuple(dict.fromkeys((*old_files.get(path, ()), *plan.manifest.files.get(path, ()))))
    try:
        disk.write(
            MANIFEST,
            Manifest(
                inputs=plan.manifest.inputs,
                files=pending,
                warnings=plan.manifest.warnings,
                environments=plan.manifest.environments,
            ).to_bytes(),
        )
    except (OSError, Refused) as exc:
        raise KompileError(
            [
                Diagnostic(
                    Code.WRITE,
                    f"cannot write {MANIFEST}: {_reason(exc)}",
                    Span(MANIFEST),
                    "nothing was changed; free space or fix the folder, then build again",
                )
            ]
        ) from None


def write_tree(
    root: Path, files: dict[str, bytes], owned: tuple[str, ...], inputs: dict[str, str], force: bool = False
) -> WritePlan:
    plan = plan_write(root, files, owned, inputs, force)
    apply_plan(root, plan)
    return plan


def _remove_empty_parents(disk: Root, path: str) -> None:
    parts = path.split("/")[:-1]
    while len(parts) > 1:  # never the top folder (bases/, overlays/)
        if not disk.rmdir("/".join(parts)):
            return  # not empty: someone else's file lives here
        parts.pop()


def _inside(path: str, owned: tuple[str, ...]) -> bool:
    return any(path == folder or path.startswith(folder + "/") for folder in owned)


_REFUSED = object()  # a path kompile will not read or write (reported as a problem)


class _Disk:
    """What is on disk, read with one listing per folder, never through a link."""

    def __init__(self, handle: Root, problems: list[Diagnostic]) -> None:
        self.handle = handle
        self.problems = problems
        self.listings: dict[str, dict[str, os.DirEntry] | None] = {}

    def _listing(self, folder: str) -> dict[str, os.DirEntry] | None:
        """The folder's entries ({} when it does not exist yet); None when it is refused (reported once)."""
        if folder not in self.listings:
            try:
                self.listings[folder] = {entry.name: entry for entry in self.handle.listdir(folder)}
            except Refused as exc:
                self.listings[folder] = None
                self.problems.append(
                    Diagnostic(
                        Code.FOREIGN_FILE,
                        f"{exc.rel}: {exc.why}",
                        Span(exc.rel),
                        "kompile writes only into folders of the repo: move it away, then build again",
                    )
                )
            except OSError as exc:
                self.listings[folder] = None
                self.problems.append(
                    Diagnostic(Code.WRITE, f"cannot read {folder}: {exc.strerror}", Span(folder))
                )
        return self.listings[folder]

    def read(self, path: str):
        """The file's bytes, None when there is none, or _REFUSED (with a problem reported)."""
        folder, _, name = path.rpartition("/")
        entries = self._listing(folder)
        if entries is None:
            return _REFUSED
        entry = entries.get(name)
        if entry is None:
            return None
        if entry.is_symlink() or not entry.is_file(follow_symlinks=False):
            what = (
                "a symbolic link"
                if entry.is_symlink()
                else "a folder"
                if entry.is_dir(follow_symlinks=False)
                else "not a regular file"
            )
            self.problems.append(
                Diagnostic(
                    Code.FOREIGN_FILE,
                    f"{path} is {what}, not a file kompile generated",
                    Span(path),
                    "move it away, then build again",
                )
            )
            return _REFUSED
        try:
            return self.handle.read(path, MAX_OUTPUT_BYTES)
        except Refused as exc:
            if exc.missing:
                return None
            self.problems.append(
                Diagnostic(
                    Code.FOREIGN_FILE, f"{path}: {exc.why}", Span(path), "move it away, then build again"
                )
            )
        except OSError as exc:
            self.problems.append(
                Diagnostic(Code.FOREIGN_FILE, f"cannot read {path}: {exc.strerror}", Span(path))
            )
        return _REFUSED

    def stray_temporaries(self, owned: tuple[str, ...]) -> list[str]:
        """Temporary files of an interrupted build in folders this build did not read (those of an
        environment whose spec is gone since): every folder under the owned ones is looked at once."""
        found, stack = [], list(owned)
        while stack:
            folder = stack.pop()
            entries = self._listing(folder) if folder in self.listings else _entries(self.handle, folder)
            for name, entry in (entries or {}).items():
                path = f"{folder}/{name}"
                if entry.is_dir(follow_symlinks=False):
                    stack.append(path)
                elif (
                    folder not in self.listings
                    and is_temporary(name)
                    and entry.is_file(follow_symlinks=False)
                ):
                    found.append(path)
        return found

    def leftovers(self) -> list[str]:
        """Temporary files an interrupted build left in the folders this build looked at (and at the top,
        beside the manifest)."""
        self._listing("")
        found = []
        for folder, entries in self.listings.items():
            for name, entry in (entries or {}).items():
                legacy = (
                    name == MANIFEST + LEGACY_TEMP_SUFFIX
                    if folder == ""
                    else name.endswith(LEGACY_TEMP_SUFFIX)
                )
                if (TEMP.fullmatch(name) or legacy) and entry.is_file(follow_symlinks=False):
                    found.append(f"{folder}/{name}" if folder else name)
        return sorted(found)


def is_temporary(name: str) -> bool:
    return TEMP.fullmatch(name) is not None or name.endswith(LEGACY_TEMP_SUFFIX)


def _entries(handle: Root, folder: str) -> dict[str, os.DirEntry] | None:
    try:
        return {entry.name: entry for entry in handle.listdir(folder)}
    except (Refused, OSError):
        return None  # a link or an unreadable folder: not kompile's to clean


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
