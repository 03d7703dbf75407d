"""kompile hydrate: each environment's rendered manifests committed to its own branch, as Argo CD's Source
Hydrator writes them and GitOps Promoter reads them.

A hydrated branch (<branchPrefix><env>, or its -next twin when a promoter moves it) holds, per app:
<app>/manifest.yaml (what `kubectl kustomize overlays/<env>` prints at the dry commit), <app>/README.md
(how to reproduce it) and <app>/hydrator.metadata; at its top, hydrator.metadata describing the dry commit
(drySha, author, date, subject, body) and Argo CD's .gitattributes. Unlike Argo CD's hydrator, the app's
folder is written whole: a file the output no longer has is gone from the branch. Nothing is committed
when no manifest would change; the dry commit is then recorded as a git note on the branch's tip
(refs/notes/hydrator.metadata), where GitOps Promoter looks for it.

Everything goes through one `git fast-import` (and one `git cat-file --batch` to read the branches' tips),
so the cost per environment is a few writes to a pipe, not a few processes: manifests are sent as blobs
while the compiler makes them, commits only once the caller has checked the committed output
(`commit`), and nothing moves a branch if it does not (`abandon`). fast-import moves a branch only
forward from the tip it was read at; the working tree, the index and the current branch are never
touched.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from kompile import names
from kompile.model import GitOps

NOTES_REF = "refs/notes/hydrator.metadata"
# Argo CD's own, byte for byte (no newline at the end).
GITATTRIBUTES = b"**/README.md linguist-generated=true\n**/hydrator.metadata linguist-generated=true"
MANIFEST = "manifest.yaml"
_INVISIBLE = re.compile(
    "[\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff\ufffe\uffff]"
)


class HydrateError(Exception):
    """git refused, or the repository is not in a state to hydrate from."""


@dataclass(frozen=True)
class DryCommit:
    sha: str
    author: str  # Name <email>
    date: str  # RFC 3339
    subject: str
    body: str


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
    author, date, message = git(top, "show", "-s", "--format=%an <%ae>%x00%aI%x00%B", sha).split("\0")
    subject, _, body = message.rstrip("\n").partition("\n\n")
    return DryCommit(sha, author, _rfc3339(date.strip()), subject.strip(), body.strip())


def _rfc3339(date: str) -> str:
    """git's strict ISO date as Go's time.RFC3339 writes it; "" (left out of the metadata: GitOps
    Promoter refuses what it cannot parse) for a date RFC 3339 cannot hold (a year past 9999, an
    offset past 23:59)."""
    try:
        moment = datetime.fromisoformat(date)
        offset = moment.utcoffset()
    except ValueError:
        return ""
    if offset is not None and abs(offset.total_seconds()) >= 24 * 3600:
        return ""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if offset == UTC.utcoffset(None) else moment.isoformat()


def metadata(dry: DryCommit, repo_url: str, commands: list[str] | None = None, full: bool = True) -> bytes:
    """hydrator.metadata: Argo CD's fields in its order, empty ones left out (GitOps Promoter refuses an
    empty date), indented by two spaces, with a newline at the end."""
    fields = {"repoURL": repo_url, "drySha": dry.sha, "commands": commands}
    if full:
        fields.update(author=dry.author, date=dry.date, subject=dry.subject, body=dry.body)
    body = {key: value for key, value in fields.items() if value}
    text = json.dumps(body, indent=2, ensure_ascii=False)
    # As Go's encoding/json, U+2028 and U+2029 escaped; and whatever kompile refuses in its own input
    # (bidirectional controls, NEL, BOM: a commit message may hold them) escaped too, so the file shows
    # what it says. The JSON reads back the same.
    return (_INVISIBLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text) + "\n").encode()


def readme(dry: DryCommit, repo_url: str, commands: list[str]) -> bytes:
    """Argo CD's default README for a hydrated folder: how to get the same bytes again."""
    lines = [
        "# Manifest Hydration",
        "",
        "To hydrate the manifests in this repository, run the following commands:",
        "",
        "```shell",
        f"git clone {repo_url}",
        "# cd into the cloned directory",
        f"git checkout {dry.sha}",
        *commands,
        "```",
    ]
    return ("\n".join(lines) + "\n").encode()


