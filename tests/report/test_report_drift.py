"""Drift: live facts (recorded from the lab) against the inventory, and the collector's pieces.

``facts/lab-record.json`` is a real record written by ``akm report facts --inventory inventory/lab``
on the running lab; ``facts/srv-output.txt`` is the real output of the fact command on the lab's srv.
"""

from __future__ import annotations

import copy
import json
from datetime import date
from pathlib import Path

import pytest

from akm import evidence as common
from akm.report import drift, evidence, facts, periods
from akm.report.build import Sources, build

HERE = Path(__file__).parent / "facts"
RECORDED = json.loads((HERE / "lab-record.json").read_text())
WEEK = "2026-W50"  # the lab record was written on 2026-12-07


def _record(data: dict, name: str = "r.json") -> evidence.Record:
    assert common.problems(data, name) == []
    return evidence._record(copy.deepcopy(data), name)


def _drift(report):
    return next(s for s in report.sections if s.key == "drift")


def _table(section, key):
    return next(t for t in section.tables if t.key == key)


def _week(inventory, directory):
    return build(Sources(inventory, evidence_dir=directory), periods.parse("weekly", WEEK, date(2026, 12, 7)))


def test_parse_the_real_output_of_a_lab_machine():
    found = facts.parse((HERE / "srv-output.txt").read_text().splitlines())
    assert found == {
        "hostname": "srv",
        "container": "systemd-nspawn",
        "serial": None,
        "serial_note": "container",
        "interfaces": {"eth0": "02:a0:00:10:00:10", "mgmt": "02:a0:00:ff:00:10"},
        "memory_mib": 24105,
        "disks": {"vda": 536870912 * 512},
        "os": {"id": "debian", "version_id": "12", "pretty_name": "Debian GNU/Linux 12 (bookworm)"},
    }


@pytest.mark.parametrize(
    ("serial", "expected", "note"),
    [("PF2ABC12", "PF2ABC12", ""), ("To be filled by O.E.M.", None, "placeholder"), ("", None, "unreadable")],
)
def test_serial_of_a_real_machine_and_firmware_placeholders(serial, expected, note):
    lines = ["@hostname", "pc", "@container", "", "@serial", serial, "", "@interfaces", "?", "@os", "ID=debian"]
    found = facts.parse(lines)
    assert (found["serial"], found["serial_note"], found["container"]) == (expected, note, None)
    assert found["interfaces"] is None  # python3 missing: interfaces unknown, not "none"


def test_targets_are_the_ansible_hosts_reached_the_ansible_way(inventory):
    targets = facts.targets(inventory)
    linux = drift.linux_hosts(inventory)
    assert sorted(targets) == sorted(a.hostname for a in linux) and len(targets) == 8
    for asset in linux:
        data = targets[asset.hostname]
        assert data["ssh_hostname"] == str(asset.address)
        assert data["ssh_user"] == "root"
        assert data["ssh_key"] == str(inventory.lab.state_dir / "ssh" / "id_ed25519")
        assert data["ssh_known_hosts_file"] == str(inventory.root / ".known_hosts")
        assert data["ssh_strict_host_key_checking"] == "yes"


def test_the_management_hosts_own_key_and_known_hosts_replace_the_inventorys(inventory, tmp_path):
    """The management host's timer logs in with its own key and checks the keys of the known_hosts file
    its role copied from the control node's inventory, strictly; the inventory's hosts and users stay."""
    key, known = tmp_path / "id_ed25519", tmp_path / "known_hosts"
    targets = facts.targets(inventory, ssh_key=key, known_hosts=known)
    assert sorted(targets) == sorted(facts.targets(inventory))
    for data in targets.values():
        assert (data["ssh_key"], data["ssh_allow_agent"], data["ssh_look_for_keys"]) == (str(key), False, False)
        assert (data["ssh_known_hosts_file"], data["ssh_strict_host_key_checking"]) == (str(known), "yes")
        assert data["ssh_user"] == "root"


def test_the_recorded_lab_matches_its_inventory(inventory):
    differences, not_collected = drift.compare(inventory, _record(RECORDED))
    assert differences == [] and not_collected == []


