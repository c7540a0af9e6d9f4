"""``akm lab demo`` end to end, and the weekly report it writes holds the right numbers.

The demo converges the whole lab, pushes the access policy, runs backups and a network config backup,
sends a reader's requests through the real Squid and writes the report from what the machines recorded.
Each figure checked here is counted again by the test from an independent source: the inventory's YAML,
the raw access log the demo collected, the policy's own decision (``akm policy query``), and the
machines' evidence records. At the end ``site.yml`` runs once more and must change nothing.
"""

from __future__ import annotations

import csv
import io
import json
import shlex
import subprocess
import sys
from collections import Counter
from contextlib import contextmanager
from datetime import date, datetime, time, timedelta
from ipaddress import IPv4Address
from pathlib import Path
from time import monotonic, sleep
from zoneinfo import ZoneInfo

import openpyxl
import pytest
import yaml

from akm.inventory import load_inventory
from akm.lab import demo as demo_module
from akm.lab.machines import machine_dir
from akm.lab.plan import LAB_RANGE, SWITCH_NETNS, bridge_name
from akm.report.build import KIND_NAMES
from tests.conftest import LAB_INVENTORY, REPO, in_uzbek, playbook_recap

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


def _lab_assets() -> list[dict]:
    return yaml.safe_load((LAB_INVENTORY / "assets.yml").read_text())["assets"]


def test_the_equipment_counts_are_the_inventorys(sheets):
    kinds = Counter(asset["kind"] for asset in _lab_assets())
    reported = {row[0]: row[1] for row in _table(sheets, "equipment_kinds")}
    assert reported == {in_uzbek(KIND_NAMES.get(kind, kind)): count for kind, count in kinds.items()}


def _access_log(demo: Path, period: tuple[float, float]) -> list[tuple[str, str, str]]:
    """(client, Squid code, URL) of every line of the access log the management host collected inside
    *period* (Squid's native format: time, elapsed, client, code/status, bytes, method, URL, user, peer,
    type); one file per gateway and day."""
    lines = []
    for log in sorted((demo / "collected" / "squid").rglob("access-*.log")):
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
    # The Windows stand-in's class too: the backup machine pulls its share over SMB.
    placed = {(place["data_class"], asset["hostname"]) for asset in _lab_assets() for place in asset.get("data", [])}
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
    assert newest[3] == in_uzbek("succeeded")
    assert {part.split(": ")[0] for part in newest[4].split(", ")} == devices


def test_the_digitisation_stations_book_is_in_the_digitised_resources(demo, sheets, in_lab):
    """The demo's page went through the station's real Tesseract (akm-ocr), whose register entry the
    report counts: one item, one page, the PDF's size."""
    station = next(a["hostname"] for a in _lab_assets() if "digitization" in a.get("profiles", []))
    pdf = f"{demo_module.DIGITISED_FOLDER}/{demo_module.DIGITISED_ITEM}.pdf"
    assert "Xonobod" in in_lab(station, "pdftotext", pdf, "-").stdout
    size = int(in_lab(station, "stat", "-c", "%s", pdf).stdout)
    (row,) = [r for r in _table(sheets, "digitised_collections") if r[0] == demo_module.DIGITISED_COLLECTION]
    assert row[1:4] == (1, 1, 1)
    assert row[5] == round(size / 2**20, 1)


def test_the_weekly_report_has_data_in_every_section(demo):
    """Issue 15: a week of the lab leaves something for every section to show."""
    (html,) = (demo / "report").glob("weekly-*.html")
    sections = html.read_text().split('<section id="')[1:]
    empty = [section.split('"')[0] for section in sections if '<p class="nodata">' in section]
    assert not empty, empty


