"""The host firewalls pushed by the real playbook onto the lab's Linux hosts, proven with real connections.

``playbooks/host-firewall.yml`` (role ``access_policy``, the access policy's commit-confirmed push) runs
against the lab inventory; then, from the machines themselves: a reader kiosk reaches neither the file
server's SSH nor another kiosk, on any of their addresses; a staff workstation reaches its department's
Samba share and lists it with its person's login; the control node's SSH still reaches every Linux host; a
release whose ruleset ``nft -c`` refuses never becomes active; a release that shuts out the control node
and the management host is rolled back by the host itself, and each push or rollback leaves an evidence
record on the host.

It runs right after the demo (file order), on the converged lab the tests need (Samba and the package
cache on srv): the role scenarios later reset machines to a single role. The firewalls stay: they are the
lab's state after ``make demo`` (site.yml pushes them last). The releases built from a wrong inventory are
rolled back or rejected, so the lab ends as it began.
"""

from __future__ import annotations

import json
import shlex
import shutil
import time
from pathlib import Path

import pytest
import yaml

from akm.inventory import load_inventory
from akm.inventory.model import is_debian
from tests.conftest import LAB_INVENTORY
from tests.policy.test_lab_push import built_from, ok, playbook, recap

pytestmark = pytest.mark.lab

SERVER, KIOSK, OTHER_KIOSK, STAFF = "srv", "oqish-01", "oqish-02", "xodim-01"
EVIDENCE = "/var/lib/akm/evidence/access-policy"
CURRENT = "/etc/akm/access-policy/current"
CONNECT = (
    "import socket, sys\n"
    "try:\n    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3).close()\n"
    "except OSError:\n    sys.exit(1)\n"
)


def push(*extra: str) -> object:
    return playbook("host-firewall.yml", *extra)


@pytest.fixture(scope="module")
def inventory():
    return load_inventory(LAB_INVENTORY)


@pytest.fixture(scope="module")
def firewalls(running_lab, in_lab):
    """The host firewalls pushed once (a lab after the demo already has them: then nothing changes)."""
    for unit in ("smbd", "apt-cacher-ng"):
        active = in_lab(SERVER, "systemctl", "is-active", unit, check=False).stdout.strip()
        assert active == "active", f"{unit} does not run on {SERVER}: the lab is not converged, run the demo first"
    return ok(push())


def reaches(in_lab, source: str, address: str, port: int) -> bool:
    """True when *source* opens a TCP connection to *address*:*port* within 3 s."""
    done = in_lab(source, shlex.join(["python3", "-c", CONNECT, address, str(port)]), check=False, timeout=30)
    return done.returncode == 0


def addresses(inventory, host: str) -> list[str]:
    return [str(i.ip) for i in inventory.asset(host).interfaces if i.ip is not None]


def evidence(in_lab, host: str) -> list[dict]:
    names = in_lab(host, "ls", "-1", EVIDENCE).stdout.split()
    return [json.loads(in_lab(host, "cat", f"{EVIDENCE}/{name}").stdout) | {"file": name} for name in sorted(names)]


def test_every_linux_host_holds_its_ruleset_and_the_control_node_still_reaches_it(firewalls, in_lab, inventory):
    linux = [a.hostname for a in inventory.assets if a.status == "in_use" and is_debian(a.os)]
    for host in linux:
        assert in_lab(host, "true", check=False).returncode == 0, f"the control node lost SSH to {host}"
        if "gateway" in inventory.asset(host).profiles:
            continue
        table = in_lab(host, "nft", "list", "table", "inet", "akm_host").stdout
        assert "policy drop;" in table and "management SSH is always allowed" in table
        assert in_lab(host, "readlink", CURRENT).stdout.strip().split("/")[-1].startswith("r-")
    second = push()
    for host in linux:
        if "gateway" not in inventory.asset(host).profiles:
            assert recap(ok(second), host)["changed"] == 0


def test_a_kiosk_reaches_neither_the_servers_ssh_nor_another_kiosk(firewalls, in_lab, inventory):
    for address in addresses(inventory, SERVER):
        assert not reaches(in_lab, KIOSK, address, 22), f"{KIOSK} reached {SERVER}'s SSH at {address}"
    for address in addresses(inventory, OTHER_KIOSK):
        for port in (22, 445):
            assert not reaches(in_lab, KIOSK, address, port), f"{KIOSK} reached {OTHER_KIOSK} at {address}:{port}"
    # What a kiosk needs still answers: the package cache on the server, by the name /etc/hosts gives it.
    assert reaches(in_lab, KIOSK, SERVER, 3142)


