"""Property tests: any text, any YAML, any mutation of the example either loads (or compiles) or raises
KompileError whose diagnostics carry a position; never another exception.

The profile (derandomized when CI=true) comes from conftest.py. Each example works in its own
temporary folder; nothing changes the working directory."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from kompile.compiler import compile_project
from kompile.errors import Code, KompileError
from kompile.inputs import decode_utf8
from kompile.source import YMap, parse_document
from kompile.spec import API_VERSION

from conftest import EXAMPLE, EXAMPLE_FOLDERS
from strategies import SCALARS, VALUES, mutate, tweak

REL = "environments/fuzz.yaml"
# Diagnostics about a whole file or folder (too large, a missing environments/ folder, no App)
# have no line; every other diagnostic points into a file.
WHOLE_FILE = {Code.UNREADABLE, Code.PATH_OUTSIDE_ROOT, Code.APP_COUNT, Code.NO_ENVIRONMENTS, Code.YAML_SYNTAX}

# Modest by default so the suite stays fast; KOMPILE_FUZZ_EXAMPLES=5000 for a longer hunt.
PROPERTY = settings(
    max_examples=int(os.environ.get("KOMPILE_FUZZ_EXAMPLES", "150")),
    suppress_health_check=[HealthCheck.too_slow],
)


def assert_positioned(exc: KompileError, root: Path | None = None) -> None:
    assert exc.diagnostics, "a KompileError without diagnostics"
    for d in exc.diagnostics:
        assert d.message, d
        assert d.span is not None and d.span.path, d
        assert d.span.line >= 0 and d.span.col >= 0, d
        if d.span.line == 0:
            assert d.code in WHOLE_FILE, f"{d.code.value} without a line: {d}"
            continue
        assert d.span.col >= 1, d
        if root is not None and (root / d.span.path).is_file():
            # The position is inside the file, so the report can show the line and a caret.
            data = (root / d.span.path).read_bytes()
            lines = data.decode("utf-8", "replace").splitlines() or [""]
            assert d.span.line <= len(lines), (d, len(lines))


# ---------------------------------------------------------------------------------------------
# (a) the loader, on any text

YAML_ALPHABET = st.sampled_from(
    list("abc:-?[]{},&*!|>'\"#%@`~ \n\t\r.0123456789\\") + ["\x00", "\ufeff", "é", "\u2028", "\x85"]
)
YAMLISH = st.lists(
    st.one_of(
        YAML_ALPHABET,
        st.sampled_from(
            [
                "key: ",
                "- ",
                "  ",
                "&a ",
                "*a",
                "!!str ",
                "!!python/object ",
                "<<: ",
                "---\n",
                "...\n",
                "{",
                "}",
                "[",
                "]",
                "'",
                '"',
                "\n  ",
                "? ",
                "!tag ",
                "%YAML 1.1\n",
                "%TAG ! tag:x,2000:\n",
                "|\n",
                ">-\n",
            ]
        ),
    ),
    max_size=60,
).map("".join)


def check_loader(text: str) -> None:
    try:
        doc = parse_document(text, REL)
    except KompileError as exc:
        assert_positioned(exc)
        for d in exc.diagnostics:
            assert d.span.path == REL
            lines = text.splitlines()
            assert d.span.line <= max(1, len(lines) + 1), (d, text)
        return
    assert isinstance(doc, YMap)


@PROPERTY
@given(st.text())
def test_any_text_loads_or_raises_a_positioned_error(text: str):
    check_loader(text)


@PROPERTY
@given(YAMLISH)
def test_any_yamlish_text_loads_or_raises_a_positioned_error(text: str):
    check_loader(text)


@PROPERTY
@given(st.binary(), st.sampled_from(["replace", "ignore", "surrogateescape", "backslashreplace"]))
def test_any_bytes_decoded_leniently_load_or_raise_a_positioned_error(data: bytes, errors: str):
    check_loader(data.decode("utf-8", errors=errors))


@PROPERTY
@given(st.binary())
def test_any_bytes_through_the_strict_decoder_load_or_raise_a_positioned_error(data: bytes):
    try:
        text = decode_utf8(data, REL)
    except KompileError as exc:
        assert_positioned(exc)
        assert [d.code for d in exc.diagnostics] == [Code.NOT_UTF8]
        return
    check_loader(text)


# ---------------------------------------------------------------------------------------------
# (b) the whole pipeline, on any YAML

NAMES = st.sampled_from(["dev", "prod", "app", "shop", "x"]) | st.text(max_size=8)
DOCUMENTS = st.one_of(
    VALUES,
    st.fixed_dictionaries(
        {
            "apiVersion": st.just(API_VERSION) | SCALARS,
            "kind": st.sampled_from(["App", "Environment"]) | SCALARS,
            "metadata": st.fixed_dictionaries({"name": NAMES}) | VALUES,
            "spec": VALUES,
        }
    ),
)


def dump(value) -> str:
    return yaml.safe_dump(value, sort_keys=False, allow_unicode=True)


def compile_checked(root: Path) -> None:
    try:
        compile_project(root)
    except KompileError as exc:
        event("refused: " + " ".join(sorted({d.code.value for d in exc.diagnostics})))
        assert_positioned(exc, root)
    else:
        event("compiled")  # see how often with --hypothesis-show-statistics


@PROPERTY
@given(
    st.dictionaries(
        NAMES.filter(lambda n: "/" not in n and "\x00" not in n), DOCUMENTS, min_size=1, max_size=3
    )
)
def test_any_yaml_as_environments_compiles_or_raises_a_positioned_error(files: dict):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "environments").mkdir()
        for stem, value in files.items():
            try:
                (root / "environments" / f"{stem}.yaml").write_text(dump(value), encoding="utf-8")
            except (OSError, UnicodeEncodeError):
                assume(False)
        compile_checked(root)


@PROPERTY
@given(st.dictionaries(st.sampled_from(["dev", "prod", "staging", "qa"]), VALUES, min_size=1, max_size=2))
def test_the_example_app_with_any_environment_specs_compiles_or_raises_a_positioned_error(specs: dict):
    with tempfile.TemporaryDirectory() as tmp:
        root = copy_example(Path(tmp))
        for name, spec in specs.items():
            doc = {"apiVersion": API_VERSION, "kind": "Environment", "metadata": {"name": name}, "spec": spec}
            (root / "environments" / f"{name}.yaml").write_text(dump(doc), encoding="utf-8")
        compile_checked(root)


# ---------------------------------------------------------------------------------------------
# (c) mutations of the example

EXAMPLE_FILES = sorted(
    p.relative_to(EXAMPLE).as_posix()
    for folder in EXAMPLE_FOLDERS
    for p in (EXAMPLE / folder).rglob("*.yaml")
)
EXAMPLE_DOCS = {rel: yaml.safe_load((EXAMPLE / rel).read_text()) for rel in EXAMPLE_FILES}


def copy_example(root: Path) -> Path:
    """The example, writable (the shared copy is read-only and copytree keeps modes)."""
    for folder in ("environments", "secrets"):
        shutil.copytree(EXAMPLE / folder, root / folder)
    for path in root.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return root


@PROPERTY
@given(st.data())
def test_any_mutation_of_the_example_compiles_or_raises_a_positioned_error(data):
    with tempfile.TemporaryDirectory() as tmp:
        root = copy_example(Path(tmp))
        for _ in range(data.draw(st.integers(1, 3), label="mutations")):
            rel = data.draw(st.sampled_from(EXAMPLE_FILES), label="file")
            current = yaml.safe_load((root / rel).read_text())
            (root / rel).write_text(dump(mutate(current, data)), encoding="utf-8")
        compile_checked(root)


@PROPERTY
@given(st.data())
def test_any_change_of_a_value_to_one_of_its_type_compiles_or_raises_a_positioned_error(data):
    # Type-preserving changes mostly pass validation, so this one exercises normalising and rendering.
    with tempfile.TemporaryDirectory() as tmp:
        root = copy_example(Path(tmp))
        for _ in range(data.draw(st.integers(1, 4), label="changes")):
            rel = data.draw(st.sampled_from(EXAMPLE_FILES), label="file")
            current = yaml.safe_load((root / rel).read_text())
            (root / rel).write_text(dump(tweak(current, data)), encoding="utf-8")
        compile_checked(root)


def test_the_mutation_machinery_reaches_the_example():
    # A guard for the property above: it must be mutating real specs, not nothing.
    assert {"environments/app.yaml", "environments/prod.yaml", "secrets/prod/shop-django.yaml"} <= set(
        EXAMPLE_FILES
    )
    assert EXAMPLE_DOCS["environments/app.yaml"]["kind"] == "App"
    with tempfile.TemporaryDirectory() as tmp:
        root = copy_example(Path(tmp))
        compile_project(root)  # the unmutated copy compiles
        app = yaml.safe_load((root / "environments/app.yaml").read_text())
        app["spec"]["components"]["web"]["replcias"] = 2
        (root / "environments/app.yaml").write_text(dump(app))
        with pytest.raises(KompileError) as caught:
            compile_project(root)
        assert [d.code for d in caught.value.diagnostics] == [Code.UNKNOWN_KEY]
        assert_positioned(caught.value, root)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=30,
)


@settings(max_examples=500, deadline=None)
@given(JSON_VALUES)
def test_the_manifest_is_written_as_json_dumps_indents(value):
    """The manifest's own writer (faster on a hundred thousand files) writes json.dumps(indent=1)'s text."""
    import json

    from kompile.output.manifest import indented_json

    assert indented_json(value) == json.dumps(value, indent=1)


def _reference_scalars(node, path: str, key: str = ""):
    """plaintext.scalars as it was first written (a generator): the walk it must still equal."""
    from kompile.policy.plaintext import _decoded

    if isinstance(node, dict):
        for name, value in node.items():
            here = f"{path}.{name}" if path else str(name)
            if isinstance(name, str):
                yield here, "", name
            if path == "binaryData" and isinstance(value, str):
                value = _decoded(value)
            yield from _reference_scalars(value, here, str(name))
    elif isinstance(node, list):
        pairs = all(isinstance(item, dict) and isinstance(item.get("name"), str) for item in node)
        flag = None
        for index, item in enumerate(node):
            here = f"{path}[{index}]"
            if pairs and isinstance(item.get("value"), str):
                yield f"{path}[{item['name']}]", item["name"], item["value"]
                item = {k: v for k, v in item.items() if k not in ("name", "value")}
            if isinstance(item, str):
                yield here, flag or key, item
                flag = item.lstrip("-") if item.startswith("-") and "=" not in item else None
                continue
            yield from _reference_scalars(item, here, key)
    else:
        yield path, key, node


_SCAN_KEYS = st.sampled_from(
    ["name", "value", "binaryData", "args", "command", "password", "x", "PASSWORD=hunter2", "a\u2028b", ""]
) | st.integers(0, 3)
_SCAN_LEAVES = (
    st.none()
    | st.integers()
    | st.booleans()
    | st.sampled_from(
        ["--password", "-p", "hunter2", "a=b", "--token=x", "aGVsbG8=", "H4sI", "", "PASSWORD=x"]
        + ["redis-cli", "-a", "s3cret", "mysql", "-u", "root", "-ps3cret"]
    )
)
_ARGV = st.lists(st.sampled_from(["redis-cli", "-a", "s3cret", "mysql", "-u", "-ps3cret", "x"]), max_size=4)
_SCAN_OBJECTS = st.recursive(
    _SCAN_LEAVES,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.fixed_dictionaries(
            {}, optional={"command": _ARGV, "args": _ARGV, "name": st.just("c"), "x": inner}
        )
        | st.dictionaries(_SCAN_KEYS, inner, max_size=4)
        | st.lists(
            st.fixed_dictionaries({"name": st.sampled_from(["A", "PASSWORD"])}, optional={"value": inner}),
            max_size=3,
        )
    ),
    max_leaves=30,
)


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(_SCAN_KEYS, _SCAN_OBJECTS, max_size=4))
def test_the_credential_scan_walks_every_value_as_it_did(obj):
    """The scan's walk (which appends, for speed) yields what the generator it replaced yielded, in order:
    env pairs, flags, binaryData and mapping keys included."""
    from kompile.policy.plaintext import scalars

    assert scalars(obj, "") == list(_reference_scalars(obj, ""))


def _reference_command_lines(obj) -> list:
    """plaintext._command_lines as it was first written (its own walk over the object)."""
    import re as _re

    from kompile.policy.credentials import MAX_SCANNED, TOKENS

    pattern = _re.compile("|".join(p for p, what in TOKENS if "command line" in what))
    found, stack = [], [("", obj)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, dict):
            argv = [
                a
                for key in ("command", "args")
                for a in (node.get(key) if isinstance(node.get(key), list) else ())
            ]
            if (
                len(argv) > 1
                and all(isinstance(a, str) for a in argv)
                and pattern.search(" ".join(argv)[:MAX_SCANNED])
                and not any(pattern.search(a[:MAX_SCANNED]) for a in argv)
            ):
                found.append((f"{path}.command" if path else "command", "a password on a command line"))
            stack.extend(
                (f"{path}.{k}" if path else str(k), v) for k, v in node.items() if isinstance(v, dict | list)
            )
        elif isinstance(node, list):
            stack.extend((f"{path}[{i}]", v) for i, v in enumerate(node) if isinstance(v, dict | list))
    return sorted(found)


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(_SCAN_KEYS, _SCAN_OBJECTS, max_size=4))
def test_command_lines_are_found_where_their_own_walk_found_them(obj):
    """The command lines the scan's one walk collects are those a walk of their own found."""
    from kompile.policy.plaintext import _command_lines, _scalars

    commands: list = []
    _scalars(obj, "", "", lambda found: None, commands, [], frozenset(), None)
    assert _command_lines(commands) == _reference_command_lines(obj)


