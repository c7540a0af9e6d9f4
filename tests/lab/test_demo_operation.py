"""The centre runs itself (issue 15): the duty list is the timers really enabled on the converged lab,
one night is run by the timers' own units in calendar order, the weekly report made on the management
host from only what they collected has data in every section, and a grant whose term ends is withdrawn
by the scheduled push.

It runs right after the demo (file order): the lab is converged, the management host holds its units.
The night starts each listed duty's service with ``systemctl start`` on its host (a oneshot unit:
start waits until it ends), ordered by time of day; the hourly duties (the collection, the alerts) run
once, where the night's last hour puts them, before the 06:00 reports. Package updates are left out
(they would fetch Debian's updates, not the centre's work). The alerts by Telegram and e-mail are proven
in tests/lab/test_demo_alerts.py.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from datetime import datetime
from zoneinfo import ZoneInfo

import openpyxl
import pytest

from akm.inventory import load_inventory
from tests.conftest import LAB_INVENTORY, in_uzbek

pytestmark = pytest.mark.lab

LEFT_OUT = {"package-updates"}
"""Duties the night does not start (see the module's documentation)."""
REPORT_DIR = "/var/tmp/akm-operation"


def _assignments() -> list[dict]:
    """Every unit of every duty on every lab host, as ``akm duties list --format json`` gives them."""
    command = [sys.executable, "-m", "akm.cli", "duties", "list", "-i", str(LAB_INVENTORY), "--format", "json"]
    return json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)


def _management(running_lab) -> str:
    return next(m.hostname for m in running_lab.machines if "management" in m.profiles)


@pytest.fixture(scope="module")
def converged(running_lab, in_lab) -> dict[str, list[dict]]:
    """The duties by host, on a lab the demo converged."""
    enabled = in_lab(_management(running_lab), "systemctl", "is-enabled", "akm-collect.timer", check=False)
    assert enabled.stdout.strip() == "enabled", "the lab is not converged: run the demo first"
    by_host: dict[str, list[dict]] = {}
    for row in _assignments():
        by_host.setdefault(row["host"], []).append(row)
    return by_host


def _own_timers(in_lab, host: str) -> set[str]:
    """The project's timers loaded on *host*: ``akm-*``, transient ones (a rollback's) left out."""
    shown = in_lab(host, "systemctl show --all --property=Id,Transient 'akm-*.timer'").stdout
    timers = set()
    for block in shown.strip().split("\n\n"):
        fields = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        if fields.get("Id") and fields.get("Transient") == "no":
            timers.add(fields["Id"])
    return timers


def test_the_duty_list_is_the_timers_enabled_on_each_converged_host(running_lab, in_lab, converged):
    machines = {m.hostname for m in running_lab.machines if not m.internet}
    assert set(converged) <= machines
    for host in sorted(machines):
        listed = {row["timer"] for row in converged.get(host, [])}
        for timer in sorted(listed):
            state = in_lab(host, "systemctl", "is-enabled", timer, check=False).stdout.strip()
            assert state == "enabled", f"{host}: the duty's timer {timer} is {state or 'missing'}"
        unlisted = _own_timers(in_lab, host) - listed
        assert not unlisted, f"{host}: timers of ours that policies/duties.yml does not list: {sorted(unlisted)}"


def _night(converged: dict[str, list[dict]]) -> list[dict]:
    """The night's units in calendar order; the hourly ones at the night's last hour (05:MM)."""
    rows = [row for rows in converged.values() for row in rows if row["duty"] not in LEFT_OUT]
    return sorted(rows, key=lambda row: (row["time"].replace("**", "05"), row["host"], row["service"]))


@pytest.fixture(scope="module")
def night(running_lab, in_lab, converged) -> list[tuple[dict, int]]:
    """Each unit of the night started through systemd, with the exit status of ``systemctl start``."""
    ran = []
    for row in _night(converged):
        done = in_lab(row["host"], "systemctl", "start", row["service"], check=False, timeout=1200)
        ran.append((row, done.returncode))
    return ran


def test_every_unit_of_the_night_succeeds(night):
    failed = [f"{row['host']} {row['service']}" for row, code in night if code != 0]
    assert not failed, failed


def _week(running_lab) -> str:
    zone = ZoneInfo(load_inventory(LAB_INVENTORY).centre.timezone)
    return datetime.now(zone).strftime("%G-W%V")


