"""``akm lab demo`` end to end, and the weekly report it writes holds the right numbers.

The demo converges the whole lab, pushes the access policy, runs backups and a network config backup,
sends a reader's requests through the real Squid and writes the report from what the machines recorded.
Each figure checked here is counted again by the test from an independent source: the inventory's YAML,
the raw access log the demo collected, the policy's own decision (``akm policy query``), and the
machines' evidence records. At the end ``site.yml`` runs once more and must change nothing.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from collections import Counter
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
import pytest
import yaml

from akm import i18n
from akm.inventory import load_inventory
from akm.report.build import KIND_NAMES
from tests.conftest import LAB_INVENTORY, REPO, playbook_recap

pytestmark = pytest.mark.lab


def _akm(*args: str, timeout: float = 3600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "akm.cli", "--lang", "en", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module")
def demo(running_lab, tmp_path_factory) -> Path:
    """The demo's output folder, after one whole run on the lab."""
    out = tmp_path_factory.mktemp("demo")
    done = _akm("lab", "demo", "--out", str(out))
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    return out


@pytest.fixture(scope="module")
def workbook(demo: Path) -> Path:
    """The one weekly workbook the demo wrote (for the week of its activity, whatever the date now)."""
    (found,) = (demo / "report").glob("weekly-*.xlsx")
    return found


@pytest.fixture(scope="module")
def sheets(workbook: Path) -> dict[str, list[tuple]]:
    """Every sheet of the report's workbook as rows of values (its title row, then the column names)."""
    book = openpyxl.load_workbook(workbook, read_only=True)
    return {sheet.title: list(sheet.iter_rows(values_only=True)) for sheet in book.worksheets}


@pytest.fixture(scope="module")
def period(workbook: Path) -> tuple[float, float]:
    """The report's week as ``[start, end)`` Unix times, from its file name and the centre's time zone."""
    label = workbook.stem.removeprefix("weekly-")
    zone = ZoneInfo(load_inventory(LAB_INVENTORY).centre.timezone)
    start = datetime.combine(date.fromisoformat(f"{label}-1"), time(), zone)
    return start.timestamp(), (start + timedelta(days=7)).timestamp()


def _table(sheets: dict[str, list[tuple]], key: str) -> list[tuple]:
    return sheets[key[:31]][2:]


def _in_uzbek(message: str) -> str:
    """*message* as the report (Uzbek by default, as the demo writes it) shows it."""
    i18n.setup("uz")
    try:
        return i18n._(message)
    finally:
        i18n.setup("en")


def _lab_assets() -> list[dict]:
    return yaml.safe_load((LAB_INVENTORY / "assets.yml").read_text())["assets"]


def test_the_equipment_counts_are_the_inventorys(sheets):
    kinds = Counter(asset["kind"] for asset in _lab_assets())
    reported = {row[0]: row[1] for row in _table(sheets, "equipment_kinds")}
    assert reported == {_in_uzbek(KIND_NAMES.get(kind, kind)): count for kind, count in kinds.items()}


def _access_log(demo: Path, period: tuple[float, float]) -> list[tuple[str, str, str]]:
    """(client, Squid code, URL) of every line of the collected access log inside *period* (Squid's
    native format: time, elapsed, client, code/status, bytes, method, URL, user, peer, type)."""
    lines = []
    for log in sorted((demo / "collected" / "squid").glob("access.log*")):
        for line in log.read_text().splitlines():
            fields = line.split()
            if len(fields) >= 7 and period[0] <= float(fields[0]) < period[1]:
                lines.append((fields[2], fields[3], fields[6]))
    return lines


def test_the_readers_requests_and_denials_are_counted_from_the_real_proxy_log(demo, sheets, period, running_lab):
    reader = next(a for a in _lab_assets() if "reader" in a.get("profiles", []))
    address = reader["interfaces"][0]["ip"]
    own = [(code, url.split("/")[2]) for client, code, url in _access_log(demo, period) if client == address]
    denied = {site for code, site in own if code.startswith("TCP_DENIED")}
    # The demo asked the proxy for every site of the fake internet once, over HTTP.
    asked = {site.domain for site in running_lab.sites}
    assert {site for _code, site in own} >= asked
    # The real Squid denied exactly the sites the policy says the reader may not reach.
    should_deny = set()
    for domain in asked:
        answer = _akm("policy", "query", "-i", str(LAB_INVENTORY), reader["hostname"], domain)
        # 0: allowed, 3: denied (akm policy query's exit codes).
        assert answer.returncode in (0, 3), answer.stdout + answer.stderr
        if answer.returncode == 3:
            should_deny.add(domain)
    assert should_deny and should_deny != asked
    assert denied == should_deny
    # The report's row for the reader has the log's own counts.
    row = next(r for r in _table(sheets, "users_hosts") if r[0] == reader["hostname"])
    assert (row[2], row[4]) == (len(own), sum(code.startswith("TCP_DENIED") for code, _site in own))


