"""Personal proxy logins for the staff, pushed by the real playbook onto the lab's gateway and proven with
the real Squid (issue 19, deliverable 5).

The module pushes the lab's policy with ``settings.staff_login: required`` (a copy of
``policies/access/lab`` with that one line added) and the lab vault, then shows from a staff computer
that is *not* the grant's person's own: with the person's login the granted site loads (200), without a
login Squid asks for one (407), with another person's login it is denied (403); the reader kiosk stays
anonymous (no login asked, its restricted site denied, an ordinary one loaded); the access log names the
person for the staff and nobody for the reader; the staff's direct web is dropped (never intercepted);
the gateway's password file holds bcrypt hashes, never a password. Afterwards the ordinary lab policy is
pushed again and the machines are reset.

It needs two staff computers in the lab inventory (``profiles: [staff]`` on the staff segment): the one
the grant's person is responsible for and one of someone else.
"""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

import pytest
import yaml

from akm.inventory import load_inventory
from akm.lab import lab
from tests.conftest import LAB_INVENTORY, REPO

from .test_lab_push import ALLOWED, GATEWAY, READER, RESTRICTED, ok, playbook

pytestmark = pytest.mark.lab

PASSWORD_FILE = "/etc/squid/akm-passwords"  # access_policy_password_file's default
LAB_POLICY = REPO / "policies" / "access" / "lab"


def _quiet(_message: str) -> None:
    """Swallow the lab's progress messages."""


@pytest.fixture(scope="module")
def setup(running_lab, in_lab, tmp_path_factory):
    """The lab's policy with staff logins pushed with the lab vault; who is who; the vault's passwords.
    The touched machines are reset and the ordinary lab policy pushed again afterwards."""
    from akm import vault
    from akm.lab.lab import SECRETS_FILE, lab_secrets, simulator_files
    from akm.net.vault import read_vault

    inventory = load_inventory(LAB_INVENTORY)
    grants = yaml.safe_load((LAB_POLICY / "grants.yml").read_text())["grants"]
    grant = next(g for g in grants if g["who"].startswith("person:") and "category:social" in g["allow"])
    person = grant["who"].split(":", 1)[1]
    staff = [a for a in inventory.assets if "staff" in a.profiles and a.status == "in_use" and a.ip_on("staff")]
    own = [a.hostname for a in staff if a.responsible == person]
    others = [a for a in staff if a.responsible != person]
    assert own and others, (
        f"the lab inventory needs a second staff computer: {person} is responsible for {own} "
        "and there is no other staff computer to log in from"
    )
    other_pc = others[0]
    other_person = other_pc.responsible

    lab_secrets(running_lab)
    files = simulator_files(running_lab.state_dir)
    (variable,) = [s.name for s in vault.load(SECRETS_FILE) if s.shape == "per_person"]
    passwords = read_vault(files["vault"], files["vault_password"])[variable]
    with_vault = ("-e", f"@{files['vault']}", "--vault-password-file", str(files["vault_password"]))

    # The lab's policy with one line more, beside a copy of the lists it names (../lists).
    root = tmp_path_factory.mktemp("staff-login")
    policy = root / "lab"
    shutil.copytree(LAB_POLICY, policy)
    shutil.copytree(LAB_POLICY.parent / "lists", root / "lists")
    settings = policy / "settings.yml"
    settings.write_text(settings.read_text().replace("settings:\n", "settings:\n  staff_login: required\n", 1))

    def push(*extra: str):
        return playbook("access-policy.yml", "-e", f"access_policy_check_url=http://{ALLOWED}/", *with_vault, *extra)

    hosts = (GATEWAY, READER, *own, other_pc.hostname)
    for host in hosts:
        lab.reset(running_lab, host, log=_quiet)
    ok(playbook("gateway.yml", "--limit", ",".join(hosts), *with_vault))
    ok(push("-e", f"access_policy_policy_dir={policy}"))
    gateway = inventory.asset(GATEWAY)
    yield {
        "person": person,
        "other_person": other_person,
        "pc": other_pc.hostname,
        "pc_ip": str(other_pc.ip_on("staff")),
        "passwords": passwords,
        "proxy": f"http://{gateway.ip_on('staff')}:3128",
        "reader_proxy": f"http://{gateway.ip_on('readers')}:3128",
        "reader_ip": str(inventory.asset(READER).ip_on("readers")),
        "internet": str(inventory.lab.internet.ip),
    }
    ok(push())
    for host in hosts:
        lab.reset(running_lab, host, log=_quiet)


