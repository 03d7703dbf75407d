"""kompile hydrate: each environment's rendered manifests committed to its own branch, as Argo CD's Source
Hydrator writes them and GitOps Promoter reads them.

A hydrated branch (<branchPrefix><env>, or its -next twin when a promoter moves it) holds, per app:
<app>/manifest.yaml (what `kubectl kustomize overlays/<env>` prints at the dry commit), <app>/README.md
(how to reproduce it) and <app>/hydrator.metadata; at its top, hydrator.metadata describing the dry commit
(drySha, author, date, subject, body) and Argo CD's .gitattributes. Unlike Argo CD's hydrator, the app's
folder is written whole: a file the output no longer has is gone from the branch. Nothing is committed
when the tree would not change; the dry commit is then recorded as a git note on the branch's tip
(refs/notes/hydrator.metadata), where GitOps Promoter looks for it.

Everything goes through git's plumbing on a private index: the working tree, the index and the current
branch are never touched, and a branch moves only from the tip it was read at (update-ref's old value).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from kompile import names
from kompile.model import GitOps

NOTES_REF = "hydrator.metadata"
# Argo CD's own, byte for byte (no newline at the end).
GITATTRIBUTES = b"**/README.md linguist-generated=true\n**/hydrator.metadata linguist-generated=true"


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
    changed: bool  # False: the tree was already this (only the note was written)


def _git(top: Path, *args: str, stdin: bytes | None = None, env: dict | None = None) -> str:
    try:
        result = subprocess.run(
            ["git", "-C", str(top), *args],
            input=stdin,
            capture_output=True,
            timeout=120,
            env={**os.environ, **(env or {})},
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise HydrateError(f"git {args[0]} failed: {exc}") from None
    if result.returncode != 0:
        raise HydrateError(
            f"git {' '.join(args[:2])} failed: {result.stderr.decode(errors='replace').strip()}"
        )
    return result.stdout.decode()


def _tip(top: Path, branch: str) -> str | None:
    result = subprocess.run(
        ["git", "-C", str(top), "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}^{{commit}}"],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip() if result.returncode == 0 else None


def dry_commit(top: Path) -> DryCommit:
    """HEAD, as the hydrator metadata describes it."""
    sha = _git(top, "rev-parse", "--verify", "HEAD^{commit}").strip()
    fields = _git(top, "show", "-s", "--format=%an <%ae>%x00%aI%x00%B", sha).split("\0")
    author, date, message = fields[0], fields[1], fields[2].rstrip("\n")
    subject, _, body = message.partition("\n\n")
    moment = datetime.fromisoformat(date.strip())
    if moment.utcoffset() == UTC.utcoffset(None):
        rfc3339 = moment.strftime("%Y-%m-%dT%H:%M:%SZ")  # as Go's time.RFC3339 writes UTC
    else:
        rfc3339 = moment.isoformat()
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


def branch_files(gitops: GitOps, app: str, env: str, manifest: bytes, dry: DryCommit) -> dict[str, bytes]:
    """What one environment's hydrated branch holds for this app, and at its top."""
    folder = names.hydrated_folder(app)
    commands = [f"kubectl kustomize {gitops.source_path(f'overlays/{env}')}"]
    return {
        ".gitattributes": GITATTRIBUTES,
        "hydrator.metadata": metadata(dry, gitops.repo_url),
        f"{folder}/README.md": readme(dry, gitops.repo_url, commands),
        f"{folder}/hydrator.metadata": metadata(dry, gitops.repo_url, commands, full=False),
        f"{folder}/manifest.yaml": manifest,
    }


def commit_branch(
    top: Path,
    env: str,
    branch: str,
    parent_branch: str | None,
    folder: str,
    files: dict[str, bytes],
    dry: DryCommit,
) -> Hydrated:
    """Commit files to branch: the app's folder replaced whole, other apps' folders kept. A new branch
    starts from parent_branch when that exists (a -next branch shares its history), else from nothing."""
    old = _tip(top, branch)
    parent = old or (_tip(top, parent_branch) if parent_branch else None)
    blobs = {
        path: _git(top, "hash-object", "-w", "--stdin", stdin=data).strip() for path, data in files.items()
    }
    if parent and _same_manifests(top, parent, folder, blobs):
        # As Argo CD: a dry commit that changes no manifest makes no commit, only a note on the tip.
        if old is None:  # a new -next branch whose parent already holds these manifests
            _git(top, "update-ref", "-m", "kompile hydrate", f"refs/heads/{branch}", parent, "0" * 40)
        _note(top, parent, dry)
        return Hydrated(env, branch, parent, changed=False)
    with tempfile.TemporaryDirectory(prefix="kompile-hydrate-") as scratch:
        index = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
        if parent:
            _git(top, "read-tree", parent, env=index)
        else:
            _git(top, "read-tree", "--empty", env=index)
        _git(top, "rm", "--cached", "-r", "-q", "-f", "--ignore-unmatch", "--", folder, env=index)
        entries = "".join(f"100644 {blob}\t{path}\n" for path, blob in sorted(blobs.items()))
        _git(top, "update-index", "--add", "--index-info", stdin=entries.encode(), env=index)
        tree = _git(top, "write-tree", env=index).strip()
    message = f"{dry.sha[:7]}: {dry.subject}\n"
    if dry.body:
        message += f"\n{dry.body}\n"
    message += f"\nCo-authored-by: {dry.author}\n"
    args = ["commit-tree", tree, *(["-p", parent] if parent else []), "-F", "-"]
    commit = _git(top, *args, stdin=message.encode()).strip()
    _git(top, "update-ref", "-m", "kompile hydrate", f"refs/heads/{branch}", commit, old or "0" * 40)
    _note(top, commit, dry)
    return Hydrated(env, branch, commit, changed=True)


def _same_manifests(top: Path, parent: str, folder: str, blobs: dict[str, str]) -> bool:
    """Whether parent's folder holds exactly these files with these manifests (only the metadata and the
    README, which name the dry commit, may differ)."""
    listed = _git(top, "ls-tree", "-r", "--full-tree", parent, "--", f"{folder}/")
    held = {}
    for line in listed.splitlines():
        info, _, path = line.partition("\t")
        held[path] = info.split()[2]
    mine = {path: blob for path, blob in blobs.items() if path.startswith(f"{folder}/")}
    if held.keys() != mine.keys():
        return False
    return all(held[path] == blob for path, blob in mine.items() if path.endswith("/manifest.yaml"))


def _note(top: Path, commit: str, dry: DryCommit) -> None:
    note = json.dumps({"drySha": dry.sha}, separators=(",", ":"))
    _git(top, "notes", f"--ref={NOTES_REF}", "add", "-f", "-m", note, commit)