def branch_files(repo_url: str, folder: str, commands: list[str], dry: DryCommit) -> dict[str, bytes]:
    """What a hydrated branch holds besides the manifest: at its top, and in the app's folder."""
    return {
        ".gitattributes": GITATTRIBUTES,
        "hydrator.metadata": metadata(dry, repo_url),
        f"{folder}/README.md": readme(dry, repo_url, commands),
        f"{folder}/hydrator.metadata": metadata(dry, repo_url, commands, full=False),
    }


def write_worktree(worktree: Path, top: Path, folder: str, files: dict[str, bytes]) -> None:
    """The branch's files written into a checkout of it (a `git worktree` of this repository, not the one
    hydrated from): the app's folder replaced whole, nothing committed. Never through a link."""
    from kompile.safefs import Refused, Root

    try:
        theirs = Path(git(worktree, "rev-parse", "--path-format=absolute", "--git-common-dir").strip())
        ours = Path(git(top, "rev-parse", "--path-format=absolute", "--git-common-dir").strip())
        their_top = Path(git(worktree, "rev-parse", "--show-toplevel").strip())
    except HydrateError:
        raise HydrateError(f"{worktree} is not a checkout of a git repository") from None
    if theirs.resolve() != ours.resolve() or their_top.resolve() == top.resolve():
        raise HydrateError(f"{worktree} is not another worktree of this repository (git worktree add ...)")
    try:
        with Root(their_top) as disk:
            for path in list(disk.walk_files(folder)) if disk.lstat(folder) else []:
                disk.unlink(path)
            for path, data in sorted(files.items()):
                disk.folder(path.rpartition("/")[0], create=True)
                disk.write(path, data)
    except Refused as exc:
        raise HydrateError(f"cannot write {exc.rel} in {their_top}: {exc.why}") from None