def test_a_staff_workstation_lists_its_departments_share(firewalls, running_lab, in_lab, inventory):
    from akm import vault
    from akm.lab.lab import SECRETS_FILE, simulator_files
    from akm.net.vault import read_vault

    person = inventory.asset(STAFF).responsible
    share = inventory.people[person].department
    files = simulator_files(running_lab.state_dir)
    (variable,) = [s.name for s in vault.load(SECRETS_FILE) if s.shape == "per_person"]
    password = read_vault(files["vault"], files["vault_password"])[variable][person]
    server_lan = str(inventory.asset(SERVER).ip_on("servers"))
    for address in (SERVER, server_lan):
        assert reaches(in_lab, STAFF, address, 445), f"{STAFF} cannot reach Samba at {address}"
    if in_lab(STAFF, "command -v smbclient", check=False).returncode != 0:
        in_lab(STAFF, "apt-get", "install", "-y", "-q", "smbclient", timeout=600)
    for address in (SERVER, server_lan):
        listed = in_lab(
            STAFF, "env", f"PASSWD={password}", "smbclient", f"//{address}/{share}", "-U", person, "-c", "ls",
            check=False, timeout=60,
        )  # fmt: skip
        assert listed.returncode == 0, listed.stdout + listed.stderr
        assert "blocks of size" in listed.stdout


def _wrong_inventory(tmp_path: Path, edit) -> Path:
    wrong = tmp_path / "lab"
    shutil.copytree(LAB_INVENTORY, wrong)
    edit(wrong)
    return wrong


def test_a_ruleset_nft_refuses_never_goes_live(firewalls, in_lab, tmp_path):
    """An SSH port out of range in the inventory the release is built from: ``nft -c`` on the host
    refuses the ruleset, nothing is switched, and a ``rejected`` record is written."""

    def edit(root: Path) -> None:
        assets = root / "assets.yml"
        data = yaml.safe_load(assets.read_text())
        kiosk = next(a for a in data["assets"] if a["hostname"] == OTHER_KIOSK)
        kiosk["vars"] = {**kiosk.get("vars", {}), "ansible_port": 70000}
        assets.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))

    before, records = in_lab(OTHER_KIOSK, "readlink", CURRENT).stdout, evidence(in_lab, OTHER_KIOSK)
    done = push("--limit", OTHER_KIOSK, *built_from(_wrong_inventory(tmp_path, edit)))
    assert done.returncode != 0
    assert "Validate the nftables ruleset of the release on the host" in done.stdout
    assert in_lab(OTHER_KIOSK, "readlink", CURRENT).stdout == before
    assert "dport 70000" not in in_lab(OTHER_KIOSK, "nft", "list", "table", "inet", "akm_host").stdout
    new = evidence(in_lab, OTHER_KIOSK)[len(records) :]
    assert [(r["result"], r["outcome"]) for r in new] == [("failed", "rejected")]


def test_a_ruleset_that_shuts_out_management_is_rolled_back_by_itself(firewalls, in_lab, inventory, tmp_path):
    """The operator's mistake: the control node's address and the management host's profile wrong in the
    inventory the release is built from, so the new ruleset admits neither; the health check (a new SSH
    connection from the control node) fails and the host puts the previous release back."""

    def edit(root: Path) -> None:
        lab = root / "lab.yml"
        control = str(inventory.lab.control.ip)
        lab.write_text(lab.read_text().replace(f"ip: {control}}}", "ip: 198.19.255.249}"))
        assets = root / "assets.yml"
        assets.write_text(
            assets.read_text().replace(
                "profiles: [file_server, package_cache, management]", "profiles: [file_server, package_cache]"
            )
        )

    wrong = _wrong_inventory(tmp_path, edit)
    assert str(inventory.lab.control.ip) not in (wrong / "lab.yml").read_text()
    before, records = in_lab(OTHER_KIOSK, "readlink", CURRENT).stdout, evidence(in_lab, OTHER_KIOSK)
    done = push(
        "--limit", OTHER_KIOSK, *built_from(wrong),
        "-e", "access_policy_confirm_timeout=30", "-e", "access_policy_check_timeout=5",
    )  # fmt: skip
    assert done.returncode != 0
    assert "rolled back" in done.stdout, done.stdout[-3000:]
    deadline = time.monotonic() + 90
    while in_lab(OTHER_KIOSK, "true", check=False, timeout=15).returncode != 0:
        assert time.monotonic() < deadline, "the control node's SSH did not come back"
        time.sleep(3)
    assert in_lab(OTHER_KIOSK, "readlink", CURRENT).stdout == before
    admins = in_lab(OTHER_KIOSK, "nft", "list", "set", "inet", "akm_host", "admins").stdout
    assert str(inventory.lab.control.ip) in admins
    assert str(inventory.asset(SERVER).ip_on("management")) in admins
    new = evidence(in_lab, OTHER_KIOSK)[len(records) :]
    assert "rolled_back" in [r.get("outcome") for r in new]
    assert "policy.rollback" in [r["kind"] for r in new]
