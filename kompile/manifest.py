"""The record of what kompile generated: every output path with the hash of its bytes, and the inputs
(with their hashes) and kompile version it was built from.

It is committed with the output. It is how kompile knows which files it owns (it never touches
others), notices a generated file edited by hand, and answers `check` without recompiling when
neither the inputs nor the outputs changed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from kompile import __version__
from kompile.errors import Code, Diagnostic, KompileError, Span

MANIFEST = ".kompile-manifest.json"
FORMAT = 1


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Manifest:
    generator: str = f"kompile {__version__}"
    inputs: dict[str, str] = field(default_factory=dict)
    # path -> the hashes of its acceptable contents: one normally; old and new while a build is writing,
    # so a build killed half way leaves a record that still owns every file it may have touched.
    files: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def owns(self, path: str, data: bytes) -> bool:
        return digest(data) in self.files.get(path, ())

    def to_bytes(self) -> bytes:
        files = {path: hashes[0] if len(hashes) == 1 else list(hashes) for path, hashes in sorted(self.files.items())}
        body = {"format": FORMAT, "generator": self.generator, "inputs": dict(sorted(self.inputs.items())), "files": files}
        return (json.dumps(body, indent=1) + "\n").encode()


def read_manifest(root: Path) -> Manifest | None:
    path = root / MANIFEST
    if not path.is_file():
        return None
    problem = None
    try:
        body = json.loads(path.read_bytes())
        if not isinstance(body, dict) or body.get("format") != FORMAT:
            problem = f"unknown manifest format {body.get('format') if isinstance(body, dict) else None!r}"
        else:
            files = {}
            for name, hashes in body["files"].items():
                files[name] = (hashes,) if isinstance(hashes, str) else tuple(hashes)
            return Manifest(generator=str(body.get("generator", "")), inputs=dict(body.get("inputs") or {}), files=files)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        problem = f"unreadable ({exc})"
    raise KompileError([Diagnostic(Code.MANIFEST, f"{MANIFEST} is {problem}", Span(MANIFEST),
                                   f"restore it from git (git checkout -- {MANIFEST}); kompile uses it to know which files it owns")])