def _reference_scan(obj: dict):
    """plaintext.scan as it was written first: every scalar with its path, judged in order."""
    from kompile.policy.credentials import credential_in
    from kompile.policy.plaintext import _ODD_CHARACTERS, SERVICE_ACCOUNT_TOKEN, Decoded, _odd_number
    from kompile.policy.sops import ENC, SOPS_KEY, is_sops_encrypted

    sealed, encrypted = obj.get("kind") == "SealedSecret", is_sops_encrypted(obj)
    credentials, odd, tokens = [], [], []
    for path, key, value in _reference_scalars(obj, ""):
        if isinstance(value, str):
            if _ODD_CHARACTERS.search(value):
                odd.append(
                    (path, "holds a control character or a Unicode line separator, which kustomize changes")
                )
            if key == "type" and value == SERVICE_ACCOUNT_TOKEN:
                tokens.append(path)
            ciphertext = (sealed and path.startswith("spec.encryptedData.")) or (
                encrypted and (ENC.fullmatch(value) is not None or SOPS_KEY.fullmatch(path) is not None)
            )
            if not ciphertext and credential_in(key, value):
                credentials.append((path, credential_in(key, value)))
        elif isinstance(value, Decoded):
            if value.unreadable or credential_in(key, value.text):
                credentials.append((path, value.unreadable or credential_in(key, value.text)))
        elif isinstance(value, float | int) and _odd_number(value):
            odd.append((path, _odd_number(value)))
    return credentials + _reference_command_lines(obj), odd, tokens


