"""The fast way of reading YAML never changes what a file means.

:func:`akm.yamlsource.load_plain` (libyaml's events made into plain values by ``akm._yamlplain``) may only
return data when it equals what the located reading (:func:`akm.yamlsource.load_yaml`) returns for the
same file and that reading finds no problem. These tests feed both readers the corners of YAML 1.1's
plain values and grammar, and a few thousand generated texts, and compare the results value by value and
type by type.
"""

from __future__ import annotations

import random
import shutil
from datetime import date
from pathlib import Path

import pytest

from akm import yamlsource
from akm.inventory import InventoryError, load_inventory, synthetic
from akm.inventory import load as inventory_load
from akm.yamlsource import load_plain, load_yaml

HERE = Path(__file__).parent
REPO = HERE.parents[1]
TODAY = date(2026, 11, 25)


def same(a, b) -> bool:
    """Equal values of the same types all the way down (``True == 1`` and ``1 == 1.0`` do not count; a
    NaN is the same as a NaN)."""
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def plain_types(value):
    """*value* with located containers turned into plain ones, for comparing with :func:`load_plain`."""
    if isinstance(value, dict):
        return {k: plain_types(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain_types(v) for v in value]
    return value


def check_agreement(path: Path) -> bool:
    """Assert that the fast reading of *path* is either declined or equal to the located one, with the
    same problems; return whether it was taken."""
    surprises: list = []
    fast = load_plain(path, problems=surprises)
    located, problems = load_yaml(path)
    if fast is None:
        return False
    assert surprises == problems, f"{path.read_text()!r}: the fast way found {surprises}, the located {problems}"
    assert same(fast, plain_types(located)), f"{path.read_text()!r}: {fast!r} != {located!r}"
    return True


# What only the located reading decides: the fast way declines it at once.
DECLINED = [
    "- 012\n",
    "a: =\n",
    "a: <<\n",
    "no: 1\n",
    "1: a\n",
    "a: b\n---\nc: d\n",
    "a: 1\n---\n",
    "a: !!str 12\n",
    "a: ! 12\n",
    "a: !!map {b: 1}\n",
    "a: &x 1\nb: *x\n",
    "a: &x [1]\n",
    "a: {b: 1}\nc:\n  <<: {b: 2}\n",
    "? [a, b]\n: c\n",
    "# a header\n---\na: b\n---\nc: d\n",
    "---\na: b\n--- \nc: d\n",
    "a: b\na: c\n",
    "a: {b: 1, b: 2}\n",
    "a: [1, 2\n",
    "a: b\u0085c\n",
    "- a\n- b\n",
    "just text\n",
    "",
]
# Whole numbers YAML 1.1 reads in octal or base 60: kept as the text written and reported, as the located
# reading does, when the caller takes the problems.
SURPRISING = [
    "a: 012\n",
    "a: [1, 012]\n",
    "a: 1:30\n",
    "a: 190:20:30\n",
    "mac: 52:54:00:12:34:56\n",
    "0123: x\n",
    "assets:\n  - {a: 1}\n  - b: x\n    vlan: 010\n    c: [1, {d: -07, e: 18:00}]\n",
    "a:\n  b:\n    - 1\n    - 1_0:30\n",
]
# YAML 1.1 and its grammar, which the fast way reads itself.
AGREEING = [
    "a: b\n",
    "---\nassets:\n  - {hostname: pc-1, ip: 198.18.1.2, mac: '02:00:00:00:00:01'}\n",
    "a: 12\nb: -3\nc: +4\nd: 0\ne: 1_000\nf: -0\ng: 123456789012345678901234\n",
    "a: true\nb: False\nc: null\nd: ~\ne:\nf: yes\ng: On\nh: off\ni: NO\n",
    "purchased: 2024-01-10\nwarranty_until: 2027-01-10\n",
    "a: [x, y, {z: w}]\nb: {}\nc: []\n",
    "model: Lenovo ThinkCentre neo 50s\nname: Oʻqish zali — kitob\n",
    "a: 'x'\nb: \"y: z\"\nc: 'it''s'\n",
    "a: plain words\n  folded on two lines\n",
    "a: # a comment\n  - x # another\n",
    "mac: 00:11:22:33:44:55\n",
    "# a header\n\n---\na: b\n",
    "---\n# data\na: b  # ---\nc: '---'\n",
    "a: 08\nb: 0o12\nc: 0X1F\nd: 0b11\ne: _1\nf: 1e3\ng: 1.5\nh: -.inf\n",
    "a: 2024-13-01\nb: 2024-02-30\nc: 2024-01-10 10:00\nd: 2024-01-10 10:00:00\ne: 0000-01-01\n",
    "a: '2024-01-10'\nb: \"2024-01-10T10:00:00\"\nc: {b: 0o7}\n",
    "a: |\n  text\nb: >-\n  folded\n",
    '{"a":1}\n',
    "a: 'it''s'\r\nb: c\r\n",
    'a: "tab\\tinside"\n',
    "\ufeffa: b\n",
    "%YAML 1.1\n---\na: b\n",
    "a: b\n...\n",
    "a: 'yes'\nb: \"on\"\nc: '012'\n",
    "a: 198.18.1.0/24\nb: 10.0\nc: 1.2.3\nd: 12 kitob\nf: +\ng: .\n",
]


# Corners of the grammar: the fast way may read or decline each, but must never read it differently.
EDGES = [
    "a: one\n  two\n\n  three\nb: c\n",
    "a: 'one\n  two\n\n  three'\n",
    'a: "one\n  two"\n',
    "a: b   \nc: d # note\n",
    "a: [x,\n  y, {z: w,\n  v: u}]\n",
    "a:\n- b\n- c\n",
    "- - a\n  - b\n- c\n",
    "a:\nb: ~\nc: []\n",
    "a: {b, c}\n",
    "a: [b, c, ]\n",
    "a: b: c\n",
    "a:\n  b: 1\n c: 2\n",
    "k" * 1100 + ": v\n",
    "a: x\n#c\n  - y\n",
    "a: 'x'y\n",
    "a: -x\nb: - y\n",
    "a: 1\n---\n",
    "'a': 1\n\"b\": 2\n",
    "a: 'O\u02bbzbek, \u00e7, \U0001f600'\n",
]


@pytest.mark.parametrize("text", EDGES)
def test_corners_of_the_grammar_read_the_same_or_are_declined(text, tmp_path):
    path = tmp_path / "case.yml"
    path.write_text(text, encoding="utf-8")
    check_agreement(path)


@pytest.mark.parametrize("text", DECLINED)
def test_the_fast_way_declines_what_it_cannot_vouch_for(text, tmp_path):
    path = tmp_path / "case.yml"
    path.write_bytes(text.encode("utf-8"))
    assert load_plain(path) is None
    check_agreement(path)


@pytest.mark.parametrize("text", SURPRISING)
def test_a_number_in_octal_or_base_60_is_kept_as_written_and_reported(text, tmp_path, monkeypatch):
    monkeypatch.setattr(yamlsource, "_RUN", 1)
    path = tmp_path / "case.yml"
    path.write_text(text, encoding="utf-8")
    assert load_plain(path) is None
    assert check_agreement(path), "the fast way should have read this file"
    assert {p.code for p in load_yaml(path)[1]} <= {"yaml.octal-number", "yaml.base60-number"}


@pytest.mark.parametrize("raw", [b"a: b\xff\n", b"a: \xed\xa0\x80\n", "a: b\n".encode("utf-16")])
def test_a_file_that_is_not_utf8_is_declined(raw, tmp_path):
    path = tmp_path / "case.yml"
    path.write_bytes(raw)
    assert load_plain(path) is None
    assert [p.code for p in load_yaml(path)[1]] == ["yaml.encoding"]


@pytest.mark.parametrize("text", AGREEING)
def test_the_fast_way_reads_what_both_agree_on(text, tmp_path):
    path = tmp_path / "case.yml"
    path.write_text(text, encoding="utf-8")
    assert check_agreement(path), "the fast way should have vouched for this file"


SCALARS = [
    "a", "yes", "No", "on", "OFF", "y", "n", "true", "False", "null", "~", "Null", "", "0", "7", "-7", "+7",
    "007", "0o7", "0x1f", "0X1F", "0b11", "_7", "7_0", "1_", "1.5", "1e3", "1.0e+3", ".5", "-.inf", ".NaN",
    "1:30", "59:59", "2024-01-10", "2024-1-10", "2024-13-01", "2024-01-10 10:00:00", "2024-01-10T10:00",
    "198.18.1.2", "02:00:00:00:00:01", "52:54:00:12:34:56", "pc-01", "AKM-0001", "<<", "=", "-", "a b",
    "a: b", "#x", "x #y", "Oʻzbek", "'q'", '"q"', "'yes'", '"012"', "'2024-01-10'", "[a, 012]", "{k: on}",
]  # fmt: skip


BENIGN = ["a", "pc-01", "198.18.1.2", "'q'", "12", "true", "~", "2024-01-10", "Oʻzbek", "a b", "x #y", "[a, b]"]


def scalar(rng: random.Random) -> str:
    """Mostly ordinary values, so that many files are vouched for; often a tricky one."""
    return rng.choice(BENIGN if rng.random() < 0.8 else SCALARS)


def random_document(rng: random.Random, depth: int = 0) -> str:
    """A small YAML text of block mappings and sequences and flow collections of tricky scalars."""
    lines = []
    indent = "  " * depth
    for k in range(rng.randint(1, 4)):
        key = rng.choice(["a", "b", "kind", "k" + str(k), "c", "yes", "012", "'n'", "1"])
        roll = rng.random()
        if roll < 0.2 and depth < 2:
            lines.append(f"{indent}{key}:\n{random_document(rng, depth + 1)}")
        elif roll < 0.35 and depth < 2:
            items = "".join(f"{indent}  - {scalar(rng)}\n" for _ in range(rng.randint(1, 3)))
            lines.append(f"{indent}{key}:\n{items}")
        else:
            lines.append(f"{indent}{key}: {scalar(rng)}\n")
    return "".join(lines)


@pytest.mark.parametrize("text", SCALARS)
def test_each_plain_value_reads_as_yaml_1_1_reads_it(text, tmp_path):
    path = tmp_path / "case.yml"
    path.write_text(f"a: {text}\nb: [{text}]\n", encoding="utf-8")
    check_agreement(path)


def test_generated_documents_read_the_same_both_ways(tmp_path):
    rng = random.Random(20261125)
    path = tmp_path / "case.yml"
    taken = 0
    for _ in range(1500):
        path.write_text(random_document(rng), encoding="utf-8")
        taken += check_agreement(path)
    assert taken > 200, "too few generated files were vouched for to show anything"


def test_a_value_yaml_1_1_reads_as_a_boolean_is_still_reported(tmp_path, monkeypatch):
    """YAML 1.1 reads ``model: yes`` as true, which is not a model name (YAML 1.2 would read the text)."""
    monkeypatch.chdir(tmp_path)
    for source in (HERE / "base").iterdir():
        shutil.copy(source, tmp_path / source.name)
    assets = tmp_path / "assets.yml"
    text = assets.read_text()
    model_line = next(k for k, line in enumerate(text.splitlines(), 1) if line.strip().startswith("model:"))
    lines = text.splitlines(keepends=True)
    lines[model_line - 1] = lines[model_line - 1].split("model:")[0] + "model: yes\n"
    assets.write_text("".join(lines))
    with pytest.raises(InventoryError) as caught:
        load_inventory(tmp_path, today=TODAY)
    found = [(p.code, p.file, p.line, p.field) for p in caught.value.problems]
    assert found == [("schema.string_type", "assets.yml", model_line, "model")]


def test_a_value_yaml_1_2_reads_as_a_number_stays_text(tmp_path):
    """YAML 1.2 would read ``serial: 0o12`` as the number 10; YAML 1.1, and so the inventory, as the text."""
    for source in (HERE / "base").iterdir():
        shutil.copy(source, tmp_path / source.name)
    assets = tmp_path / "assets.yml"
    text = assets.read_text()
    serial = next(line.split("serial:")[1].strip() for line in text.splitlines() if "serial:" in line)
    assets.write_text(text.replace(f"serial: {serial}", "serial: 0o12", 1))
    inventory = load_inventory(tmp_path, today=TODAY)
    assert "0o12" in {asset.serial for asset in inventory.assets}


@pytest.mark.parametrize("inventory", ["production", "lab", "synthetic"])
def test_both_ways_build_the_same_inventory(inventory, tmp_path, monkeypatch):
    path = synthetic.write(tmp_path, assets=300) if inventory == "synthetic" else REPO / "inventory" / inventory
    files = inventory_load.inventory_files(path)
    fast = inventory_load._load(files, path, TODAY)
    located = inventory_load._load(files, path, TODAY, fast=False)
    for name in ("centre", "departments", "rooms", "segments", "people", "data_classes", "assets", "lab"):
        assert getattr(fast, name) == getattr(located, name), name
    assert [a.address for a in fast.assets] == [a.address for a in located.assets]
    last = fast.assets[-1]
    assert fast.source_of(last).line == located.source_of(last).line
    assert fast.source_of(last).file == located.source_of(last).file


@pytest.mark.parametrize("inventory", ["production", "lab", "synthetic"])
def test_a_check_of_a_valid_inventory_reads_no_list_located(inventory, tmp_path, monkeypatch):
    """The shipped and synthetic inventories are read the fast way: only their single sections (centre,
    lab) are read located."""

    def refuse(*args):
        raise AssertionError("a file was read located")

    path = synthetic.write(tmp_path, assets=500) if inventory == "synthetic" else REPO / "inventory" / inventory
    monkeypatch.setattr(yamlsource, "load_yaml", refuse)
    monkeypatch.setattr(yamlsource.Locator, "item", refuse)
    assert load_inventory(path, today=TODAY).assets


PIECES = {
    "items at two spaces": "centre: {a: 1}\nassets:\n" + "  - {b: 1}\n" * 400 + "people:\n" + "  - {c: 2}\n" * 400,
    "items at the margin, lists nested at two": "assets:\n" + "- i:\n  - {x: 1}\n  - {x: 2}\n- b: 1\n" * 200,
    "a comment before the first item": "assets:\n# the list\n\n" + "  - inventory_no: x\n    kind: y\n" * 300,
    "a mapping section": "lab:\n  sites:\n" + "  - {d: x.uz}\n" * 400 + "  other: 1\n",
    "a multi-line text": "assets:\n" + "  - model: 'a\n  - b'\n" * 300,
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(PIECES))
def test_a_large_file_read_in_runs_means_what_it_means_whole(name, tmp_path, monkeypatch):
    """The items of a top-level list given to *take* a few at a time, a file still reads exactly as
    whole."""
    path = tmp_path / "case.yml"
    path.write_text(PIECES[name])
    whole = load_plain(path)
    monkeypatch.setattr(yamlsource, "_RUN", 7)
    assert whole is not None and same(load_plain(path, lambda _section, _start, items: items), whole)
    assert check_agreement(path)


def test_a_section_written_twice_is_not_hidden_by_the_runs(tmp_path, monkeypatch):
    monkeypatch.setattr(yamlsource, "_RUN", 7)
    path = tmp_path / "case.yml"
    path.write_text("assets:\n" + "  - {b: 1}\n" * 200 + "people:\n  - a\nassets:\n" + "  - {b: 2}\n" * 200)
    assert load_plain(path) is None
    _data, problems = load_yaml(path)
    assert [p.code for p in problems] == ["yaml.duplicate-key"]


def lines_of(value) -> list:
    """Every line a located value knows, in order, with the value: what a problem's location comes from."""
    if isinstance(value, yamlsource.LocatedDict):
        return [value.line, value.written, *[(k, value.lines[k], lines_of(v)) for k, v in value.items()]]
    if isinstance(value, yamlsource.LocatedList):
        return [value.line, value.written, *[(value.lines[k], lines_of(v)) for k, v in enumerate(value)]]
    return [value]


LOCATED = {
    **PIECES,
    "blank and comment lines between items": "# top\n---\ncentre: {a: 1}\n\nassets:   # all\n"
    + "  - inventory_no: x  # one\n\n    # between\n    interfaces:\n      - {ip: 1.2.3.4}\n" * 50
    + "# end\npeople:\n- {c: 2}\n",
    "an item opened on its own line": "assets:\n" + "  -\n    a: 1\n    b: [x, y]\n" * 40,
    "a flow section": "assets: [{a: 1}, {b: 2},\n  {c: 3}]\n",
    "a text at the margin": "people:\n" + "  - {d: 'x\nassets: y'}\n" * 20,
}


@pytest.mark.parametrize("name", sorted(LOCATED))
def test_a_located_piece_is_what_the_whole_file_says(name, tmp_path):
    """The locator reads one item or section of a vouched file located: its value, line and the lines
    of everything in it must be those the located reading of the whole file gives, whether the cut was
    trusted or the whole file read instead."""
    path = tmp_path / "case.yml"
    path.write_text(LOCATED[name])
    plain = load_plain(path)
    whole, problems = load_yaml(path)
    if plain is None:
        return
    assert not problems
    locator = yamlsource.Locator(path, {k: len(v) if type(v) is list else None for k, v in plain.items()})
    for key, value in plain.items():
        if type(value) is list:
            for index, item in enumerate(value):
                found, line = locator.item(key, index, item)
                assert line == whole[key].lines[index]
                assert lines_of(found) == lines_of(whole[key][index])
        else:
            assert lines_of(locator.section(key, value)) == lines_of(whole[key])


def test_the_items_of_a_large_file_are_taken_piece_by_piece(tmp_path, monkeypatch):
    """With *take*, the items of a large file are handed over a run at a time, in order, each run as
    soon as it is read; what it makes of them stands in the data."""
    path = synthetic.write(tmp_path, assets=400) / "assets.yml"
    whole = load_plain(path)
    monkeypatch.setattr(yamlsource, "_RUN", 30)
    runs = []

    def take(section, start, items):
        runs.append((section, start, len(items)))
        return [(start + k, item) for k, item in enumerate(items)]

    taken = load_plain(path, take)
    assert len(runs) > 10
    assert [start for _section, start, _count in runs] == [
        sum(count for *_rest, count in runs[:k]) for k in range(len(runs))
    ]
    assert taken["assets"] == list(enumerate(whole["assets"]))


def test_what_was_taken_from_a_declined_file_is_thrown_away(tmp_path, monkeypatch):
    monkeypatch.setattr(yamlsource, "_RUN", 7)
    path = tmp_path / "case.yml"
    path.write_text("assets:\n" + "  - {b: 1}\n" * 200 + "people:\n  - a\n" + "  - {c: 010}\n")
    runs = []
    assert load_plain(path, lambda section, start, items: runs.append(start) or items) is None
    assert runs


def test_mistakes_in_a_large_file_read_in_runs_are_reported_as_the_located_reading_does(tmp_path, monkeypatch):
    """Items validated as they are read, in batches that do not line up with the runs: each mistake is
    still reported exactly as the located reading of the whole file reports it."""
    path = synthetic.write(tmp_path, assets=400)
    assets = path / "assets.yml"
    text = assets.read_text()
    text = text.replace('mac: "02:00:00:00:00:63"', 'mac: "ff:ff:ff:ff:ff:ff"')
    text = text.replace("hostname: pc-000250", "hostname: pc-000005")
    before, after = text.split("AKM-000390\n")
    text = before + "AKM-000390\n" + after.replace("room: xona-1", "room: xona-9", 1)
    assets.write_text(text)
    monkeypatch.setattr(yamlsource, "_RUN", 30)
    monkeypatch.setattr(inventory_load, "_BATCH", 7)
    files = inventory_load.inventory_files(path)
    with pytest.raises(InventoryError) as located:
        inventory_load._load(files, path, TODAY, fast=False)
    with pytest.raises(InventoryError) as fast:
        inventory_load._load(files, path, TODAY)
    assert [(p, p.severity) for p in fast.value.problems] == [(p, p.severity) for p in located.value.problems]
    codes = sorted((p.code, p.field) for p in fast.value.problems)
    assert codes == [
        ("inventory.duplicate", "hostname"),
        ("inventory.unknown-reference", "room"),
        ("schema.mac_broadcast", "interfaces[0].mac"),
    ], codes
