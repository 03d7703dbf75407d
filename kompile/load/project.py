"""Finding and reading a repo's specs: environments/*.yaml, one App and its Environments."""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from kompile import spec
from kompile.errors import Code, Collector, Diagnostic, KompileError, Span
from kompile.inputs import decode_utf8, normalised, read_stat
from kompile.k8s.kinds import is_list_kind
from kompile.load.listing import ENVIRONMENTS_DIR, spec_files
from kompile.parallel import cores, in_workers, job
from kompile.safefs import file_identity
from kompile.source import YMap, describe, parse_document, parse_manifests
from kompile.spec.structure import forget_checked


@dataclass(frozen=True)
class SpecFile:
    rel: str
    kind: str
    name: str
    doc: YMap

    @property
    def spec(self) -> YMap:
        value = self.doc.get("spec")
        if isinstance(value, YMap):
            return value
        empty = YMap(self.doc.value_span("spec") if "spec" in self.doc else self.doc.span)
        return empty


class Specs(Mapping[str, SpecFile]):
    """The environments by name. Each file is parsed when first asked for, so a command about one
    environment reads only the files it needs (every name is known from the folder's listing)."""

    def __init__(
        self,
        rels: dict[str, str],
        load: Callable[[str], SpecFile] | None = None,
        loaded: dict[str, SpecFile] | None = None,
    ) -> None:
        self.rels = rels  # name -> its spec file
        self._load = load
        self._loaded = dict(loaded or {})

    @classmethod
    def of(cls, files: dict[str, SpecFile]) -> Specs:
        return cls({name: f.rel for name, f in files.items()}, loaded=files)

    def __getitem__(self, name: str) -> SpecFile:
        found = self._loaded.get(name)
        if found is None:
            if name not in self.rels or self._load is None:
                raise KeyError(name)
            found = self._loaded[name] = self._load(self.rels[name])
        return found

    def __contains__(self, name: object) -> bool:
        return name in self.rels

    def __iter__(self) -> Iterator[str]:
        return iter(self.rels)

    def __len__(self) -> int:
        return len(self.rels)


@dataclass
class Project:
    """The loaded specs, and every input file read so far with the hash of its bytes (and its identity
    when read, for the index)."""

    root: Path
    app: SpecFile
    environments: Specs
    inputs: dict[str, str] = field(default_factory=dict)
    identities: dict[str, str] = field(default_factory=dict)
    reading: set[str] | None = None  # while an environment is checked: the files its rules read
    app_reads: tuple[str, ...] = ()  # the files the App's own settings' rules read
    _manifests: dict[str, list[YMap]] = field(default_factory=dict)
    app_settings: YMap | None = None  # cached by merge.app_settings
    app_layer: YMap | None = (
        None  # cached by merge: the App's settings as the first layer (collections by name)
    )
    inherited: dict[str, YMap] = field(
        default_factory=dict
    )  # cached by merge: what each environment passes on
    merges: dict[tuple[int, int], tuple] = field(default_factory=dict)  # cached by merge: large maps merged
    _by_file: dict[str, str] | None = None  # spec file -> environment, for environment_in

    @property
    def name(self) -> str:
        return self.app.name

    def environment_in(self, rel: str) -> str | None:
        """The environment whose spec file is rel (a dict built once: rules ask this for every environment)."""
        if self._by_file is None:
            self._by_file = {spec_rel: name for name, spec_rel in self.environments.rels.items()}
        return self._by_file.get(rel)

    def manifests(self, rel: str, span: Span | None) -> list[YMap]:
        """Kubernetes objects from a file the specs refer to (sealed secrets, extra resources, patches)."""
        if self.reading is not None:
            self.reading.add(normalised(rel))
        if rel not in self._manifests:
            text = read_input(self.root, rel, span, self.inputs, self.identities)
            self._manifests[rel] = parse_manifests(text, rel)
        return self._manifests[rel]

    def objects(self, rel: str, span: Span | None) -> list[YMap]:
        """The objects of a manifest file as kustomize reads them: every List (any kind ending in "List")
        replaced by its items."""
        return expand_lists(self.manifests(rel, span))