def web(in_lab, host: str, proxy: str, url: str, login: tuple[str, str] | None = None) -> str:
    """HTTP status of *url* fetched on *host* through *proxy*, with *login* or none."""
    auth = ["--proxy-user", f"{login[0]}:{login[1]}"] if login else []
    done = in_lab(
        host,
        "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10", "--proxy", proxy, *auth, url,
        check=False,
    )  # fmt: skip
    return done.stdout.strip()


def test_the_grant_follows_its_person_to_another_staff_computer_only_with_their_login(setup, in_lab):
    person, other = setup["person"], setup["other_person"]
    mine = (person, setup["passwords"][person])
    theirs = (other, setup["passwords"][other])
    pc, proxy = setup["pc"], setup["proxy"]
    assert web(in_lab, pc, proxy, f"http://{RESTRICTED}/", mine) == "200"
    assert web(in_lab, pc, proxy, f"http://{RESTRICTED}/") == "407"
    assert web(in_lab, pc, proxy, f"http://{RESTRICTED}/", (person, mine[1] + "x")) == "407"
    assert web(in_lab, pc, proxy, f"http://{RESTRICTED}/", theirs) == "403"
    assert web(in_lab, pc, proxy, f"http://{ALLOWED}/", theirs) == "200"


def test_a_reader_kiosk_stays_anonymous(setup, in_lab):
    proxy = setup["reader_proxy"]
    assert web(in_lab, READER, proxy, f"http://{ALLOWED}/") == "200"
    assert web(in_lab, READER, proxy, f"http://{RESTRICTED}/") == "403"


def test_the_access_log_names_the_person_for_the_staff_and_nobody_for_the_reader(setup, in_lab):
    person = setup["person"]
    login = (person, setup["passwords"][person])
    assert web(in_lab, setup["pc"], setup["proxy"], f"http://{RESTRICTED}/login-probe", login) == "200"
    assert web(in_lab, READER, setup["reader_proxy"], f"http://{ALLOWED}/login-probe") == "200"
    fields = [line.split() for line in in_lab(GATEWAY, "cat", "/var/log/squid/akm/access.log").stdout.splitlines()]
    staff = [f for f in fields if f[2] == setup["pc_ip"] and f[6] == f"http://{RESTRICTED}/login-probe"]
    reader = [f for f in fields if f[2] == setup["reader_ip"] and f[6] == f"http://{ALLOWED}/login-probe"]
    assert staff and {f[7] for f in staff} == {person}, fields[-5:]
    assert reader and {f[7] for f in reader} == {"-"}, fields[-5:]


def test_the_staff_web_is_never_intercepted_and_its_direct_web_is_dropped(setup, in_lab):
    host = RESTRICTED
    done = in_lab(
        setup["pc"],
        "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--noproxy", "*", "--max-time", "5",
        "--resolve", f"{host}:80:{setup['internet']}", f"http://{host}/",
        check=False,
    )  # fmt: skip
    assert done.returncode == 28, done.stdout + done.stderr  # timed out: dropped, not a proxy's answer


def test_the_gateway_keeps_only_bcrypt_hashes_of_the_logins(setup, in_lab):
    text = in_lab(GATEWAY, "cat", PASSWORD_FILE).stdout
    mode = in_lab(GATEWAY, shlex.join(["stat", "-c", "%a %U %G", PASSWORD_FILE])).stdout.split()
    assert mode == ["640", "root", "proxy"]
    entries = dict(line.split(":", 1) for line in text.splitlines())
    assert set(entries) == set(setup["passwords"])
    assert all(value.startswith("$2b$") for value in entries.values())
    assert not any(password in text for password in setup["passwords"].values())
    release = in_lab(GATEWAY, "cat /etc/akm/access-policy/current/squid/*.conf").stdout
    assert not any(password in release for password in setup["passwords"].values())
    assert Path(PASSWORD_FILE).name in release