CHARTS = (
    ("equipment_departments", "Items by department", (1,)),
    ("equipment_age", "Items by age and status", None),
    ("users_days", "Internet use by day, MiB", (2,)),
    ("users_segments", "Internet use by network segment, MiB", (2,)),
    ("users_departments", "Internet use by department, MiB", (2,)),
    ("users_denied", "Denied requests by category", (1,)),
    ("backups_days", "Backup runs by day and result", (1, 2, 3)),
    ("backups_days", "Size of the backups by day, MiB", (4, 5)),
    ("digitised_collections", "Items added in the period by collection", (2,)),
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
    title = texts[: texts.index(in_uzbek("Contents"))]
    director, it_head = (
        inventory.director,
        next(p for p in inventory.people_with("it_staff") if "head_of_department" in p.duties),
    )
    assert title[:3] == [in_uzbek("APPROVED"), director.position, f"____________________ {director.name}"]
    assert inventory.centre.name in title and inventory.centre.city in title
    assert f"{in_uzbek('Prepared by')}: {it_head.position} ____________________ {it_head.name}" in title
    assert any(t.startswith(in_uzbek("Weekly report") + ": ") for t in title)
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
            expected.append(in_uzbek(title))
    for title in ("Internet use by day, MiB", "Denied requests by category", "Backup runs by day and result"):
        assert in_uzbek(title) in expected, title
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


# The network the inventory describes: DHCP, DNS and time from the gateway, rule AX-2.1 (issue 16). -----


def _dhcp_client():
    """The lab asset whose LAN leg the inventory gives to DHCP, that interface, its segment, the inventory."""
    inventory = load_inventory(LAB_INVENTORY)
    for asset in inventory.assets:
        for interface in asset.interfaces:
            if interface.dhcp:
                return asset, interface, inventory.segments[interface.segment], inventory
    raise AssertionError("the lab inventory has no interface with dhcp: true")


def _absent_device(inventory, segment: str, plan):
    """A registered device of *segment* that is no lab machine (the lab's printer): its MAC and address are
    in the register, and nothing in the lab uses them."""
    machines = {m.hostname for m in plan.machines}
    return next(
        i
        for a in inventory.assets
        if a.hostname not in machines
        for i in a.interfaces
        if i.segment == segment and i.mac and i.ip is not None
    )


def _unknown_mac(inventory) -> str:
    known = {i.mac for a in inventory.assets for i in a.interfaces if i.mac}
    return next(m for m in (f"02:ee:00:00:00:{n:02x}" for n in range(1, 255)) if m not in known)


def _until(probe, what: str, seconds: float = 120):
    """Return *probe*'s first true answer, polling; fail saying *what* did not happen."""
    deadline = monotonic() + seconds
    while not (answer := probe()):
        assert monotonic() < deadline, f"{what}: not within {seconds:.0f} s"
        sleep(2)
    return answer


def _ipv4(in_lab, host: str, ifname: str) -> list[dict]:
    shown = json.loads(in_lab(host, "ip", "-j", "-4", "addr", "show", "dev", ifname).stdout or "[]")
    return shown[0]["addr_info"] if shown else []


def _leases(in_lab, gateway: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(in_lab(gateway, "cat", "/var/lib/kea/kea-leases4.csv").stdout)))


def _write(in_lab, host: str, path: str, text: str) -> None:
    """Write *text* into *path* on the lab machine *host* (one quoted command: SSH joins its words)."""
    in_lab(host, shlex.join(["sh", "-c", f"printf %s {shlex.quote(text)} > {shlex.quote(path)}"]))


def _lease(in_lab, host: str, ifname: str) -> dict[str, str]:
    """What the machine's DHCP client (systemd-networkd) recorded of its lease on *ifname*: the options
    the server sent, as networkd keeps them under /run (its own format, read here only by the test)."""
    (link,) = json.loads(in_lab(host, "ip", "-j", "link", "show", "dev", ifname).stdout)
    text = in_lab(host, "cat", f"/run/systemd/netif/leases/{link['ifindex']}", check=False).stdout
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#"))


