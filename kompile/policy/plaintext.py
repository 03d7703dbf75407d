"""Credentials in plain text, anywhere in an object.

Every string of every object is scanned: values that are credentials whatever their key (URLs with a
password, private keys, tokens with a known prefix), and values whose key names a credential (a
mapping key, an env or header `name`, a `--flag=value` argument, a `KEY=value` or `key: value` line
inside a string). Names such as `*_NAME`, `*_REF` or `*_FILE` point at a secret without holding one,
and so do values that are plainly numbers, booleans, paths or `$(VAR)` references.
SealedSecret ciphertext (`spec.encryptedData`) is the one place a sealed value belongs.

Every pattern is linear-time, and results are remembered per (key, value), so a value repeated in a
thousand environments is judged once.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Iterator

from kompile.policy.sops import ENC, is_sops_encrypted

_TOKENS = [
    (r"-----BEGIN[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----|PuTTY-User-Key-File-[0-9]", "a private key"),
    (r"\b(?:Basic|Bearer)\s+[A-Za-z0-9+/._~-]{12,}=*", "an HTTP Authorization credential"),
    (r"\"auth\"\s*:\s*\"[A-Za-z0-9+/]{12,}=*\"", "a registry credential (docker config)"),
    (r"(?:^|\n)\s*(?:machine\s+\S+\s+)?(?:login\s+\S+\s+)?password\s+\S+", "a netrc password"),
    (r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b", "an AWS access key"),
    (r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{20,}|\bgithub_pat_[A-Za-z0-9_]{20,}", "a GitHub token"),
    (r"\bglpat-[A-Za-z0-9_-]{20,}", "a GitLab token"),
    (r"\bxox[abposr]-[A-Za-z0-9-]{10,}|\bxapp-[0-9]-[A-Za-z0-9-]{10,}|hooks\.slack\.com/services/T[A-Za-z0-9_/]{20,}",
     "a Slack token"),
    (r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}|\bwhsec_[A-Za-z0-9]{16,}", "a Stripe key"),
    (r"\bAIza[0-9A-Za-z_-]{35}", "a Google API key"),
    (r"\bGOCSPX-[A-Za-z0-9_-]{20,}", "a Google OAuth client secret"),
    (r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{32,}", "an API key (OpenAI or Anthropic)"),
    (r"\bnpm_[A-Za-z0-9]{36}\b", "an npm token"),
    (r"\bpypi-AgE[A-Za-z0-9_-]{50,}", "a PyPI token"),
    (r"\bSG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}", "a SendGrid key"),
    (r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}", "a JSON Web Token"),
    (r"AccountKey=[A-Za-z0-9+/]{20,}", "an Azure storage key"),
    (r"[?&]sig=[A-Za-z0-9%+/=]{20,}", "a signed URL's signature"),
    (r"\bdjango-insecure-\S{20,}", "a Django secret key"),
]
_TOKEN = re.compile("|".join(f"(?P<t{i}>{pattern})" for i, (pattern, _) in enumerate(_TOKENS)))
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]{0,30}://")
_REFERENCE = re.compile(r"^(?:\$\([A-Za-z_][A-Za-z0-9_]*\)|\$\{[A-Za-z_][A-Za-z0-9_]*\})$")
# Words of a key: FOO_BAR, foo-bar, foo.bar, fooBar and FOOBar all split into FOO and BAR.
_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
STRONG = frozenset({"PASSWORD", "PASSWD", "PWD", "PASS", "PASSPHRASE", "SECRET", "SECRETS", "TOKEN", "TOKENS", "CREDENTIAL",
                    "CREDENTIALS", "APIKEY", "PRIVATEKEY", "AUTHORIZATION", "BEARER"})
# Joined spellings (PGPASSWORD, dbpassword, apiKey, signing_key) that name a credential wherever they appear.
STRONG_PARTS = ("PASSWORD", "PASSWD", "PASSPHRASE", "SECRET", "TOKEN", "CREDENTIAL", "APIKEY", "PRIVATEKEY", "ACCESSKEY",
                "SIGNINGKEY", "ENCRYPTIONKEY", "MASTERKEY", "HMACKEY", "FERNETKEY", "LICENSEKEY", "SESSIONKEY")
# A key whose last word is one of these names a place or a property of a secret, not the secret.
PLACE = frozenset({"NAME", "NAMES", "REF", "REFS", "SELECTOR", "PATH", "FILE", "FILES", "DIR", "DIRS", "FOLDER", "FIELD", "NAMESPACE", "KIND",
                   "TYPE", "MOUNT", "TTL", "TIMEOUT", "LIFETIME", "EXPIRY", "EXPIRATION", "HEADER", "PREFIX", "ENABLED",
                   "ENABLE", "REQUIRED", "LENGTH", "VERSION", "ALGORITHM", "ALG", "ROTATION", "STORE", "PROVIDER", "HASH",
                   "CHECKSUM", "DIGEST", "ID", "URL", "URI", "ENDPOINT", "HOST", "PORT", "USER", "USERNAME", "REGION",
                   "ENV", "VAR", "POLICY", "MODE", "SIZE", "COUNT", "INTERVAL", "SCOPE", "AUDIENCE", "ISSUER", "METHOD",
                   "SECONDS", "SECS", "MINUTES", "HOURS", "DAYS", "MS", "MILLIS", "LIMIT", "MAX", "MIN", "RETRIES",
                   "ATTEMPTS", "AGE", "PERIOD", "DELAY", "WINDOW", "RULES", "COMPLEXITY", "RESET", "CHANGE"})
_HARMLESS = re.compile(r"(?:|true|false|yes|no|on|off|null|none|<[a-z][a-z _-]{0,40}>|\*{3,}|x{3,}|changeme|change-me)",
                       re.IGNORECASE)
_NUMBER_OR_PATH = re.compile(r"(?:[-+]?[0-9]{1,4}(?:\.[0-9]+)?|/[A-Za-z0-9._/-]*(?:[:,]/[A-Za-z0-9._/-]*)*)")
_PLAIN_WORD = re.compile(r"[a-z]+(?:[_.-][a-z]+)*")  # `created_at`: a value a *_KEY setting may hold
_KEY_NAME = re.compile(r"[A-Z][A-Z0-9_]*|[a-z][a-z._-]*")  # a camelCase field naming another key (secretKey: DB_PASSWORD)
_LINE = re.compile(r"^[ \t]*(?:export[ \t]+)?([A-Za-z_][A-Za-z0-9_.-]{0,100})[ \t]*[:=][ \t]*(.*?)[ \t]*$", re.MULTILINE)
_INLINE = re.compile(r"(?:^|[\s;&|?])(?:--?)?([A-Za-z_][A-Za-z0-9_.-]{0,100})=([^\s;&|]+)")
_QUOTED = re.compile(r"[\"']([A-Za-z_][A-Za-z0-9_.-]{0,100})[\"']\s*[:=]\s*[\"']([^\"']{1,4096})[\"']")  # JSON, Python, TOML
_ELEMENT = re.compile(r"<([A-Za-z_][A-Za-z0-9_.-]{0,100})>([^<]{1,4096})</\1>")  # XML
MAX_SCANNED = 1 << 16  # longer strings are scanned in their first 64 KiB (the YAML limits bound them anyway)

_memo: dict[tuple[str, str], str | None] = {}


def in_value(value: str) -> str | None:
    """What credential a string holds whatever its key, or None."""
    text = value[:MAX_SCANNED]
    match = _TOKEN.search(text)
    if match:
        return _TOKENS[int(match.lastgroup[1:])][1]
    if "://" in text and _url_password(text):
        return "a URL with a password in it"
    if _PGPASS.search(text):
        return "a .pgpass password"
    return None


# host:port:database:user:password lines, as PostgreSQL's .pgpass holds them
_PGPASS = re.compile(r"(?m)^[A-Za-z0-9_.*-]+:(?:[0-9]+|\*):[A-Za-z0-9_.*-]+:[A-Za-z0-9_.*@-]+:\S+$")


def _url_password(text: str) -> bool:
    """scheme://user:password@host, whatever characters the password holds: the user information runs to
    the last '@' before the next space. `host:8080/path@x` (a port, then a path) is not a password."""
    for match in _SCHEME.finditer(text):
        rest = text[match.end():match.end() + 4096]  # user information longer than this is no password
        end = len(rest)
        for space in (" ", "\t", "\n", "\r"):
            found = rest.find(space)
            if found != -1:
                end = min(end, found)
        authority = rest[:end]
        at = authority.rfind("@")
        if at <= 0 or authority.startswith("["):
            continue
        user, colon, password = authority[:at].partition(":")
        if not colon or not password or _REFERENCE.match(password):
            continue
        if re.match(r"[0-9]{1,5}(?:/|$)", password) and "/" in authority[:at]:
            continue  # host:port/path@...: the '@' is in the path
        return True
    return False


def words(key: str) -> list[str]:
    return [w.upper() for w in _WORDS.findall(key)]


def by_key(key: str, value: str) -> bool:
    """Whether a value held under this key is a credential in plain text."""
    names = words(key)
    if not names or names[-1] in PLACE or _HARMLESS.fullmatch(value) or _REFERENCE.match(value):
        return False
    joined = "".join(names)
    strong = any(w in STRONG for w in names) or any(part in joined for part in STRONG_PARTS)
    camel = "_" not in key and "-" not in key and "." not in key and key != key.upper() and key != key.lower()
    if camel and names[-1] in ("KEY", "REF", "FIELD", "PROPERTY") and _KEY_NAME.fullmatch(value):
        return False  # a field naming the key of a secret, as External Secrets' secretKey: DB_PASSWORD does
    if strong:
        return True  # whatever it looks like: a path or a short number is a password too
    if _NUMBER_OR_PATH.fullmatch(value):
        return False
    # *_KEY (SIGNING_KEY, FERNET_KEY, STRIPE_KEY): a credential unless it is a plain word. A camelCase
    # field (topologyKey: topology.kubernetes.io/zone) holds one only when the value has digits.
    if camel and ("/" in value or not any(ch.isdigit() for ch in value)):
        return False
    return len(names) >= 2 and names[-1] == "KEY" and not _PLAIN_WORD.fullmatch(value)


def credential_in(key: str, value: str) -> str | None:
    """What credential a setting holds in plain text ("a private key", ...), or None."""
    memo_key = (key, value)
    if memo_key in _memo:
        return _memo[memo_key]
    what = in_value(value) or _embedded(value)
    if what is None and by_key(key, value[:MAX_SCANNED]):
        what = "what looks like a secret"
    if len(_memo) > 100_000:
        _memo.clear()
    _memo[memo_key] = what
    return what


def _embedded(value: str) -> str | None:
    """A credential in a file or command held in a string: `PASSWORD=x` or `password: x` lines, `--token=x`."""
    if "=" not in value and ":" not in value and "<" not in value:
        return None
    text = value[:MAX_SCANNED]
    patterns = (_LINE, _INLINE, _QUOTED, _ELEMENT) if "\n" in text else (_INLINE, _LINE, _QUOTED, _ELEMENT)
    for pattern in patterns:
        for match in pattern.finditer(text):
            key, found = match.group(1), match.group(2).strip().strip("'\"")
            if found and not any(ch in found for ch in "()[]{}") and by_key(key, found):
                return f"a value for '{key}'"
    return None


def findings(obj: dict) -> list[tuple[str, str]]:
    """(where, what) for every credential in plain text anywhere in the object."""
    return scan(obj)[0]


# What no reader on the way keeps as written: go-yaml folds NEL and the Unicode line and paragraph
# separators (kustomize re-emits them as spaces), and control characters have no place in a manifest.
_ODD_CHARACTERS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")
INT64 = 1 << 63


SERVICE_ACCOUNT_TOKEN = "kubernetes.io/service-account-token"


def scan(obj: dict) -> tuple[list[tuple[str, str]], list[tuple[str, str]], list[str]]:
    """One walk over every value of an object: (credentials in plain text, values kustomize or the API
    server would change or refuse, each as (where, what); and where it asks for a Secret of the
    ServiceAccount token type, which the cluster fills with a token)."""
    credentials: list[tuple[str, str]] = []
    odd: list[tuple[str, str]] = []
    tokens: list[str] = []
    sealed = obj.get("kind") == "SealedSecret"
    encrypted = is_sops_encrypted(obj)
    for path, key, value in scalars(obj, ""):
        if isinstance(value, str):
            if key == "type" and value == SERVICE_ACCOUNT_TOKEN:
                tokens.append(path)
            ciphertext = (sealed and path.startswith("spec.encryptedData.")) or \
                (encrypted and (path.startswith("sops.") or ENC.fullmatch(value) is not None))
            if not ciphertext:
                what = credential_in(key, value)
                if what:
                    credentials.append((path, what))
            if _ODD_CHARACTERS.search(value):
                odd.append((path, "holds a control character or a Unicode line separator, which kustomize changes"))
        elif isinstance(value, float) and not math.isfinite(value):
            odd.append((path, f"is {value}, which no Kubernetes field holds (kustomize stops at it)"))
        elif isinstance(value, int) and not isinstance(value, bool) and not -INT64 <= value < INT64:
            odd.append((path, "is a number larger than Kubernetes holds (kustomize writes it in another form)"))
    return credentials, odd, tokens


def scalars(node, path: str, key: str = "") -> Iterator[tuple[str, str, object]]:
    """(path, the key naming it, value) for every scalar in node, and every mapping key as a string (with
    no key of its own); binaryData decoded. An env variable's or header's value is named by its `name`,
    and a command's argument by the flag before it."""
    if isinstance(node, dict):
        for name, value in node.items():
            here = f"{path}.{name}" if path else str(name)
            if isinstance(name, str):
                yield here, "", name
            if path == "binaryData" and isinstance(value, str):
                value = _decoded(value)
            yield from scalars(value, here, str(name))
    elif isinstance(node, list):
        pairs = all(isinstance(item, dict) and isinstance(item.get("name"), str) for item in node)
        flag = None
        for index, item in enumerate(node):
            here = f"{path}[{index}]"
            if pairs and isinstance(item.get("value"), str):  # env variables, HTTP headers
                yield f"{path}[{item['name']}]", item["name"], item["value"]
                item = {k: v for k, v in item.items() if k not in ("name", "value")}
            if isinstance(item, str):
                # `--password hunter2`: the value after a flag is held under the flag's name.
                yield here, flag or key, item
                flag = item.lstrip("-") if item.startswith("-") and "=" not in item else None
                continue
            yield from scalars(item, here, key)
    else:
        yield path, key, node


def _decoded(value: str) -> str:
    try:
        return base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return value