_ENC = "ENC[AES256_GCM,data:eA==,iv:eA==,tag:eA==,type:str]"
_SCAN_TOPS = st.one_of(
    st.fixed_dictionaries(  # ciphertext under spec.encryptedData, and beside it
        {
            "kind": st.just("SealedSecret"),
            "spec": st.fixed_dictionaries(
                {
                    "encryptedData": st.dictionaries(
                        st.sampled_from(["password", "x"]), _SCAN_LEAVES, max_size=3
                    )
                },
                optional={"template": st.dictionaries(st.sampled_from(["password", "x"]), _SCAN_LEAVES)},
            ),
        }
    ),
    st.fixed_dictionaries(  # sops: ENC[...] values, and sops' own encrypted keys (sops.age[0].enc)
        {
            "kind": st.just("Secret"),
            "data": st.dictionaries(
                st.sampled_from(["password", "x"]), st.sampled_from([_ENC, ""]), max_size=2
            ),
            "sops": st.fixed_dictionaries(
                {
                    "mac": st.just(_ENC),
                    "lastmodified": st.just("2026-01-01T00:00:00Z"),
                    "version": st.just("3.9.0"),
                    "age": st.lists(
                        st.fixed_dictionaries(
                            {"recipient": st.just("age1x"), "enc": st.sampled_from(["PASSWORD=hunter2", "x"])}
                        ),
                        min_size=1,
                        max_size=2,
                    ),
                }
            ),
        }
    ),
    st.fixed_dictionaries(
        {"kind": st.sampled_from(["ConfigMap", "Secret"])},
        optional={"type": st.sampled_from(["kubernetes.io/service-account-token", "Opaque"])},
    ),
)


