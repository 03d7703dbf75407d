"""Clusters and namespaces across environments: one spelling per cluster, one environment per
namespace, no environment in a preview's name."""

from __future__ import annotations

from dataclasses import dataclass

from kompile import names
from kompile.errors import Code, Collector, Span
from kompile.load.project import Project
from kompile.model import DEFAULT_BRANCH_PREFIX
from kompile.source import YMap

IN_CLUSTER = "in-cluster"
# Ways of writing the cluster Argo CD and Flux run in. (Argo CD itself knows only the first two: the
# others are not clusters it has, but they name the same one.)
_IN_CLUSTER = {
    "in-cluster",
    "https://kubernetes.default.svc",
    "https://kubernetes.default.svc.cluster.local",
    "https://kubernetes.default",
    "https://kubernetes",
}


def cluster_identity(cluster: str | None, tool: str | None = None) -> str:
    """One spelling per cluster: host in lower case, no default port, no trailing slash, the in-cluster
    aliases as one. Two environments may share a namespace only on clusters that differ by this. Flux
    reaches a remote cluster through a kubeconfig Secret named after its host: clusters that share that
    Secret are one cluster to Flux."""
    if not cluster:
        return IN_CLUSTER
    if tool == "flux" and cluster.strip().lower() not in _IN_CLUSTER:
        return f"flux-kubeconfig:{names.kubeconfig_secret(cluster)}"
    text = cluster.strip()
    if text.lower().startswith("https://"):
        rest = text[len("https://") :]
        host, _, path = rest.partition("/")
        host = host.lower().removesuffix(":443").rstrip(".")
        path = path.rstrip("/")
        text = f"https://{host}" + (f"/{path}" if path else "")
    return IN_CLUSTER if text.lower() in _IN_CLUSTER else text


@dataclass(frozen=True, slots=True)
class Placement:
    """What the rules across environments read of one environment's merged settings: where it deploys,
    and where each of those is written (for a message). Small and plain, so a run that checks only the
    environments whose files changed can take the others' from the index (kompile/index.py); the
    positions stay as the index wrote them until a message needs one."""

    name: str
    namespace: str
    cluster: str  # as written ("" for none)
    previews: bool  # pullRequests is set: a template for pull requests' previews
    # [path, line, col, end line, end col] of: the namespace (None when nobody wrote it, and it is
    # <app>-<environment>), the cluster (None when unset), metadata.name in the environment's file.
    spans: tuple[list | None, list | None, list]

    @property
    def namespace_span(self) -> Span | None:
        return _span(self.spans[0])

    @property
    def cluster_span(self) -> Span | None:
        return _span(self.spans[1])

    @property
    def name_span(self) -> Span:
        return _span(self.spans[2]) or Span("")

    def deploys_as(self, other: Placement) -> bool:
        """Placed as the other is (what the rules across environments read; not where it is written)."""
        return (self.name, self.namespace, self.cluster, self.previews) == (
            other.name,
            other.namespace,
            other.cluster,
            other.previews,
        )

    def as_json(self) -> list:
        return [self.namespace, self.cluster, self.previews, *self.spans]

    @classmethod
    def from_json(cls, name: str, item: list) -> Placement:
        """The inverse of as_json; ValueError for anything as_json would not have written."""
        namespace, cluster, previews, *spans = item
        if not (
            type(namespace) is str
            and type(cluster) is str
            and type(previews) is bool
            and len(spans) == 3
            and spans[2] is not None
            and all(span is None or _is_span(span) for span in spans)
        ):
            raise ValueError("not a placement")
        return cls(name, namespace, cluster, previews, tuple(spans))  # type: ignore[arg-type]


def placement(name: str, settings: YMap, name_span: Span) -> Placement:
    """An environment's placement, from its merged settings (namespace filled in when defaulted)."""
    namespace_span = settings.value_span("namespace") if "namespace" in settings.value_spans else None
    cluster_span = settings.value_span("cluster") if "cluster" in settings else None
    return Placement(
        name,
        str(settings.get("namespace") or ""),
        str(settings.get("cluster") or ""),
        bool(settings.get("pullRequests")),
        (_span_json(namespace_span), _span_json(cluster_span), _span_json(name_span)),  # type: ignore[arg-type]
    )


def _is_span(item) -> bool:
    return (
        type(item) is list
        and len(item) == 5
        and type(item[0]) is str
        and all(type(n) is int for n in item[1:])
    )


def _span_json(span: Span | None) -> list | None:
    return None if span is None else [span.path, span.line, span.col, span.end_line, span.end_col]


def _span(item: list | None) -> Span | None:
    return None if item is None else Span(*item)


