from pathlib import Path

import pytest

from valuegym.scenarios.loader import (
    MAX_ALIASES,
    MAX_FILE_BYTES,
    MAX_NESTING_DEPTH,
    YamlLoadError,
    load_yaml_file,
    load_yaml_text,
)

BILLION_LAUGHS = "\n".join(
    ["a: &a [x, x, x, x, x, x, x, x, x]"]
    + [
        f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]"
        for prev, name in zip("abcdefgh", "bcdefghi", strict=True)
    ]
)


def test_plain_data_loads_with_merge_keys():
    data = load_yaml_text("base: &base {a: 1, b: [1, 2.5]}\nderived: {<<: *base, c: true}")
    assert data == {"base": {"a": 1, "b": [1, 2.5]}, "derived": {"a": 1, "b": [1, 2.5], "c": True}}


def test_duplicate_key_names_both_lines():
    with pytest.raises(
        YamlLoadError, match=r"line 3, column 3: duplicate key 'seed' \(first given on line 2\)"
    ):
        load_yaml_text("env:\n  seed: 1\n  seed: 2\n", source="s.yaml")


@pytest.mark.parametrize(
    "text",
    [
        "x: !!python/object/apply:os.system ['echo hi']",
        "x: !!python/object:collections.OrderedDict {}",
        "x: !!python/name:os.system",
        "x: !custom 1",
    ],
)
def test_tags_that_would_build_objects_are_refused(text):
    with pytest.raises(YamlLoadError, match="is not allowed: scenarios hold plain data"):
        load_yaml_text(text)


def test_alias_bomb_is_refused_before_expansion():
    with pytest.raises(YamlLoadError, match="alias bomb"):
        load_yaml_text(BILLION_LAUGHS)


def test_too_many_aliases_is_refused():
    text = "a: &a 1\nb: [" + ", ".join(["*a"] * (MAX_ALIASES + 1)) + "]"
    with pytest.raises(YamlLoadError, match=f"more than {MAX_ALIASES} aliases"):
        load_yaml_text(text)


@pytest.mark.parametrize("depth", [MAX_NESTING_DEPTH + 1, 5000])
def test_deep_flow_nesting_is_refused(depth):
    with pytest.raises(YamlLoadError, match="nesting"):
        load_yaml_text("x: " + "[" * depth + "]" * depth)


def test_deep_block_nesting_is_refused():
    text = "".join(" " * level + f"k{level}:\n" for level in range(1000)) + " " * 1000 + "v\n"
    with pytest.raises(YamlLoadError, match=f"nesting deeper than {MAX_NESTING_DEPTH}"):
        load_yaml_text(text)


def test_nesting_at_the_limit_loads():
    depth = MAX_NESTING_DEPTH - 1
    assert load_yaml_text("[" * depth + "]" * depth) is not None


def test_malformed_yaml_names_line_and_column():
    with pytest.raises(YamlLoadError, match=r"s.yaml: line 2, column \d+: "):
        load_yaml_text("a: [1, 2\nb: 3\n", source="s.yaml")


def test_multiple_documents_are_refused():
    with pytest.raises(YamlLoadError, match="another document"):
        load_yaml_text("a: 1\n---\nb: 2\n")


def test_oversized_file_is_refused_before_reading(tmp_path: Path):
    path = tmp_path / "big.yaml"
    path.write_bytes(b"#" * (MAX_FILE_BYTES + 1))
    with pytest.raises(YamlLoadError, match="larger than the limit"):
        load_yaml_file(path)


def test_missing_and_binary_files(tmp_path: Path):
    with pytest.raises(YamlLoadError, match="cannot read"):
        load_yaml_file(tmp_path / "nope.yaml")
    binary = tmp_path / "b.yaml"
    binary.write_bytes(b"\xff\xfe\x00a")
    with pytest.raises(YamlLoadError, match="not UTF-8"):
        load_yaml_file(binary)
