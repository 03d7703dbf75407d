"""kompile explain: each effective value, and whether the App, an extended environment, the environment
itself or a kompile default set it."""

from __future__ import annotations

from pathlib import Path

from kompile.load.project import load_project
from kompile.tools.explain import explain_environment

from conftest import run_kompile


def settings(root: Path, env: str, prefix: str = "") -> dict[str, tuple[object, str, str]]:
    found = explain_environment(load_project(root), env, prefix)
    return {s.path: (s.value, s.origin, str(s.span) if s.span else "") for s in found}


def test_each_value_says_where_it_came_from(example: Path):
    prod = settings(example, "prod")
    assert prod["components.web.autoscaling.maxReplicas"] == (
        12,
        "environment",
        "environments/prod.yaml:15:50",
    )
    assert prod["components.web.port"] == (8000, "App", "environments/app.yaml:18:13")
    assert prod["env.DJANGO_SETTINGS_MODULE"][1:] == ("App", "environments/app.yaml:9:29")
    assert prod["env.DJANGO_ALLOWED_HOSTS"][1] == "environment"
    assert prod["components.beat.replicas"] == (1, "kompile default", "")
    assert prod["security.runAsUser"] == (10001, "kompile default", "")


def test_values_from_an_extended_environment(example: Path):
    (example / "environments/qa.yaml").write_text(
        "apiVersion: kompile.dev/v1alpha1\nkind: Environment\nmetadata:\n  name: qa\nspec:\n  extends: staging\n"
        "  components:\n    worker: {replicas: 3}\n"
    )
    qa = settings(example, "qa", "components.worker")
    assert qa["components.worker.replicas"] == (3, "environment", "environments/qa.yaml:8:24")
    assert settings(example, "qa", "image")["image.tag"][1] == "extends staging"
    assert settings(example, "qa", "namespace")["namespace"] == ("shop-qa", "kompile default", "")


def test_cli_filters_and_matrix(example: Path):
    one = run_kompile("explain", "prod", "components.web.autoscaling.maxReplicas", "--root", str(example))
    assert one.returncode == 0
    assert one.stdout.split() == [
        "components.web.autoscaling.maxReplicas",
        "=",
        "12",
        "environments/prod.yaml:15:50",
        "environment",
    ]
    matrix = run_kompile(
        "explain", "--matrix", "components.web.autoscaling.maxReplicas", "--root", str(example)
    )
    assert [line.split()[:4] for line in matrix.stdout.splitlines()] == [
        ["dev", "components.web.autoscaling.maxReplicas", "=", "(not"],
        ["prod", "components.web.autoscaling.maxReplicas", "=", "12"],
        ["staging", "components.web.autoscaling.maxReplicas", "=", "4"],
    ]
    assert run_kompile("explain", "prod", "no.such.thing", "--root", str(example)).returncode == 1
    unknown = run_kompile("explain", "qa", "--root", str(example))
    assert unknown.returncode == 2 and "K310" in unknown.stderr
