"""checkov, the security scanner, on every overlay of every golden case (`--framework kustomize`, so it
scans what kustomize builds). What may fail, and only where the environment's spec explains it:

- CKV_K8S_43 (image not pinned by digest), CKV_K8S_14 (image tag) and CKV_K8S_15 (pull policy)
  when the environment runs a tag rather than a digest;
- CKV_K8S_35 (secrets as environment variables) when a secret is mounted as env, Django's usual way;
  `secrets[].mount: files` passes it (the files-secrets-rbac case);
- CKV_K8S_38 (service account token mounted) when a component asks for `rbac`: the token is the point;
- CKV_K8S_8 (liveness probe) for a worker or scheduler whose spec gives no liveness check of its own:
  its health check may ask the broker (`celery inspect ping`) or the database, and a liveness probe that
  does restarts every pod in an outage, which fixes nothing and kills their tasks. kompile leaves
  liveness out rather than fake one; a heartbeat-file check in `probes.liveness` passes it (the
  django-platform case's emails).

The example's prod overlay, digest-pinned, fails nothing but CKV_K8S_35 and CKV_K8S_8 (its worker and beat). No check may be skipped (a
`checkov:skip` annotation would hide a failure). checkov takes seconds per overlay, so each overlay is
scanned once per session, all of them in parallel.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from kompile.compiler import compile_project
from kompile.model import ComponentType, Environment, SecretMount

from conftest import IN_CI, copy_golden_input, golden_cases, golden_overlays, require_kubectl, write_files

OVERLAYS = golden_overlays()
IDS = [f"{case}/{env}" for case, env in OVERLAYS]
TAG_CHECKS = {"CKV_K8S_43", "CKV_K8S_14", "CKV_K8S_15"}
SECRETS_AS_ENV = "CKV_K8S_35"
NO_LIVENESS = "CKV_K8S_8"
TOKEN_MOUNTED = "CKV_K8S_38"

pytestmark = [pytest.mark.kubectl, pytest.mark.slow]


def checkov_path() -> Path:
    path = Path(sys.executable).parent / "checkov"
    if not path.exists():
        if IN_CI:
            pytest.fail(f"checkov is required in CI and is not installed next to {sys.executable}")
        pytest.skip("checkov not installed")
    return path


def run_checkov(checkov: Path, folder: Path) -> dict:
    result = subprocess.run(
        [
            str(checkov),
            "-d",
            str(folder),
            "--framework",
            "kustomize",
            "--output",
            "json",
            "--skip-download",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        return {
            "error": f"checkov exited {result.returncode} without a JSON report:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
        }
    reports = report if isinstance(report, list) else [report]
    found = [r for r in reports if r.get("check_type") == "kustomize"]
    return (
        found[0] if found else {"error": f"no kustomize report in checkov's output: {result.stdout[:2000]}"}
    )


@pytest.fixture(scope="module")
def scans(tmp_path_factory) -> dict[tuple[str, str], tuple[Environment, dict]]:
    """{(case, env): (the environment's model, checkov's kustomize report)}: every overlay scanned once."""
    require_kubectl()  # checkov's kustomize framework runs it
    checkov = checkov_path()
    jobs = {}
    for case in golden_cases():
        root = copy_golden_input(case, tmp_path_factory.mktemp(case) / "repo")
        output = compile_project(root)
        write_files(root, output.files)
        for env, compiled in output.environments.items():
            jobs[(case, env)] = (compiled.env, root / "overlays" / env)
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        reports = dict(
            zip(jobs, pool.map(lambda job: run_checkov(checkov, job[1]), jobs.values()), strict=True)
        )
    return {key: (jobs[key][0], reports[key]) for key in jobs}


def tolerated(env: Environment) -> set[str]:
    """The checks this environment's spec explains (see the module docstring)."""
    allowed = set()
    if not env.image.digest:
        allowed |= TAG_CHECKS
    if any(secret.mount is SecretMount.ENV for secret in env.secrets):
        allowed.add(SECRETS_AS_ENV)
    if any(account.api_access for account in env.accounts):
        allowed.add(TOKEN_MOUNTED)
    if any(
        c.type in (ComponentType.WORKER, ComponentType.SCHEDULER) and c.probes.liveness is None
        for c in env.components
    ):
        allowed.add(NO_LIVENESS)
    return allowed


def failures(report: dict) -> list[str]:
    return sorted(
        f"{c['check_id']} {c['resource']} ({c['check_name']})"
        for c in report["results"].get("failed_checks", ())
    )


def failed_ids(report: dict) -> set[str]:
    return {c["check_id"] for c in report["results"].get("failed_checks", ())}


@pytest.mark.parametrize(("case", "env"), OVERLAYS, ids=IDS)
def test_checkov_finds_nothing_the_spec_does_not_explain(scans, case, env):
    model, report = scans[(case, env)]
    assert "error" not in report, report.get("error")
    summary = report["summary"]
    assert summary["parsing_errors"] == 0, report
    assert summary["resource_count"] > 0 and summary["passed"] > 0, f"checkov scanned nothing: {summary}"
    unexplained = [line for line in failures(report) if line.split()[0] not in tolerated(model)]
    assert not unexplained, (
        f"{case}/{env}: checkov failures beyond {sorted(tolerated(model))}:\n" + "\n".join(unexplained)
    )


@pytest.mark.parametrize(("case", "env"), OVERLAYS, ids=IDS)
def test_no_check_is_skipped(scans, case, env):
    _, report = scans[(case, env)]
    assert "error" not in report, report.get("error")
    skipped = report["results"].get("skipped_checks", ())
    assert report["summary"]["skipped"] == 0 and not skipped, [
        (c["check_id"], c["resource"]) for c in skipped
    ]


def test_example_figures(scans):
    """The example's figures: prod fails only CKV_K8S_35 and, for its worker and beat, CKV_K8S_8; dev
    and staging nothing beyond those and the tag checks."""
    _, prod = scans[("shop", "prod")]
    assert failed_ids(prod) <= {SECRETS_AS_ENV, NO_LIVENESS}, failures(prod)
    assert sorted(
        c["resource"] for c in prod["results"]["failed_checks"] if c["check_id"] == NO_LIVENESS
    ) == ["overlay:prod:Deployment.shop-prod.shop-beat", "overlay:prod:Deployment.shop-prod.shop-worker"], (
        failures(prod)
    )
    for env in ("dev", "staging"):
        _, report = scans[("shop", env)]
        assert failed_ids(report) <= TAG_CHECKS | {SECRETS_AS_ENV, NO_LIVENESS}, failures(report)


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_file_mounted_secrets_pass_ckv_k8s_35(scans, env):
    model, report = scans[("files-secrets-rbac", env)]
    assert model.secrets and all(s.mount is SecretMount.FILES for s in model.secrets)
    assert SECRETS_AS_ENV not in failed_ids(report), failures(report)