def test_every_data_class_the_inventory_places_has_a_successful_backup(demo, sheets):
    placed = {
        (place["data_class"], asset["hostname"])
        for asset in _lab_assets()
        if asset.get("os", "").startswith("debian")
        for place in asset.get("data", [])
    }
    last = {(row[0], row[1]): row for row in _table(sheets, "backups_last")}
    assert set(last) == placed
    # /etc is never empty: a configs backup that saved no file did not really run.
    assert all(row[4] > 0 for (data_class, _host), row in last.items() if data_class == "configs"), last


def test_a_debian_13_client_backs_up_unchanged_data_without_a_new_snapshot(demo, in_lab):
    """restic 0.18 on a Debian 13 backup client runs with --skip-if-unchanged: the operators' command, on
    the host's own repository, backs up a folder that does not change (the backup settings in /etc; the
    whole of /etc changes under a running system) twice, and the second run makes no snapshot and says so."""
    host = next(a["hostname"] for a in _lab_assets() if a.get("os") == "debian13" and a.get("data"))
    assert in_lab(host, "restic", "version").stdout.startswith("restic 0.18")
    newest = f'cat "$(ls -t /var/lib/akm/evidence/backup/run-{host}-*.json | head -1)"'
    runs = []
    for _round in range(2):
        in_lab(host, "akm-backup", "run", "--host", host, "--source", "configs=/etc/akm/backup", timeout=600)
        runs.append(json.loads(in_lab(host, shlex.join(["sh", "-c", newest])).stdout))
    (first,), (second,) = runs[0]["classes"], runs[1]["classes"]
    assert first["paths"] == second["paths"] == ["/etc/akm/backup"], runs
    assert runs[1]["result"] == "ok" and second["files_unmodified"] == second["files"] > 0, runs[1]
    assert second["unchanged"] is True and second["snapshot_id"] == "" and runs[1]["snapshot_ids"] == []


def test_the_network_section_has_each_devices_config_backup(demo, sheets):
    devices = {a["hostname"] for a in _lab_assets() if a.get("net")}
    run = max((demo / "collected" / "evidence" / "control" / "net").glob("backup-2*"))
    record = json.loads(run.read_text())
    assert {d["device"]: d["status"] in ("ok", "changed") for d in record["devices"]} == dict.fromkeys(devices, True)
    # The report's newest network record is that run, with each device's result.
    newest = _table(sheets, "network_records")[-1]
    assert newest[3] == _in_uzbek("succeeded")
    assert {part.split(": ")[0] for part in newest[4].split(", ")} == devices


CHARTS = (
    ("equipment_departments", "Items by department", (1,)),
    ("equipment_age", "Items by age and status", None),
    ("users_days", "Internet use by day, MiB", (2,)),
    ("users_segments", "Internet use by network segment, MiB", (2,)),
    ("users_departments", "Internet use by department, MiB", (2,)),
    ("users_denied", "Denied requests by category", (1,)),
    ("backups_days", "Backup runs by day and result", (1, 2, 3)),
    ("backups_days", "Size of the backups by day, MiB", (4, 5)),
)
"""The charts a weekly report can have: (sheet of its table, title, columns drawn; None: all but the first)."""


@pytest.fixture(scope="module")
def document(demo: Path):
    """The weekly DOCX the demo wrote, as python-docx reads it."""
    from docx import Document

    (found,) = (demo / "report").glob("weekly-*.docx")
    return Document(str(found))


def test_the_docx_is_a_document_to_sign(document):
    """Title page from the inventory (approval block, centre, who prepared it), a contents field, and
    «Bet X / Y» in the footer of every page but the title page."""
    inventory = load_inventory(LAB_INVENTORY)
    texts = [p.text for p in document.paragraphs]
    title = texts[: texts.index(_in_uzbek("Contents"))]
    director, it_head = (
        inventory.director,
        next(p for p in inventory.people_with("it_staff") if "head_of_department" in p.duties),
    )
    assert title[:3] == [_in_uzbek("APPROVED"), director.position, f"____________________ {director.name}"]
    assert inventory.centre.name in title and inventory.centre.city in title
    assert f"{_in_uzbek('Prepared by')}: {it_head.position} ____________________ {it_head.name}" in title
    assert any(t.startswith(_in_uzbek("Weekly report") + ": ") for t in title)
    first = document.sections[0]
    assert first.different_first_page_header_footer and not first.first_page_footer.paragraphs[0].text
    fields = "".join(first.footer._element.xpath(".//w:instrText/text()"))
    assert "PAGE" in fields and "NUMPAGES" in fields
    assert any("TOC" in t for t in document.element.body.xpath(".//w:instrText/text()"))