@contextmanager
def _leg(segment: str, outer: str, inner: str, netns: str, mac: str):
    """A veth from *segment*'s bridge in the lab's switch into *netns* (named *inner* there, with *mac*),
    removed afterwards (and by ``make lab-down`` with the switch, whatever happens)."""
    veth = ["type", "veth", "peer", "name", inner, "netns", netns]
    subprocess.run(["ip", "-n", SWITCH_NETNS, "link", "add", outer, *veth], check=True)
    try:
        subprocess.run(
            ["ip", "-n", SWITCH_NETNS, "link", "set", outer, "master", bridge_name(segment), "up"], check=True
        )
        subprocess.run(["ip", "-n", netns, "link", "set", inner, "address", mac, "up"], check=True)
        yield
    finally:
        subprocess.run(["ip", "-n", SWITCH_NETNS, "link", "del", outer], check=False)


@contextmanager
def _dhcp_leg(in_lab, host: str, segment: str, inner: str, mac: str, dhcp: str = ""):
    """A leg on *segment* in the lab machine *host*, configured by the machine's own DHCP client
    (systemd-networkd, with extra ``[DHCPv4]`` settings *dhcp*)."""
    network = f"/etc/systemd/network/60-akm-test-{inner}.network"
    with _leg(segment, f"t-{inner}", inner, f"akm-{host}", mac):
        try:
            _write(in_lab, host, network, f"[Match]\nName={inner}\n\n[Network]\nDHCP=ipv4\n\n[DHCPv4]\n{dhcp}")
            in_lab(host, "networkctl", "reload")
            yield
        finally:
            in_lab(host, "rm", "-f", network, check=False)
            in_lab(host, "networkctl", "reload", check=False)


@contextmanager
def _device(segment, netns: str, mac: str, address):
    """A device of its own on *segment* (an inventory Segment): a namespace of the lab's with one leg,
    *mac* and the static *address*, routing the lab range through the segment's gateway."""
    subprocess.run(["ip", "netns", "add", netns], check=True)
    try:
        with _leg(segment.id, f"t-{netns.removeprefix('akm-')}", "eth0", netns, mac):
            _ns(netns, "ip", "addr", "add", f"{address}/{segment.subnet.prefixlen}", "dev", "eth0")
            _ns(netns, "ip", "route", "add", str(LAB_RANGE), "via", str(segment.gateway))
            yield
    finally:
        subprocess.run(["ip", "netns", "del", netns], check=False)


