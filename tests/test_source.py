"""The loader (kompile.source): positions, safe YAML, and the limits on what it reads."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from kompile.errors import Code, KompileError, Span
from kompile.inputs import MAX_FILE_BYTES, check_relative_path, decode_utf8, read_bytes
from kompile.source import (
    MAX_DEPTH,
    MAX_NODES,
    YList,
    YMap,
    parse_document,
    parse_manifests,
    parse_yaml,
    plain,
)

REL = "environments/dev.yaml"


def problems(call, *args) -> list[tuple[str, int, int]]:
    """(code, line, col) of every diagnostic call(*args) raises; fails if it raises nothing."""
    with pytest.raises(KompileError) as caught:
        call(*args)
    for d in caught.value.diagnostics:
        assert d.span is not None and d.span.path, d
        assert d.message
    return [(d.code.value, d.span.line, d.span.col) for d in caught.value.diagnostics]


def only(call, *args):
    """The one diagnostic call(*args) raises."""
    with pytest.raises(KompileError) as caught:
        call(*args)
    assert len(caught.value.diagnostics) == 1, caught.value.diagnostics
    return caught.value.diagnostics[0]


# ---------------------------------------------------------------------------------------------
# Positions


def test_positions_are_one_based_for_keys_and_values():
    doc = parse_document("apiVersion: v1\nspec:\n  replicas: 3\n  items: [a, b]\n", REL)
    assert doc.key_span("apiVersion") == Span(REL, 1, 1)
    assert doc.value_span("apiVersion") == Span(REL, 1, 13)
    assert doc.key_span("spec") == Span(REL, 2, 1)
    spec = doc["spec"]
    assert isinstance(spec, YMap)
    assert spec.span == Span(REL, 3, 3)
    assert spec.key_span("replicas") == Span(REL, 3, 3)
    assert spec.value_span("replicas") == Span(REL, 3, 13)
    items = spec["items"]
    assert isinstance(items, YList)
    assert items.span == Span(REL, 4, 10)
    assert [items.item_span(0), items.item_span(1)] == [Span(REL, 4, 11), Span(REL, 4, 14)]


def test_block_list_items_point_at_their_value():
    doc = parse_document("ports:\n  - 80\n  - name: http\n    port: 8080\n", REL)
    ports = doc["ports"]
    assert ports.item_span(0) == Span(REL, 2, 5)
    assert ports.item_span(1) == Span(REL, 3, 5)
    assert ports[1].key_span("port") == Span(REL, 4, 5)


def _full(span: Span) -> tuple:
    return (span.path, span.line, span.col, span.end_line, span.end_col)  # == ignores where it ends


def test_spans_made_on_demand_are_those_kept_once_asked_for_the_whole_map():
    text = "a: 1\nb: {c: [x, y]}\n"
    lazy, kept = parse_document(text, REL), parse_document(text, REL)
    assert kept.key_spans and kept["b"].value_spans and kept["b"]["c"].item_spans  # now held as Spans
    for key in ("a", "b", "missing"):
        assert _full(lazy.key_span(key)) == _full(kept.key_span(key))
        assert _full(lazy.value_span(key)) == _full(kept.value_span(key))
    assert _full(lazy.value_span("b")) == (REL, 2, 4, 2, 15)
    assert _full(lazy["b"].span) == _full(kept["b"].span)
    for index in (0, 1, -1, 5):
        assert _full(lazy["b"]["c"].item_span(index)) == _full(kept["b"]["c"].item_span(index))
    kept.key_spans["a"] = Span(REL, 9, 9)  # what merging does to a map's spans
    assert kept.key_span("a") == Span(REL, 9, 9)


def test_positions_beyond_what_a_byte_or_a_short_holds():
    doc = parse_document("a: " + "x" * 300 + "\n", REL)
    assert _full(doc.value_span("a")) == (REL, 1, 4, 1, 304)
    doc = parse_document("#\n" * 70_000 + "a: [b]\n", REL)
    assert _full(doc.key_span("a")) == (REL, 70_001, 1, 70_001, 2)
    assert _full(doc["a"].item_span(0)) == (REL, 70_001, 5, 70_001, 6)


def test_parsed_values_survive_pickling_and_copying():
    import copy
    import pickle

    doc = parse_document("a: {b: [1, 2]}\n", REL)
    for twin in (pickle.loads(pickle.dumps(doc)), copy.deepcopy(doc)):
        assert twin == doc
        assert twin["a"].value_span("b") == doc["a"].value_span("b") == Span(REL, 1, 8)
        assert twin["a"]["b"].item_span(1) == Span(REL, 1, 12)


def test_values_are_plain_python_values():
    doc = parse_document("a: 1\nb: 1.5\nc: true\nd: ~\ne: text\nf: '1'\ng: 2024-01-01\nh: [1, {x: y}]\n", REL)
    assert plain(doc) == {
        "a": 1,
        "b": 1.5,
        "c": True,
        "d": None,
        "e": "text",
        "f": "1",
        "g": "2024-01-01",
        "h": [1, {"x": "y"}],
    }
    assert type(plain(doc)) is dict


def test_a_byte_order_mark_is_accepted_and_does_not_shift_columns(tmp_path: Path):
    (tmp_path / "dev.yaml").write_bytes(b"\xef\xbb\xbfname: dev\n")
    text = decode_utf8(read_bytes(tmp_path, "dev.yaml"), "dev.yaml")
    doc = parse_document(text, "dev.yaml")
    assert doc == {"name": "dev"}
    assert doc.value_span("name") == Span("dev.yaml", 1, 7)


def test_crlf_line_endings_are_accepted_with_the_same_positions():
    unix = parse_document("a: 1\nb:\n  c: [x,\n    y]\n", REL)
    windows = parse_document("a: 1\r\nb:\r\n  c: [x,\r\n    y]\r\n", REL)
    assert plain(windows) == plain(unix) == {"a": 1, "b": {"c": ["x", "y"]}}
    assert windows["b"].value_span("c") == unix["b"].value_span("c") == Span(REL, 3, 6)
    assert windows["b"]["c"].item_span(1) == Span(REL, 4, 5)


# ---------------------------------------------------------------------------------------------
# Syntax


def test_syntax_errors_have_the_parser_position_and_a_hint_naming_what_is_open():
    d = only(parse_document, "a: {b: 1\nc: 2\n", REL)
    assert d.code is Code.YAML_SYNTAX
    assert (d.span.line, d.span.col) == (2, 2)
    assert "line 1, column 4" in d.hint


def test_an_unterminated_quote_at_the_end_points_inside_the_file():
    d = only(parse_document, 'a: "abc\n', REL)
    assert d.code is Code.YAML_SYNTAX
    assert d.span == Span(REL, 1, 8)


def test_tabs_get_a_hint():
    d = only(parse_document, "a:\n\tb: 1\n", REL)
    assert (d.code, d.span) == (Code.YAML_SYNTAX, Span(REL, 2, 1))
    assert "tab" in d.hint


def test_a_nul_byte_is_a_syntax_error_at_its_character():
    assert problems(parse_document, "a: b\nc: d\x00e\n", REL) == [("K103", 2, 5)]
    # libyaml counts bytes; the column counts characters, as every other position does.
    assert problems(parse_document, "a: b\nc: éé\x00\n", REL) == [("K103", 2, 6)]


# ---------------------------------------------------------------------------------------------
# Duplicate keys, tags, keys that are not strings


def test_duplicate_keys_are_errors_at_the_second_one_with_the_first_in_the_hint():
    d = only(parse_document, "spec:\n  replicas: 1\n  port: 80\n  replicas: 2\n", REL)
    assert d.code is Code.DUPLICATE_KEY
    assert d.span == Span(REL, 4, 3)
    assert "line 2" in d.hint


def test_every_duplicate_is_reported():
    text = "a: 1\na: 2\nb:\n  c: 1\n  c: 2\nd: {e: 1, e: 2}\n"
    assert problems(parse_document, text, REL) == [("K104", 2, 1), ("K104", 5, 3), ("K104", 6, 11)]


@pytest.mark.parametrize(
    "text, col",
    [
        ("a: !!python/object/apply:os.system [id]\n", 4),
        ("a: !!python/name:os.system\n", 4),
        ("a: !Ref other\n", 4),
        ("a: !!binary aGVsbG8=\n", 4),
        ("a: !!set {x, y}\n", 4),
        ("a: !!omap [{x: 1}]\n", 4),
        ("a: !custom {x: 1}\n", 4),
        ("!!python/name:os.system a: 1\n", 1),
    ],
)
def test_only_core_tags_are_allowed(text: str, col: int):
    d = only(parse_document, text, REL)
    assert (d.code, d.span) == (Code.TAG_NOT_ALLOWED, Span(REL, 1, col))


def test_the_tag_is_shown_as_written():
    d = only(parse_document, "a: !!python/object:os.system {}\n", REL)
    assert "'!!python/object:os.system'" in d.message


def test_explicit_core_tags_are_fine():
    assert parse_document("a: !!str 5\nb: !!int '12'\nc: !!map {x: 1}\nd: !!seq [1]\n", REL) == {
        "a": "5",
        "b": 12,
        "c": {"x": 1},
        "d": [1],
    }


def test_a_core_tag_that_does_not_fit_the_value_is_a_type_error():
    d = only(parse_document, "a: !!int twelve\n", REL)
    assert (d.code, d.span) == (Code.WRONG_TYPE, Span(REL, 1, 4))


def test_merge_keys_are_refused():
    d = only(parse_document, "base: &b {x: 1}\nother:\n  <<: *b\n  y: 2\n", REL)
    assert (d.code, d.span) == (Code.TAG_NOT_ALLOWED, Span(REL, 3, 3))


@pytest.mark.parametrize(
    "text, what",
    [
        ("on: 1\n", "a boolean"),
        ("8000: http\n", "an integer"),
        ("~: x\n", "null"),
        ("1.5: x\n", "a number"),
    ],
)
def test_keys_that_yaml_reads_as_other_types_are_errors(text: str, what: str):
    d = only(parse_document, text, REL)
    assert (d.code, d.span) == (Code.WRONG_TYPE, Span(REL, 1, 1))
    assert what in d.message and "quote" in d.hint


def test_complex_keys_are_errors():
    assert problems(parse_document, "? [a, b]\n: c\n", REL) == [("K202", 1, 3)]
    assert problems(parse_document, "{x: 1}: c\n", REL) == [("K202", 1, 1)]


def test_quoted_keys_are_strings():
    assert parse_document("'on': 1\n'8000': http\n", REL) == {"on": 1, "8000": "http"}


# ---------------------------------------------------------------------------------------------
# Aliases and nesting


def test_small_aliases_are_expanded():
    doc = parse_document("base: &b {cpu: 1}\nweb: *b\nworker: *b\n", REL)
    assert plain(doc) == {"base": {"cpu": 1}, "web": {"cpu": 1}, "worker": {"cpu": 1}}
    assert doc["web"] is not doc["worker"]  # copies, so a later merge cannot change both


def billion_laughs(levels: int) -> str:
    lines = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for index in range(1, levels):
        prev, name = chr(ord("a") + index - 1), chr(ord("a") + index)
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 10) + "]")
    return "\n".join(lines) + "\n"


def test_a_billion_laughs_is_rejected_quickly_at_the_alias_that_multiplies():
    text = billion_laughs(10)  # 10**10 values once expanded
    started = time.perf_counter()
    d = only(parse_document, text, REL)
    elapsed = time.perf_counter() - started
    assert d.code is Code.TOO_COMPLEX
    # 10**5 values would pass MAX_NODES; the anchor 'e' is the first whose expansion does.
    assert d.span == Span(REL, 5, 4)
    assert elapsed < 2, f"took {elapsed:.2f}s"  # generous: it takes milliseconds; unbounded, it never ends


def test_expansion_below_the_limit_is_fine():
    doc = parse_document(billion_laughs(4), REL)  # 10**4 values
    assert len(plain(doc)["d"]) == 10


def test_a_document_with_too_many_values_is_rejected_without_aliases():
    text = "a: [" + ", ".join(["1"] * (MAX_NODES + 10)) + "]\n"
    d = only(parse_document, text, REL)
    assert d.code is Code.TOO_COMPLEX
    assert d.span.line == 1 and d.span.col > 1


def test_a_recursive_alias_is_rejected():
    d = only(parse_document, "a: &x [1, *x]\n", REL)
    assert (d.code, d.span) == (Code.TOO_COMPLEX, Span(REL, 1, 4))


def nested(depth: int) -> str:
    text = "leaf"
    for _ in range(depth):
        text = f"[{text}]"
    return f"a: {text}\n"


def test_nesting_up_to_the_limit_is_fine():
    value = plain(parse_document(nested(MAX_DEPTH - 1), REL))["a"]
    for _ in range(MAX_DEPTH - 1):
        value = value[0]
    assert value == "leaf"


def test_deeper_nesting_is_rejected_where_it_gets_too_deep():
    d = only(parse_document, nested(MAX_DEPTH + 10), REL)
    assert d.code is Code.TOO_COMPLEX
    assert d.span == Span(REL, 1, 4 + MAX_DEPTH)


@pytest.mark.parametrize("depth", [2_000, 100_000])
def test_very_deep_nesting_is_a_kompile_error_not_a_crash(depth: int):
    with pytest.raises(KompileError) as caught:
        parse_document(nested(depth), REL)
    assert caught.value.diagnostics[0].code in (Code.YAML_SYNTAX, Code.TOO_COMPLEX)
    levels = min(depth // 20, 1500)
    block = "".join(f"{'  ' * i}k{i}:\n" for i in range(levels)) + "  " * levels + "v: 1\n"
    with pytest.raises(KompileError):
        parse_document(block, REL)


# ---------------------------------------------------------------------------------------------
# Documents


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "---\n", "~\n", "null\n", "--- \n...\n"])
def test_an_empty_file_is_refused(text: str):
    d = only(parse_document, text, REL)
    assert (d.code, d.span) == (Code.DOCUMENT_COUNT, Span(REL, 1, 1))


def test_several_documents_are_refused_at_the_second():
    d = only(parse_document, "a: 1\n---\nb: 2\n", REL)
    assert (d.code, d.span) == (Code.DOCUMENT_COUNT, Span(REL, 3, 1))
    # an empty second document still counts, and its position stays inside the file
    d = only(parse_document, "a: 1\n---\n", REL)
    assert d.code is Code.DOCUMENT_COUNT and d.span.line == 2


def test_errors_in_a_second_document_do_not_hide_the_count():
    assert problems(parse_document, "a: 1\n---\nb: !!python/name:x 1\nb: 2\n", REL) == [("K107", 3, 1)]


def test_a_leading_document_marker_is_fine():
    assert parse_document("---\na: 1\n", REL) == {"a": 1}


@pytest.mark.parametrize(
    "text, position", [("- a\n- b\n", (1, 1)), ("# note\njust text\n", (2, 1)), ("\n  42\n", (2, 3))]
)
def test_the_top_level_must_be_a_mapping(text: str, position: tuple[int, int]):
    d = only(parse_document, text, REL)
    assert (d.code, (d.span.line, d.span.col)) == (Code.WRONG_TYPE, position)


def test_parse_yaml_returns_every_document():
    assert [plain(d) for d in parse_yaml("a: 1\n---\n- 2\n---\n3\n", REL)] == [{"a": 1}, [2], 3]


def test_manifests_skip_empty_documents_and_refuse_non_objects():
    objects = parse_manifests("---\nkind: A\n---\n---\nkind: B\n", "k8s/x.yaml")
    assert [o["kind"] for o in objects] == ["A", "B"]
    d = only(parse_manifests, "kind: A\n---\n- kind: B\n", "k8s/x.yaml")
    assert (d.code, d.span) == (Code.WRONG_TYPE, Span("k8s/x.yaml", 3, 1))


# ---------------------------------------------------------------------------------------------
# Encodings


def test_invalid_utf8_names_the_line_and_column_of_the_bad_byte():
    d = only(decode_utf8, b"a: 1\nname: caf\xe9\n", REL)
    assert d.code is Code.NOT_UTF8
    assert d.span == Span(REL, 2, 10)
    assert "0xe9" in d.message and "UTF-8" in d.hint


def test_the_column_of_a_bad_byte_counts_characters():
    d = only(decode_utf8, "a: 1\nnäme: ".encode() + b"\xff\n", REL)
    assert d.span == Span(REL, 2, 7)


def test_a_truncated_multibyte_character_at_the_end_is_found():
    d = only(decode_utf8, "a: é".encode()[:-1], REL)
    assert (d.code, d.span) == (Code.NOT_UTF8, Span(REL, 1, 4))


@pytest.mark.parametrize("bom", [b"\xff\xfe", b"\xfe\xff"])
def test_utf16_is_refused_clearly(bom: bytes):
    codec = "utf-16-le" if bom == b"\xff\xfe" else "utf-16-be"
    d = only(decode_utf8, bom + "a: 1\n".encode(codec), REL)
    assert (d.code, d.span) == (Code.NOT_UTF8, Span(REL, 1, 1))
    assert "UTF-16" in d.message


def test_utf16_without_a_bom_never_loads():
    data = "a: 1\n".encode("utf-16-le")
    with pytest.raises(KompileError):
        parse_document(decode_utf8(data, REL), REL)


# ---------------------------------------------------------------------------------------------
# Files and paths


def test_a_file_of_exactly_1_mib_is_read(tmp_path: Path):
    (tmp_path / "big.yaml").write_bytes(b"#" * (MAX_FILE_BYTES - 1) + b"\n")
    assert len(read_bytes(tmp_path, "big.yaml")) == MAX_FILE_BYTES


def test_a_file_over_1_mib_is_refused_before_it_is_read(tmp_path: Path):
    (tmp_path / "big.yaml").write_bytes(b"#" * MAX_FILE_BYTES + b"\n")
    d = only(read_bytes, tmp_path, "big.yaml")
    assert (d.code, d.span) == (Code.UNREADABLE, Span("big.yaml"))
    assert "1 MiB" in d.message


def test_a_referenced_file_over_1_mib_is_reported_where_it_is_referenced(tmp_path: Path):
    (tmp_path / "big.yaml").write_bytes(b"#" * (MAX_FILE_BYTES + 1))
    where = Span("environments/dev.yaml", 7, 13)
    assert only(read_bytes, tmp_path, "big.yaml", where).span == where


@pytest.mark.parametrize(
    "path, words",
    [
        ("", "empty"),
        ("/etc/passwd", "absolute"),
        ("C:/secrets/x.yaml", "absolute"),
        ("secrets/../../x.yaml", ".."),
        ("..", ".."),
        ("secrets\\prod\\x.yaml", "'/'"),
        ("a\x00b", "NUL"),
    ],
)
def test_paths_that_leave_the_repo_are_refused_without_touching_the_disk(path: str, words: str):
    problem = check_relative_path(path)
    assert problem is not None and words in problem


@pytest.mark.parametrize("path", ["secrets/prod/x.yaml", "x.yaml", "a/b..c/d.yaml", ".hidden/x.yaml"])
def test_ordinary_relative_paths_pass(path: str):
    assert check_relative_path(path) is None


def test_a_dotdot_path_is_refused_even_when_it_comes_back_inside(tmp_path: Path):
    (tmp_path / "secrets").mkdir()
    (tmp_path / "x.yaml").write_text("a: 1\n")
    d = only(read_bytes, tmp_path, "secrets/../x.yaml", Span(REL, 3, 9))
    assert (d.code, d.span) == (Code.PATH_OUTSIDE_ROOT, Span(REL, 3, 9))


def test_a_symlink_out_of_the_repo_is_refused(tmp_path: Path):
    outside = tmp_path / "outside.yaml"
    outside.write_text("kind: Secret\n")
    root = tmp_path / "repo"
    (root / "secrets").mkdir(parents=True)
    (root / "secrets" / "link.yaml").symlink_to(outside)
    d = only(read_bytes, root, "secrets/link.yaml")
    assert (d.code, d.span) == (Code.PATH_OUTSIDE_ROOT, Span("secrets/link.yaml"))


def test_a_dangling_symlink_out_of_the_repo_is_refused_as_outside(tmp_path: Path):
    root = tmp_path / "repo"
    root.mkdir()
    (root / "link.yaml").symlink_to(tmp_path / "nowhere" / "x.yaml")
    assert only(read_bytes, root, "link.yaml").code is Code.PATH_OUTSIDE_ROOT


def test_a_folder_symlinked_out_of_the_repo_is_refused(tmp_path: Path):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "x.yaml").write_text("a: 1\n")
    root = tmp_path / "repo"
    root.mkdir()
    (root / "secrets").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    assert only(read_bytes, root, "secrets/x.yaml").code is Code.PATH_OUTSIDE_ROOT


def test_a_symlink_inside_the_repo_is_refused_too(tmp_path: Path):
    """kompile never reads through a link: one inside the repo today may point outside tomorrow."""
    (tmp_path / "real.yaml").write_text("a: 1\n")
    (tmp_path / "link.yaml").symlink_to("real.yaml")
    (tmp_path / "folder").mkdir()
    (tmp_path / "linked-folder").symlink_to("folder", target_is_directory=True)
    (tmp_path / "folder" / "x.yaml").write_text("a: 1\n")
    assert read_bytes(tmp_path, "real.yaml") == b"a: 1\n"
    assert only(read_bytes, tmp_path, "link.yaml").code is Code.PATH_OUTSIDE_ROOT
    assert only(read_bytes, tmp_path, "linked-folder/x.yaml").code is Code.PATH_OUTSIDE_ROOT


def test_a_symlink_loop_is_an_error_not_a_crash(tmp_path: Path):
    (tmp_path / "a.yaml").symlink_to("b.yaml")
    (tmp_path / "b.yaml").symlink_to("a.yaml")
    assert only(read_bytes, tmp_path, "a.yaml").code in (Code.UNREADABLE, Code.PATH_OUTSIDE_ROOT)


def test_missing_files_and_folders_are_unreadable(tmp_path: Path):
    (tmp_path / "secrets").mkdir()
    where = Span(REL, 20, 13)
    missing = only(read_bytes, tmp_path, "secrets/none.yaml", where)
    assert (missing.code, missing.span) == (Code.UNREADABLE, where)
    folder = only(read_bytes, tmp_path, "secrets", where)
    assert (folder.code, folder.span) == (Code.UNREADABLE, where)
    assert "folder" in folder.message
