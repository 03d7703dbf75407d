"""What a credential looks like: detectors for values that are credentials whatever their key, and for
keys that name one. Every pattern is linear-time; results are remembered per (key, value)."""

from __future__ import annotations

import base64
import binascii
import bisect
import re
import zlib

TOKENS = [
    (r"-----BEGIN[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----|PuTTY-User-Key-File-[0-9]", "a private key"),
    # Credentials on command lines: curl -u user:password, mysql -pPASSWORD, redis-cli -a PASSWORD.
    (
        r"\bcurl\b[^\n]{0,200}?\s(?:-u|--user)[ =]?['\"]?[^\s:'\"]+:[^\s'\"]+",
        "a password on a curl command line",
    ),
    (
        r"\bmysql(?:dump|admin|import|sh)?\b[^\n]{0,200}?\s-p[^\s'\"-][^\s'\"]*",
        "a password on a MySQL command line",
    ),
    (r"\bredis-cli\b[^\n]{0,200}?\s(?:-a|--pass)[ =]\S+", "a password on a redis-cli command line"),
    # A JSON Web Key with its private part.
    (
        r"\"kty\"\s*:[^{}]{0,2000}?\"d\"\s*:\s*\"[A-Za-z0-9_-]{16,}\"|\"d\"\s*:\s*\"[A-Za-z0-9_-]{16,}\"[^{}]{0,2000}?\"kty\"",
        "a private key (JWK)",
    ),
    (r"\"auth\"\s*:\s*\"[A-Za-z0-9+/]{12,}=*\"", "a registry credential (docker config)"),
    # One line at a time (never \s across lines, which made runs of blank lines quadratic).
    (
        r"(?m:^[ \t]*(?:machine[ \t]+\S+[ \t]+)?(?:login[ \t]+\S+[ \t]+)?password[ \t]+\S+)",
        "a netrc password",
    ),
    (r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b", "an AWS access key"),
    (r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{20,}|\bgithub_pat_[A-Za-z0-9_]{20,}", "a GitHub token"),
    (r"\bglpat-[A-Za-z0-9_-]{20,}", "a GitLab token"),
    (
        r"\bxox[abposr]-[A-Za-z0-9-]{10,}|\bxapp-[0-9]-[A-Za-z0-9-]{10,}|hooks\.slack\.com/services/T[A-Za-z0-9_/]{20,}",
        "a Slack token",
    ),
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
_TOKEN = re.compile("|".join(f"(?P<t{i}>{pattern})" for i, (pattern, _) in enumerate(TOKENS)))
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]{0,30}://")
_REFERENCE = re.compile(r"^(?:\$\([A-Za-z_][A-Za-z0-9_]*\)|\$\{[A-Za-z_][A-Za-z0-9_]*\})$")
# Words of a key: FOO_BAR, foo-bar, foo.bar, fooBar and FOOBar all split into FOO and BAR.
_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
STRONG = frozenset(
    {
        "PASSWORD",
        "PASSWD",
        "PWD",
        "PW",
        "PASS",
        "PASSPHRASE",
        "SECRET",
        "SECRETS",
        "TOKEN",
        "TOKENS",
        "CREDENTIAL",
        "CREDENTIALS",
        "APIKEY",
        "PRIVATEKEY",
        "AUTHORIZATION",
        "BEARER",
    }
)
# Joined spellings (PGPASSWORD, dbpassword, apiKey, signing_key) that name a credential wherever they appear.
STRONG_PARTS = (
    "PASSWORD",
    "PASSWD",
    "PASSPHRASE",
    "SECRET",
    "TOKEN",
    "CREDENTIAL",
    "APIKEY",
    "PRIVATEKEY",
    "ACCESSKEY",
    "SIGNINGKEY",
    "ENCRYPTIONKEY",
    "MASTERKEY",
    "HMACKEY",
    "FERNETKEY",
    "LICENSEKEY",
    "SESSIONKEY",
)
# A key whose last word is one of these names a place or a property of a secret, not the secret.
PLACE = frozenset(
    {
        "NAME",
        "NAMES",
        "REF",
        "REFS",
        "SELECTOR",
        "PATH",
        "FILE",
        "FILES",
        "DIR",
        "DIRS",
        "FOLDER",
        "FIELD",
        "NAMESPACE",
        "KIND",
        "TYPE",
        "MOUNT",
        "TTL",
        "TIMEOUT",
        "LIFETIME",
        "EXPIRY",
        "EXPIRATION",
        "HEADER",
        "PREFIX",
        "ENABLED",
        "ENABLE",
        "REQUIRED",
        "LENGTH",
        "VERSION",
        "ALGORITHM",
        "ALG",
        "ROTATION",
        "STORE",
        "PROVIDER",
        "HASH",
        "CHECKSUM",
        "DIGEST",
        "ID",
        "URL",
        "URI",
        "ENDPOINT",
        "HOST",
        "PORT",
        "USER",
        "USERNAME",
        "REGION",
        "ENV",
        "VAR",
        "POLICY",
        "MODE",
        "SIZE",
        "COUNT",
        "INTERVAL",
        "SCOPE",
        "AUDIENCE",
        "ISSUER",
        "METHOD",
        "SECONDS",
        "SECS",
        "MINUTES",
        "HOURS",
        "DAYS",
        "MS",
        "MILLIS",
        "LIMIT",
        "MAX",
        "MIN",
        "RETRIES",
        "ATTEMPTS",
        "AGE",
        "PERIOD",
        "DELAY",
        "WINDOW",
        "RULES",
        "COMPLEXITY",
        "RESET",
        "CHANGE",
    }
)
_HARMLESS = re.compile(
    r"(?:|true|false|yes|no|on|off|null|none|<[a-z][a-z _-]{0,40}>|\*{3,}|x{3,}|changeme|change-me)",
    re.IGNORECASE,
)
_NUMBER_OR_PATH = re.compile(r"(?:[-+]?[0-9]{1,4}(?:\.[0-9]+)?|/[A-Za-z0-9._/-]*(?:[:,]/[A-Za-z0-9._/-]*)*)")
_PLAIN_WORD = re.compile(r"[a-z]+(?:[_.-][a-z]+)*")  # `created_at`: a value a *_KEY setting may hold
_KEY_NAME = re.compile(
    r"[A-Z][A-Z0-9_]*|[a-z][a-z._-]*"
)  # a camelCase field naming another key (secretKey: DB_PASSWORD)
_LINE = re.compile(
    r"^[ \t]*(?:export[ \t]+)?([A-Za-z_][A-Za-z0-9_.-]{0,100})[ \t]*[:=][ \t]*(.*?)[ \t]*$", re.MULTILINE
)
_INLINE = re.compile(r"(?:^|[\s;&|?])(?:--?)?([A-Za-z_][A-Za-z0-9_.-]{0,100})=([^\s;&|]+)")
_QUOTED = re.compile(
    r"[\"']([A-Za-z_][A-Za-z0-9_.-]{0,100})[\"']\s*[:=]\s*[\"']([^\"']{1,4096})[\"']"
)  # JSON, Python, TOML
_ELEMENT = re.compile(r"<([A-Za-z_][A-Za-z0-9_.-]{0,100})>([^<]{1,4096})</\1>")  # XML
MAX_SCANNED = 1 << 20  # every detector is linear, so a string is scanned whole (no input file holds more)

_memo: dict[tuple[str, str], str | None] = {}
# A full table keeps what it holds rather than starting again: emptied when full, a table a little smaller
# than what a run asks over and over (every key and value of every environment's ConfigMap, in turn)
# answered nothing, and each miss costs the whole scan (125,000 pairs asked 4 times each over a table of
# 100,000: every ask missed). Kept whole, it answers most of them. (The same holds for the tables of
# plaintext.scan and of the emitter.)
MEMO_LIMIT = 200_000


def in_value(value: str, depth: int = 0) -> str | None:
    """What credential a string holds whatever its key, or None. Base64 inside it (a kubeconfig's
    client-key-data, an encoded PEM or gzip) is decoded and scanned too, one level deep."""
    text = value[:MAX_SCANNED]
    match = _TOKEN.search(text)
    if match:
        return TOKENS[int(match.lastgroup[1:])][1]
    what = _authorization(text)
    if what:
        return what
    if "://" in text and _url_password(text):
        return "a URL with a password in it"
    if _PGPASS.search(text):
        return "a .pgpass password"
    if depth == 0:
        # Every run: what each costs is bounded by its length (gzip inflates to twice it at most), and a
        # credential after a few decoys is still one.
        for match in _BASE64_RUN.finditer(text):
            found = in_bytes(base64_bytes(match.group()), depth + 1, inflated_limit(match.group()))
            if found:
                return f"{found}, base64-encoded"
    return None


# HTTP Authorization: the scheme is case-insensitive. Basic carries user:password in base64; a Bearer
# token is a long mix of letters and digits (not "bearer authentication").
_AUTHORIZATION = re.compile(r"(?i:\b(basic|bearer)[ \t]+)([A-Za-z0-9+/._~-]{12,}=*)")
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/]{40,}={0,2}")
MAX_INFLATED = 1 << 20
INFLATION = 2  # gzip is inflated to at most twice the length of the text that holds it
TOO_COMPRESSED = (
    "gzip-compressed data that inflates to more than twice its size, which kompile cannot check for "
    "credentials (store it uncompressed)"
)


def inflated_limit(text: str) -> int:
    """How much the gzip a text holds may inflate to: a few KiB of gzip inflate to a MiB, and a file of
    them to gigabytes, so what is scanned is bounded by what the spec's author wrote. Past it, the data
    is refused (TOO_COMPRESSED), never passed unread."""
    return min(MAX_INFLATED, INFLATION * len(text))


def inflated(data: bytes, limit: int) -> bytes | None:
    """Bytes as the scan reads them, or None when they are gzip that inflates past limit. Gzip is inflated
    member after member, a truncated stream as far as it goes (a reader of the data gets that far too),
    and whatever follows the last member is kept as well, as are the raw bytes of a damaged member (after
    what inflated before the damage): no spelling of gzip hides text from the scan."""
    out = bytearray()
    while data[:2] == b"\x1f\x8b":
        inflater = zlib.decompressobj(wbits=31)
        read = 0
        try:
            while not inflater.eof and read < len(data):
                out += inflater.decompress(data[read : read + _INFLATE_STEP], limit + 1 - len(out))
                read += _INFLATE_STEP
                if len(out) > limit or inflater.unconsumed_tail:
                    return None  # more to inflate than the limit
        except zlib.error:
            return bytes(out + data)
        if not inflater.eof:
            return bytes(out)  # truncated
        data = inflater.unused_data + data[read:]
    return bytes(out + data) if out else data


_INFLATE_STEP = 1 << 8  # compressed bytes fed at a time: what inflated before a damaged step is kept


def as_text(data: bytes) -> str:
    """Bytes as text for the scan, read leniently: a credential in ASCII stays one beside a stray byte."""
    return data.decode("utf-8", "replace")


def _authorization(text: str) -> str | None:
    for match in _AUTHORIZATION.finditer(text):
        token = match.group(2)
        if match.group(1).lower() == "basic":
            decoded = base64_bytes(token)
            if decoded and b":" in decoded and decoded.isascii():
                return "an HTTP Authorization credential"
        elif len(token) >= 16 and any(c.isdigit() for c in token) and any(c.isalpha() for c in token):
            return "an HTTP Authorization credential"
    return None


def base64_bytes(text: str) -> bytes | None:
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


def in_bytes(data: bytes | None, depth: int = 1, limit: int = MAX_INFLATED) -> str | None:
    """What credential some bytes hold: text (gzip inflated, at most limit bytes; more is refused as
    TOO_COMPRESSED), or a DER private key."""
    if not data:
        return None
    data = inflated(data, limit)
    if data is None:
        return TOO_COMPRESSED
    if der_private_key(data):
        return "a private key (DER)"
    text = as_text(data)
    return in_value(text, depth) or _embedded(text)


def der_private_key(data: bytes) -> bool:
    """A DER-encoded private key: a SEQUENCE whose first element is version 0 (PKCS#8, PKCS#1 RSA) or 1
    (SEC 1 EC), followed by what each format holds next."""
    if len(data) < 8 or data[0] != 0x30:
        return False
    offset = 2 + (data[1] & 0x7F if data[1] & 0x80 else 0)
    body = data[offset : offset + 6]
    return body[:3] == b"\x02\x01\x00" and body[3:4] in (b"\x30", b"\x02") or body[:4] == b"\x02\x01\x01\x04"


# host:port:database:user:password lines, as PostgreSQL's .pgpass holds them
_PGPASS = re.compile(r"(?m)^[A-Za-z0-9_.*-]+:(?:[0-9]+|\*):[A-Za-z0-9_.*-]+:[A-Za-z0-9_.*@-]+:\S+$")


def _url_password(text: str) -> bool:
    """scheme://user:password@host, whatever characters the password holds: the user information runs to
    the last '@' before the next space. `host:8080/path@x` (a port, then a path) is not a password.
    Linear in the text: positions, never a copy of each scheme's rest (a string of a quarter of a million
    schemes took a second, and decompressed data holds as many)."""
    next_space, ats = -1, None
    for match in _SCHEME.finditer(text):
        start = match.end()
        if next_space < start:
            found = _SPACE.search(text, start)
            next_space = found.start() if found else len(text)
        end = min(next_space, start + 4096)  # user information longer than this is no password
        if ats is None:
            ats = [m.start() for m in _AT.finditer(text)]
        index = bisect.bisect_left(ats, end) - 1
        at = ats[index] if index >= 0 else -1
        if at <= start or text.startswith("[", start):
            continue
        colon = text.find(":", start, at)
        if colon == -1 or colon + 1 == at or _REFERENCE_BODY.fullmatch(text, colon + 1, at):
            continue
        if _PORT.match(text, colon + 1, at) and text.find("/", start, at) != -1:
            continue  # host:port/path@...: the '@' is in the path
        return True
    return False


_SPACE = re.compile(r"[ \t\n\r]")
_AT = re.compile("@")
_PORT = re.compile(r"[0-9]{1,5}(?:/|$)")
_REFERENCE_BODY = re.compile(
    r"\$\([A-Za-z_][A-Za-z0-9_]*\)|\$\{[A-Za-z_][A-Za-z0-9_]*\}"
)  # _REFERENCE, unanchored


_STRONG_PART = re.compile("|".join(STRONG_PARTS))  # (one search, rather than one per part)


def words(key: str) -> list[str]:
    return [w.upper() for w in _WORDS.findall(key)]


def by_key(key: str, value: str) -> bool:
    """Whether a value held under this key is a credential in plain text."""
    names = words(key)
    if not names or names[-1] in PLACE or _HARMLESS.fullmatch(value) or _REFERENCE.match(value):
        return False
    joined = "".join(names)
    strong = not STRONG.isdisjoint(names) or _STRONG_PART.search(joined) is not None
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


def _in_text(value: str) -> str | None:
    """What a value holds whatever its key: the same few values come under many keys ("true", "v")."""
    what = _by_value.get(value, _MISSING)
    if what is _MISSING:
        what = in_value(value) or _embedded(value)
        if len(value) <= 256 and len(_by_value) < MEMO_LIMIT:  # (a long value is rarely repeated)
            _by_value[value] = what
    return what


_by_value: dict[str, str | None] = {}
_MISSING = object()


def credential_in(key: str, value: str) -> str | None:
    """What credential a setting holds in plain text ("a private key", ...), or None."""
    memo_key = (key, value)
    if memo_key in _memo:
        return _memo[memo_key]
    what = _in_text(value)
    if what is None and by_key(key, value[:MAX_SCANNED]):
        what = "what looks like a secret"
    if len(_memo) < MEMO_LIMIT:
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
