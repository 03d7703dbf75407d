"""The intermediate model: an environment with every default applied and every name derived.

Renderers read only this; they never look at YAML or apply defaults of their own.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field

from kompile import names
from kompile.errors import Span


class ComponentType(enum.Enum):
    WEB = "web"
    WORKER = "worker"
    SCHEDULER = "scheduler"
    CRON = "cron"


class SecretMount(enum.Enum):
    ENV = "env"
    FILES = "files"


class GitOpsTool(enum.Enum):
    ARGOCD = "argocd"
    FLUX = "flux"


DEFAULT_BRANCH_PREFIX = (
    "environments/"  # hydrated branches: <prefix><environment>, as GitOps Promoter names them
)


class Hydration(enum.Enum):
    """Where the GitOps controller reads each environment from."""

    NONE = "none"  # overlays/<env>, built by the controller's kustomize
    RENDERED = "rendered"  # rendered/<env>/manifest.yaml, written by kompile build beside the overlays
    BRANCHES = "branches"  # <branchPrefix><env>, written by kompile hydrate (GitOps Promoter's contract)
    ARGOCD = "argocd"  # Argo CD's Source Hydrator renders overlays/<env> into <branchPrefix><env>


class Tier(enum.Enum):
    DEVELOPMENT = "development"
    STAGING = "staging"
    PREVIEW = "preview"
    PRODUCTION = "production"


@dataclass(frozen=True, slots=True)
class Image:
    repository: str
    tag: str | None = None
    digest: str | None = None
    span: Span | None = field(default=None, compare=False)  # where the spec sets it

    @property
    def ref(self) -> str:
        ref = self.repository
        if self.tag:
            ref += f":{self.tag}"
        if self.digest:
            ref += f"@{self.digest}"
        return ref


@dataclass(frozen=True, slots=True)
class Probe:
    """One check: an HTTP GET (http_path), a command, or a TCP connection (neither); timings None for
    kompile's defaults of that kind of probe."""

    http_path: str | None = None
    port: int | None = None
    command: tuple[str, ...] | None = None
    period_seconds: int | None = None
    failure_threshold: int | None = None
    timeout_seconds: int | None = None
    span: Span | None = field(default=None, compare=False)  # where the spec sets it


@dataclass(frozen=True, slots=True)
class Probes:
    startup: Probe | None = None
    readiness: Probe | None = None
    liveness: Probe | None = None


@dataclass(frozen=True, slots=True)
class Queue:
    """KEDA scales the component on a broker queue's length."""

    broker: str  # redis | rabbitmq
    name: str
    length: int
    secret: str | None
    keys: dict[str, str]  # KEDA parameter -> key of the secret
    span: Span | None = field(default=None, compare=False)  # where the spec sets it


@dataclass(frozen=True, slots=True)
class Autoscaling:
    min_replicas: int
    max_replicas: int
    cpu: int | None
    memory: int | None
    queue: Queue | None = None
    span: Span | None = field(default=None, compare=False)  # where the spec sets it


@dataclass(frozen=True, slots=True)
class Container:
    """A sidecar or init container declared on the App and used by name."""

    name: str
    image: str
    command: tuple[str, ...] | None
    args: tuple[str, ...] | None
    env: dict[str, str]
    secrets: tuple[str, ...]
    ports: tuple[int, ...]
    resources: Resources
    probes: Probes
    app_image: bool = False  # runs the app's image (image is then empty)
    writable_paths: tuple[str, ...] = ()
    span: Span | None = field(default=None, compare=False)  # where the spec sets it


@dataclass(frozen=True, slots=True)
class Scheduling:
    node_selector: dict[str, str]
    tolerations: tuple[dict, ...]
    priority_class: str | None
    pod_annotations: dict[str, str]
    span: Span | None = field(default=None, compare=False)  # where the spec sets it


@dataclass(frozen=True, slots=True)
class Account:
    """A ServiceAccount kompile writes: the app's own, or a component's (identity or rbac of its own)."""

    name: str
    annotations: dict[str, str]
    rules: tuple[dict, ...] = ()  # a Role bound to it; only then do its pods get an API token
    azure: bool = False  # AKS Workload Identity: its pods carry the webhook's label
    component: str | None = None  # the component it is its own for (None: the app's)
    span: Span | None = field(default=None, compare=False)  # where the spec sets it

    @property
    def api_access(self) -> bool:
        return bool(self.rules)


@dataclass(frozen=True, slots=True)
class Resources:
    requests: dict[str, str]
    limits: dict[str, str]


