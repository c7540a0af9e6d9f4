"""The management host (playbooks/management.yml): its timers' services really back up the simulated
devices into git with evidence and really write the weekly report, on the lab machine whose inventory
profile is ``management``. A second converge changes nothing; a non-Debian host is refused.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from akm import i18n
from akm.inventory import load_inventory
from akm.lab import lab
from akm.net.platforms import PLATFORMS
from akm.net.sim.control import SimControl
from akm.report.build import KIND_NAMES

REPO = Path(__file__).resolve().parents[2]
LAB = REPO / "inventory" / "lab"
NETCONFIG = "/var/lib/akm/netconfig"
EVIDENCE = "/var/lib/akm/evidence"
REPORTS = "/var/lib/akm/reports"
TIMERS = [
    "akm-alert-evidence.timer",
    "akm-alert-grants.timer",
    "akm-drift-facts.timer",
    "akm-net-backup.timer",
    "akm-policy-push.timer",
    "akm-proxy-log-retention.timer",
    "akm-report-annual.timer",
    "akm-report-monthly.timer",
    "akm-report-quarterly.timer",
    "akm-report-weekly.timer",
]


def _playbook(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    playbook = Path(sys.executable).parent / "ansible-playbook"
    return subprocess.run(
        [str(playbook), "-i", str(LAB / "akm.yml"), "playbooks/management.yml", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def _changed(output: str, host: str) -> int:
    line = next(line for line in output.splitlines() if line.startswith(host + " ") and "changed=" in line)
    return int(line.split("changed=")[1].split()[0])


def _host() -> str:
    (host,) = [a.hostname for a in load_inventory(LAB).assets if "management" in a.profiles]
    return host


def _on_host(plan, command: str, binary: bool = False):
    done = subprocess.run(
        lab.ssh_command(plan, _host(), [command]), capture_output=True, text=not binary, check=False, timeout=300
    )
    assert done.returncode == 0, (command, done.stdout, done.stderr)
    return done.stdout


def test_a_management_host_that_is_not_debian_is_refused():
    result = _playbook("-e", "akm_os=windows11")
    assert result.returncode != 0
    assert "is not a Debian asset with the management profile" in result.stdout
    assert "os: windows11" in result.stdout


@pytest.fixture(scope="module")
def converged(running_lab):
    first = _playbook()
    assert first.returncode == 0, first.stdout[-4000:]
    return running_lab, first


@pytest.mark.lab
def test_a_second_converge_changes_nothing(converged):
    second = _playbook()
    assert second.returncode == 0, second.stdout[-4000:]
    assert _changed(second.stdout, _host()) == 0, second.stdout[-4000:]


@pytest.mark.lab
def test_the_timers_are_enabled_and_scheduled(converged):
    plan, _first = converged
    listed = _on_host(plan, "systemctl list-timers --all --no-pager --no-legend")
    scheduled = {line.split()[-2] for line in listed.splitlines() if "akm-" in line}
    assert set(TIMERS) <= scheduled, listed
    enabled = _on_host(plan, "systemctl is-enabled " + " ".join(TIMERS)).split()
    assert enabled == ["enabled"] * len(TIMERS)


def _commits(plan) -> int:
    return int(_on_host(plan, f"git -C {NETCONFIG} rev-list --count HEAD").strip())


def _latest_backup(plan) -> dict:
    return json.loads(_on_host(plan, f"cat {EVIDENCE}/net/backup-latest.json"))


@pytest.mark.lab
def test_the_backup_service_commits_each_change_once_with_evidence(converged):
    plan, _first = converged
    devices = {a.hostname: a.net.platform for a in load_inventory(LAB).assets if a.net is not None}
    files = sorted(name + PLATFORMS[platform].suffix for name, platform in devices.items())
    router = next(name for name, platform in sorted(devices.items()) if platform == "mikrotik_routeros")
    control = SimControl(json.loads(lab.simulator_files(plan.state_dir)["ready"].read_text())["control"])

    _on_host(plan, "systemctl start akm-net-backup.service")
    assert sorted(_on_host(plan, f"git -C {NETCONFIG} ls-tree --name-only HEAD").split()) == files
    record = _latest_backup(plan)
    assert record["kind"] == "network.config-backup" and record["folder"] == NETCONFIG
    assert {d["device"]: d["status"] in ("ok", "changed") for d in record["devices"]} == dict.fromkeys(devices, True)
    before = _commits(plan)

    control.exec(router, "/ip firewall address-list remove [find list=akm-mgmt-test]")
    control.exec(
        router,
        f"/ip firewall address-list add list=akm-mgmt-test address=198.18.30.77 comment=run-{secrets.token_hex(4)}",
    )
    try:
        _on_host(plan, "systemctl start akm-net-backup.service")
        assert _commits(plan) == before + 1
        changed = _on_host(plan, f"git -C {NETCONFIG} show --name-only --format= HEAD").split()
        assert changed == [f"{router}.rsc"]
        assert "akm-mgmt-test" in _on_host(plan, f"git -C {NETCONFIG} show HEAD")
        statuses = {d["device"]: d["status"] for d in _latest_backup(plan)["devices"]}
        assert statuses == {name: ("changed" if name == router else "ok") for name in devices}

        _on_host(plan, "systemctl start akm-net-backup.service")
        assert _commits(plan) == before + 1
    finally:
        control.exec(router, "/ip firewall address-list remove [find list=akm-mgmt-test]")


@pytest.mark.lab
def test_the_weekly_report_service_writes_the_equipment_count(converged):
    from docx import Document
    from openpyxl import load_workbook

    plan, _first = converged
    _on_host(plan, "systemctl start akm-report@weekly.service")
    newest = _on_host(plan, f"ls -t {REPORTS}/weekly/*.xlsx | head -1").strip()
    book = load_workbook(io.BytesIO(_on_host(plan, f"cat {newest}", binary=True)))
    kinds = {row[0]: row[1] for row in book["equipment_kinds"].iter_rows(min_row=3, values_only=True)}
    inventory = load_inventory(LAB)
    i18n.setup("uz")
    try:
        expected = {i18n._(KIND_NAMES.get(k, k)): n for k, n in Counter(a.kind for a in inventory.assets).items()}
    finally:
        i18n.setup("en")
    assert kinds == expected

    document = Document(io.BytesIO(_on_host(plan, f"cat {newest[: -len('.xlsx')]}.docx", binary=True)))
    rows = {tuple(cell.text for cell in row.cells) for table in document.tables for row in table.rows}
    assert {(name, str(count)) for name, count in kinds.items()} <= rows
