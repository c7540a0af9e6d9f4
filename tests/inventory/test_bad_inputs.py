"""Every case of the bad-input corpus reports exactly its expected problems, and nothing else.

A case is a directory under ``bad/``: its files are laid over the valid inventory in ``base/`` (a file
of the same name replaces the base one) and ``expected.yml`` lists the problems by code, file, line and
field. An expected problem may also list what its English message must say (``says:``), e.g. the text
as written in the file and what YAML made of it.
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest
import yaml

from akm import yamlsource
from akm.inventory import InventoryError, load_inventory
from akm.inventory import load as inventory_load

HERE = Path(__file__).parent
CASES = sorted(p.name for p in (HERE / "bad").iterdir() if p.is_dir())
TODAY = date(2026, 11, 25)


def lay_out(case: str, target: Path) -> Path:
    """Copy the base inventory and the case's files into *target*."""
    for source in (HERE / "base").iterdir():
        shutil.copy(source, target / source.name)
    for source in (HERE / "bad" / case).iterdir():
        if source.name != "expected.yml":
            shutil.copy(source, target / source.name)
    return target


def test_the_base_is_valid(tmp_path, monkeypatch):
    for source in (HERE / "base").iterdir():
        shutil.copy(source, tmp_path / source.name)
    inventory = load_inventory(tmp_path, today=TODAY)
    assert [a.hostname for a in inventory.assets] == ["srv", "oqish-01"]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_reports_exactly_the_expected_problems(case, tmp_path, monkeypatch):
    monkeypatch.chdir(lay_out(case, tmp_path))
    with pytest.raises(InventoryError) as caught:
        load_inventory(tmp_path, today=TODAY)
    found = [(p.code, p.file, p.line, p.field) for p in caught.value.problems]
    expected = [
        (e["code"], e["file"], e["line"], e["field"])
        for e in yaml.safe_load((HERE / "bad" / case / "expected.yml").read_text())
    ]
    assert sorted(found, key=str) == sorted(expected, key=str)
    for problem in caught.value.problems:
        assert problem.message and problem.hint, f"{case}: every problem says what is wrong and how to fix it"
    for entry in yaml.safe_load((HERE / "bad" / case / "expected.yml").read_text()):
        (problem,) = [
            p
            for p in caught.value.problems
            if (p.code, p.line, p.field) == (entry["code"], entry["line"], entry["field"])
        ]
        for text in entry.get("says", []):
            assert text in f"{problem.message} — {problem.hint}", f"{case}: {problem.render()} does not say {text!r}"


@pytest.mark.parametrize("case", CASES)
def test_the_fast_way_reports_what_the_located_reading_reports(case, tmp_path, monkeypatch):
    """Files the fast way vouches for are read as plain data, and only the item or section a problem is in
    is read again located (akm.yamlsource.Locator). Every problem must come out exactly as the located
    reading of every file, the reference, reports it: code, file, line, field, message and hint; and the
    piece read must be trusted, not the whole file read again."""
    monkeypatch.chdir(lay_out(case, tmp_path))
    files = inventory_load.inventory_files(tmp_path)
    with pytest.raises(InventoryError) as located:
        inventory_load._load(files, tmp_path, TODAY, fast=False)

    def whole(locator):
        raise AssertionError(f"{locator.name} was read whole")

    monkeypatch.setattr(yamlsource.Locator, "_read_whole", whole)
    with pytest.raises(InventoryError) as fast:
        inventory_load._load(files, tmp_path, TODAY)
    assert [(p, p.severity) for p in fast.value.problems] == [(p, p.severity) for p in located.value.problems]