def test_every_kind_of_difference_is_listed(inventory):
    data = copy.deepcopy(RECORDED)
    gw, srv, bak = data["hosts"]["gw"], data["hosts"]["srv"], data["hosts"]["bak"]
    gw["interfaces"]["wan"] = "02:a0:00:00:00:99"
    del gw["interfaces"]["digit"]
    gw["interfaces"]["usb0"] = "0a:00:00:00:00:01"
    srv.update(container=None, serial="SRV-REAL-1", serial_note="", hostname="srv-old")
    bak["os"] = {"id": "debian", "version_id": "12", "pretty_name": "Debian GNU/Linux 12 (bookworm)"}
    del data["hosts"]["raqam-01"]
    data["unreachable"] = {"xodim-01": {"address": "198.19.255.31", "reason": "timed out"}}
    del data["hosts"]["xodim-01"]
    differences, not_collected = drift.compare(inventory, _record(data))
    assert [(d.host, d.field, d.expected, d.live) for d in differences] == [
        ("gw", "mac wan", "02:a0:00:00:00:01", "02:a0:00:00:00:99"),
        ("gw", "mac digit", "02:a0:00:40:00:01", "—"),
        ("gw", "mac usb0", "—", "0a:00:00:00:00:01"),
        ("srv", "hostname", "srv", "srv-old"),
        ("srv", "serial", "LAB-SRV-0002", "SRV-REAL-1"),
        ("bak", "os", "debian13", "debian12"),
    ]
    assert not_collected == ["raqam-01"]


def test_ram_and_disks_are_compared_with_the_previous_collection(inventory):
    before = _record({**RECORDED, "time": "2026-11-20T10:00:00+00:00"}, "before.json")
    data = copy.deepcopy(RECORDED)
    data["hosts"]["oqish-01"]["memory_mib"] = 4096
    data["hosts"]["oqish-01"]["disks"] = {}
    differences, _ = drift.compare(inventory, _record(data), [before])
    assert [(d.host, d.field, d.expected, d.live, d.source) for d in differences] == [
        ("oqish-01", "ram_mib", "24105", "4096", "previous"),
        ("oqish-01", "disk vda", "274877906944", "—", "previous"),
    ]


def test_drift_section_of_the_report(inventory, tmp_path):
    older = {**copy.deepcopy(RECORDED), "time": "2026-12-07T06:00:00+00:00"}
    newer = copy.deepcopy(RECORDED)
    newer["hosts"]["oqish-02"]["interfaces"]["eth0"] = "02:a0:00:30:00:99"
    newer["unreachable"] = {"raqam-01": {"address": "198.19.255.51", "reason": "connection refused"}}
    del newer["hosts"]["raqam-01"]
    newer["result"] = "warning"
    (tmp_path / "drift").mkdir()
    (tmp_path / "drift" / "a.json").write_text(json.dumps(older))
    (tmp_path / "drift" / "b.json").write_text(json.dumps(newer))
    section = _drift(_week(inventory, tmp_path))
    assert not section.no_data
    assert section.paragraphs[0] == (
        "Facts collected 2026-12-07 20:51 (2 collections in the period): 7 hosts answered, 1 unreachable; "
        "1 differences."
    )
    assert _table(section, "drift_differences").rows == [
        ["oqish-02", "MAC eth0", "02:a0:00:30:00:12", "02:a0:00:30:00:99", "inventory"]
    ]
    assert _table(section, "drift_unreachable").rows == [["raqam-01", "198.19.255.51", "connection refused"]]
    assert section.paragraphs[1].startswith("Serial numbers not compared on 7 hosts")
    facts_rows = _table(section, "drift_facts").rows
    assert [r[0] for r in facts_rows] == ["bak", "gw", "oqish-01", "oqish-02", "srv", "xodim-01", "xodim-02"]
    assert facts_rows[0][1:] == ["Debian GNU/Linux 13 (trixie)", 24105, "vda 274.9", "", "systemd-nspawn"]


def test_a_clean_collection_says_so_and_a_week_without_one_has_no_data(inventory, tmp_path):
    (tmp_path / "facts.json").write_text(json.dumps(RECORDED))
    section = _drift(_week(inventory, tmp_path))
    assert section.paragraphs[1] == "No differences: every host that answered matches the inventory."
    assert not any(t.key == "drift_differences" for t in section.tables)
    empty = build(Sources(inventory, evidence_dir=tmp_path), periods.parse("weekly", "2026-W46", date(2026, 12, 7)))
    assert _drift(empty).no_data and _drift(empty).paragraphs == ["No data for the period."]


