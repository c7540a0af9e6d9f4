"""The located reader (:func:`akm.yamlsource.load_yaml`, built from libyaml's events) means what PyYAML
means, line for line, except where it differs on purpose: numbers written in octal or base 60, merge keys,
and aliases past :data:`akm.yamlsource.ALIAS_LIMIT`.

The reference here is PyYAML's own composer and constructor (a graph of nodes, then objects), told about
the deliberate differences, and it records the line of every key and item as the reader does.
"""

from __future__ import annotations

import random
import re

import pytest
import yaml
from test_fast_path import AGREEING, DECLINED, EDGES, plain_types, random_document, same

from akm.yamlsource import ALIAS_LIMIT, LocatedDict, LocatedList, load_yaml

OCTAL = re.compile(r"[-+]?0[0-7_]+")


class Reference(yaml.CSafeLoader):
    """PyYAML, with an octal or base-60 number kept as the text written, as the reader keeps it."""

    def construct_yaml_int(self, node):
        if OCTAL.fullmatch(node.value) or ":" in node.value:
            return node.value
        return super().construct_yaml_int(node)

    def construct_yaml_float(self, node):
        return node.value if ":" in node.value else super().construct_yaml_float(node)

    def construct_yaml_timestamp(self, node):
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError:
            return node.value


Reference.add_constructor("tag:yaml.org,2002:int", Reference.construct_yaml_int)
Reference.add_constructor("tag:yaml.org,2002:float", Reference.construct_yaml_float)
Reference.add_constructor("tag:yaml.org,2002:timestamp", Reference.construct_yaml_timestamp)


def lines_of(node) -> object:
    """The line of every key and item below *node*, in the order written."""
    if isinstance(node, yaml.MappingNode):
        return [(k.start_mark.line + 1, lines_of(v)) for k, v in node.value]
    if isinstance(node, yaml.SequenceNode):
        return [(item.start_mark.line + 1, lines_of(item)) for item in node.value]
    return None


def located_lines(data) -> object:
    if isinstance(data, LocatedDict):
        return [(data.lines[k], located_lines(v)) for k, v in data.items()]
    if isinstance(data, LocatedList):
        return [(line, located_lines(v)) for line, v in zip(data.lines, data, strict=True)]
    return None


def compare(text: str, tmp_path) -> None:
    """The reader and the reference agree on *text*: both fail, or both give the same data and lines."""
    path = tmp_path / "case.yml"
    path.write_text(text, encoding="utf-8")
    data, problems = load_yaml(path)
    try:
        loader = Reference(text)
        node = loader.get_single_node()
        expected = loader.construct_document(node) if node is not None else None
    except (yaml.YAMLError, TypeError):
        assert data is None or problems, f"{text!r}: PyYAML fails, the reader read {data!r}"
        return
    if any(p.code in {"yaml.duplicate-key", "yaml.bad-key"} for p in problems):
        return  # PyYAML keeps the last of two keys; the reader reports the second and keeps the first
    assert same(plain_types(data), expected), f"{text!r}: {data!r} != {expected!r}"
    if node is not None and isinstance(data, LocatedDict | LocatedList):
        assert located_lines(data) == lines_of(node), text


@pytest.mark.parametrize("text", [t for t in DECLINED + AGREEING + EDGES if "<<" not in t])
def test_the_reader_means_what_pyyaml_means(text, tmp_path):
    compare(text, tmp_path)


def test_generated_documents_mean_the_same(tmp_path):
    rng = random.Random(20261207)
    for _ in range(800):
        text = random_document(rng)
        if "<<" not in text:
            compare(text, tmp_path)


@pytest.mark.parametrize(
    ("text", "value", "code", "field"),
    [
        ("vlan: 010\n", "010", "yaml.octal-number", "vlan"),
        ("serial: 0123\n", "0123", "yaml.octal-number", "serial"),
        ("a: [1, -017]\n", "-017", "yaml.octal-number", "a[1]"),
        ("to: 18:00\n", "18:00", "yaml.base60-number", "to"),
        ("x:\n  - {from: 9:30}\n", "9:30", "yaml.base60-number", "x[0].from"),
        ("t: 1:30.5\n", "1:30.5", "yaml.base60-number", "t"),
    ],
)
def test_a_number_nobody_means_is_reported_and_kept_as_written(text, value, code, field, tmp_path):
    path = tmp_path / "case.yml"
    path.write_text(text)
    data, problems = load_yaml(path)
    assert [(p.code, p.line, p.field) for p in problems] == [(code, text.count("\n"), field)]
    assert value in str(plain_types(data)) and value in problems[0].message and f'"{value}"' in problems[0].hint


def test_a_merge_key_gives_way_to_the_keys_beside_it(tmp_path):
    path = tmp_path / "case.yml"
    path.write_text("base: &b {a: 1, b: 2}\nother: &o {b: 5, c: 6}\nx:\n  <<: [*b, *o]\n  a: 3\n")
    data, problems = load_yaml(path)
    assert not problems
    assert data["x"] == {"a": 3, "b": 2, "c": 6}
    assert data["x"].lines == {"a": 5, "b": 1, "c": 2}


def test_what_yaml_made_of_a_value_keeps_its_written_form(tmp_path):
    path = tmp_path / "case.yml"
    path.write_text("a: no\nb: 0x1F\nc: ~\nd: 12\ne: [On, true, 1.10]\n")
    data, problems = load_yaml(path)
    assert not problems
    assert data == {"a": False, "b": 31, "c": None, "d": 12, "e": [True, True, 1.1]}
    assert data.written == {"a": "no", "b": "0x1F", "c": "~"}
    assert data["e"].written == {0: "On", 2: "1.10"}


def bomb(levels: int, width: int = 9) -> str:
    lines = ["vars:", "  a0: &a0 [" + ", ".join(['"lol"'] * width) + "]"]
    for k in range(1, levels):
        lines.append(f"  a{k}: &a{k} [" + ", ".join([f"*a{k - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused_with_its_line(tmp_path):
    path = tmp_path / "case.yml"
    path.write_text(bomb(9))
    data, problems = load_yaml(path)
    assert data is None
    (problem,) = problems
    assert (problem.code, problem.line, problem.field) == ("yaml.alias-limit", 7, "vars.a5[0]")
    assert problem.hint


def test_aliases_below_the_limit_are_read(tmp_path):
    path = tmp_path / "case.yml"
    path.write_text(bomb(4))
    data, problems = load_yaml(path)
    assert not problems and len(data["vars"]["a3"][0][0]) == 9
    assert ALIAS_LIMIT > 9**4


@pytest.mark.parametrize(
    "text",
    ["a: &x [1, *x]\n", "a: *nowhere\n", "a: !!set {b: c}\n", "x: {<<: 1}\n", "a: 1\n---\nb: 2\n", "a: !!int x\n"],
)
def test_what_the_reader_cannot_build_is_a_syntax_error(text, tmp_path):
    path = tmp_path / "case.yml"
    path.write_text(text)
    data, problems = load_yaml(path)
    assert data is None
    assert [p.code for p in problems] == ["yaml.syntax"]
    assert problems[0].line is not None


def test_a_long_text_repeated_by_alias_counts_by_its_length(tmp_path):
    path = tmp_path / "case.yml"
    path.write_text(f"a: &a {'x' * 1_000_000}\nb: [" + ", ".join(["*a"] * 20) + "]\n")
    data, problems = load_yaml(path)
    assert data is None
    assert [(p.code, p.line, p.field) for p in problems] == [("yaml.alias-limit", 2, "b[9]")]
