"""kompile hydrate: each environment's rendered manifests committed to its own branch from HEAD, as Argo
CD's Source Hydrator would (contract.py says what a branch holds, branches.py how it is written).

One compile does two things at once: it checks that the committed output is what the specs produce
(else the branches would not match the overlays at the dry commit), and it hands each environment's
rendered manifest on as it is made. Branches move only when the check passed. Nothing is pushed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from kompile import names
from kompile.compiler import compile_project
from kompile.errors import Code, Diagnostic, KompileError, Span
from kompile.layout.rendered import rendered_environment
from kompile.load.project import load_project, require_environments
from kompile.model import GitOps, Hydration
from kompile.normalise import normalise_gitops
from kompile.output.check import Comparer
from kompile.output.hydrate.branches import (
    Hydrated,
    HydrateError,
    Hydrator,
    dry_commit,
    git,
    write_worktree,
)
from kompile.output.hydrate.contract import DryCommit, branch_files
from kompile.output.write import next_manifest
from kompile.validate import validate_app

__all__ = ["Hydrated", "hydrate_project"]


def hydrate_project(
    root: Path, envs: list[str] | None = None, worktree: Path | None = None
) -> list[Hydrated]:
    """Commit each environment's rendered manifests to its hydrated branch (gitops.hydration mode
    branches); with a worktree (another `git worktree` of the repository, on that environment's branch),
    write one environment's branch files there instead, for a pipeline that commits itself."""
    project = load_project(root)
    validate_app(project)
    gitops = normalise_gitops(project)
    if gitops is None or gitops.hydration is not Hydration.BRANCHES:
        mode = gitops.hydration.value if gitops else "none (no gitops)"
        raise KompileError(
            [
                Diagnostic(
                    Code.INVALID_VALUE,
                    f"kompile hydrate writes branches, but gitops.hydration.mode is {mode}",
                    (gitops.span if gitops else None) or Span(project.app.rel),
                    "set gitops.hydration: {mode: branches} (the GitOps objects then follow the branches)",
                )
            ]
        )
    if envs:
        require_environments(project, envs)
    wanted = list(envs or sorted(project.environments))
    if worktree is not None and len(wanted) != 1:
        raise _problem("--worktree writes one environment's branch", "name it: --env <environment>")
    try:
        top = Path(git(root, "rev-parse", "--show-toplevel").strip())
        dirty = git(root, "status", "--porcelain", "--untracked-files=all", "--", ".")
        dry = dry_commit(top)
    except HydrateError as exc:
        raise _problem(str(exc), "run it in a git repository with at least one commit") from None
    if dirty.strip():
        raise _problem(
            f"uncommitted changes under {root}: hydrated branches must come from a commit "
            f"({dirty.splitlines()[0].strip()} ...)",
            "commit (or stash) them, then hydrate",
        )
    folder = names.hydrated_folder(project.name, gitops.path)
    commands = {env: [f"kubectl kustomize {gitops.source_path(f'overlays/{env}')}"] for env in wanted}
    try:
        if worktree is not None:
            return [_into_worktree(root, top, gitops, wanted[0], folder, dry, commands[wanted[0]], worktree)]
        branches = {
            env: (gitops.hydrate_branch(env), gitops.sync_branch(env) if gitops.promoter else None)
            for env in wanted
        }
        with Hydrator(top, branches, folder, dry.sha, gitops.repo_url) as hydrator:
            _compile_checked(root, wanted, hydrator.add)
            _refuse_previews(envs, hydrator.rendered)
            return hydrator.commit(dry, commands)
    except HydrateError as exc:
        raise _problem(str(exc), "check the repository with git status and git log") from None


def _compile_checked(root: Path, wanted: list[str], on_manifest: Callable[[str, bytes], None]) -> None:
    """Compile everything, comparing the output with the committed files as it comes, and hand each
    wanted environment's rendered manifest to on_manifest. Raises when the committed output is stale."""
    with Comparer(root) as comparer:

        def sink(files: dict[str, bytes]) -> None:
            output_files = {}
            for path, data in files.items():
                env = rendered_environment(path)
                if env is not None and env in wanted:
                    on_manifest(env, data)
                else:
                    output_files[path] = data
            comparer.add(output_files)

        output = compile_project(root, keep_objects=False, sink=sink, render=frozenset(wanted))
        record = next_manifest(
            comparer.old, comparer.digests, output.owned, output.inputs, output.warnings, output.tiers
        )
        if comparer.finish(record, output.owned):
            raise _problem(
                "the committed output is not what the specs produce: the branches would not match the overlays",
                "run kompile build, commit, then hydrate",
            )


def _refuse_previews(envs: list[str] | None, rendered: set[str]) -> None:
    """An environment named on the command line that rendered nothing is a preview (a template the
    ApplicationSet fills in per pull request); unnamed ones are skipped quietly."""
    previews = sorted(set(envs or ()) - rendered)
    if previews:
        raise _problem(
            f"environment {', '.join(previews)} is a preview (pullRequests): a template, with no manifests of "
            "its own to hydrate",
            "name the environments it extends instead",
        )


def _into_worktree(
    root: Path,
    top: Path,
    gitops: GitOps,
    env: str,
    folder: str,
    dry: DryCommit,
    commands: list[str],
    worktree: Path,
) -> Hydrated:
    manifest: dict[str, bytes] = {}
    _compile_checked(root, [env], lambda _, data: manifest.update(bytes=data))
    _refuse_previews([env], set() if "bytes" not in manifest else {env})
    files = branch_files(gitops.repo_url, folder, commands, dry)
    files[f"{folder}/{names.RENDERED_MANIFEST}"] = manifest["bytes"]
    try:
        write_worktree(worktree, top, gitops.hydrate_branch(env), dry.sha, folder, files)
    except HydrateError as exc:
        raise _problem(str(exc), "make one with: git worktree add <folder> <branch>") from None
    return Hydrated(env, gitops.hydrate_branch(env), "", changed=True)


def _problem(message: str, hint: str) -> KompileError:
    return KompileError([Diagnostic(Code.GIT, message, Span("."), hint)])