def test_a_hand_broken_record_does_not_stop_the_report(inventory, tmp_path):
    """A record that does not fit the schema is a located problem of the report, never a half-read one."""
    broken = {**RECORDED, "hosts": {"gw": "oops", "srv": {"hostname": "srv", "interfaces": ["eth0"]}}}
    (tmp_path / "facts.json").write_text(json.dumps(broken, indent=1))
    report = _week(inventory, tmp_path)
    assert _drift(report).no_data
    assert [p.split(": ")[1] for p in report.problems] == ["hosts.gw", "hosts.srv.interfaces"]


def test_record_is_written_once_and_read_back_as_evidence(tmp_path):
    path = facts.write_record(RECORDED, tmp_path)
    assert path == tmp_path / "drift" / "facts-20261207T155149Z.json"
    assert [p.name for p in (tmp_path / "drift").iterdir()] == [path.name]
    records, problems = evidence.read(tmp_path)
    assert problems == [] and [(r.kind, r.result) for r in records] == [("drift.facts", "ok")]
    assert records[0].extra["hosts"]["gw"]["interfaces"]["wan"] == "02:a0:00:00:00:01"


def test_write_into_an_unwritable_place_is_a_located_problem(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(facts.FactsError) as caught:
        facts.write_record(RECORDED, blocker)
    assert caught.value.problems[0].code == "report.facts-write"


def test_a_host_that_refuses_is_unreachable_with_its_reason(inventory, monkeypatch):
    """A real pyinfra connection attempt to a closed loopback port: listed, never raised."""
    monkeypatch.setattr(facts, "targets", lambda *_args: {"ghost": {"ssh_hostname": "127.0.0.1", "ssh_port": 9}})
    record = facts.collect(inventory, connect_timeout=3)
    assert record["kind"] == "drift.facts" and record["result"] == "failed"
    assert record["hosts"] == {} and list(record["unreachable"]) == ["ghost"]
    assert record["unreachable"]["ghost"]["address"] == "127.0.0.1"
    assert record["unreachable"]["ghost"]["reason"]


def _presence(when: str, leases: list[dict], neighbours: list[dict]) -> dict:
    return common.record("network.presence", "ok", time=when, host="gw", leases=leases, neighbours=neighbours)


def _lease(address: str, mac: str, hostname: str = "") -> dict:
    return {"address": address, "mac": mac, "hostname": hostname, "expires": "", "state": 0}


def _neighbour(address: str, mac: str, device: str) -> dict:
    return {"address": address, "mac": mac, "device": device, "state": "REACHABLE"}


def test_network_presence_lists_devices_not_in_the_register_and_when_agentless_ones_were_seen(inventory, tmp_path):
    """Issue 16: what the gateway's leases and neighbour table saw, against the inventory. A guest on the
    pool's segment, the provider's side and the lab's own control node are not the register's business."""
    printer = next(a for a in inventory.assets if a.kind == "printer")
    printer_leg = next(i for i in printer.interfaces if i.mac)
    staff = next(a for a in inventory.assets if a.hostname == "xodim-01")
    first = _presence(
        "2026-12-08T09:40:00+05:00",
        [
            _lease("198.18.20.11", staff.interfaces[0].mac, "xodim-01"),
            _lease("198.18.50.120", "02:99:00:00:00:01", "phone"),
        ],
        [_neighbour("198.19.255.1", "02:99:00:00:00:02", "mgmt"), _neighbour("198.18.0.1", "02:99:00:00:00:03", "wan")],
    )
    second = _presence(
        "2026-12-08T10:40:00+05:00",
        [_lease("198.18.20.77", "02:99:00:00:00:04", "android-77")],
        [
            _neighbour(str(printer_leg.ip), printer_leg.mac.upper(), "staff"),
            _neighbour("198.18.20.78", "02:99:00:00:00:05", "staff"),
        ],
    )
    for number, record in enumerate((first, second)):
        common.write(tmp_path / "presence", f"gw-{number}", record)
    section = _drift(_week(inventory, tmp_path))
    assert section.paragraphs[0].startswith("Network presence collected 2 times from the gateways: 2 devices not in")
    assert _table(section, "drift_unknown_devices").rows == [
        ["02:99:00:00:00:04", "198.18.20.77", "staff", "android-77", "2026-12-08 10:40"],
        ["02:99:00:00:00:05", "198.18.20.78", "staff", "", "2026-12-08 10:40"],
    ]
    # The lab's routers and switches have no MAC in the register; the printer is its one agentless device.
    assert _table(section, "drift_agentless").rows == [[printer.hostname, "printer", "2026-12-08 10:40"]]
