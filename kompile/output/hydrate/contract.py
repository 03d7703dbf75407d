"""What a hydrated branch holds, as Argo CD's Source Hydrator writes it and GitOps Promoter reads it.

Per app, in its folder: manifest.yaml (what `kubectl kustomize overlays/<env>` prints at the dry commit),
README.md (how to reproduce it) and hydrator.metadata (repoURL, drySha, the commands); at the top of the
branch, hydrator.metadata describing the dry commit (repoURL, drySha, author, date, subject, body, in
Argo CD's order) and Argo CD's .gitattributes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from kompile.names import RENDERED_MANIFEST
from kompile.source import AMBIGUOUS_CHARACTERS, visible

# Argo CD's own, byte for byte (no newline at the end).
GITATTRIBUTES = b"**/README.md linguist-generated=true\n**/hydrator.metadata linguist-generated=true"
METADATA = "hydrator.metadata"
README = "README.md"
# What a metadata file escapes although JSON need not: C1 controls, and what kompile refuses in its own
# input (a commit message may hold them). U+2028 and U+2029 among them, as Go's encoding/json does.
_INVISIBLE = re.compile(f"[\x7f-\x9f{AMBIGUOUS_CHARACTERS}]")


@dataclass(frozen=True)
class DryCommit:
    """The commit hydrated from, as the metadata describes it."""

    sha: str
    author: str  # Name <email>
    date: str  # RFC 3339, or "" when it cannot be written so (left out)
    subject: str
    body: str


def rfc3339(date: str) -> str:
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
    empty date), indented by two spaces, with a newline at the end; invisible characters escaped, so
    the file shows what it says (the JSON reads back the same)."""
    fields = {"repoURL": repo_url, "drySha": dry.sha, "commands": commands}
    if full:
        fields.update(author=dry.author, date=dry.date, subject=dry.subject, body=dry.body)
    body = {key: value for key, value in fields.items() if value}
    return (visible(json.dumps(body, indent=2, ensure_ascii=False), _INVISIBLE) + "\n").encode()


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


def commit_message(dry: DryCommit) -> bytes:
    """Argo CD's default: the dry commit's short id and subject, its body, its author as co-author."""
    message = f"{dry.sha[:7]}: {dry.subject}\n"
    if dry.body:
        message += f"\n{dry.body}\n"
    return (message + f"\nCo-authored-by: {dry.author}\n").encode()


def branch_files(repo_url: str, folder: str, commands: list[str], dry: DryCommit) -> dict[str, bytes]:
    """What a hydrated branch holds besides the manifest: at its top, and in the app's folder."""
    return {
        ".gitattributes": GITATTRIBUTES,
        METADATA: metadata(dry, repo_url),
        f"{folder}/{README}": readme(dry, repo_url, commands),
        f"{folder}/{METADATA}": metadata(dry, repo_url, commands, full=False),
    }


FOLDER_FILES = frozenset({README, METADATA, RENDERED_MANIFEST})  # what an app's folder holds, no more
