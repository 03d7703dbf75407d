"""The package layout is the pipeline, and imports only point down it.

Each stage may import the stages before it and never one after it; no module imports itself back
through others (a cycle); the command line imports nothing but the API, its own formatting and the
errors. Lazy imports inside functions count: they are imports all the same.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "kompile"

# The pipeline, in order. A module belongs to the first entry that is its name or a package above it.
STAGES = [
    "kompile.errors",  # diagnostics as data
    "kompile.safefs",  # the file system, never through a link or outside the root
    "kompile.inputs",  # input files under the root: size cap, UTF-8, no links
    "kompile.parallel",  # work spread over forked processes, results in order
    "kompile.goyaml",  # what go-yaml (kustomize, kubectl) takes a plain scalar for
    "kompile.source",  # YAML with positions
    "kompile.k8s",  # Kubernetes knowledge: the kinds table, quantities, builders, kustomize's transformers
    "kompile.policy",  # the gate: what the cluster may receive
    "kompile.names",  # every derived name
    "kompile.model",  # the intermediate model
    "kompile.spec",  # the user-facing format and its JSON Schema
    "kompile.load",  # the repo: environments/, the merge of each environment, git
    "kompile.validate",  # rules across settings and files, every problem at once
    "kompile.index_file",  # the index's file: read before the compiler is imported
    "kompile.index",  # what the last check found: a command about one environment checks what changed
    "kompile.normalise",  # spec -> model
    "kompile.render",  # model -> Kubernetes objects (and the GitOps tools' objects)
    "kompile.emit",  # the one YAML dumper
    "kompile.layout",  # objects -> bases/, overlays/, gitops/ files
    "kompile.compiler",  # the pipeline driver
    "kompile.output",  # the one reader and writer of the output tree
    "kompile.tools",  # edit, explain, init
    "kompile.api",  # the public API
    "kompile.cli",  # the command line
]
CLI_MAY_IMPORT = ("kompile.api", "kompile.errors", "kompile.cli")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def stage(module: str) -> int | None:
    for index, prefix in enumerate(STAGES):
        if module == prefix or module.startswith(prefix + "."):
            return index
    return None


def imports(path: Path) -> set[str]:
    """Every kompile module a file imports, at the top or inside a function."""
    found = set()
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("kompile")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            if not base.startswith("kompile"):
                continue
            for alias in node.names:  # `from kompile import spec` imports the module kompile.spec
                candidate = f"{base}.{alias.name}"
                found.add(candidate if candidate in MODULES else base)
    return found


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
GRAPH = {name: imports(path) for name, path in MODULES.items()}


def test_every_module_has_a_stage():
    lost = [name for name in MODULES if name not in ("kompile", "kompile.__main__") and stage(name) is None]
    assert lost == [], f"modules outside the pipeline's stages: {lost}; add them to STAGES or move them"


@pytest.mark.parametrize("name", sorted(n for n in MODULES if stage(n) is not None))
def test_imports_point_down_the_pipeline(name: str):
    here = stage(name)
    backwards = sorted(
        target
        for target in GRAPH[name]
        if target not in ("kompile",) and (stage(target) is None or stage(target) > here)
    )
    assert backwards == [], f"{name} ({STAGES[here]}) imports later stages: {backwards}"


def test_no_import_cycles():
    """Tarjan's strongly connected components over the module graph: any component of two or more is a cycle."""
    index, low, on_stack, stack, cycles, counter = {}, {}, set(), [], [], [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in GRAPH.get(node, ()):
            if target not in MODULES or target == node:
                continue
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for name in MODULES:
        if name not in index:
            visit(name)
    # A package's __init__ that imports its own modules, which import each other through it, is not a
    # cycle the import system trips on; every other one is.
    assert cycles == [], f"import cycles: {cycles}"


def test_the_cli_only_calls_the_api():
    for name in (n for n in MODULES if n == "kompile.cli" or n.startswith("kompile.cli.")):
        if name == "kompile.cli.report":  # the output formatting: it reads what the API returns
            continue
        other = sorted(t for t in GRAPH[name] if t != "kompile" and not t.startswith(CLI_MAY_IMPORT))
        assert other == [], f"{name} imports {other}: the command line goes through kompile.api"


def test_every_component_type_has_a_renderer():
    """Dispatch by type through an explicit table: a type without a renderer fails here, not in a user's build."""
    from kompile.model import ComponentType
    from kompile.render.components import RENDERERS

    assert set(RENDERERS) == set(ComponentType)


def test_every_model_node_keeps_where_the_spec_set_it():
    """Render-stage problems point at the setting: each node of the model carries its span (or `where`);
    only value holders written inside another node (ports, the probes' triple, resources) need none."""
    import dataclasses

    from kompile import model

    holders = {"Port", "Probes", "Resources"}
    lacking = [
        name
        for name, cls in vars(model).items()
        if isinstance(cls, type)
        and dataclasses.is_dataclass(cls)
        and cls.__module__ == model.__name__
        and name not in holders
        and not {"span", "where"} & {f.name for f in dataclasses.fields(cls)}
    ]
    assert lacking == []


def test_model_nodes_point_at_their_settings(tmp_path):
    from kompile.compiler import compile_project

    from conftest import copy_example

    env = compile_project(copy_example(tmp_path / "repo"), ["prod"]).environments["prod"].env
    web = env.component("web")
    assert (
        web.span is not None
        and web.span.path.startswith("environments/")
        and web.span.end_line >= web.span.line
    )
    assert all(rule.span is not None for rule in env.network.egress)
