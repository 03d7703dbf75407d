"""The settings of workloads: names, resources, probes, autoscaling, identity, rbac, scheduling,
components, sidecars and init containers."""

from __future__ import annotations

from kompile.spec.checks import check_cidr, check_schedule, check_time_zone
from kompile.spec.structure import Collection, Either, ListOf, MapOf, Obj
from kompile.spec.types import (
    DNS_SUBDOMAIN,
    ENV_NAME,
    LABEL_KEY,
    LABEL_VALUE,
    NAME,
    URL_PATH,
    Bool,
    Field,
    Int,
    Quantity,
    Str,
)

# ---------------------------------------------------------------------------------------------
# The spec.

SUBDOMAIN = Str(
    DNS_SUBDOMAIN,
    "a DNS-1123 subdomain (lower-case letters, digits, '-', '.')",
    max_length=253,
    name_code=True,
)
PATH = Str(r"^[^\x00]+$", "a path relative to the repo root")
ENV_KEY = Str(
    ENV_NAME,
    "an environment variable name (letters, digits, '_', '-', '.'; no leading digit)",
    max_length=253,
)
PORT = Int(1, 65535)
PERCENT = Int(1, 1000)
LABELS = MapOf(Str(LABEL_VALUE, "a label value", max_length=63), Str(LABEL_KEY, "a label key"), "label")
COMMAND = ListOf(Str(), 1)

RESOURCE_LIST = Obj(
    {
        "cpu": Field(Quantity(), 'CPU, e.g. 250m or "1"'),
        "memory": Field(Quantity(), "Memory, e.g. 512Mi"),
        "ephemeral-storage": Field(Quantity(), "Local disk (logs, /tmp), e.g. 1Gi"),
    }
)
RESOURCES = Obj(
    {
        "requests": Field(RESOURCE_LIST, "What the scheduler reserves for each pod"),
        "limits": Field(RESOURCE_LIST, "The most each pod may use"),
    }
)

HTTP_CHECK = Obj(
    {
        "path": Field(
            Str(URL_PATH, "a URL path starting with '/'"),
            "Path that answers 200 when the app is healthy",
            required=True,
        ),
        "port": Field(PORT, "Port to probe; defaults to the component's port"),
    }
)
EXEC_CHECK = Obj(
    {
        "command": Field(COMMAND, "Command that exits 0 when healthy", required=True),
    }
)
PROBE = Obj(
    {
        "http": Field(HTTP_CHECK, "An HTTP GET"),
        "exec": Field(EXEC_CHECK, "A command run in the container"),
        "tcp": Field(
            Obj({"port": Field(PORT, "Port to connect to; defaults to the component's port")}),
            "A TCP connection (the process listens)",
        ),
        "periodSeconds": Field(Int(1, 3600), "Seconds between checks"),
        "failureThreshold": Field(Int(1, 1000), "Failed checks in a row before it acts"),
        "timeoutSeconds": Field(Int(1, 600), "Seconds one check may take"),
    },
    one_of=("http", "exec", "tcp"),
)

PROBES = Obj(
    {
        "http": Field(HTTP_CHECK, "The health check as an HTTP GET: readiness (and, for web, startup)"),
        "exec": Field(EXEC_CHECK, "The health check as a command: readiness of workers and schedulers"),
        "readiness": Field(PROBE, "Readiness, instead of the health check (may depend on the database)"),
        "liveness": Field(
            PROBE,
            "Liveness: restarts the container; must not depend on the database or the broker "
            "(web: a TCP check of its port; workers and schedulers: none)",
        ),
        "startup": Field(
            PROBE, "Startup: holds readiness and liveness back until it passes (web: the health check)"
        ),
    },
    one_of=("http", "exec"),
    one_of_optional=True,
)

QUEUE = Obj(
    {
        "broker": Field(
            Str(enum=("redis", "rabbitmq")),
            "The Celery broker whose queue length drives the scale",
            required=True,
        ),
        "name": Field(
            Str(r"^\S+$", "a queue name"), "The queue (Redis list or RabbitMQ queue)", default="celery"
        ),
        "length": Field(Int(1, 100000), "Messages waiting per pod before KEDA adds one", default=10),
        "secret": Field(SUBDOMAIN, "The App's secret that holds the broker's address and credentials"),
        "keys": Field(
            MapOf(
                ENV_KEY,
                Str(
                    r"^(address|host|port|username|password|tls|ca|cert|key)$",
                    "a KEDA parameter (address, host, port, username, password, tls, ca, cert, key)",
                ),
                "parameter",
            ),
            "KEDA parameter -> key of the secret (redis: address, password; rabbitmq: host)",
        ),
    }
)

