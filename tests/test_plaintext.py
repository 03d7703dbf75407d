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
    _, odd, _, _ = scan(obj)
    assert [path for path, _ in odd] == ["data.f"]


def _gzip(data: bytes) -> bytes:
    import gzip

    return gzip.compress(data, mtime=0)


_LEAK = b"DATABASE_URL=postgres://shop:hunter2@db.internal/shop\n"


def _damaged(data: bytes) -> bytes:
    import os

    stream = bytearray(_gzip(data + os.urandom(4000)))  # incompressible: the damage lands past the leak
    stream[-40] ^= 0xFF
    return bytes(stream)


# Every way bytes can carry text past a reader that gives up: each holds the same credential.
SPELLINGS = {
    "gzip": lambda: _gzip(_LEAK),
    "gzip without its trailer": lambda: _gzip(_LEAK)[:-8],
    "the second gzip member": lambda: _gzip(b"harmless\n") + _gzip(_LEAK),
    "text after a gzip member": lambda: _gzip(b"harmless\n") + b"\n" + _LEAK,
    "a damaged gzip stream": lambda: _damaged(_LEAK),
    "a gzip header and then text": lambda: b"\x1f\x8b" + _LEAK,
    "a byte that is not UTF-8": lambda: b"\xff\xfe" + _LEAK,
    "gzip of bytes that are not UTF-8": lambda: _gzip(b"\xff" + _LEAK),
}


@pytest.mark.parametrize("spelling", sorted(SPELLINGS))
@pytest.mark.parametrize("where", ["binaryData", "a base64 run in a value", "after twenty decoys"])
def test_a_credential_in_encoded_bytes_is_found_however_they_are_spelled(spelling: str, where: str):
    import base64

    from kompile.policy.plaintext import findings

    encoded = base64.b64encode(SPELLINGS[spelling]()).decode()
    if where == "binaryData":
        obj = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "c"},
            "binaryData": {"f": encoded},
        }
    elif where == "after twenty decoys":
        decoys = " ".join(base64.b64encode(bytes([n]) * 45).decode() for n in range(20))
        obj = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "c"},
            "data": {"f": f"{decoys} {encoded}"},
        }
    else:
        obj = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "c"},
            "data": {"f": f"blob {encoded}"},
        }
    expected = "binaryData.f" if where == "binaryData" else "data.f"
    assert [found for found, _ in findings(obj)] == [expected]


def test_binary_data_is_not_odd_and_compressible_text_passes():
    """binaryData holding binary (control characters, bytes that are not UTF-8) is what binaryData is for:
    the cluster stores its base64, which kustomize keeps as it is. gzip of text within twice its size
    passes when it holds no credential."""
    import base64
    import os

    from kompile.policy.plaintext import scan

    random = os.urandom(3000)
    text = b"LOG_LEVEL=info\nWORKERS=4\n" * 3
    obj = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c"},
        "binaryData": {
            "icon.png": base64.b64encode(b"\x89PNG\r\n\x1a\n\x00\x00" + random).decode(),
            "settings.gz": base64.b64encode(_gzip(text)).decode(),
        },
    }
    assert len(text) <= 2 * len(obj["binaryData"]["settings.gz"])
    assert scan(obj)[:3] == ([], [], [])