@settings(max_examples=500, deadline=None)
@given(
    st.dictionaries(_SCAN_KEYS, _SCAN_OBJECTS, max_size=4),
    _SCAN_TOPS,
    st.sampled_from([1e400, 1 << 70, "a\x85b", "ok"]),
)
def test_the_scan_judges_every_scalar_as_one_walk_over_them_did(obj, top, odd):
    """The scan (which writes a path out only for a finding) finds what judging every scalar with its path
    found: credentials, values kustomize changes, token requests, ciphertext where a SealedSecret or a
    sops-encrypted Secret holds it."""
    from kompile.policy.plaintext import scan

    obj = {**obj, **top, "odd": [odd, {"x": odd}]}
    assert scan(obj)[:3] == _reference_scan(obj)
    assert scan(obj)[:3] == _reference_scan(obj)  # (the mapping keys found clean now left out)


class _Text(str):
    """A str subclass (never remembered as clean: only exact strings are)."""


_ENC_VALUE = "ENC[AES256_GCM,data:eA==,iv:eA==,tag:eA==,type:str]"
# One pair per example, met in several places: each mutation of the remembering (a value after a flag
# looked up under the list's key, a token type remembered, an odd value remembered) is found at once.
_SHARED_KEYS = st.sampled_from(["password", "type", "x"])
_SHARED_VALUES = st.sampled_from(["hunter2", "kubernetes.io/service-account-token", _ENC_VALUE, "a\u2028b"])
_PLACES = st.sampled_from(
    ["member", "top", "env", "flag", "args", "list", "sealed", "sops", "sops-key", "binary", "mapping-key"]
)