AUTOSCALING = Obj(
    {
        "minReplicas": Field(
            Int(0, 10000), "Fewest pods (0 only with a queue, outside production)", required=True
        ),
        "maxReplicas": Field(Int(1, 10000), "Most pods", required=True),
        "cpu": Field(
            PERCENT,
            "Target average CPU use, percent of requests (80 when neither cpu nor memory nor queue is set)",
        ),
        "memory": Field(PERCENT, "Target average memory use, percent of requests"),
        "queue": Field(
            QUEUE,
            "Scale a Celery worker on its queue length with KEDA (a ScaledObject, no HorizontalPodAutoscaler)",
        ),
    }
)

IDENTITY = Obj(
    {
        "gcp": Field(
            Str(
                r"^[a-z][-a-z0-9]{4,28}[a-z0-9]@[a-z][-a-z0-9.]*[a-z0-9]\.iam\.gserviceaccount\.com$",
                "a Google service account e-mail (name@project.iam.gserviceaccount.com)",
            ),
            "GKE Workload Identity: the Google service account to act as",
        ),
        "aws": Field(
            Str(r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]{1,512}$", "an IAM role ARN"),
            "EKS IAM roles for service accounts: the role to assume",
        ),
        "azure": Field(
            Str(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", "a client ID (a UUID)"),
            "AKS Workload Identity: the client ID of the managed identity",
        ),
        "annotations": Field(
            MapOf(Str(), Str(LABEL_KEY, "an annotation key"), "annotation"),
            "Other ServiceAccount annotations a cloud's identity webhook reads",
        ),
    }
)

RBAC = Obj(
    {
        "rules": Field(
            ListOf(
                Obj(
                    {
                        "apiGroups": Field(ListOf(Str()), "API groups ('' is the core group)", required=True),
                        "resources": Field(ListOf(Str(), 1), "Resources", required=True),
                        "verbs": Field(
                            ListOf(
                                Str(
                                    enum=(
                                        "get",
                                        "list",
                                        "watch",
                                        "create",
                                        "update",
                                        "patch",
                                        "delete",
                                        "deletecollection",
                                    )
                                ),
                                1,
                            ),
                            "Verbs",
                            required=True,
                        ),
                        "resourceNames": Field(ListOf(Str()), "Only these objects"),
                    }
                ),
                1,
            ),
            "Rules of a Role bound to the component's own ServiceAccount",
            required=True,
        ),
    }
)

PORT_ENTRY = Either(
    (
        PORT,
        Obj(
            {
                "port": Field(PORT, "Port number", required=True),
                "protocol": Field(Str(enum=("TCP", "UDP", "SCTP")), "Protocol", default="TCP"),
            }
        ),
    ),
    "a port number or {port, protocol}",
)

EGRESS_RULE = Obj(
    {
        "name": Field(
            NAME, "A name for the rule (shown in diffs), by which an environment replaces or removes it"
        ),
        "cidr": Field(Str(checks=(check_cidr,)), "Destination address block"),
        "host": Field(
            Str(
                r"^(?!.*\.[0-9]+$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+$",
                "a host name such as api.stripe.com (an IP address goes under cidr)",
            ),
            "Destination host name (needs network.cni: cilium)",
        ),
        "except": Field(ListOf(Str(checks=(check_cidr,))), "Blocks inside cidr that stay denied"),
        "namespace": Field(NAME, "Destination namespace (instead of cidr)"),
        "podSelector": Field(LABELS, "Only pods with these labels in that namespace"),
        "ports": Field(ListOf(PORT_ENTRY, 1), "Destination ports", required=True),
    },
    one_of=("cidr", "namespace", "host"),
)

SCHEDULING = Obj(
    {
        "nodeSelector": Field(LABELS, "Only nodes with these labels (a node pool)"),
        "tolerations": Field(
            ListOf(
                Obj(
                    {
                        "key": Field(Str(LABEL_KEY, "a taint key"), "The taint's key"),
                        "operator": Field(Str(enum=("Equal", "Exists")), "Equal (the default) or Exists"),
                        "value": Field(Str(LABEL_VALUE, "a taint value"), "The taint's value"),
                        "effect": Field(
                            Str(enum=("NoSchedule", "PreferNoSchedule", "NoExecute")),
                            "The taint's effect (all when absent)",
                        ),
                        "tolerationSeconds": Field(Int(0, 86400), "How long a NoExecute taint is tolerated"),
                    }
                )
            ),
            "Taints its pods tolerate",
        ),
        "priorityClassName": Field(SUBDOMAIN, "The PriorityClass of its pods"),
        "podAnnotations": Field(
            MapOf(Str(), Str(LABEL_KEY, "an annotation key"), "annotation"),
            'Annotations on its pods, e.g. karpenter.sh/do-not-disrupt: "true"',
        ),
    }
)


COMPONENT = Obj(
    {
        "type": Field(
            Str(enum=("web", "worker", "scheduler", "cron")),
            "web (gunicorn or an ASGI server behind a Service), worker (celery), scheduler (celery beat), "
            "cron (a management command on a schedule)",
            required=True,
        ),
        "command": Field(COMMAND, "The container's command"),
        "args": Field(ListOf(Str()), "Arguments appended to the command"),
        "port": Field(PORT, "Port the web server listens on (web only)"),
        "replicas": Field(Int(0, 10000), "Pods to run when not autoscaled", default=1),
        "autoscaling": Field(
            AUTOSCALING,
            "A HorizontalPodAutoscaler (or, with queue, a KEDA ScaledObject) instead of a fixed replica count",
        ),
        "probes": Field(PROBES, "Health checks (web, worker, scheduler; required for them)"),
        "resources": Field(RESOURCES, "Requests and limits; kompile adds defaults for what is missing"),
        "terminationGracePeriodSeconds": Field(
            Int(1, 86400),
            "Seconds a pod gets to stop; web derives it from gunicorn's "
            "graceful timeout, workers from celery's --time-limit",
        ),
        "schedule": Field(Str(checks=(check_schedule,)), "When a cron component runs (cron only)"),
        "timeZone": Field(
            Str(checks=(check_time_zone,)),
            "IANA time zone of the schedule (cron only; the cluster's "
            "controller-manager zone, usually UTC, when absent)",
        ),
        "timeoutSeconds": Field(
            Int(10, 86400), "How long one run may take before it is stopped (cron only)", default=3600
        ),
        "suspend": Field(Bool(), "Stop scheduling new runs (cron only)", default=False),
        "sidecars": Field(ListOf(NAME), "Sidecars (from the App's sidecars) that run beside the container"),
        "initContainers": Field(
            ListOf(NAME), "Init containers (from the App's initContainers) that run to completion first"
        ),
        "identity": Field(IDENTITY, "A ServiceAccount of its own with these cloud identities"),
        "rbac": Field(
            RBAC,
            "Kubernetes API access: a ServiceAccount and Role of its own, and the only pods with an API token",
        ),
        "metrics": Field(
            Obj(
                {
                    "port": Field(
                        PORT,
                        "The port it serves metrics on, outside Django (django-prometheus' exporter port)",
                        required=True,
                    ),
                    "path": Field(
                        Str(URL_PATH, "a URL path starting with '/'"), "The metrics path", default="/metrics"
                    ),
                }
            ),
            "Prometheus scrapes it (a Service and a ServiceMonitor), from the monitoring namespace only",
        ),
        "connectsTo": Field(
            ListOf(NAME), "Other web components of the app it calls (both policies allow it)"
        ),
        "scheduling": Field(SCHEDULING, "Where and how its pods are scheduled"),
        "egress": Field(
            Collection(EGRESS_RULE, what="egress rule"),
            "Where this component's pods may connect, besides network.egress",
        ),
        "secrets": Field(
            ListOf(SUBDOMAIN), "Only these of the App's secrets reach its pods (all when absent)"
        ),
    },
    required_when={
        "type": {"web": ("probes",), "worker": ("probes",), "scheduler": ("probes",), "cron": ("schedule",)}
    },
)

SIDECAR = Obj(
    {
        "name": Field(NAME, "Name of the container", required=True),
        "image": Field(
            Str(
                r"^[^\s@]+(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$",
                "an image reference with a tag or digest",
            ),
            "Image with a tag or digest (production requires a digest)",
        ),
        "appImage": Field(
            Bool(), "Run the app's own image (the release's tag or digest), e.g. for collectstatic"
        ),
        "writablePaths": Field(
            ListOf(
                Str(
                    r"^(?!/(proc|sys|dev)(/|$))(?!.*/\.\.?(/|$))(/[A-Za-z0-9._@+-]+)+$",
                    "an absolute, normalised path below / and outside /proc, /sys and /dev, such as /var/run",
                )
            ),
            "Folders it may write to (each an emptyDir; its root filesystem is read-only)",
        ),
        "command": Field(COMMAND, "The container's command"),
        "args": Field(ListOf(Str()), "Arguments"),
        "env": Field(MapOf(Str(), ENV_KEY, "variable"), "Plain settings (never secrets)"),
        "secrets": Field(
            ListOf(SUBDOMAIN), "The App's secrets (mount: env) it reads as environment variables"
        ),
        "ports": Field(ListOf(PORT), "Ports it listens on"),
        "resources": Field(RESOURCES, "Requests and limits; kompile adds small defaults for what is missing"),
        "probes": Field(
            Obj(
                {
                    "startup": Field(PROBE, "The app's containers start only after this passes"),
                    "readiness": Field(PROBE, "Readiness (counts for the pod's)"),
                    "liveness": Field(PROBE, "Liveness"),
                }
            ),
            "Probes (sidecars only)",
        ),
    },
    one_of=("image", "appImage"),
)