def blob_id(data: bytes) -> str:
    """The id git gives these bytes as a blob (so no process is asked whether they changed)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


@dataclass
class _Branch:
    env: str
    name: str  # the branch hydration writes
    old: str | None  # its tip, if it exists
    parent: str | None  # what a commit goes on top of: the tip, or the synced branch's for a new -next
    held: dict[str, tuple[str, str]] | None  # the app's folder at parent: name -> (mode, blob id)
    mark: int = 0  # the manifest's blob in the stream
    manifest_id: str = ""


class Hydrator:
    """One environment per branch, in one fast-import stream. Use as a context manager: `add` each
    rendered manifest as the compiler makes it, then `commit` (or leave without it: nothing moves)."""

    def __init__(self, top: Path, gitops: GitOps, app: str, environments: list[str], head: str) -> None:
        self.top, self.gitops, self.folder = top, gitops, names.hydrated_folder(app, gitops.path)
        tips = self._tips()
        self.notes_tip = tips.get(NOTES_REF)
        self.branches: dict[str, _Branch] = {}
        for env in environments:
            name = gitops.hydrate_branch(env)
            _refuse_conflicts(f"refs/heads/{name}", tips)
            old = tips.get(f"refs/heads/{name}")
            synced = tips.get(f"refs/heads/{gitops.sync_branch(env)}") if gitops.promoter else None
            self.branches[env] = _Branch(env, name, old, old or synced, None)
        self._read_folders()
        self._refuse_rollbacks(head)
        # Commits land on a private ref first; every branch moves at once in one transaction (commit).
        self._scratch = f"refs/kompile/hydrate/{os.getpid()}-{secrets.token_hex(4)}"
        handle, self._marks = tempfile.mkstemp(prefix="kompile-hydrate-", suffix=".marks")
        os.close(handle)
        self._next_mark = 0
        try:
            self._stream = subprocess.Popen(
                [
                    "git",
                    "-C",
                    str(top),
                    "fast-import",
                    "--quiet",
                    "--done",
                    f"--export-marks={self._marks}",
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
        except OSError as exc:
            raise HydrateError(f"cannot run git fast-import: {exc}") from None

    def __enter__(self) -> Hydrator:
        return self

    def __exit__(self, *exc) -> None:
        try:
            if self._stream.poll() is None:  # not committed: end the stream, nothing moves
                self._finish()
        finally:
            self._drop_scratch()
            Path(self._marks).unlink(missing_ok=True)

    def _tips(self) -> dict[str, str]:
        listed = git(
            self.top, "for-each-ref", "--format=%(refname) %(objectname) %(symref)", "refs/heads/", NOTES_REF
        )
        tips = {}
        for line in listed.splitlines():
            ref, sha, symref = (line.split(" ", 2) + [""])[:3]
            tips[ref] = sha if not symref.strip() else f"symbolic:{symref.strip()}"
        return tips

    def _refuse_rollbacks(self, head: str) -> None:
        """A branch hydrated from a commit HEAD does not contain would go back in time (an old CI job run
        again, a checkout of an older commit): refused. The dry commit is the tip's note (the latest,
        even when it made no commit) or else its hydrator.metadata."""
        notes = {}
        if self.notes_tip:
            for line in git(self.top, "notes", "--ref", NOTES_REF, "list").splitlines():
                note, _, target = line.partition(" ")
                notes[target] = note
        tips = {b.parent for b in self.branches.values() if b.parent}
        asked = [(tip, notes.get(tip, f"{tip}:hydrator.metadata")) for tip in sorted(tips)]
        found = _cat(self.top, [spec for _, spec in asked])
        dry: dict[str, str] = {}
        for (tip, _), body in zip(asked, found, strict=True):
            try:
                sha = json.loads(body or b"{}").get("drySha") if body else None
            except ValueError:
                sha = None
            if isinstance(sha, str) and re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", sha):
                dry[tip] = sha
        verdicts: dict[str, bool] = {}
        for branch in self.branches.values():
            sha = dry.get(branch.parent or "")
            if sha is None or sha == head:
                continue
            if sha not in verdicts:
                verdicts[sha] = _is_ancestor(self.top, sha, head)
            if not verdicts[sha]:
                raise HydrateError(
                    f"{branch.name} holds manifests hydrated from {sha[:12]}, which HEAD ({head[:12]}) does "
                    "not contain: hydrating now would take it back in time"
                )

    def _read_folders(self) -> None:
        """The app's folder at each parent, through one cat-file (a tree object: mode, name, raw id)."""
        asked = [b for b in self.branches.values() if b.parent]
        found = _cat(self.top, [f"{b.parent}:{self.folder}" for b in asked], kind=b"tree")
        for branch, body in zip(asked, found, strict=True):
            branch.held = _tree_entries(body) if body is not None else {}

    def _write(self, data: bytes) -> None:
        try:
            self._stream.stdin.write(data)
        except BrokenPipeError:
            self._finish()  # raises with fast-import's own message

    def _data(self, payload: bytes) -> bytes:
        return b"data %d\n%s\n" % (len(payload), payload)

    def add(self, env: str, manifest: bytes) -> None:
        """Send an environment's manifest (environments not being hydrated are ignored)."""
        branch = self.branches.get(env)
        if branch is None:
            return
        self._next_mark += 1
        branch.mark, branch.manifest_id = self._next_mark, blob_id(manifest)
        self._write(b"blob\nmark :%d\n" % branch.mark + self._data(manifest))

    def commit(self, dry: DryCommit) -> list[Hydrated]:
        author = git_bytes(self.top, "var", "GIT_AUTHOR_IDENT").strip()
        committer = git_bytes(self.top, "var", "GIT_COMMITTER_IDENT").strip()
        commands = {
            env: [f"kubectl kustomize {self.gitops.source_path(f'overlays/{env}')}"] for env in self.branches
        }
        changed = {}
        notes: list[tuple[str, str]] = []  # (commit-ish, the branch's environment)
        for env, branch in self.branches.items():
            if not branch.mark:
                raise HydrateError(f"no manifest was rendered for environment {env}")
            if branch.parent and self._unchanged(branch):
                # As Argo CD: a dry commit that changes no manifest makes no commit, only a note on the tip.
                notes.append((branch.parent, env))
                continue
            self._next_mark += 1
            changed[env] = self._next_mark
            self._write(self._commit_command(branch, self._next_mark, dry, author, committer, commands[env]))
            notes.append((f":{self._next_mark}", env))
        note = json.dumps({"drySha": dry.sha}, separators=(",", ":")).encode()
        if notes:
            head = b"commit %s/notes\ncommitter %s\n" % (self._scratch.encode(), committer)
            head += self._data(f"kompile hydrate {dry.sha[:7]}".encode())
            if self.notes_tip:
                head += b"from %s\n" % self.notes_tip.encode()
            body = b"".join(b"N inline %s\n" % target.encode() + self._data(note) for target, _ in notes)
            self._write(head + body + b"\n")
        self._finish()
        marks = dict(line.split() for line in Path(self._marks).read_text().splitlines())
        results, moves = [], ["start"]
        for env, branch in self.branches.items():
            tip = marks[f":{changed[env]}"] if env in changed else branch.parent
            if tip != branch.old:
                moves.append(f"update refs/heads/{branch.name} {tip} {branch.old or ZERO}")
            results.append(Hydrated(env, branch.name, tip, env in changed))
        if notes:
            notes_commit = git(self.top, "rev-parse", "--verify", f"{self._scratch}/notes^{{commit}}").strip()
            moves.append(f"update {NOTES_REF} {notes_commit} {self.notes_tip or ZERO}")
        moves += ["prepare", "commit"]
        try:  # all or nothing, and only from the tips read at the start
            git(self.top, "update-ref", "--no-deref", "--stdin", stdin=("\n".join(moves) + "\n").encode())
        finally:
            self._drop_scratch()
        return results

    def _drop_scratch(self) -> None:
        for ref in git(self.top, "for-each-ref", "--format=%(refname)", self._scratch).splitlines():
            subprocess.run(
                ["git", "-C", str(self.top), "update-ref", "-d", ref], capture_output=True, check=False
            )

    def _unchanged(self, branch: _Branch) -> bool:
        """The parent's folder holds exactly these files with this manifest (the README and the metadata
        name the dry commit, so only their presence counts)."""
        held = branch.held or {}
        wanted = {"README.md", "hydrator.metadata", MANIFEST}
        if set(held) != wanted or any(mode != "100644" for mode, _ in held.values()):
            return False
        return held[MANIFEST][1] == branch.manifest_id

    def _commit_command(
        self, branch: _Branch, mark: int, dry: DryCommit, author: bytes, committer: bytes, commands: list[str]
    ) -> bytes:
        message = f"{dry.sha[:7]}: {dry.subject}\n"
        if dry.body:
            message += f"\n{dry.body}\n"
        message += f"\nCo-authored-by: {dry.author}\n"
        url = self.gitops.repo_url
        inline = branch_files(url, self.folder, commands, dry)
        out = b"commit %s/commits\nmark :%d\n" % (self._scratch.encode(), mark)
        out += b"author %s\ncommitter %s\n" % (author, committer)
        out += self._data(message.encode())
        if branch.parent:
            out += b"from %s\n" % branch.parent.encode()
        out += b"D %s\n" % self.folder.encode()  # the folder whole: what the output no longer has goes
        for path, data in inline.items():
            out += b"M 100644 inline %s\n" % path.encode() + self._data(data)
        out += b"M 100644 :%d %s/%s\n\n" % (branch.mark, self.folder.encode(), MANIFEST.encode())
        return out

    def _finish(self) -> None:
        try:
            self._stream.stdin.write(b"done\n")
            self._stream.stdin.close()
        except BrokenPipeError:
            pass
        error = self._stream.stderr.read().decode(errors="replace").strip()
        if self._stream.wait() != 0:
            raise HydrateError(
                f"git fast-import refused: {error.splitlines()[0] if error else 'no reason given'}"
            )