def _placed(context: str, key: str, value: str) -> dict:
    """One (key, value) pair in one of the places the scan names a value from."""
    sops = {"mac": _ENC_VALUE, "lastmodified": "2026-01-01T00:00:00Z", "version": "3.9.0", "age": []}
    return {
        "member": {"kind": "ConfigMap", "data": {key: value}},
        "top": {"kind": "Secret", key: value},
        "env": {"kind": "Pod", "env": [{"name": key, "value": value}]},
        "flag": {"kind": "Pod", "args": ["--" + key, value]},
        "args": {"kind": "Pod", "args": [value]},
        "list": {"kind": "Pod", key: ["a", value]},
        "sealed": {"kind": "SealedSecret", "spec": {"encryptedData": {key: value}}},
        "sops": {"kind": "Secret", "data": {key: value}, "sops": sops},
        "sops-key": {"kind": "Secret", "data": {}, "sops": {**sops, "age": [{key: value}]}},
        "binary": {"kind": "ConfigMap", "binaryData": {key: value}},
        "mapping-key": {"kind": "ConfigMap", "data": {value: key}},
    }[context]


@settings(max_examples=500, deadline=None)
@given(_SHARED_KEYS, _SHARED_VALUES | _SHARED_VALUES.map(_Text), st.lists(_PLACES, min_size=2, max_size=8))
def test_what_the_scan_remembers_of_one_object_never_hides_a_finding_in_another(key, value, places):
    """The scan remembers the (key, value) pairs it found clean and does not list them again: the same
    pair met in another object, in another place (a flag's argument, an env variable, ciphertext, a
    token type), is judged as if never seen."""
    from kompile.policy import plaintext

    plaintext._CLEAN_PAIRS.clear()
    plaintext._CLEAN_NAMES.clear()
    for place in places:
        obj = _placed(place, key, value)
        assert plaintext.scan(obj)[:3] == _reference_scan(obj)


_COMPONENTS = st.sampled_from(
    ["bases", "overlays", "gitops", "rendered", "dev", "a.yaml", ".", "..", "", "x" * 250]
)
_PATHS = st.lists(_COMPONENTS, min_size=1, max_size=4).map("/".join) | st.text(
    alphabet="abs/.\n\\\x00-_é", max_size=12
)
_DIGEST_VALUES = st.sampled_from(["0" * 64, "f" * 64, "F" * 64, "0" * 63, "0" * 65, "", "0" * 63 + "\n"])


@settings(max_examples=1000, deadline=None)
@given(st.dictionaries(_PATHS, _DIGEST_VALUES, min_size=1, max_size=5))
def test_the_manifest_listing_at_a_glance_accepts_only_what_entry_by_entry_accepts(files):
    """The manifest's fast check of its usual listing never passes an entry the entry-by-entry check refuses
    (a '.' or '..' component, a path outside the output folders, a hash that is not a digest), and it
    passes the plain listings builds write."""
    from kompile.output.manifest import _usual, entry_problem

    accepted = _usual(files)
    problems = [entry_problem(path, (hashed,)) for path, hashed in files.items()]
    if accepted is not None:
        assert problems == [None] * len(files)
        assert accepted == {path: (hashed,) for path, hashed in files.items()}
    plain = all(
        p is None and "\n" not in path and all(c.isascii() for c in path) and len(path) <= 256
        for path, p in zip(files, problems, strict=True)
    )
    if plain:
        assert accepted is not None


_ANY_PATHS = _PATHS | st.text(max_size=8)  # (also quotes, backslashes, control and non-ASCII characters)
_HEX_DIGESTS = st.sampled_from(["0" * 64, "f" * 64, "0123456789abcdef" * 4])  # (what a manifest holds)


