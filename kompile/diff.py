"""Comparing a compiled tree with what is on disk (kompile check)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from kompile.manifest import MANIFEST, Manifest, read_manifest


@dataclass
class TreeChanges:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.added or self.changed or self.removed)


def compare_with_disk(root: Path, files: dict[str, bytes], manifest: Manifest, owned: tuple[str, ...]) -> TreeChanges:
    """What `kompile build` would add, change or remove; empty when it would do nothing.

    `manifest` is the one the build would write: it is part of the output, so a stale record counts too.
    """
    changes = TreeChanges()
    for path, data in {**files, MANIFEST: manifest.to_bytes()}.items():
        try:
            current = (root / path).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError):
            changes.added.append(path)
            continue
        if current != data:
            changes.changed.append(path)
    old = read_manifest(root)
    for path in old.files if old else ():
        if path not in files and any(path.startswith(folder + "/") for folder in owned) and (root / path).exists():
            changes.removed.append(path)
    return changes
