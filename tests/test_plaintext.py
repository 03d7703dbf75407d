"""The plaintext-secret rule (K601) catches credentials in env, and leaves alone what only names one."""

from __future__ import annotations

from pathlib import Path

import pytest

from kompile.compiler import compile_project
from kompile.errors import Code, KompileError


def with_env(root: Path, key: str, value: str) -> Path:
    app = root / "environments/app.yaml"
    text = app.read_text()
    marker = "    DJANGO_SETTINGS_MODULE: shop.settings.production\n"
    app.write_text(text.replace(marker, f"{marker}    {key}: '{value}'\n"))
    return root


@pytest.mark.parametrize(
    ("key", "value"),
    [
        (
            "DJANGO_SECRET_KEY_FILE",
            "/etc/secrets/shop-django/DJANGO_SECRET_KEY",
        ),  # a path to the secret, not the secret
        ("TOKEN_TTL_SECONDS", "3600"),
        ("SESSION_COOKIE_SECURE", "true"),
        ("REDIS_URL", "redis://redis.cache.svc:6379/0"),
    ],
)
def test_harmless_values_pass(example: Path, key: str, value: str):
    compile_project(with_env(example, key, value))


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("DJANGO_SECRET_KEY", "x8#k2!verylongsecret"),
        ("SENTRY_DSN", "https://user:hunter2@sentry.example.com/1"),
        ("NOTES", "ghp_abcdefghijklmnopqrstuvwxyz0123456789"),
    ],
)
def test_credentials_are_errors(example: Path, key: str, value: str):
    with pytest.raises(KompileError) as caught:
        compile_project(with_env(example, key, value))
    assert [d.code for d in caught.value.diagnostics] == [Code.PLAINTEXT_SECRET]
    assert caught.value.diagnostics[0].span.path == "environments/app.yaml"


@pytest.mark.parametrize("char", ["\x7f", "\x9b", "\u2028", "\ufeff", "\ufffe", "\uffff", "\x1b"])
def test_values_kustomize_would_change_or_refuse_are_odd(char: str):
    """A value read from a file (not YAML: source.py never sees it) that holds one of these stops or
    changes kustomize: the gate refuses it."""
    from kompile.policy.plaintext import scan

    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"f": f"a{char}b"}}
    _, odd, _ = scan(obj)
    assert [path for path, _ in odd] == ["data.f"]