@settings(max_examples=500, deadline=None)
@given(
    st.dictionaries(_ANY_PATHS, st.lists(_HEX_DIGESTS, min_size=1, max_size=3).map(tuple), max_size=6),
    st.dictionaries(st.text(max_size=6), st.text(max_size=6), max_size=3),
)
def test_the_manifest_record_is_json_dumps_indents_of_its_fields(files, environments):
    """The manifest writes its listings apart from the rest (quoting plain paths by adding quotes): the
    bytes of MANIFEST and of each environment's record are json.dumps(indent=1) of the whole record,
    whatever the paths; each path is listed once, in the record of the environment folder it is in."""
    import json

    from kompile.output.manifest import FORMAT, MANIFEST, Manifest, record_of, record_path

    def listing(paths):
        return {path: h[0] if len(h) == 1 else list(h) for path, h in sorted(paths.items())}

    manifest = Manifest(files=files, environments=environments)
    body = {
        "format": FORMAT,
        "generator": manifest.generator,
        "inputs": {},
        "files": listing({p: h for p, h in files.items() if record_of(p) is None}),
    }
    if environments:
        body["environments"] = dict(sorted(environments.items()))
    expected = {
        record_path(name): (
            json.dumps({"files": listing({p: h for p, h in files.items() if record_of(p) == name})}, indent=1)
            + "\n"
        ).encode()
        for name in sorted({record_of(p) for p in files} - {None})
    }
    expected[MANIFEST] = (json.dumps(body, indent=1) + "\n").encode()
    written = {
        record_path(name): manifest.record_bytes(name) for name, files in manifest.records.items() if files
    }
    assert {**written, MANIFEST: manifest.to_bytes()} == expected
    assert manifest.files == dict(sorted(files.items()))


_FOLDERS = st.sampled_from(
    ["bases/shop", "overlays/dev", "overlays/dev-2", "overlays", "rendered/dev", "gitops"]
)


@settings(max_examples=1000, deadline=None)
@given(
    st.sets(
        st.lists(
            st.sampled_from(["bases", "shop", "overlays", "dev", "dev-2", "dev.x", "a", "gitops"]),
            min_size=1,
            max_size=3,
        ).map("/".join)
    ),
    st.lists(_FOLDERS, max_size=3).map(tuple),
)
def test_the_paths_under_folders_are_those_a_scan_finds(paths, folders):
    """Manifest.under bisects the sorted paths: it finds what a scan of every path finds (the folder
    itself, and what is inside it, not a sibling that shares its first letters)."""
    from kompile.output.manifest import Manifest

    manifest = Manifest(files={path: ("0" * 64,) for path in paths})
    prefixes = tuple(folder + "/" for folder in folders)
    scanned = {path for path in paths if path.startswith(prefixes) or path in folders}
    assert manifest.under(folders) == sorted(scanned)  # (in path order: the order removals are listed in)


_PLAIN_DATA = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=12)
    | st.sampled_from(["0o644", "08", "y", "null", "", "1e3", "a\u2028b", "-", "key: value", "'q'", "#x"])
    | st.lists(st.sampled_from(["1", "0", ".", "e", "x", "true", "-", ":", "_"]), max_size=4).map("".join),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=6) | st.sampled_from(["on", "1", "<<"]), children, max_size=4)
    ),
    max_leaves=25,
)


@settings(max_examples=800, deadline=None)
@given(_PLAIN_DATA)
def test_the_emitter_makes_the_nodes_the_representer_makes(value):
    """emit_yaml builds the node tree itself (and remembers resolved tags): the bytes are those of
    yaml.dump through the dumper's own representer, with the C and the pure-Python emitters, and those of
    the C emitter with nothing remembered."""
    import yaml

    from kompile.emit import PurePythonDumper, _Base, _Dumper, _represent_str, emit_yaml

    class Forgetful(_Base):  # (_Dumper without its table of resolved tags)
        def ignore_aliases(self, data) -> bool:
            return True

    Forgetful.add_representer(str, _represent_str)

    def dump(data, dumper):
        options = {"sort_keys": False, "default_flow_style": False, "allow_unicode": True, "width": 1 << 16}
        return yaml.dump(data, Dumper=dumper, **options).encode()

    for dumper in (_Dumper, PurePythonDumper):
        reference = dump(value, dumper)
        assert emit_yaml(value, dumper=dumper) == reference
        assert emit_yaml(value, dumper=dumper) == reference  # (the second time, from remembered tags)
    assert emit_yaml(value) == dump(value, Forgetful)


# Strings made of what decides a scalar's style: indicators, spaces, quotes, digits, words read as other types.
_STYLED_TEXT = st.lists(
    st.sampled_from(
        [*"aZ_/-?:,[]{}#&*!|>'\"%@`.=~<+0 9\\\t", ": ", " #", "---", "...", "yes", "null", "é", "\x85", "\r"]
    ),
    max_size=6,
).map("".join) | st.sampled_from(
    # (the decisive ones, each a step from plain; then long keys and values around the limits)
    ["a:", "a :", "a: b", "a #b", "a#b", "a ", " a", "-a", "- a", "a\tb", "a,b", "on", "y", "_", "/x:1"]
    + ["k" * 128, "k" * 129, "v" * 1024, "v" * 1025, "a b" * 400, "a\nb", "a b" * 22_000]
    # (libyaml's limit on a plain key is 128 bytes of UTF-8, not characters)
    + ["é" * 64, "é" * 65, "\U0001f600" * 32, "\U0001f600" * 33, "\U0001f600" * 103]
)
_STYLED_DATA = st.recursive(
    st.none() | st.booleans() | st.integers() | _STYLED_TEXT,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_STYLED_TEXT, children, max_size=3),
    max_leaves=20,
)