def expand_lists(objects: list[YMap], problems: Collector | None = None) -> list[YMap]:
    """kustomize's reading of Lists: a kind ending in "List" stands for its `items`, recursively (their
    position is kept). One without `items` would vanish from kustomize's output: that is an error here,
    reported into problems (and the other objects returned) or raised."""
    out: list[YMap] = []
    pending = list(objects)
    collector = problems if problems is not None else Collector()
    while pending:
        obj = pending.pop(0)
        if not is_list_kind(obj.get("kind")):
            out.append(obj)
            continue
        items = obj.get("items")
        if items is None:
            if "items" not in obj:
                collector.error(
                    Code.EXTRA_RESOURCE,
                    f"kind '{obj['kind']}' ends in 'List' but has no items: kustomize reads it as a "
                    "list and would drop it",
                    obj.value_span("kind"),
                    "kustomize expands every kind ending in 'List' into its items; give it items: [...]",
                )
            continue
        if not isinstance(items, list) or not all(isinstance(item, YMap) for item in items):
            collector.error(
                Code.EXTRA_RESOURCE,
                f"{obj['kind']}: items must be a list of Kubernetes objects",
                obj.value_span("items"),
                "each item is an object with apiVersion, kind and metadata",
            )
            continue
        pending[:0] = items
    if problems is None:
        collector.raise_if_any()
    return out


def require_environments(project: Project, names, also: tuple[str, ...] = ()) -> None:
    """K310 for every name that is not an environment of the project (or one of `also`), with the closest."""
    unknown_environments(list(project.environments), names, also)


def unknown_environments(environments: list[str], names, also: tuple[str, ...] = ()) -> None:
    """K310 for every name that is not one of these environments (or of `also`), with the closest."""
    known = list(dict.fromkeys([*environments, *also]))
    unknown = [name for name in names if name not in known]
    if unknown:
        raise KompileError(
            [
                Diagnostic(
                    Code.UNKNOWN_ENVIRONMENT,
                    f"no environment named '{name}'",
                    Span(ENVIRONMENTS_DIR),
                    _closest(name, known),
                )
                for name in unknown
            ]
        )


def _closest(name: str, known: list[str]) -> str:
    close = [k for k in known if k.lower() == name.lower()] or difflib.get_close_matches(name, known, n=1)
    listing = "environments: " + ", ".join(known)
    return f"did you mean '{close[0]}'? ({listing})" if close else listing


def input_digest(data: bytes) -> str:
    """What a run records of a file it read. Line endings do not change what a spec means (a Windows
    checkout may have CRLF)."""
    return hashlib.sha256(data.replace(b"\r\n", b"\n")).hexdigest()


def read_input(
    root: Path, rel: str, span: Span | None, inputs: dict[str, str], identities: dict[str, str] | None = None
) -> str:
    data, info = read_stat(root, rel, span)
    inputs[normalised(rel)] = input_digest(data)
    if identities is not None:
        identities[normalised(rel)] = file_identity(info)
    return decode_utf8(data, rel)


def load_project(root: Path) -> Project:
    """Read and check every spec file; raise one KompileError listing every problem found."""
    forget_checked()
    out = Collector()
    inputs: dict[str, str] = {}
    identities: dict[str, str] = {}
    files: list[SpecFile] = []
    paths, problems = spec_files(root)
    out.add(problems)
    workers = cores(len(paths))
    if workers:  # ten thousand specs are parsed on every core, and taken back in order
        in_workers(
            workers,
            (root, paths),
            _load_chunk,
            len(paths),
            lambda loaded: _take(loaded, files, inputs, identities, out),
        )
    else:
        for rel in paths:
            loaded = load_spec(root, rel, inputs, identities, out)
            if loaded is not None:
                files.append(loaded)

    apps = [f for f in files if f.kind == "App"]
    if not apps and not out:
        out.error(
            Code.APP_COUNT,
            f"no App found in {ENVIRONMENTS_DIR}/",
            Span(ENVIRONMENTS_DIR),
            "add environments/app.yaml with apiVersion: kompile.dev/v1alpha1 and kind: App (the settings every environment shares)",
        )
    for extra in apps[1:]:
        out.error(
            Code.APP_COUNT,
            f"a second App '{extra.name}' (the first is in {apps[0].rel})",
            extra.doc.value_span("kind"),
            "a repo holds exactly one App; move the other app to its own repo or folder",
        )
    environments = {f.name: f for f in files if f.kind == "Environment"}
    if apps and not environments and not out:
        out.error(
            Code.NO_ENVIRONMENTS,
            f"no Environment found in {ENVIRONMENTS_DIR}/",
            Span(ENVIRONMENTS_DIR),
            "add environments/dev.yaml with kind: Environment",
        )
    out.raise_if_any()
    return Project(
        root=root,
        app=apps[0],
        environments=Specs.of(dict(sorted(environments.items()))),
        inputs=inputs,
        identities=identities,
    )


