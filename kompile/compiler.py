"""The pipeline, end to end and in memory: load -> validate -> normalise -> render -> lay out.

Nothing here prints, exits or writes; the CLI and write.py decide what to do with the result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from kompile.errors import Code, Diagnostic, KompileError, Span
from kompile.gitops import GITOPS, layout_gitops
from kompile.layout import Compiled, base_dir, layout_base, layout_overlay, overlay_dir
from kompile.normalise import normalise_base, normalise_environment
from kompile.project import Project, load_project
from kompile.render import render_stages
from kompile.validate import validate_project


@dataclass(frozen=True)
class Output:
    """What a build produces: the files (path relative to the root -> bytes) and where it may prune."""

    project: Project
    base: Compiled
    environments: dict[str, Compiled]
    files: dict[str, bytes]
    owned: tuple[str, ...]  # folders whose generated files this output fully describes
    partial: bool = False  # only some environments were compiled

    @property
    def inputs(self) -> dict[str, str]:
        """The input hashes to record. A partial build cannot vouch for the environments it skipped,
        so it records none, and `check` recompiles until the next full build."""
        return {} if self.partial else self.project.inputs


def compile_project(root: Path, only: Sequence[str] | None = None) -> Output:
    project = load_project(root)
    resolved = validate_project(project)
    if only:
        unknown = [name for name in only if name not in project.environments]
        if unknown:
            raise KompileError([Diagnostic(Code.UNKNOWN_ENVIRONMENT, f"no environment named '{name}'", Span("environments"),
                                           "environments: " + ", ".join(project.environments)) for name in unknown])
        resolved = [r for r in resolved if r.name in only]
    base_env = normalise_base(project)
    base = Compiled(base_env, *reversed(render_stages(base_env)))
    files = layout_base(base)
    environments = {}
    for item in resolved:
        env = normalise_environment(project, item)
        untransformed, deployed = render_stages(env)
        compiled = Compiled(env, deployed, untransformed)
        environments[item.name] = compiled
        files.update(layout_overlay(base, compiled))
    if only:  # the GitOps objects describe every environment: a partial build leaves them as they are
        owned = (base_dir(project.name), *(overlay_dir(name) for name in environments))
    else:
        files.update(layout_gitops(base_env, environments))
        owned = ("bases", "overlays", GITOPS)
    return Output(project, base, environments, dict(sorted(files.items())), owned, partial=bool(only))


def render_one(root: Path, name: str) -> list[dict]:
    """The objects kompile intends for one environment (kompile render)."""
    return compile_project(root, [name]).environments[name].objects
