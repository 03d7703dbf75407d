"""Hydrated branches written through git's plumbing: one `git fast-import` for every environment, one
`git update-ref` transaction to move them.

Manifests stream into fast-import as blobs while the compiler makes them; commits are made only once the
caller has checked the committed output (`commit`), on a private ref; then every branch and the notes
move at once, each only from the tip read at the start (all of them or none). Leaving without `commit`
moves nothing. The working tree, the index and the current branch are never touched. The checks that
come first: no branch that is a symbolic ref or that git cannot create beside the refs there are, and
no branch hydrated from a commit HEAD does not contain (that would take it back in time).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from kompile.names import RENDERED_MANIFEST
from kompile.output.hydrate.contract import (
    FOLDER_FILES,
    METADATA,
    DryCommit,
    branch_files,
    commit_message,
    rfc3339,
)

NOTES_REF = "refs/notes/hydrator.metadata"
_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


class HydrateError(Exception):
    """git refused, or the repository is not in a state to hydrate from."""


@dataclass(frozen=True)
class Hydrated:
    environment: str
    branch: str
    commit: str  # the branch's tip after hydrating
    changed: bool  # False: no manifest changed (only the note was written)


def git_bytes(top: Path, *args: str, stdin: bytes | None = None) -> bytes:
    try:
        result = subprocess.run(
            ["git", "-C", str(top), "-c", "i18n.logOutputEncoding=UTF-8", *args],
            input=stdin,
            capture_output=True,
            timeout=300,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise HydrateError(f"git {args[0]} failed: {exc}") from None
    if result.returncode != 0:
        raise HydrateError(
            f"git {' '.join(args[:2])} failed: {result.stderr.decode(errors='replace').strip()}"
        )
    return result.stdout


def git(top: Path, *args: str, stdin: bytes | None = None) -> str:
    """git's output as text (what is not UTF-8 shown as U+FFFD: names and messages are only shown)."""
    return git_bytes(top, *args, stdin=stdin).decode("utf-8", errors="replace")


def dry_commit(top: Path) -> DryCommit:
    """HEAD, as the hydrator metadata describes it."""
    sha = git(top, "rev-parse", "--verify", "HEAD^{commit}").strip()
    author, date, message = git(top, "show", "-s", "--format=%an <%ae>%x00%aI%x00%B", sha).split("\0", 2)
    subject, _, body = message.rstrip("\n").partition("\n\n")
    return DryCommit(sha, author, rfc3339(date.strip()), subject.strip(), body.strip())