@pytest.fixture(scope="module")
def report(running_lab, in_lab, night, tmp_path_factory):
    """The weekly report of this week, made on the management host by the weekly report unit's own
    command (``systemctl show``'s argv) with ``--period`` and another folder; fetched here."""
    management = _management(running_lab)
    unit = "akm-report@weekly.service"
    shown = in_lab(management, "systemctl", "show", "--property=ExecStart", "--value", unit).stdout
    argv = shlex.split(re.search(r"argv\[\]=(.*?) ;", shown).group(1))
    folder = in_lab(management, "systemctl", "show", "--property=WorkingDirectory", "--value", unit).stdout.strip()
    week = _week(running_lab)
    command = shlex.join([*argv, "--period", week, "--out", REPORT_DIR])
    in_lab(management, shlex.join(["rm", "-rf", REPORT_DIR]))
    in_lab(management, shlex.join(["sh", "-c", f"cd {shlex.quote(folder)} && {command}"]), timeout=600)
    local = tmp_path_factory.mktemp("operation")
    for suffix in ("html", "xlsx"):
        name = f"weekly-{week}.{suffix}"
        copied = subprocess.run(
            [*_ssh(running_lab, management), f"cat {REPORT_DIR}/{name}"], capture_output=True, check=True
        )
        (local / name).write_bytes(copied.stdout)
    return local / f"weekly-{week}"


def _ssh(running_lab, host: str) -> list[str]:
    from akm.lab import lab

    return lab.ssh_command(running_lab, host)


def test_the_weekly_report_from_what_the_timers_collected_has_data_in_every_section(report):
    sections = report.with_suffix(".html").read_text().split('<section id="')[1:]
    empty = [section.split('"')[0] for section in sections if '<p class="nodata">' in section]
    assert not empty, empty


def test_the_reports_counts_are_the_nights(running_lab, report, night):
    """Independent counts: every host whose backup unit ran tonight has a successful backup run in the
    report's records, and the drift facts the night collected cover every Debian host of the lab."""
    book = openpyxl.load_workbook(report.with_suffix(".xlsx"), read_only=True)
    rows = {sheet.title: list(sheet.iter_rows(values_only=True))[2:] for sheet in book.worksheets}
    backed_up = {row["host"] for row, code in night if row["duty"] == "backup-run" and code == 0}
    succeeded = in_uzbek("succeeded")
    in_report = {r[2] for r in rows["backups_records"] if r[1] == "backup.run" and r[3] == succeeded}
    assert backed_up and backed_up <= in_report, (backed_up, in_report)
    debian = {m.hostname for m in running_lab.machines if not m.internet}
    assert {r[0] for r in rows["drift_facts"]} == debian


def _grant(running_lab) -> tuple[str, str, str]:
    """A person's grant of the lab policy: its expiry day, the person's PC and a site it opens."""
    import yaml

    from akm.inventory import load_inventory as load

    grants = yaml.safe_load((LAB_INVENTORY.parents[1] / "policies/access/lab/grants.yml").read_text())["grants"]
    grant = next(g for g in grants if g["who"].startswith("person:") and "category:social" in g["allow"])
    person = grant["who"].split(":", 1)[1]
    pc = next(a.hostname for a in load(LAB_INVENTORY).assets if a.responsible == person and "staff" in a.profiles)
    site = next(s.domain for s in running_lab.sites if s.category == "social")
    return str(grant["expires_on"]), pc, site


def _status(in_lab, host: str, url: str) -> str:
    fetch = f". /etc/environment; export http_proxy; curl -s -o /dev/null -w '%{{http_code}}' -m 10 {url}"
    return in_lab(host, shlex.join(["sh", "-c", fetch]), check=False).stdout.strip()


def test_a_grant_whose_term_ended_is_withdrawn_by_the_scheduled_push(running_lab, in_lab, night):
    """The push unit of the management host, given the first minute of the grant's last day plus one
    (the clock of the policy job, AKM_POLICY_AT): the real Squid then denies what it allowed; the
    ordinary push gives it back."""
    expires_on, pc, site = _grant(running_lab)
    management = _management(running_lab)
    assert _status(in_lab, pc, f"http://{site}/") == "200"
    dropin = "/run/systemd/system/akm-policy-push.service.d"
    setting = f"[Service]\nEnvironment=AKM_POLICY_AT={expires_on}T00:01\n"
    in_lab(management, f"mkdir -p {dropin} && printf {shlex.quote(setting)} > {dropin}/at.conf")
    in_lab(management, "systemctl", "daemon-reload")
    try:
        in_lab(management, "systemctl", "start", "akm-policy-push.service", timeout=1200)
        assert _status(in_lab, pc, f"http://{site}/") == "403"
    finally:
        in_lab(management, f"rm -rf {dropin} && systemctl daemon-reload")
    in_lab(management, "systemctl", "start", "akm-policy-push.service", timeout=1200)
    assert _status(in_lab, pc, f"http://{site}/") == "200"
