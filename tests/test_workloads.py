"""What real Django teams run, in the spec's own words: collections that add up across environments,
sidecars and init containers declared once, identities per component, management commands on a
schedule, Celery workers scaled on their queue by KEDA, and probes that do not restart every pod when the
database or the broker is down. The django-platform golden case shows all of it (and goes through
kubectl kustomize, strict schemas, checkov and a real API server with the other golden cases); these
tests pin each rule, and each refusal, on small changes to it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kompile.compiler import compile_project
from kompile.errors import KompileError

from conftest import copy_golden_input, edit
from conftest import objects_by_name as objects

CASE = "django-platform"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return copy_golden_input(CASE, tmp_path / "repo")


def append(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.write_text(path.read_text() + text)


def problems(root: Path) -> list[tuple[str, str, str]]:
    """(code, file:line, message) of each diagnostic a build of root gives."""
    with pytest.raises(KompileError) as caught:
        compile_project(root)
    return [
        (d.code.value, f"{d.span.path}:{d.span.line}" if d.span else "-", d.message)
        for d in caught.value.diagnostics
    ]


def template(obj: dict) -> dict:
    spec = obj["spec"]["jobTemplate"]["spec"] if obj["kind"] == "CronJob" else obj["spec"]
    return spec["template"]["spec"]


# ---------------------------------------------------------------------------------------------
# 1. Collections add up; only a name removes an entry


def test_an_app_patch_and_extra_resource_survive_an_environment_that_adds_its_own(repo: Path):
    (repo / "k8s").mkdir()
    for name in ("app", "dev"):
        (repo / "k8s" / f"{name}.yaml").write_text(
            f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}-extra}}\ndata: {{A: b}}\n"
        )
    append(repo, "environments/app.yaml", "  extraResources: [k8s/app.yaml]\n")
    append(repo, "environments/dev.yaml", "  extraResources: [k8s/dev.yaml]\n")
    dev = objects(repo, "dev")
    assert ("ConfigMap", "app-extra") in dev and ("ConfigMap", "dev-extra") in dev
    # the App's patch (a node pool for the worker) and dev's own (an annotation on web) both apply
    worker, web = dev[("Deployment", "market-worker")], dev[("Deployment", "market-web")]
    assert template(worker)["nodeSelector"] == {"cloud.google.com/gke-nodepool": "workers"}
    assert web["spec"]["template"]["metadata"]["annotations"]["profiling.acme.io/enabled"] == "true"


def test_a_list_in_an_environment_adds_to_what_it_inherits(repo: Path):
    edit(
        repo,
        "environments/dev.yaml",
        "  patches:\n    debug-toolbar:",
        "  patches:\n    - name: debug-toolbar",
    )
    dev = objects(repo, "dev")
    assert template(dev[("Deployment", "market-worker")])["nodeSelector"], "the App's patch was dropped"


def test_only_a_name_removes_an_inherited_entry(repo: Path):
    append(repo, "environments/dev.yaml", "  network:\n    egress:\n      kubernetes-api: null\n")
    edit(repo, "environments/dev.yaml", "    debug-toolbar:", "    topology: null\n    debug-toolbar:")
    dev = objects(repo, "dev")
    assert "nodeSelector" not in template(dev[("Deployment", "market-worker")])
    policy = dev[("NetworkPolicy", "market-web")]
    blocks = [
        peer["ipBlock"]["cidr"]
        for rule in policy["spec"]["egress"]
        for peer in rule["to"]
        if "ipBlock" in peer
    ]
    assert "10.96.0.1/32" not in blocks and "10.30.0.0/16" in blocks


def test_an_entry_of_the_same_name_replaces_the_inherited_one(repo: Path):
    prod = objects(repo, "prod")
    blocks = [
        peer["ipBlock"]["cidr"]
        for rule in prod[("NetworkPolicy", "market-web")]["spec"]["egress"]
        for peer in rule["to"]
        if "ipBlock" in peer
    ]
    assert "10.21.0.0/16" in blocks and "10.20.0.0/16" not in blocks


def test_an_empty_list_in_an_environment_is_an_error_not_a_silent_no_op(repo: Path):
    append(repo, "environments/dev.yaml", "  extraResources: []\n")
    [(code, where, message)] = problems(repo)
    assert code == "K204" and where.startswith("environments/dev.yaml") and "adds nothing" in message


def test_explain_names_the_file_of_each_entry(repo: Path):
    result = subprocess.run(
        [sys.executable, "-m", "kompile", "explain", "dev", "patches", "--root", str(repo)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split()[-2] for line in result.stdout.splitlines()}
    assert rows["patches.topology.target.name"].startswith("environments/app.yaml")
    assert rows["patches.debug-toolbar.target.name"].startswith("environments/dev.yaml")


def test_top_level_rbac_gives_a_migration_hint(repo: Path):
    append(
        repo,
        "environments/app.yaml",
        "  rbac:\n    rules: [{apiGroups: [''], resources: [pods], verbs: [get]}]\n",
    )
    [(code, _, message)] = problems(repo)
    assert code == "K201" and "rbac" in message
    result = subprocess.run(
        [sys.executable, "-m", "kompile", "validate", "--root", str(repo)], capture_output=True, text=True
    )
    assert result.returncode == 2 and "components.<name>.rbac" in result.stderr, result.stderr


# ---------------------------------------------------------------------------------------------
# 2. Sidecars and init containers


def test_sidecars_are_native_hardened_and_stop_with_a_job(repo: Path):
    dev = objects(repo, "dev")
    for key in (("Deployment", "market-web"), ("Job", "market-migrate"), ("CronJob", "market-clearsessions")):
        [proxy] = template(dev[key])["initContainers"]
        assert proxy["name"] == "cloud-sql-proxy" and proxy["restartPolicy"] == "Always", key
        assert proxy["securityContext"]["readOnlyRootFilesystem"] is True
        assert proxy["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        assert proxy["startupProbe"]["httpGet"] == {"path": "/startup", "port": 9090}
    assert "initContainers" not in template(dev[("Deployment", "market-emails")])


def test_production_pins_sidecars_by_digest(repo: Path):
    edit(
        repo,
        "environments/prod.yaml",
        ":2.14.1@sha256:0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0",
        ":2.15.0",
    )
    found = problems(repo)
    assert [(c, w) for c, w, _ in found] == [("K501", "environments/prod.yaml:12")], found


def test_a_sidecar_without_tag_or_digest_is_refused(repo: Path):
    edit(repo, "environments/app.yaml", "cloud-sql-proxy:2.14.1", "cloud-sql-proxy")
    assert [c for c, _, _ in problems(repo)] == ["K504"]


def test_an_unknown_sidecar_gets_a_suggestion(repo: Path):
    edit(
        repo,
        "environments/app.yaml",
        "      port: 8000\n      sidecars: [cloud-sql-proxy]\n",
        "      port: 8000\n      sidecars: [cloudsql-proxy]\n",
    )
    [(code, _, message)] = problems(repo)
    assert code == "K409" and "cloudsql-proxy" in message


def test_a_sidecar_may_not_carry_a_secret_in_plain_text(repo: Path):
    edit(
        repo,
        "environments/app.yaml",
        "      args: [--structured-logs,",
        "      env: {DB_PASSWORD: hunter2-hunter2}\n      args: [--structured-logs,",
    )
    assert [c for c, _, _ in problems(repo)] == ["K601"]


# ---------------------------------------------------------------------------------------------
# 3. Identity per component; an API token only where a Role is


def test_identities_and_tokens(repo: Path):
    dev, prod = objects(repo, "dev"), objects(repo, "prod")
    assert (
        dev[("ServiceAccount", "market")]["metadata"]["annotations"]["iam.gke.io/gcp-service-account"]
        == "market-dev@acme-dev.iam.gserviceaccount.com"
    )
    assert (
        prod[("ServiceAccount", "market")]["metadata"]["annotations"]["iam.gke.io/gcp-service-account"]
        == "market@acme-prod.iam.gserviceaccount.com"
    )
    for key, obj in dev.items():
        if key[0] in ("Deployment", "Job", "CronJob"):
            pod = template(obj)
            operator = key[1] == "market-operator"
            assert pod["serviceAccountName"] == ("market-operator" if operator else "market"), key
            assert pod["automountServiceAccountToken"] is operator, key
    assert dev[("RoleBinding", "market-operator")]["subjects"] == [
        {"kind": "ServiceAccount", "name": "market-operator", "namespace": "market-dev"}
    ]


@pytest.mark.parametrize(
    ("identity", "annotation", "label"),
    [
        (
            "{aws: 'arn:aws:iam::123456789012:role/market-web'}",
            ("eks.amazonaws.com/role-arn", "arn:aws:iam::123456789012:role/market-web"),
            None,
        ),
        (
            "{azure: 0b2c6a1e-3f4d-4e5a-8b6c-7d8e9f0a1b2c}",
            ("azure.workload.identity/client-id", "0b2c6a1e-3f4d-4e5a-8b6c-7d8e9f0a1b2c"),
            "azure.workload.identity/use",
        ),
    ],
)
def test_a_component_identity_of_its_own(
    repo: Path, identity: str, annotation: tuple[str, str], label: str | None
):
    edit(
        repo,
        "environments/app.yaml",
        "      port: 8000\n      sidecars: [cloud-sql-proxy]\n",
        f"      port: 8000\n      identity: {identity}\n      sidecars: [cloud-sql-proxy]\n",
    )
    dev = objects(repo, "dev")
    account = dev[("ServiceAccount", "market-web")]
    assert account["metadata"]["annotations"] == {
        **{annotation[0]: annotation[1]},
        "argocd.argoproj.io/sync-wave": "-1",
    }
    pod = dev[("Deployment", "market-web")]["spec"]["template"]
    assert (
        pod["spec"]["serviceAccountName"] == "market-web"
        and pod["spec"]["automountServiceAccountToken"] is False
    )
    assert (
        (pod["metadata"]["labels"].get(label) == "true")
        if label
        else "azure.workload.identity/use" not in pod["metadata"]["labels"]
    )


# ---------------------------------------------------------------------------------------------
# 4. cron


def test_a_management_command_on_a_schedule(repo: Path):
    cron = objects(repo, "dev")[("CronJob", "market-clearsessions")]
    spec = cron["spec"]
    assert (
        spec["schedule"],
        spec["timeZone"],
        spec["concurrencyPolicy"],
        spec["startingDeadlineSeconds"],
    ) == ("30 3 * * *", "Europe/Berlin", "Forbid", 300)
    assert (spec["successfulJobsHistoryLimit"], spec["failedJobsHistoryLimit"], spec["suspend"]) == (
        3,
        3,
        True,
    )
    job = spec["jobTemplate"]["spec"]
    assert (job["backoffLimit"], job["activeDeadlineSeconds"]) == (
        0,
        1800,
    ) and "ttlSecondsAfterFinished" not in job
    assert job["template"]["spec"]["restartPolicy"] == "Never"
    assert objects(repo, "prod")[("CronJob", "market-clearsessions")]["spec"]["suspend"] is False
    assert ("NetworkPolicy", "market-clearsessions") in objects(repo, "dev")


@pytest.mark.parametrize(
    ("old", "new", "code"),
    [
        ('      schedule: "30 3 * * *"\n', "", "K203"),
        ('      schedule: "30 3 * * *"\n', '      schedule: "30 3 * * *"\n      replicas: 2\n', "K405"),
        ('      schedule: "30 3 * * *"\n', '      schedule: "CRON_TZ=UTC 30 3 * * *"\n', "K204"),
        ("      type: cron\n", "      type: cron\n      port: 8000\n", "K405"),
    ],
)
def test_cron_shape(repo: Path, old: str, new: str, code: str):
    edit(repo, "environments/app.yaml", old, new)
    assert [c for c, _, _ in problems(repo)] == [code]


# ---------------------------------------------------------------------------------------------
# 5. KEDA on the queue; Celery-aware checks


def test_a_worker_scaled_on_its_queue(repo: Path):
    dev = objects(repo, "dev")
    scaled = dev[("ScaledObject", "market-worker")]["spec"]
    assert (scaled["minReplicaCount"], scaled["maxReplicaCount"]) == (0, 4)
    [trigger] = scaled["triggers"]
    assert (
        trigger["type"] == "redis"
        and trigger["metadata"]["listName"] == "celery"
        and trigger["metadata"]["listLength"] == "20"
    )
    assert trigger["authenticationRef"] == {"name": "market-worker"}
    refs = dev[("TriggerAuthentication", "market-worker")]["spec"]["secretTargetRef"]
    assert refs == [
        {"key": "REDIS_ADDRESS", "name": "market-broker", "parameter": "address"},
        {"key": "REDIS_PASSWORD", "name": "market-broker", "parameter": "password"},
    ]
    assert "replicas" not in dev[("Deployment", "market-worker")]["spec"]
    assert ("HorizontalPodAutoscaler", "market-worker") not in dev
    assert ("PodDisruptionBudget", "market-worker") not in dev  # it may run no pod at all


@pytest.mark.parametrize(
    ("rel", "old", "new", "code", "words"),
    [
        (
            "environments/prod.yaml",
            "{minReplicas: 2, maxReplicas: 40}",
            "{minReplicas: 0, maxReplicas: 40}",
            "K401",
            "never scales to zero",
        ),
        (
            "environments/app.yaml",
            "--queues=emails, --concurrency=2]",
            "--queues=emails, --concurrency=2, -B]",
            "K405",
            "-B/--beat",
        ),
        (
            "environments/app.yaml",
            "command: [celery, -A, market, worker, --queues=emails",
            "command: [sh, -c, 'celery -A market worker -B --queues=emails'",
            "K405",
            "-B/--beat",
        ),
        (
            "environments/app.yaml",
            "keys: {address: REDIS_ADDRESS, password: REDIS_PASSWORD}",
            "keys: {address: REDIS_HOST}",
            "K409",
            "no key 'REDIS_HOST'",
        ),
        (
            "environments/app.yaml",
            "keys: {address: REDIS_ADDRESS, password: REDIS_PASSWORD}",
            "keys: {listName: REDIS_ADDRESS}",
            "K204",
            "KEDA parameter",
        ),
        (
            "environments/app.yaml",
            "secret: market-broker",
            "secret: market-redis",
            "K409",
            "no secret 'market-redis'",
        ),
        (
            "environments/app.yaml",
            "        maxReplicas: 20\n",
            "        maxReplicas: 20\n        cpu: 70\n",
            "K405",
            "replaces cpu",
        ),
        (
            "environments/dev.yaml",
            "{minReplicas: 0, maxReplicas: 4}",
            "{minReplicas: 0, maxReplicas: 4, queue: null}",
            "K401",
            "needs a queue",
        ),
    ],
)
def test_queue_and_celery_rules(repo: Path, rel: str, old: str, new: str, code: str, words: str):
    edit(repo, rel, old, new)
    found = problems(repo)  # (preview extends dev: it may have the problem too)
    assert {c for c, _, _ in found} == {code} and words in found[0][2], found


def test_beat_is_never_autoscaled(repo: Path):
    edit(
        repo,
        "environments/app.yaml",
        "      command: [celery, -A, market, beat, --schedule=/tmp/celerybeat-schedule]\n",
        "      command: [celery, -A, market, beat, --schedule=/tmp/celerybeat-schedule]\n      autoscaling: {minReplicas: 1, maxReplicas: 2}\n",
    )
    assert [c for c, _, _ in problems(repo)] == ["K402"]


# ---------------------------------------------------------------------------------------------
# 6. Honest probes and shutdown


def test_probes_do_not_restart_pods_for_an_outage(repo: Path):
    dev = objects(repo, "dev")
    web = dev[("Deployment", "market-web")]["spec"]["template"]["spec"]["containers"][0]
    assert web["readinessProbe"]["httpGet"]["path"] == "/healthz/ready"
    assert web["livenessProbe"]["httpGet"]["path"] == "/healthz/live"
    realtime = dev[("Deployment", "market-realtime")]["spec"]["template"]["spec"]["containers"][0]
    assert realtime["livenessProbe"] == {
        "tcpSocket": {"port": "http"},
        "failureThreshold": 3,
        "periodSeconds": 20,
        "timeoutSeconds": 5,
    }
    worker = dev[("Deployment", "market-worker")]["spec"]["template"]["spec"]["containers"][0]
    assert "inspect ping" in " ".join(worker["readinessProbe"]["exec"]["command"])
    assert "livenessProbe" not in worker and "startupProbe" not in worker
    emails = dev[("Deployment", "market-emails")]["spec"]["template"]["spec"]["containers"][0]
    assert "celery-heartbeat" in " ".join(emails["livenessProbe"]["exec"]["command"])
    beat = dev[("Deployment", "market-beat")]["spec"]["template"]["spec"]["containers"][0]
    assert "livenessProbe" not in beat, "a health check never becomes a liveness probe by itself"


def test_a_liveness_through_the_broker_is_refused(repo: Path):
    edit(
        repo,
        "environments/app.yaml",
        "        liveness: {exec: {command: [python, -c,",
        "        liveness: {exec: {command: [celery, -A, market, inspect, ping]}, timeoutSeconds: 5, periodSeconds: 60}\n"
        "        startup: {exec: {command: [python, -c,",
    )
    found = problems(repo)
    assert [c for c, _, _ in found] == ["K405"] and "through the broker" in found[0][2], found


def test_worker_grace_follows_the_task_time_limit(repo: Path):
    dev = objects(repo, "dev")
    assert (
        dev[("Deployment", "market-worker")]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        == 330
    )
    assert (
        dev[("Deployment", "market-emails")]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        == 60
    )


@pytest.mark.parametrize(
    ("command", "cmd_args", "grace"),
    [
        ("[gunicorn, market.wsgi:application, --bind=0.0.0.0:8000]", "--workers=4 --graceful-timeout=25", 35),
        (
            "[gunicorn, market.wsgi:application, --graceful-timeout=120]",
            "--graceful-timeout=25",
            130,
        ),  # the command line wins
        ("[gunicorn, market.wsgi:application, --graceful-timeout, '90']", "", 100),
        ("[uvicorn, market.asgi:application, --timeout-graceful-shutdown=50]", "--graceful-timeout=25", 60),
        ("[daphne, --bind=0.0.0.0, --port=8001, market.asgi:application]", "--graceful-timeout=25", 40),
    ],
)
def test_web_grace_follows_its_own_server(repo: Path, command: str, cmd_args: str, grace: int):
    """The preStop sleep (5 s), then the server's own graceful timeout, then 5 s: never another server's."""
    edit(
        repo,
        "environments/app.yaml",
        "      command: [gunicorn, market.wsgi:application, --bind=0.0.0.0:8000]",
        f"      command: {command}",
    )
    edit(repo, "environments/app.yaml", '"--workers=4 --timeout=30 --graceful-timeout=25"', f'"{cmd_args}"')
    web = objects(repo, "dev")[("Deployment", "market-web")]
    assert web["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == grace


def test_scheduling_writable_paths_and_the_app_image_in_an_init_container(repo: Path):
    edit(
        repo,
        "environments/app.yaml",
        "      secrets: [market-broker]                       # no database: only the broker's credentials reach it\n",
        "      secrets: [market-broker]\n"
        "      scheduling:\n"
        "        nodeSelector: {cloud.google.com/gke-nodepool: mail}\n"
        "        tolerations: [{key: dedicated, operator: Equal, value: mail, effect: NoSchedule}]\n"
        "        priorityClassName: batch-low\n"
        '        podAnnotations: {karpenter.sh/do-not-disrupt: "true"}\n'
        "      initContainers: [collectstatic]\n",
    )
    edit(
        repo,
        "environments/app.yaml",
        "  components:\n    web:\n",
        "  initContainers:\n"
        "    - {name: collectstatic, appImage: true, command: [python, manage.py, collectstatic, --noinput],\n"
        "       writablePaths: [/app/static], resources: {requests: {cpu: 100m, memory: 128Mi}, limits: {cpu: 500m, memory: 256Mi}}}\n"
        "  components:\n    web:\n",
    )
    pod = objects(repo, "dev")[("Deployment", "market-emails")]["spec"]["template"]
    spec = pod["spec"]
    assert (
        spec["nodeSelector"] == {"cloud.google.com/gke-nodepool": "mail"}
        and spec["priorityClassName"] == "batch-low"
    )
    assert spec["tolerations"] == [
        {"effect": "NoSchedule", "key": "dedicated", "operator": "Equal", "value": "mail"}
    ]
    assert pod["metadata"]["annotations"]["karpenter.sh/do-not-disrupt"] == "true"
    [init] = spec["initContainers"]
    assert init["image"] == spec["containers"][0]["image"], (
        "the app's image, retagged per environment like the app's"
    )
    assert (
        "restartPolicy" not in init
        and {"mountPath": "/app/static", "name": "collectstatic-0"} in init["volumeMounts"]
    )
    assert {"name": "collectstatic-0", "emptyDir": {"sizeLimit": "256Mi"}} in spec["volumes"]