def _tree_entries(raw: bytes) -> dict[str, tuple[str, str]]:
    entries, at = {}, 0
    while at < len(raw):
        space = raw.index(b" ", at)
        nul = raw.index(b"\0", space)
        mode, name = raw[at:space].decode(), raw[space + 1 : nul].decode(errors="replace")
        entries[name] = (mode, raw[nul + 1 : nul + 21].hex())
        at = nul + 21
    return entries


ZERO = "0" * 40


def _refuse_conflicts(ref: str, tips: dict[str, str]) -> None:
    """A branch git cannot create beside the refs there are (one is a folder of the other), or one that
    is a symbolic ref (writing it would move the branch it points to)."""
    if tips.get(ref, "").startswith("symbolic:"):
        raise HydrateError(
            f"{ref} is a symbolic ref (to {tips[ref].split(':', 1)[1]}); kompile hydrate writes it itself"
        )
    for other in tips:
        if other.startswith(ref + "/") or ref.startswith(other + "/"):
            raise HydrateError(f"{ref} cannot be created beside {other}")


def _cat(top: Path, specs: list[str], kind: bytes | None = None) -> list[bytes | None]:
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
        if len(header) != 3:  # "<spec> missing" or ambiguous
            found.append(None)
            continue
        size = int(header[2])
        body = out[at : at + size]
        at += size + 1
        found.append(body if kind is None or header[1] == kind else None)
    return found


def _is_ancestor(top: Path, sha: str, head: str) -> bool:
    result = subprocess.run(
        ["git", "-C", str(top), "merge-base", "--is-ancestor", sha, head], capture_output=True, check=False
    )
    return result.returncode == 0