@dataclass(frozen=True, slots=True)
class Component:
    name: str
    type: ComponentType
    command: tuple[str, ...] | None
    args: tuple[str, ...] | None
    port: int | None
    replicas: int
    autoscaling: Autoscaling | None
    probes: Probes
    resources: Resources
    termination_grace_seconds: int
    account: Account  # the ServiceAccount its pods run as
    sidecars: tuple[Container, ...] = ()
    init_containers: tuple[Container, ...] = ()
    metrics: Metrics | None = None
    connects_to: tuple[str, ...] = ()
    scheduling: Scheduling | None = None
    egress: tuple[EgressRule, ...] = ()  # its own, besides the app's
    secrets: tuple[str, ...] | None = None  # the App's secrets its pods read (None: all)
    schedule: str | None = None  # cron only
    time_zone: str | None = None
    timeout_seconds: int | None = None
    suspend: bool = False
    span: Span | None = field(default=None, compare=False)  # where the spec sets it

    @property
    def pods_at_least(self) -> int:
        return self.autoscaling.min_replicas if self.autoscaling else self.replicas


@dataclass(frozen=True, slots=True)
class Secret:
    name: str
    keys: tuple[str, ...]
    mount: SecretMount
    mount_path: str
    span: Span | None = field(default=None, compare=False)  # where the spec sets it


@dataclass(frozen=True, slots=True)
class Port:
    port: int
    protocol: str = "TCP"


@dataclass(frozen=True, slots=True)
class Peer:
    namespace: str
    pod_selector: dict[str, str]
    span: Span | None = field(default=None, compare=False)  # where the spec sets it


@dataclass(frozen=True, slots=True)
class EgressRule:
    name: str | None
    cidr: str | None
    excepted: tuple[str, ...]
    namespace: str | None
    pod_selector: dict[str, str]
    ports: tuple[Port, ...]
    host: str | None = None  # a host name: only a CiliumNetworkPolicy can say it
    span: Span | None = field(default=None, compare=False)  # where the spec sets it


@dataclass(frozen=True, slots=True)
class DnsTarget:
    namespace: str | None
    pod_selector: dict[str, str]
    cidr: str | None
    span: Span | None = field(default=None, compare=False)  # where the spec sets it


# Where pods resolve names unless the spec says: the cluster DNS pods, and NodeLocal DNSCache's link-local
# address (its pods run on the host network, so no pod selector matches them).
DEFAULT_DNS = (
    DnsTarget("kube-system", {"k8s-app": "kube-dns"}, None),
    DnsTarget(None, {}, "169.254.20.10/32"),
)


@dataclass(frozen=True, slots=True)
class Network:
    ingress_from: tuple[Peer, ...] = ()
    egress: tuple[EgressRule, ...] = ()
    dns: tuple[DnsTarget, ...] = DEFAULT_DNS
    cni: str = "other"
    span: Span | None = field(default=None, compare=False)  # where the spec sets it


@dataclass(frozen=True, slots=True)
class Route:
    path: str
    component: str
    timeout_seconds: int | None = None
    span: Span | None = field(default=None, compare=False)  # where the spec sets it


@dataclass(frozen=True, slots=True)
class Certificate:
    issuer: str
    kind: str
    http01: bool
    span: Span | None = field(default=None, compare=False)  # where the spec sets it


@dataclass(frozen=True, slots=True)
class GatewayRef:
    name: str
    namespace: str | None
    section: str | None
    span: Span | None = field(default=None, compare=False)  # where the spec sets it


@dataclass(frozen=True, slots=True)
class Ingress:
    """Public entry: an Ingress per routed component, or one HTTPRoute on a Gateway."""

    hosts: tuple[str, ...]
    class_name: str | None
    tls_secret: str | None
    annotations: dict[str, str]
    routes: tuple[Route, ...]
    certificate: Certificate | None = None
    gateway: GatewayRef | None = None
    span: Span | None = field(default=None, compare=False)  # where the spec sets it

    @property
    def routed(self) -> tuple[str, ...]:
        """The components routes reach, in the order of their first route."""
        return tuple(dict.fromkeys(route.component for route in self.routes))


@dataclass(frozen=True, slots=True)
class Monitoring:
    namespace: str
    pod_selector: dict[str, str]
    labels: dict[str, str]
    interval: str
    span: Span | None = field(default=None, compare=False)  # where the spec sets it


@dataclass(frozen=True, slots=True)
class Metrics:
    port: int
    path: str
    span: Span | None = field(default=None, compare=False)  # where the spec sets it


@dataclass(frozen=True, slots=True)
class PullRequests:
    """An environment compiled as a template: Argo CD makes one preview of it per open pull request."""

    provider: str  # github | gitlab
    settings: dict  # the provider's generator fields, as Argo CD reads them
    host: str  # with {number}
    image_tag: str  # with {number}, {head_sha} or {head_short_sha}
    requeue_after_seconds: int
    span: Span | None = field(default=None, compare=False)  # where the spec sets it


@dataclass(frozen=True, slots=True)
class Migrate:
    command: tuple[str, ...]
    timeout_seconds: int
    backoff_limit: int
    resources: Resources
    sidecars: tuple[Container, ...] = ()
    init_containers: tuple[Container, ...] = ()
    secrets: tuple[str, ...] | None = None  # the App's secrets it reads (None: all)
    span: Span | None = field(default=None, compare=False)  # where the spec sets it