def test_the_docx_has_a_chart_for_every_table_with_figures(document, sheets):
    """Every chart whose table (in the workbook) has a figure that is not zero is in the DOCX: its title,
    then its picture; the demo's week has traffic, denials and backups, so those charts are there."""
    expected = []
    for key, title, columns in CHARTS:
        rows = _table(sheets, key) if key in sheets else []
        drawn = columns or range(1, len(rows[0]) if rows else 1)
        if any(row[c] for row in rows for c in drawn):
            expected.append(_in_uzbek(title))
    for title in ("Internet use by day, MiB", "Denied requests by category", "Backup runs by day and result"):
        assert _in_uzbek(title) in expected, title
    paragraphs = document.paragraphs
    for title in expected:
        at = next(i for i, p in enumerate(paragraphs) if p.text == title)
        assert paragraphs[at + 1]._p.xpath(".//w:drawing"), title
    assert len(document.inline_shapes) == len(expected)


def test_the_drift_section_has_every_machines_live_facts_and_no_difference(sheets):
    machines = {a["hostname"]: a["os"] for a in _lab_assets() if a.get("os", "").startswith("debian")}
    facts = _table(sheets, "drift_facts")
    assert {row[0] for row in facts} == set(machines)
    # Each machine runs the release its inventory entry names (the lab has both).
    assert {row[0]: f"debian{str(row[1]).split()[2]}" for row in facts} == machines, facts
    # The lab's MACs and host names are the inventory's; serials are unreadable in a container.
    assert "drift_differences" not in sheets, sheets.get("drift_differences")


def _playbook(running_lab, name: str, *args: str) -> subprocess.CompletedProcess[str]:
    from akm.lab.lab import simulator_files

    files = simulator_files(running_lab.state_dir)
    vault = ["-e", f"@{files['vault']}", "--vault-password-file", str(files["vault_password"])]
    playbook = Path(sys.executable).parent / "ansible-playbook"
    return subprocess.run(
        [str(playbook), "-i", str(LAB_INVENTORY / "akm.yml"), f"playbooks/{name}", *vault, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )


def _changed(done: subprocess.CompletedProcess[str]) -> dict[str, int]:
    assert done.returncode == 0, done.stdout[-4000:]
    recap = playbook_recap(done.stdout)
    assert recap, done.stdout[-2000:]
    return {host: counts["changed"] for host, counts in recap.items() if counts["changed"]}


def test_a_second_site_converge_after_the_demo_changes_nothing(demo, running_lab):
    assert _changed(_playbook(running_lab, "site.yml")) == {}


@pytest.mark.parametrize("name", ["site.yml", "gateway.yml"])
def test_check_mode_on_the_converged_lab_runs_and_would_change_nothing(demo, running_lab, name):
    assert _changed(_playbook(running_lab, name, "--check", "--diff")) == {}


def test_each_person_logs_in_to_samba_with_the_password_from_the_vault(demo, running_lab, in_lab):
    from akm import vault
    from akm.lab.lab import SECRETS_FILE, simulator_files
    from akm.net.vault import read_vault

    files = simulator_files(running_lab.state_dir)
    (variable,) = [s.name for s in vault.load(SECRETS_FILE) if s.shape == "per_person"]
    passwords = read_vault(files["vault"], files["vault_password"])[variable]
    people = yaml.safe_load((LAB_INVENTORY / "centre.yml").read_text())["people"]
    member = people[0]
    share = member["department"]
    outsider = next(p for p in people if p["department"] != share)
    server = next(a["hostname"] for a in _lab_assets() if "file_server" in a.get("profiles", []))

    def smb(login: str, password: str) -> subprocess.CompletedProcess:
        # smbclient reads the password from PASSWD (a throwaway lab secret).
        return in_lab(
            server,
            "env",
            f"PASSWD={password}",
            "smbclient",
            f"//127.0.0.1/{share}",
            "-U",
            login,
            "-c",
            "ls",
            check=False,
        )

    assert smb(member["id"], passwords[member["id"]]).returncode == 0
    denied = smb(outsider["id"], passwords[outsider["id"]])
    assert denied.returncode != 0 and "NT_STATUS_ACCESS_DENIED" in denied.stdout + denied.stderr
    wrong = smb(member["id"], passwords[member["id"]] + "x")
    assert wrong.returncode != 0 and "NT_STATUS_LOGON_FAILURE" in wrong.stdout + wrong.stderr
