"""Bad-input corpus of the lab: each case of ``bad/`` changes a copy of ``inventory/lab`` and names the
problems the lab must report (code, file, field) before it creates anything."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from akm.errors import Error
from akm.lab import lab
from tests.conftest import copy_lab_inventory

HERE = Path(__file__).parent
REPO = HERE.parents[1]
CASES = sorted((HERE / "bad").glob("*.yml"))


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_bad_lab_inventory_is_refused_with_its_place(case, tmp_path):
    spec = yaml.safe_load(case.read_text(encoding="utf-8"))
    inventory = tmp_path / "lab"
    copy_lab_inventory(inventory)
    for change in spec.get("replace", []):
        target = inventory / change["file"]
        text = target.read_text(encoding="utf-8")
        assert change["old"] in text, f"{case.name}: {change['old']!r} is not in {change['file']} any more"
        target.write_text(text.replace(change["old"], change["new"], 1), encoding="utf-8")
    for name in spec.get("delete", []):
        (inventory / name).unlink()
    with pytest.raises(Error) as caught:
        lab.check(inventory, checks=lab.HostChecks(is_root=lambda: True, which=lambda _tool: "/usr/bin/true"))
    found = [(p.code, Path(p.file).name if p.file else "", p.field, p.line) for p in caught.value.problems]
    for expected in spec["expected"]:
        matching = [f for f in found if f[:3] == (expected["code"], expected["file"], expected["field"])]
        assert matching, f"{case.name}: expected {expected}, got {found}"
        if expected.get("line", True):
            assert all(line for *_rest, line in matching), f"{case.name}: no line in {matching}"
