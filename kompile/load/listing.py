"""Which files are the specs (environments/*.yaml) and where the repo's root is, found without reading
a spec: what a command that only compares files with a record (`check --fast`) needs, without the
spec model and the compiler."""

from __future__ import annotations

from pathlib import Path

from kompile.errors import Code, Diagnostic, KompileError, Span
from kompile.safefs import Refused, Root

ENVIRONMENTS_DIR = "environments"
SPEC_SUFFIXES = (".yaml", ".yml")


def find_root(start: Path) -> Path | None:
    """The folder holding environments/, at start or above it (as git finds .git), or None."""
    here = start.resolve()
    for folder in (here, *here.parents):
        if (folder / ENVIRONMENTS_DIR).is_dir() and not (folder / ENVIRONMENTS_DIR).is_symlink():
            return folder
    return None


def spec_paths(root: Path) -> list[str]:
    """The spec files, as paths relative to root, in a stable order."""
    return spec_files(root)[0]


def spec_files(root: Path) -> tuple[list[str], list[Diagnostic]]:
    """The spec files, and the problems of the folder itself: two files for one name (dev.yaml and
    dev.yml) is an error, kompile never picks one silently. Links and folders are listed: reading them
    reports them."""
    try:
        with Root(root) as handle:
            missing = handle.lstat(ENVIRONMENTS_DIR) is None
            names = sorted(e.name for e in handle.listdir(ENVIRONMENTS_DIR))
    except Refused as exc:
        raise KompileError(
            [
                Diagnostic(
                    Code.PATH_OUTSIDE_ROOT,
                    f"'{ENVIRONMENTS_DIR}/' is refused: {exc.why}",
                    Span(ENVIRONMENTS_DIR),
                    "environments/ must be a folder of the repo, not a link",
                )
            ]
        ) from None
    except OSError as exc:
        raise KompileError(
            [
                Diagnostic(
                    Code.NO_ENVIRONMENTS,
                    f"cannot read {root}: {exc.strerror}",
                    Span(ENVIRONMENTS_DIR),
                    "run kompile in the repo root, or pass --root",
                )
            ]
        ) from None
    if missing:
        raise KompileError(
            [
                Diagnostic(
                    Code.NO_ENVIRONMENTS,
                    f"no '{ENVIRONMENTS_DIR}/' folder in {root}",
                    Span(ENVIRONMENTS_DIR),
                    "run kompile in the repo root, or pass --root",
                )
            ]
        )
    problems: list[Diagnostic] = []
    stems: dict[str, str] = {}
    for name in names:
        if not name.endswith(SPEC_SUFFIXES) or name.startswith("."):
            continue
        rel = f"{ENVIRONMENTS_DIR}/{name}"
        stem = name.rsplit(".", 1)[0]
        if stem in stems:
            problems.append(
                Diagnostic(
                    Code.DUPLICATE_FILE,
                    f"{rel} and {stems[stem]} both define '{stem}'",
                    Span(rel),
                    "keep one of them: kompile reads .yaml and .yml alike and will not choose",
                )
            )
            continue
        stems[stem] = rel
    return sorted(stems.values()), problems
