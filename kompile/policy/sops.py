"""Is a Secret manifest encrypted with sops (safe in Git; Flux decrypts it) or not?

sops writes each encrypted value as ENC[AES256_GCM,data:...,iv:...,tag:...,type:...] (aes/cipher.go), leaves
empty values empty, and adds a top-level `sops` map whose `mac` is itself ENC[...], with `lastmodified`,
`version` and at least one list of key recipients (stores/stores.go). A file is encrypted only when all of
that holds and every value of data and stringData is encrypted: ENC[...] values without the metadata,
or metadata beside a value in clear, are refused rather than guessed at.
"""

from __future__ import annotations

import re

ENC = re.compile(
    r"ENC\[AES256_GCM,data:[A-Za-z0-9+/=]+,iv:[A-Za-z0-9+/=]+,tag:[A-Za-z0-9+/=]+,"
    r"type:(str|int|float|bytes|bool|time|comment)\]"
)
RECIPIENTS = ("age", "pgp", "kms", "gcp_kms", "azure_kv", "hc_vault", "hckms", "key_groups")
# Everything sops writes in its metadata (stores/stores.go, Metadata); anything else is someone's text.
METADATA = frozenset(
    {
        *RECIPIENTS,
        "lastmodified",
        "mac",
        "version",
        "shamir_threshold",
        "mac_only_encrypted",
        "encrypted_regex",
        "unencrypted_regex",
        "encrypted_suffix",
        "unencrypted_suffix",
        "encrypted_comment_regex",
        "unencrypted_comment_regex",
    }
)
# A data key encrypted to a recipient: the only metadata a credential scan may pass over as ciphertext.
SOPS_KEY = re.compile(r"sops\.(key_groups\[\d+\]\.)?[a-z_]+\[\d+\]\.enc")


def sops_problem(doc: dict) -> str | None:
    """None when doc is a sops-encrypted manifest, else why not."""
    meta = doc.get("sops")
    if not isinstance(meta, dict):
        return "it has no sops metadata (a top-level `sops:` map): it is not encrypted"
    mac = meta.get("mac")
    if not isinstance(mac, str) or not ENC.fullmatch(mac):
        return "sops.mac is missing or not an ENC[...] value"
    if not isinstance(meta.get("lastmodified"), str) or not isinstance(meta.get("version"), str):
        return "sops.lastmodified or sops.version is missing"
    if not any(meta.get(key) for key in RECIPIENTS):
        return "sops names no key to decrypt it with (age, pgp, kms, ...)"
    unknown = sorted(str(key) for key in meta if key not in METADATA)
    if unknown:
        return f"sops.{unknown[0]} is not sops metadata"
    if any(not isinstance(doc.get(field), (dict, type(None))) for field in ("data", "stringData")):
        return "data and stringData must be maps of names to values"
    clear = [
        f"{field}.{key}"
        for field in ("data", "stringData")
        for key, value in (doc.get(field) or {}).items()
        if not (value == "" or (isinstance(value, str) and ENC.fullmatch(value)))
    ]
    if clear:
        return f"{', '.join(clear[:3])} {'is' if len(clear) == 1 else 'are'} not encrypted"
    return None


def is_sops_encrypted(doc: dict) -> bool:
    return isinstance(doc, dict) and doc.get("kind") == "Secret" and sops_problem(doc) is None


def secret_keys(doc: dict) -> set[str]:
    return {
        str(k) for field in ("data", "stringData") if isinstance(doc.get(field), dict) for k in doc[field]
    }