def _load_chunk(bounds: tuple[int, int]) -> list[tuple]:
    """In a worker: the specs of a slice of the files, each with what reading it recorded."""
    root, paths = job()
    loaded = []
    for rel in paths[bounds[0] : bounds[1]]:
        inputs: dict[str, str] = {}
        identities: dict[str, str] = {}
        out = Collector()
        loaded.append((load_spec(root, rel, inputs, identities, out), inputs, identities, out.items))
    return loaded


def _take(loaded: tuple, files: list, inputs: dict, identities: dict, out: Collector) -> None:
    """One spec a worker loaded, taken as loading it here would have taken it."""
    spec_file, read, identified, problems = loaded
    inputs.update(read)
    identities.update(identified)
    out.add(problems)
    if spec_file is not None:
        files.append(spec_file)


def load_spec(
    root: Path,
    rel: str,
    inputs: dict[str, str],
    identities: dict[str, str],
    out: Collector,
    parsed: tuple[str, YMap] | None = None,
) -> SpecFile | None:
    """One spec file read and checked (its problems into out). `parsed`: a text and its parse, made
    already (by an edit), taken when the file holds that text."""
    try:
        text = read_input(root, rel, None, inputs, identities)
        doc = parsed[1] if parsed is not None and parsed[0] == text else parse_document(text, rel)
    except KompileError as exc:
        out.add(exc.diagnostics)
        return None
    return _classify(doc, rel, out)


def _classify(doc: YMap, rel: str, out: Collector) -> SpecFile | None:
    api_version = doc.get("apiVersion")
    kind = doc.get("kind")
    problems = len(out.items)
    if api_version != spec.API_VERSION:
        where = doc.value_span("apiVersion") if "apiVersion" in doc else doc.span
        found = f"'{api_version}'" if isinstance(api_version, str) else describe(api_version)
        out.error(
            Code.WRONG_KIND,
            f"apiVersion must be {spec.API_VERSION}, found {found}",
            where,
            f"start the file with apiVersion: {spec.API_VERSION}; Kubernetes manifests go in spec.extraResources",
        )
    if not isinstance(kind, str) or kind not in spec.KINDS:
        where = doc.value_span("kind") if "kind" in doc else doc.span
        close = difflib.get_close_matches(kind, list(spec.KINDS), n=1) if isinstance(kind, str) else []
        found = f"'{kind}'" if isinstance(kind, str) else describe(kind)
        out.error(
            Code.WRONG_KIND,
            f"kind must be App or Environment, found {found}",
            where,
            f"did you mean '{close[0]}'?"
            if close
            else "set kind: App (shared settings) or kind: Environment",
        )
    if len(out.items) > problems:
        return None
    spec.check_document(doc, kind, out)
    if len(out.items) > problems:
        return None
    name = doc["metadata"]["name"]
    stem = rel.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    if kind == "Environment" and name != stem:
        out.error(
            Code.NAME_MISMATCH,
            f"environment '{name}' is in {rel}; its name must equal the file name",
            doc["metadata"].value_span("name"),
            f"rename the file to {name}.yaml or set metadata.name: {stem}",
        )
        return None
    return SpecFile(rel=rel, kind=kind, name=name, doc=doc)
