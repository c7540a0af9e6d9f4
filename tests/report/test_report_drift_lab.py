"""Drift on the running lab: ``akm report facts`` collects from every lab machine over SSH (pyinfra)
and the report compares what it found with the inventory.

The lab's machines are systemd-nspawn containers: they have no DMI of their own (the collector records
no serial for a container) and see the host's RAM and disks, which is what is asserted here.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from akm.inventory import load_inventory
from akm.inventory.model import DEBIAN_RELEASES
from akm.report import drift, evidence
from akm.report.build import Sources, build
from akm.report.periods import Period

pytestmark = pytest.mark.lab
AKM = Path(sys.executable).parent / "akm"


def _collect(inventory_dir: Path, evidence_dir: Path) -> tuple[dict, str]:
    done = subprocess.run(
        [
            str(AKM),
            "--lang",
            "en",
            "report",
            "facts",
            "--inventory",
            str(inventory_dir),
            "--evidence",
            str(evidence_dir),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    path = Path(done.stdout.splitlines()[0])
    return json.loads(path.read_text()), done.stdout


def test_facts_of_every_lab_machine_match_the_inventory(running_lab, repo, tmp_path):
    inventory = load_inventory(repo / "inventory" / "lab")
    record, output = _collect(repo / "inventory" / "lab", tmp_path)
    machines = drift.linux_hosts(inventory)
    assert record["kind"] == "drift.facts" and record["result"] == "ok" and record["unreachable"] == {}
    # Every machine the lab boots (the plan's, but the fake internet), which the inventory's Debian hosts are.
    booted = sorted(m.hostname for m in running_lab.machines if not m.internet)
    assert sorted(record["hosts"]) == sorted(a.hostname for a in machines) == booted
    memory_mib = int(Path("/proc/meminfo").read_text().split("\n")[0].split()[1]) // 1024
    for asset in machines:
        found = record["hosts"][asset.hostname]
        assert found["hostname"] == asset.hostname
        assert found["address"] == str(asset.address)
        assert found["interfaces"] == {i.name: i.mac for i in asset.interfaces}
        # each machine runs the release its inventory entry names (the lab has Debian 13 and 12)
        assert (found["os"]["id"], found["os"]["version_id"]) == ("debian", DEBIAN_RELEASES[asset.os][1])
        # nspawn: no DMI of its own, and the host's RAM
        assert (found["container"], found["serial"], found["serial_note"]) == ("systemd-nspawn", None, "container")
        assert found["memory_mib"] == memory_mib
    assert "difference:" not in output


def test_a_wrong_inventory_value_is_exactly_one_difference(running_lab, repo, tmp_path):
    copy = tmp_path / "inventory"
    shutil.copytree(repo / "inventory" / "lab", copy)
    assets = copy / "assets.yml"
    right = load_inventory(repo / "inventory" / "lab").asset("oqish-01")
    mac = next(i.mac for i in right.interfaces if i.name == "eth0")
    text = assets.read_text()
    assert text.count(mac) == 1
    assets.write_text(text.replace(mac, "02:de:ad:00:be:ef"))
    record, output = _collect(copy, tmp_path / "evidence")
    assert [line for line in output.splitlines() if line.startswith("difference:")] == [
        f"difference: oqish-01: mac eth0: expected 02:de:ad:00:be:ef, live {mac}"
    ]
    wrong = load_inventory(copy)
    when = datetime.fromisoformat(record["time"])
    period = Period("weekly", when.date() - timedelta(days=1), when.date() + timedelta(days=2), "now")
    assert evidence.read(tmp_path / "evidence")[1] == []
    report = build(Sources(wrong, evidence_dir=tmp_path / "evidence"), period)
    section = next(s for s in report.sections if s.key == "drift")
    rows = next(t for t in section.tables if t.key == "drift_differences").rows
    assert rows == [["oqish-01", "MAC eth0", "02:de:ad:00:be:ef", mac, "inventory"]]