def _ns(netns: str, *command: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", "netns", "exec", netns, *command], capture_output=True, text=True, check=check)


def test_a_dhcp_workstation_gets_its_reservation_and_only_the_lab_routes(demo, running_lab, in_lab):
    asset, interface, segment, inventory = _dhcp_client()
    gateway = next(m.hostname for m in running_lab.machines if m.forwarding)
    leased = _until(
        lambda: [a for a in _ipv4(in_lab, asset.hostname, interface.name) if a.get("dynamic")], "a DHCP lease"
    )
    assert [(a["local"], a["prefixlen"]) for a in leased] == [(str(interface.ip), segment.subnet.prefixlen)]
    routes = json.loads(in_lab(asset.hostname, "ip", "-j", "-4", "route", "show").stdout)
    assert "default" not in {r["dst"] for r in routes}
    dhcp = {(r["dst"], r.get("gateway")) for r in routes if r.get("protocol") == "dhcp" and "gateway" in r}
    assert dhcp == {(str(net), str(segment.gateway)) for net in segment.routes}
    (lease,) = [row for row in _leases(in_lab, gateway) if row["address"] == str(interface.ip)][-1:]
    assert (lease["hwaddr"], lease["hostname"]) == (interface.mac, asset.hostname)
    # The client got its name from the reservation too (option 12), and the centre's domain.
    received = _lease(in_lab, asset.hostname, interface.name)
    assert (received["HOSTNAME"], received["DOMAINNAME"]) == (
        asset.hostname,
        inventory.centre.domain,
    )


def test_an_unknown_mac_gets_no_lease_where_a_registered_one_gets_its_reservation(demo, running_lab, in_lab):
    """A leg with an unknown MAC in the DHCP workstation's namespace, configured by the same DHCP client
    (systemd-networkd): the gateway's Kea sees its requests and gives nothing; with the MAC of a
    registered device (the printer, which the lab does not run) the same leg gets that device's address."""
    asset, _interface, segment, inventory = _dhcp_client()
    gateway = next(m.hostname for m in running_lab.machines if m.forwarding)
    registered, unknown = _absent_device(inventory, segment.id, running_lab), _unknown_mac(inventory)
    netns = f"akm-{asset.hostname}"
    since = "@" + in_lab(gateway, "date", "+%s").stdout.strip()
    with _dhcp_leg(in_lab, asset.hostname, segment.id, "rogue0", unknown):
        journal = ["journalctl", "-u", "kea-dhcp4-server", "--since", since, "-o", "cat"]
        _until(lambda: unknown in in_lab(gateway, *journal).stdout, "Kea hearing the unknown MAC")
        _until(lambda: in_lab(gateway, *journal).stdout.count(unknown) >= 3, "three requests of the unknown MAC")
        assert _ipv4(in_lab, asset.hostname, "rogue0") == []
        # A lease of that MAC on the guest segment (the guest test's, for 30 minutes) is no answer here.
        leases = _leases(in_lab, gateway)
        assert unknown not in {row["hwaddr"] for row in leases if IPv4Address(row["address"]) in segment.subnet}
        subprocess.run(["ip", "-n", netns, "link", "set", "rogue0", "address", registered.mac], check=True)
        in_lab(asset.hostname, "networkctl", "reconfigure", "rogue0")
        leased = _until(lambda: _ipv4(in_lab, asset.hostname, "rogue0"), "the registered MAC's lease")
        assert [a["local"] for a in leased] == [str(registered.ip)]


def test_a_static_address_with_an_unknown_mac_reaches_nothing_through_the_gateway(demo, running_lab):
    """Rule AX-2.1 without DHCP: a device that writes itself an address on the staff segment is dropped by
    the gateway's nftables (its MAC and address are no registered pair); the same leg with a registered
    pair reaches the gateway, which proves the leg itself works."""
    _asset, _interface, segment, inventory = _dhcp_client()
    registered, unknown = _absent_device(inventory, segment.id, running_lab), _unknown_mac(inventory)
    free = next(ip for ip in segment.subnet.hosts() if ip > registered.ip and ip not in {
        i.ip for a in inventory.assets for i in a.interfaces})  # fmt: skip
    netns = "akm-rogue"

    def proxy() -> subprocess.CompletedProcess:
        """Ask the gateway's proxy for a page (any HTTP answer means the packets got through)."""
        url = f"http://{segment.gateway}:3128/"
        return _ns(netns, "curl", "-s", "-o", "/dev/null", "--max-time", "5", url, check=False)

    with _device(segment, netns, unknown, free):
        assert proxy().returncode == 28  # timed out: dropped, not refused
        beyond = f"http://{running_lab.dns_server}/"  # the fake internet, through the gateway's routing
        assert _ns(netns, "curl", "-s", "-o", "/dev/null", "--max-time", "5", beyond, check=False).returncode == 28
    with _device(segment, netns, registered.mac, registered.ip):
        assert proxy().returncode == 0


def test_names_resolve_both_ways_and_a_denied_category_fails_already_in_dns(demo, running_lab, in_lab):
    asset, _interface, _segment, inventory = _dhcp_client()
    domain = inventory.centre.domain
    server = next(a for a in inventory.assets if "file_server" in a.profiles)
    address = str(server.ip_on("servers"))
    # <host>.<segment>.<domain>: a name only the DNS knows (/etc/hosts lists <host>.<domain> too).
    forward = in_lab(asset.hostname, "getent", "ahostsv4", f"{server.hostname}.servers.{domain}").stdout.split()
    assert forward[0] == address
    assert f"{server.hostname}.{domain}" in in_lab(asset.hostname, "getent", "hosts", address).stdout.split()
    # The lab policy restricts social networks for the readers (settings.restricted): their DNS refuses
    # the name, so a reader's HTTPS without any proxy fails at the lookup; an allowed site resolves.
    reader = next(m.hostname for m in running_lab.machines if "reader" in m.profiles)
    denied = next(s.domain for s in running_lab.sites if s.category == "social")
    allowed = next(s.domain for s in running_lab.sites if s.category == "news")
    assert in_lab(reader, "getent", "hosts", denied, check=False).returncode == 2
    looked_up = in_lab(reader, "curl", "-sS", "--noproxy", "*", "--max-time", "10", f"https://{denied}/", check=False)
    assert looked_up.returncode == 6, looked_up.stderr  # curl: could not resolve host
    assert in_lab(reader, "getent", "ahostsv4", allowed).stdout.split()[0] == str(running_lab.dns_server)


def test_every_host_keeps_time_with_the_gateway_and_the_gateway_with_its_upstream(demo, running_lab, in_lab):
    inventory = load_inventory(LAB_INVENTORY)
    gateway = next(m for m in running_lab.machines if m.forwarding)
    gateway_ips = {str(p.address.ip) for p in gateway.ports}
    for machine in running_lab.machines:
        if machine.internet:
            continue
        wanted = set(inventory.centre.upstream.ntp) if machine is gateway else gateway_ips

        # A host that booted before the gateway served time polls it slowly at first: ask for a burst.
        in_lab(machine.hostname, "chronyc", "burst", "4/4")

        def synced(host=machine.hostname, wanted=wanted):
            rows = [line.split(",") for line in in_lab(host, "chronyc", "-n", "-c", "sources").stdout.splitlines()]
            return [row for row in rows if row[2] in wanted and row[1] == "*" and int(row[5], 8) > 0]

        _until(synced, f"{machine.hostname} synchronised to {sorted(wanted)}")


def test_the_production_gateways_dhcp_and_dns_pass_the_daemons_own_checks(demo, running_lab, in_lab, tmp_path):
    """The configuration built from the production inventory goes through the real Kea's and Unbound's
    own checks, the binaries of the lab gateway (the control node has neither daemon). Kea's check also
    wants the interfaces it names: it runs in a namespace made with the production gateway's legs."""
    out = tmp_path / "production"
    done = _akm("policy", "build", "--inventory", str(REPO / "inventory/production"), "--out", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    gateway = next(m.hostname for m in running_lab.machines if m.forwarding)
    root = machine_dir(running_lab.state_dir, gateway) / "root"
    (kea,) = (out / "kea").iterdir()
    (unbound,) = (out / "unbound").iterdir()
    legs = json.loads(kea.read_text())["Dhcp4"]["interfaces-config"]["interfaces"]
    netns = "akm-kea-check"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    try:
        for number, leg in enumerate(legs):
            subprocess.run(
                ["ip", "-n", netns, "link", "add", leg, "type", "veth", "peer", "name", f"kc{number}"], check=True
            )
        for built, command in ((kea, ["kea-dhcp4", "-t"]), (unbound, ["unbound-checkconf"])):
            copy = root / "var/tmp" / f"akm-production-{built.name}"  # /tmp is the machine's own tmpfs
            copy.write_text(built.read_text())
            try:
                checked = _ns(netns, "chroot", str(root), *command, f"/var/tmp/{copy.name}", check=False)
            finally:
                copy.unlink()
            assert checked.returncode == 0, (built.name, checked.stdout[-2000:], checked.stderr[-2000:])
    finally:
        subprocess.run(["ip", "netns", "del", netns], check=False)


def test_a_client_finds_the_proxy_by_wpad_from_dhcp_and_dns(demo, running_lab, in_lab):
    """The DHCP lease carries the proxy auto-configuration's address (option 252), the name in it resolves
    in the centre's DNS, and the gateway serves there a PAC file that names its proxy."""
    asset, interface, _segment, inventory = _dhcp_client()
    domain, gateway = inventory.centre.domain, next(m.hostname for m in running_lab.machines if m.forwarding)
    # A lease taken before this release lacks the option: the client renews, as it does by itself at T1.
    in_lab(asset.hostname, "networkctl", "renew", interface.name)
    option = _until(lambda: _lease(in_lab, asset.hostname, interface.name).get("OPTION_252"), "option 252")
    url = bytes.fromhex(option).decode().rstrip("\0")
    assert url == f"http://wpad.{domain}/wpad.dat"
    fetched = in_lab(asset.hostname, "curl", "-sS", "-i", "--noproxy", "*", "--max-time", "10", url).stdout
    assert "application/x-ns-proxy-autoconfig" in fetched.lower()
    assert f'return "PROXY {gateway}.{domain}:3128";' in fetched


def test_a_guest_gets_a_short_pool_lease_and_its_web_is_filtered_without_any_proxy_setting(demo, running_lab, in_lab):
    """A device of nobody's register on the guest Wi-Fi: DHCP lends it a pool address for the pool's short
    lease; with no proxy setting at all its web requests are decided by the proxy (interception) and a
    denied site's name does not resolve for its segment, while an allowed site loads over HTTPS."""
    asset, _interface, _segment, inventory = _dhcp_client()
    guest = next(s for s in inventory.segments.values() if s.pool is not None)
    gateway = next(m for m in running_lab.machines if m.forwarding)
    gateway_guest_ip = str(guest.gateway)
    unknown = _unknown_mac(inventory)
    # Its own route metric, so the guest leg's lab route does not clash with the workstation's own.
    with _dhcp_leg(in_lab, asset.hostname, guest.id, "guest0", unknown, "RouteMetric=2048\n"):
        leased = _until(lambda: _ipv4(in_lab, asset.hostname, "guest0"), "a guest lease")
        address = IPv4Address(leased[0]["local"])
        assert guest.pool.first <= address <= guest.pool.last
        (lease,) = [row for row in _leases(in_lab, gateway.hostname) if row["hwaddr"] == unknown][-1:]
        assert int(lease["valid_lifetime"]) == guest.pool.lease_minutes * 60

    allowed = next(s for s in running_lab.sites if s.category == "news" and s.https)
    denied = next(s for s in running_lab.sites if s.category == "social")
    site_ip = str(running_lab.dns_server)
    guest_ns = "akm-guest"

    def fetch(url: str, port: int) -> str:
        host = url.split("/")[2]
        done = _ns(
            guest_ns,
            "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--noproxy", "*", "--max-time", "10",
            "--cacert", str(running_lab.state_dir / "ca" / "ca.crt"),
            "--resolve", f"{host}:{port}:{site_ip}", url,
            check=False,
        )  # fmt: skip
        return done.stdout

    with _device(guest, guest_ns, unknown, guest.pool.last):
        assert fetch(f"http://{allowed.domain}/", 80) == "200"
        assert fetch(f"http://{denied.domain}/", 80) == "403"
        assert fetch(f"https://{allowed.domain}/", 443) == "200"

    def ask(name: str) -> str:
        # Asked from the gateway's own address on the guest segment: Unbound answers it as a guest.
        return in_lab(gateway.hostname, "dig", "-b", gateway_guest_ip, f"@{gateway_guest_ip}", name, "A").stdout

    assert "status: NXDOMAIN" in ask(denied.domain)
    assert "status: NOERROR" in ask(allowed.domain) and site_ip in ask(allowed.domain)