def check_namespaces(project: Project, resolved: list[Placement], out: Collector) -> None:
    seen: dict[tuple[str, str], str] = {}
    spelled: dict[
        str, tuple[str, str]
    ] = {}  # cluster identity -> (how it was first written, by which environment)
    gitops = project.app.spec.get("gitops")
    tool = gitops.get("tool") if isinstance(gitops, YMap) else None
    for env in resolved:
        if env.name == "gitops":
            out.error(
                Code.INVALID_NAME,
                "the environment name 'gitops' is kompile's: the GitOps root object is "
                f"'{project.name}-gitops'",
                env.name_span,
                "choose another name for this environment (rename its file too)",
            )
        written = env.cluster
        identity = cluster_identity(written, tool)
        first = spelled.setdefault(identity, (written, env.name))
        if written and first[0] and written != first[0] and identity != IN_CLUSTER:
            if tool == "flux" and cluster_identity(written) != cluster_identity(first[0]):
                # Two addresses, one Secret name: Flux would deploy both environments to one cluster.
                out.error(
                    Code.NAMESPACE_CLASH,
                    f"cluster {written} and {first[0]} (environment '{first[1]}') share Flux's "
                    f"kubeconfig Secret '{names.kubeconfig_secret(written)}'",
                    env.cluster_span,
                    "Flux names the Secret after the host name: write one cluster the same way everywhere, and "
                    "give different clusters host names that differ in more than punctuation or port",
                )
            else:
                same = (
                    "Flux reaches both through one kubeconfig Secret"
                    if tool == "flux"
                    else "Argo CD matches cluster addresses as written, so two spellings are two clusters to it"
                )
                out.error(
                    Code.NAMESPACE_CLASH,
                    f"cluster {written} is written as {first[0]} by environment '{first[1]}'",
                    env.cluster_span,
                    f"write each cluster the same way everywhere: {same}",
                )
        key = (identity, env.namespace)
        if key in seen:
            explicit = env.namespace_span is not None
            # A namespace nobody wrote is <app>-<environment>: point at the name it comes from.
            where = env.namespace_span or env.name_span
            on = "" if identity == IN_CLUSTER and not written else f" on {written or identity}"
            out.error(
                Code.NAMESPACE_CLASH,
                f"environments '{seen[key]}' and '{env.name}' both deploy to namespace '{env.namespace}'"
                + on
                + ("" if explicit else f" ('{env.name}' by default)"),
                where,
                "each environment needs a namespace of its own; one would prune the other's objects",
            )
        else:
            seen[key] = env.name
    if any(env.previews for env in resolved):
        # A pull request's preview is the Application <app>-pr-<number> in the namespace of that name.
        for env in resolved:
            if not env.previews and (
                names.is_preview(project.name, env.namespace)
                or names.is_preview(project.name, names.instance(project.name, env.name))
            ):
                explicit = env.namespace_span is not None and names.is_preview(project.name, env.namespace)
                out.error(
                    Code.NAMESPACE_CLASH,
                    f"environment '{env.name}' takes the name of a pull request's preview "
                    f"('{env.namespace if explicit else names.instance(project.name, env.name)}')",
                    env.namespace_span if explicit and env.namespace_span else env.name_span,
                    "previews are <app>-pr-<number>, Application and namespace; name this environment otherwise",
                )


def check_hydration(project: Project, out: Collector) -> None:
    """Hydration modes the chosen controller can follow, and a branch for each environment that no
    other environment's branch is (an environment named <env>-next would be <env>'s proposed branch)."""
    gitops = project.app.spec.get("gitops")
    hydration = gitops.get("hydration") if isinstance(gitops, YMap) else None
    if not isinstance(hydration, YMap) or hydration.get("mode") not in ("branches", "argocd"):
        return
    if hydration.get("promoter", True) is not False:
        for name in sorted(project.environments):  # names only: a file is read for its message
            if name.endswith("-next") and name.removesuffix("-next") in project.environments:
                env_file = project.environments[name]
                out.error(
                    Code.NAMESPACE_CLASH,
                    f"environment '{name}' would sync from the branch "
                    f"'{name.removesuffix('-next')}' is hydrated to before promotion "
                    f"({hydration.get('branchPrefix', DEFAULT_BRANCH_PREFIX)}{name})",
                    env_file.doc["metadata"].value_span("name"),
                    "rename the environment, or set gitops.hydration.promoter: false",
                )
    if hydration.get("mode") != "argocd" or gitops.get("tool") == "argocd":
        return
    out.error(
        Code.INVALID_VALUE,
        f"hydration mode argocd is Argo CD's Source Hydrator, but gitops.tool is {gitops.get('tool')}",
        hydration.value_span("mode"),
        "use mode: rendered or mode: branches (kompile hydrate) with Flux",
    )