@settings(max_examples=3000, deadline=None)
@given(st.dictionaries(_STYLED_TEXT, _STYLED_DATA, min_size=1, max_size=4))
def test_the_block_writer_writes_what_libyaml_writes(value):
    """emit_yaml writes block style itself, leaving each scalar's style to libyaml: the bytes are libyaml's
    for every mix of indicators, nesting, empty collections and long keys and values (and again, once the
    table of written strings holds them)."""
    import yaml

    from kompile.emit import _NodeDumper, emit_yaml

    options = {"sort_keys": False, "default_flow_style": False, "allow_unicode": True, "width": 1 << 16}
    reference = yaml.dump(value, Dumper=_NodeDumper, **options).encode()
    assert emit_yaml(value, "# head\n") == b"# head\n" + reference
    assert emit_yaml(value) == reference


def test_a_document_of_many_new_quoted_strings_goes_through_libyaml_in_one_piece():
    """Each string new to the block writer's table and not plainly plain costs an emitter of its own: a
    document holding thousands (a hostile spec's values) goes through libyaml whole, with the same bytes."""
    import yaml

    from kompile import emit

    value = {"data": {f"K{index}": f"{index}{index}" for index in range(3000)}}
    emit._SCALARS.clear()  # (a cache)
    options = {"sort_keys": False, "default_flow_style": False, "allow_unicode": True, "width": 1 << 16}
    assert emit.emit_yaml(value) == yaml.dump(value, Dumper=emit._NodeDumper, **options).encode()
    assert len(emit._SCALARS) < 3000 + 3000  # the keys, which are plain, and not every value


def test_the_structure_check_vouches_only_for_what_it_found_clean():
    """A map or list found clean is not checked again for the same type (environments share the App's):
    one with a problem is checked, and reported, every time; a clean one once, for that type only."""
    from kompile.errors import Collector
    from kompile.source import parse_document
    from kompile.spec.structure import was_clean
    from kompile.spec.workloads import COMPONENT

    doc = parse_document(
        'bad: {command: [celery, flower]}\ngood: {type: cron, command: [manage, clear], schedule: "0 * * * *"}\n',
        "x.yaml",
    )
    for partial in (False, False, True):
        bad = Collector()
        COMPONENT.check(doc["bad"], "components.bad", doc.span, bad, partial)
        assert (
            bool(bad.items) is not partial
        )  # ('type' is required, except in a file that states only changes)
        assert was_clean(doc["bad"], COMPONENT, partial) is partial
    good = Collector()
    COMPONENT.check(doc["good"], "components.good", doc.span, good, False)
    assert not good.items and was_clean(doc["good"], COMPONENT, False)
    assert not was_clean(doc["good"]["command"], COMPONENT, False)  # (another type)


def _every_key(node) -> list:
    """Every mapping key anywhere in node (the reference: a plain walk)."""
    if isinstance(node, dict):
        return [*node, *(key for value in node.values() for key in _every_key(value))]
    if isinstance(node, list):
        return [key for item in node for key in _every_key(item)]
    return []


_PAIRS = st.lists(
    st.fixed_dictionaries(
        {"name": st.sampled_from(["A", "B_PASSWORD", "<<"]), "value": st.text(max_size=4) | st.integers()},
        optional={"valueFrom": st.dictionaries(st.sampled_from(["secretKeyRef", "<<"]), st.text(max_size=3))},
    ),
    max_size=3,
)


@settings(max_examples=800, deadline=None)
@given(
    st.recursive(
        st.none() | st.integers() | st.text(max_size=5) | _PAIRS,
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(
                st.sampled_from(["binaryData", "data", "command", "args", "<<", "tokenRequest", "x"])
                | st.integers(),
                children,
                max_size=4,
            )
        ),
        max_leaves=20,
    )
)
def test_the_scan_finds_every_mapping_key(obj):
    """The rules that look for keys anywhere (a '<<' merge key, token senders, snippets, scrape
    credentials) read the keys the plain-text scan collects on its walk: every key, env variables'
    `name` and `value` included."""
    from kompile.policy.plaintext import scan

    node = {"kind": "ConfigMap", "x": obj}
    assert sorted(scan(node)[3], key=repr) == sorted(_every_key(node), key=repr)


_JSON_LEAVES = st.sampled_from([0, 1, True, False, 1.0, 0.0, -0.0, None, "1", "a", 2.5])


