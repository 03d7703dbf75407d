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


def git(top: Path, *args: str, stdin: bytes | None = None) -> str:
    try:
        result = subprocess.run(
            ["git", "-C", str(top), *args], input=stdin, capture_output=True, timeout=300, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise HydrateError(f"git {args[0]} failed: {exc}") from None
    if result.returncode != 0:
        raise HydrateError(
            f"git {' '.join(args[:2])} failed: {result.stderr.decode(errors='replace').strip()}"
        )
    return result.stdout.decode()


def dry_commit(top: Path) -> DryCommit:
    """HEAD, as the hydrator metadata describes it."""
    sha = git(top, "rev-parse", "--verify", "HEAD^{commit}").strip()
    author, date, message = git(top, "show", "-s", "--format=%an <%ae>%x00%aI%x00%B", sha).split("\0")
    subject, _, body = message.rstrip("\n").partition("\n\n")
    moment = datetime.fromisoformat(date.strip())
    utc = moment.utcoffset() == UTC.utcoffset(None)
    rfc3339 = moment.strftime("%Y-%m-%dT%H:%M:%SZ") if utc else moment.isoformat()  # as Go's time.RFC3339
    return DryCommit(sha, author, rfc3339, subject.strip(), body.strip())


def metadata(dry: DryCommit, repo_url: str, commands: list[str] | None = None, full: bool = True) -> bytes:
    """hydrator.metadata: Argo CD's fields in its order, empty ones left out (GitOps Promoter refuses an
    empty date), indented by two spaces, with a newline at the end."""
    fields = {"repoURL": repo_url, "drySha": dry.sha, "commands": commands}
    if full:
        fields.update(author=dry.author, date=dry.date, subject=dry.subject, body=dry.body)
    body = {key: value for key, value in fields.items() if value}
    return (json.dumps(body, indent=2, ensure_ascii=False) + "\n").encode()


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

    def __init__(self, top: Path, gitops: GitOps, app: str, environments: list[str]) -> None:
        self.top, self.gitops, self.folder = top, gitops, names.hydrated_folder(app)
        tips = self._tips()
        self.notes_tip = tips.get(NOTES_REF)
        self.branches: dict[str, _Branch] = {}
        for env in environments:
            name = gitops.hydrate_branch(env)
            old = tips.get(f"refs/heads/{name}")
            synced = tips.get(f"refs/heads/{gitops.sync_branch(env)}") if gitops.promoter else None
            self.branches[env] = _Branch(env, name, old, old or synced, None)
        self._read_folders()
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
        if self._stream.poll() is None:  # not committed: end the stream with no commit, so nothing moves
            self._finish()
        Path(self._marks).unlink(missing_ok=True)

    def _tips(self) -> dict[str, str]:
        listed = git(self.top, "for-each-ref", "--format=%(refname) %(objectname)", "refs/heads/", NOTES_REF)
        return dict(line.split(" ", 1) for line in listed.splitlines())

    def _read_folders(self) -> None:
        """The app's folder at each parent, through one cat-file (a tree object: mode, name, raw id)."""
        asked = [b for b in self.branches.values() if b.parent]
        if not asked:
            return
        query = "".join(f"{b.parent}:{self.folder}\n" for b in asked).encode()
        out = subprocess.run(
            ["git", "-C", str(self.top), "cat-file", "--batch"], input=query, capture_output=True, check=False
        ).stdout
        at = 0
        for branch in asked:
            end = out.index(b"\n", at)
            header = out[at:end].split()
            at = end + 1
            if len(header) != 3 or header[1] != b"tree":
                if len(header) == 3:  # a blob where the folder should be: skip its body
                    at += int(header[2]) + 1
                branch.held = {}
                continue
            size = int(header[2])
            branch.held = _tree_entries(out[at : at + size])
            at += size + 1

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
        author = git(self.top, "var", "GIT_AUTHOR_IDENT").strip()
        committer = git(self.top, "var", "GIT_COMMITTER_IDENT").strip()
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
                if branch.old is None:  # a new -next branch whose parent holds these manifests
                    self._write(
                        b"reset refs/heads/%s\nfrom %s\n\n" % (branch.name.encode(), branch.parent.encode())
                    )
                notes.append((branch.parent, env))
                continue
            self._next_mark += 1
            changed[env] = self._next_mark
            self._write(self._commit_command(branch, self._next_mark, dry, author, committer, commands[env]))
            notes.append((f":{self._next_mark}", env))
        note = json.dumps({"drySha": dry.sha}, separators=(",", ":")).encode()
        if notes:
            head = b"commit %s\ncommitter %s\n" % (NOTES_REF.encode(), committer.encode())
            head += self._data(f"kompile hydrate {dry.sha[:7]}".encode())
            if self.notes_tip:
                head += b"from %s\n" % self.notes_tip.encode()
            body = b"".join(b"N inline %s\n" % target.encode() + self._data(note) for target, _ in notes)
            self._write(head + body + b"\n")
        self._finish()
        marks = dict(line.split() for line in Path(self._marks).read_text().splitlines())
        results = []
        for env, branch in self.branches.items():
            tip = marks[f":{changed[env]}"] if env in changed else branch.parent
            results.append(Hydrated(env, branch.name, tip, env in changed))
        return results

    def _unchanged(self, branch: _Branch) -> bool:
        """The parent's folder holds exactly these files with this manifest (the README and the metadata
        name the dry commit, so only their presence counts)."""
        held = branch.held or {}
        wanted = {"README.md", "hydrator.metadata", MANIFEST}
        if set(held) != wanted or any(mode != "100644" for mode, _ in held.values()):
            return False
        return held[MANIFEST][1] == branch.manifest_id

    def _commit_command(
        self, branch: _Branch, mark: int, dry: DryCommit, author: str, committer: str, commands: list[str]
    ) -> bytes:
        message = f"{dry.sha[:7]}: {dry.subject}\n"
        if dry.body:
            message += f"\n{dry.body}\n"
        message += f"\nCo-authored-by: {dry.author}\n"
        url = self.gitops.repo_url
        inline = {
            ".gitattributes": GITATTRIBUTES,
            "hydrator.metadata": metadata(dry, url),
            f"{self.folder}/README.md": readme(dry, url, commands),
            f"{self.folder}/hydrator.metadata": metadata(dry, url, commands, full=False),
        }
        out = b"commit refs/heads/%s\nmark :%d\n" % (branch.name.encode(), mark)
        out += b"author %s\ncommitter %s\n" % (author.encode(), committer.encode())
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