@dataclass(frozen=True, slots=True)
class Security:
    run_as_user: int
    run_as_group: int
    fs_group: int
    tmp_size: str
    allow: tuple[Allowance, ...] = ()
    span: Span | None = field(default=None, compare=False)  # where the spec sets it


@dataclass(frozen=True, slots=True)
class Allowance:
    """An opt-out from one hardening rule (kompile/hardening.py), written with a reason."""

    rule: str
    object: str | None  # Kind/name, or None for every object
    reason: str
    where: Span

    def covers(self, rule: str, obj: str) -> bool:
        return self.rule == rule and self.object in (None, obj)


@dataclass(frozen=True, slots=True)
class Patch:
    """A user patch: a strategic merge patch (a mapping) or JSON patch operations (a list)."""

    body: dict | list
    target: dict[str, str]
    where: Span  # for errors raised while applying it


@dataclass(frozen=True, slots=True)
class ExtraObject:
    """A manifest from spec.extraResources, and where it was written."""

    body: dict
    where: Span


@dataclass(frozen=True, slots=True)
class GitOps:
    tool: GitOpsTool
    repo_url: str
    revision: str
    path: str  # folder of the output inside the repository ("" at the top)
    namespace: str  # where the controller's objects live
    application_set: bool = False
    interval: str = "10m"
    timeout: str = "5m"
    sops_key_secret: str = "sops-age"  # Flux's decryption key, in its namespace
    hydration: Hydration = Hydration.NONE
    branch_prefix: str = DEFAULT_BRANCH_PREFIX
    promoter: bool = True  # hydrate into <branch>-next, which GitOps Promoter moves to <branch>
    span: Span | None = field(default=None, compare=False)  # where the spec sets it

    def source_path(self, folder: str) -> str:
        return f"{self.path}/{folder}" if self.path else folder

    def sync_branch(self, env: str) -> str:
        """The branch the controller syncs an environment's hydrated manifests from."""
        return f"{self.branch_prefix}{env}"

    def hydrate_branch(self, env: str) -> str:
        """The branch hydration writes: the synced one, or its -next twin when a promoter moves it."""
        return self.sync_branch(env) + ("-next" if self.promoter else "")

    @property
    def ref(self) -> str:
        """The revision fully qualified, as Git names it: a branch name means refs/heads/<name> (so
        neither Argo CD nor Flux has to guess between a branch and a tag); a commit, HEAD or a ref
        written out (refs/tags/v1.2) stay as written."""
        if (
            self.revision == "HEAD"
            or self.revision.startswith("refs/")
            or re.fullmatch(r"[0-9a-f]{40}", self.revision)
        ):
            return self.revision
        return f"refs/heads/{self.revision}"


@dataclass(frozen=True, slots=True)
class Environment:
    """What one environment runs. name is None for the shared base (the App's settings alone)."""

    app: str
    name: str | None
    namespace: str | None
    cluster: str | None
    tier: Tier | None
    image: Image
    image_name: (
        str  # the App's image repository: what the base's files name, and the overlay's images entry retags
    )
    env: dict[str, str]
    secrets: tuple[Secret, ...]
    components: tuple[Component, ...]
    migrate: Migrate | None
    network: Network
    ingress: Ingress | None
    security: Security
    accounts: tuple[Account, ...]  # the app's own first, then the components' own
    extra_objects: tuple[ExtraObject, ...]
    patches: tuple[Patch, ...]
    sealed_secrets: tuple[dict, ...]  # SealedSecret objects, as they will be applied
    gitops: GitOps | None
    external_secrets: tuple[dict, ...] = ()  # ExternalSecret objects
    sops_secrets: tuple[dict, ...] = ()  # sops-encrypted Secret manifests, as written (Flux decrypts them)
    monitoring: Monitoring | None = None
    pull_requests: PullRequests | None = None
    sources: tuple[str, ...] = field(default=())  # the spec files it was compiled from
    where: Span | None = None  # its own spec, for problems found while rendering
    # Where each setting of the merged spec was written ("network", "components.web", ...): what
    # problems found in the objects a setting produced point at.
    setting_spans: dict[str, Span] = field(default_factory=dict, compare=False)
    # The App's word on custom kinds kompile has no row for: (group, kind) -> namespaced (allowKinds).
    declared_kinds: dict[tuple[str, str], bool] = field(default_factory=dict, compare=False)

    def span_of(self, setting: str) -> Span | None:
        return self.setting_spans.get(setting, self.where)

    @property
    def instance(self) -> str | None:
        return names.instance(self.app, self.name) if self.name else None

    def component(self, name: str) -> Component:
        return next(c for c in self.components if c.name == name)