@settings(max_examples=1500, deadline=None)
@given(
    st.recursive(
        _JSON_LEAVES,
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(st.sampled_from(["a", "b"]), children, max_size=3)
            | st.dictionaries(st.sampled_from([1, True, 0, 2]), children, max_size=2)
        ),
        max_leaves=12,
    ),
    st.randoms(use_true_random=False),
)
def test_fields_are_the_same_exactly_when_their_json_is(value, rng):
    """The strategic diff's `same` compares equal values' marshal bytes, then walks them where those
    differ, instead of writing both out as JSON: it says what comparing their JSON says, whatever kinds
    that Python finds equal (1, 1.0, True; 0.0, -0.0) sit where, in values and in keys."""
    import copy
    import json

    from kompile.k8s.strategic.diff import same

    # Keyed by (kind, value): 1, 1.0 and True are one key to a dict.
    swaps = {
        (int, 1): [1, 1.0, True],
        (float, 1.0): [1, 1.0, True],
        (bool, True): [1, 1.0, True],
        (int, 0): [0, 0.0, -0.0, False],
        (float, 0.0): [0, 0.0, -0.0, False],
        (bool, False): [0, 0.0, -0.0, False],
    }

    def swap(value):
        kinds = swaps.get((type(value), value), [value]) if isinstance(value, int | float) else [value]
        return rng.choice(kinds) if rng.random() < 0.3 else value

    def swapped(node):
        if isinstance(node, dict):
            return {swap(key): swapped(value) for key, value in node.items()}
        if isinstance(node, list):
            return [swapped(item) for item in node]
        return swap(node)

    other = swapped(copy.deepcopy(value))

    def typed(v):
        return json.dumps(v, sort_keys=True, default=repr)

    assert same(value, other) == (value == other and typed(value) == typed(other))


def _secrets_read(node):
    """The reference: a generator over the same rules (a reference found stops the walk below it)."""
    refs = {"secretRef", "secretKeyRef", "nodePublishSecretRef", "nodeStageSecretRef"}
    refs |= {"controllerPublishSecretRef", "controllerExpandSecretRef", "nodeExpandSecretRef"}
    items = (
        node.items()
        if isinstance(node, dict)
        else (("", item) for item in node)
        if isinstance(node, list)
        else ()
    )
    for key, value in items:
        if key in refs and isinstance(value, dict) and isinstance(value.get("name"), str):
            yield value["name"]
        elif key == "imagePullSecrets" and isinstance(value, list):
            yield from (i["name"] for i in value if isinstance(i, dict) and isinstance(i.get("name"), str))
        elif (
            key == "secret"
            and isinstance(value, dict)
            and isinstance(value.get("secretName", value.get("name")), str)
        ):
            yield value.get("secretName", value.get("name"))
        else:
            yield from _secrets_read(value)


@settings(max_examples=800, deadline=None)
@given(
    st.recursive(
        st.none()
        | st.sampled_from(["s1", "s2", 3])
        | st.sampled_from(
            [
                {"secretRef": {"name": "s1"}},
                {"nodeStageSecretRef": {"name": "s2"}},
                {"secret": {"secretName": "s3"}},
                {"secret": {"name": "s4"}},
                {"imagePullSecrets": [{"name": "s5"}, {"name": 6}]},
            ]
        ),
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(
                st.sampled_from(
                    [
                        "secretRef",
                        "nodeStageSecretRef",
                        "imagePullSecrets",
                        "secret",
                        "name",
                        "secretName",
                        "x",
                    ]
                ),
                children,
                max_size=3,
            )
        ),
        max_leaves=15,
    )
)
def test_the_secrets_a_pod_reads_are_found_wherever_they_are(node):
    from kompile.render.deployed import _secret_names

    assert _secret_names(node) == set(_secrets_read(node))


_KEY_PARTS = st.sampled_from(
    [
        "nginx.ingress.kubernetes.io/",
        "A/",
        "configuration-snippet",
        "Server-SNIPPETS",
        "x",
        "\n",
        "/",
        "-",
        "É",
        "ſnİppet",  # (IGNORECASE matches "s" and "i" with these; lowercasing does not)
    ]
)


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.lists(_KEY_PARTS, max_size=4).map("".join) | st.integers(0, 2) | st.none(), max_size=6))
def test_snippet_keys_are_those_that_match_one_by_one(keys):
    """The one look over every key joined by line breaks never misses a key that matches alone (keys
    with line breaks, letters that match "s" or "i" without case, and keys that are not strings)."""
    from kompile.policy.controllers import _SNIPPET, snippet_keys

    assert snippet_keys(keys) == sorted(k for k in keys if isinstance(k, str) and _SNIPPET.fullmatch(k))