class _Objects:
    """The repository's object format: SHA-1 (40 hex digits) or SHA-256 (64)."""

    def __init__(self, top: Path) -> None:
        self.name = git(top, "rev-parse", "--show-object-format").strip() or "sha1"
        if self.name not in ("sha1", "sha256"):
            raise HydrateError(f"git objects in {self.name}, which kompile does not know")
        self.size = 20 if self.name == "sha1" else 32
        self.zero = "0" * (2 * self.size)

    def blob_id(self, data: bytes) -> str:
        """The id git gives these bytes as a blob (so no process is asked whether they changed)."""
        return hashlib.new(self.name, b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()

    def tree_entries(self, raw: bytes) -> dict[str, tuple[str, str]]:
        """A tree object's entries: name -> (mode, id)."""
        entries, at = {}, 0
        while at < len(raw):
            space = raw.index(b" ", at)
            nul = raw.index(b"\0", space)
            name = raw[space + 1 : nul].decode(errors="replace")
            entries[name] = (raw[at:space].decode(), raw[nul + 1 : nul + 1 + self.size].hex())
            at = nul + 1 + self.size
        return entries


def refs(top: Path) -> tuple[dict[str, str], dict[str, str]]:
    """(branch and notes tips: ref -> id, symbolic refs among them: ref -> the ref it points to)."""
    listed = git(top, "for-each-ref", "--format=%(refname) %(objectname) %(symref)", "refs/heads/", NOTES_REF)
    tips, symbolic = {}, {}
    for line in listed.splitlines():
        ref, sha, target = (line.split(" ", 2) + [""])[:3]
        tips[ref] = sha
        if target.strip():
            symbolic[ref] = target.strip()
    return tips, symbolic


def refuse_unwritable(ref: str, tips: dict[str, str], symbolic: dict[str, str]) -> None:
    """A branch git cannot create beside the refs there are (one is a folder of the other), or one that is
    a symbolic ref (writing it would move the branch it points to)."""
    if ref in symbolic:
        raise HydrateError(f"{ref} is a symbolic ref (to {symbolic[ref]}); kompile hydrate writes it itself")
    for other in tips:
        if other.startswith(ref + "/") or ref.startswith(other + "/"):
            raise HydrateError(f"{ref} cannot be created beside {other}")


def cat(top: Path, specs: list[str], kind: bytes | None = None) -> list[bytes | None]:
    """The bodies of these objects (None when missing, or not of this kind), through one cat-file."""
    if not specs:
        return []
    out = git_bytes(top, "cat-file", "--batch", stdin="".join(f"{spec}\n" for spec in specs).encode())
    found: list[bytes | None] = []
    at = 0
    for _ in specs:
        end = out.index(b"\n", at)
        header = out[at:end].split()
        at = end + 1
        if len(header) != 3:  # "<spec> missing", or ambiguous
            found.append(None)
            continue
        size = int(header[2])
        found.append(out[at : at + size] if kind is None or header[1] == kind else None)
        at += size + 1
    return found


def refuse_rollbacks(top: Path, tips: dict[str, str], head: str, has_notes: bool) -> None:
    """tips: branch -> the commit hydration would build on. A branch hydrated from a commit HEAD does
    not contain would go back in time (an old CI job run again, an older checkout): refused. Its dry
    commit is the note on the tip (the latest, even when it made no commit), else its hydrator.metadata."""
    notes = {}
    if has_notes:
        for line in git(top, "notes", "--ref", NOTES_REF, "list").splitlines():
            note, _, target = line.partition(" ")
            notes[target] = note
    commits = sorted(set(tips.values()))
    bodies = cat(top, [notes.get(commit, f"{commit}:{METADATA}") for commit in commits])
    dry: dict[str, str] = {}
    for commit, body in zip(commits, bodies, strict=True):
        try:
            sha = json.loads(body).get("drySha") if body else None
        except (ValueError, AttributeError):
            sha = None
        if isinstance(sha, str) and _SHA.fullmatch(sha):
            dry[commit] = sha
    verdicts: dict[str, str] = {}
    for branch, commit in sorted(tips.items()):
        sha = dry.get(commit)
        if sha is None or sha == head:
            continue
        if sha not in verdicts:
            verdicts[sha] = _ancestry(top, sha, head)
        if verdicts[sha] == "missing":
            raise HydrateError(
                f"{branch} was hydrated from {sha[:12]}, which this clone does not have (a shallow clone?): "
                "fetch the full history first"
            )
        if verdicts[sha] == "no":
            raise HydrateError(
                f"{branch} holds manifests hydrated from {sha[:12]}, which HEAD ({head[:12]}) does not "
                "contain: hydrating now would take it back in time"
            )


def _ancestry(top: Path, sha: str, head: str) -> str:
    """ "yes" when sha is an ancestor of head, "no" when not, "missing" when this clone lacks it."""
    try:
        result = subprocess.run(
            ["git", "-C", str(top), "merge-base", "--is-ancestor", sha, head],
            capture_output=True,
            timeout=300,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise HydrateError(f"git merge-base failed: {exc}") from None
    return {0: "yes", 1: "no"}.get(result.returncode, "missing")


@dataclass
class _Branch:
    env: str
    name: str  # the branch hydration writes
    old: str | None  # its tip, if it exists
    parent: str | None  # what a commit goes on top of: the tip, or the synced branch's for a new -next
    held: dict[str, tuple[str, str]]  # the app's folder at parent: name -> (mode, id)
    mark: int = 0  # the manifest's blob in the stream (0: none was sent: a preview)
    manifest_id: str = ""


class Hydrator:
    """One commit per environment's branch, in one fast-import stream. Use as a context manager: `add`
    each rendered manifest as the compiler makes it, then `commit` (leaving without it moves nothing)."""

    def __init__(
        self, top: Path, branches: dict[str, tuple[str, str | None]], folder: str, head: str, repo_url: str
    ) -> None:
        """branches: environment -> (the branch to write, the branch a new one starts from or None)."""
        self.top, self.folder, self.repo_url = top, folder, repo_url
        self.objects = _Objects(top)
        tips, symbolic = refs(top)
        self.notes_tip = tips.get(NOTES_REF)
        self.branches: dict[str, _Branch] = {}
        for env, (name, start) in branches.items():
            refuse_unwritable(f"refs/heads/{name}", tips, symbolic)
            old = tips.get(f"refs/heads/{name}")
            parent = old or (tips.get(f"refs/heads/{start}") if start else None)
            self.branches[env] = _Branch(env, name, old, parent, {})
        building_on = {b.name: b.parent for b in self.branches.values() if b.parent}
        refuse_rollbacks(top, building_on, head, self.notes_tip is not None)
        with_parent = [b for b in self.branches.values() if b.parent]
        for branch, body in zip(
            with_parent, cat(top, [f"{b.parent}:{folder}" for b in with_parent], kind=b"tree"), strict=True
        ):
            branch.held = self.objects.tree_entries(body) if body is not None else {}
        # Commits land on a private ref first; every branch moves at once in one transaction (commit).
        self._scratch = f"refs/kompile/hydrate/{os.getpid()}-{secrets.token_hex(4)}"
        handle, self._marks = tempfile.mkstemp(prefix="kompile-hydrate-", suffix=".marks")
        os.close(handle)
        self._next_mark = 0
        try:
            self._stream = subprocess.Popen(
                ["git", "-C", str(top), "fast-import", "--quiet", "--done", f"--export-marks={self._marks}"],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
        except OSError as exc:
            Path(self._marks).unlink(missing_ok=True)
            raise HydrateError(f"cannot run git fast-import: {exc}") from None

    def __enter__(self) -> Hydrator:
        return self

    def __exit__(self, kind, error, trace) -> None:
        try:
            if self._stream.poll() is None:  # not committed: end the stream, nothing moves
                try:
                    self._finish()
                except HydrateError:
                    if kind is None:
                        raise
        finally:
            self._drop_scratch()
            Path(self._marks).unlink(missing_ok=True)

    @property
    def rendered(self) -> set[str]:
        """The environments whose manifest arrived."""
        return {env for env, branch in self.branches.items() if branch.mark}

    def add(self, env: str, manifest: bytes) -> None:
        """Send an environment's manifest (one not being hydrated is ignored)."""
        branch = self.branches.get(env)
        if branch is None:
            return
        self._next_mark += 1
        branch.mark, branch.manifest_id = self._next_mark, self.objects.blob_id(manifest)
        self._write(b"blob\nmark :%d\n" % branch.mark + _data(manifest))

    def commit(self, dry: DryCommit, commands: dict[str, list[str]]) -> list[Hydrated]:
        """Commit what changed, note every tip with the dry commit, then move every branch at once.
        Environments whose manifest never arrived (previews) are left alone."""
        author = git_bytes(self.top, "var", "GIT_AUTHOR_IDENT").strip()
        committer = git_bytes(self.top, "var", "GIT_COMMITTER_IDENT").strip()
        changed: dict[str, int] = {}
        noted: list[str] = []  # commit-ish (an id, or :mark) per branch
        for env, branch in self.branches.items():
            if not branch.mark:
                continue
            if branch.parent and self._unchanged(branch):
                # As Argo CD: a dry commit that changes no manifest makes no commit, only a note on the tip.
                noted.append(branch.parent)
                continue
            self._next_mark += 1
            changed[env] = self._next_mark
            self._write(self._commit_command(branch, self._next_mark, dry, author, committer, commands[env]))
            noted.append(f":{self._next_mark}")
        if noted:
            note = _data(json.dumps({"drySha": dry.sha}, separators=(",", ":")).encode())
            head = b"commit %s/notes\ncommitter %s\n" % (self._scratch.encode(), committer)
            head += _data(f"kompile hydrate {dry.sha[:7]}".encode())
            head += b"from %s\n" % self.notes_tip.encode() if self.notes_tip else b""
            self._write(
                head + b"".join(b"N inline %s\n" % target.encode() + note for target in noted) + b"\n"
            )
        self._finish()
        marks = dict(line.split() for line in Path(self._marks).read_text().splitlines())
        results, moves = [], ["start"]
        for env, branch in self.branches.items():
            if not branch.mark:
                continue
            tip = marks[f":{changed[env]}"] if env in changed else branch.parent
            if tip != branch.old:
                moves.append(f"update refs/heads/{branch.name} {tip} {branch.old or self.objects.zero}")
            results.append(Hydrated(env, branch.name, tip, env in changed))
        if noted:
            notes = git(self.top, "rev-parse", "--verify", f"{self._scratch}/notes^{{commit}}").strip()
            moves.append(f"update {NOTES_REF} {notes} {self.notes_tip or self.objects.zero}")
        # All or nothing, and only from the tips read at the start.
        git(
            self.top,
            "update-ref",
            "--no-deref",
            "--stdin",
            stdin=("\n".join([*moves, "prepare", "commit"]) + "\n").encode(),
        )
        return results

    def _unchanged(self, branch: _Branch) -> bool:
        """The parent's folder holds exactly these files with this manifest (the README and the metadata
        name the dry commit, so only their presence counts)."""
        held = branch.held
        if set(held) != FOLDER_FILES or any(mode != "100644" for mode, _ in held.values()):
            return False
        return held[RENDERED_MANIFEST][1] == branch.manifest_id

    def _commit_command(
        self, branch: _Branch, mark: int, dry: DryCommit, author: bytes, committer: bytes, commands: list[str]
    ) -> bytes:
        # A branch with no parent starts from nothing: the private ref is emptied first (fast-import
        # would otherwise continue the previous environment's commit).
        out = b"" if branch.parent else b"reset %s/commits\n\n" % self._scratch.encode()
        out += b"commit %s/commits\nmark :%d\n" % (self._scratch.encode(), mark)
        out += b"author %s\ncommitter %s\n" % (author, committer) + _data(commit_message(dry))
        out += b"from %s\n" % branch.parent.encode() if branch.parent else b""
        out += b"D %s\n" % self.folder.encode()  # the folder whole: what the output no longer has goes
        for path, data in branch_files(self.repo_url, self.folder, commands, dry).items():
            out += b"M 100644 inline %s\n" % path.encode() + _data(data)
        return out + b"M 100644 :%d %s/%s\n\n" % (
            branch.mark,
            self.folder.encode(),
            RENDERED_MANIFEST.encode(),
        )

    def _write(self, data: bytes) -> None:
        try:
            self._stream.stdin.write(data)
        except BrokenPipeError:
            self._finish()  # raises with fast-import's own message

    def _finish(self) -> None:
        with contextlib.suppress(BrokenPipeError):
            try:
                self._stream.stdin.write(b"done\n")
            finally:
                self._stream.stdin.close()
        error = self._stream.stderr.read().decode(errors="replace").strip()
        self._stream.stderr.close()
        if self._stream.wait() != 0:
            raise HydrateError(
                f"git fast-import refused: {error.splitlines()[0] if error else 'no reason given'}"
            )

    def _drop_scratch(self) -> None:
        listed = subprocess.run(
            ["git", "-C", str(self.top), "for-each-ref", "--format=%(refname)", self._scratch],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        for ref in listed.splitlines():
            subprocess.run(
                ["git", "-C", str(self.top), "update-ref", "-d", ref], capture_output=True, check=False
            )


def _data(payload: bytes) -> bytes:
    return b"data %d\n%s\n" % (len(payload), payload)


def write_worktree(
    worktree: Path, top: Path, branch: str, head: str, folder: str, files: dict[str, bytes]
) -> None:
    """The branch's files written into a checkout of it: another `git worktree` of this repository, on
    that branch. The app's folder is replaced whole; nothing is committed; never through a link."""
    from kompile.safefs import Refused, Root

    try:
        theirs = Path(git(worktree, "rev-parse", "--path-format=absolute", "--git-common-dir").strip())
        ours = Path(git(top, "rev-parse", "--path-format=absolute", "--git-common-dir").strip())
        their_top = Path(git(worktree, "rev-parse", "--show-toplevel").strip())
    except HydrateError:
        raise HydrateError(f"{worktree} is not a checkout of a git repository") from None
    if theirs.resolve() != ours.resolve() or their_top.resolve() == top.resolve():
        raise HydrateError(f"{worktree} is not another worktree of this repository (git worktree add ...)")
    checked_out = subprocess.run(
        ["git", "-C", str(their_top), "symbolic-ref", "-q", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    if checked_out != f"refs/heads/{branch}":
        raise HydrateError(
            f"{worktree} has {checked_out or 'a detached HEAD'} checked out, not refs/heads/{branch}"
        )
    tip = git(their_top, "rev-parse", "--verify", "HEAD^{commit}").strip()
    refuse_rollbacks(top, {branch: tip}, head, git(top, "for-each-ref", NOTES_REF).strip() != "")
    try:
        with Root(their_top) as disk:
            for path in list(disk.walk_files(folder)) if disk.lstat(folder) else []:
                disk.unlink(path)
            for path, data in sorted(files.items()):
                disk.write(path, data)
    except Refused as exc:
        raise HydrateError(f"cannot write {exc.rel} in {their_top}: {exc.why}") from None
