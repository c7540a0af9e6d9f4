"""The access policy pushed by the real playbook onto the lab's gateway, proven with real traffic.

The module converges ``playbooks/gateway.yml`` (gateway role on ``gw``, proxy_client on the two client
machines it uses) and pushes ``playbooks/access-policy.yml``, then checks from the clients what the
policy says: a reader is denied a restricted site and gets an allowed one through the real Squid,
web without proxy settings is intercepted and direct HTTPS dropped by the nftables ruleset the
gateway's kernel holds, the staff grant works until the clock of the check passes its expiry, a
release Squid rejects never becomes active, a release that cuts the management path or whose DNS
cannot start is rolled back by itself, the attempts are in Squid's access log with the client's
address, and each push that changes something leaves an evidence record.

The machines it touches are reset before and after, so the other lab tests see plain machines.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from akm.inventory import load_inventory
from akm.lab import lab
from tests.conftest import LAB_INVENTORY, REPO, playbook_recap

pytestmark = pytest.mark.lab

GATEWAY, READER, STAFF = "gw", "oqish-01", "xodim-01"
ALLOWED, RESTRICTED = "kun.uz", "facebook.com"
GRANT_EXPIRES = "2027-06-30"  # G-LAB-001 in policies/access/lab/grants.yml
EVIDENCE = "/var/lib/akm/evidence/access-policy"
CURRENT = "/etc/akm/access-policy/current"


def _quiet(_message: str) -> None:
    """Swallow the lab's progress messages."""


def playbook(name: str, *extra: str) -> subprocess.CompletedProcess:
    """Run ``playbooks/<name>`` against the lab inventory as an operator would."""
    binaries = Path(sys.executable).parent
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "ANSIBLE_NOCOLOR": "1",
        "PATH": f"{binaries}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    return subprocess.run(
        [str(binaries / "ansible-playbook"), "-i", str(LAB_INVENTORY / "akm.yml"), f"playbooks/{name}", *extra],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def push(*extra: str) -> subprocess.CompletedProcess:
    """Push the lab's access policy with the health check on an allowed site."""
    return playbook("access-policy.yml", "-e", f"access_policy_check_url=http://{ALLOWED}/", *extra)


def built_from(inventory: Path) -> list[str]:
    """The extra variables of a push whose release is built from the inventory copy *inventory* (with
    the lab's policy), while Ansible still reaches the machines through the lab inventory."""
    return [
        "-e",
        f"access_policy_inventory={inventory}",
        "-e",
        f"access_policy_policy_dir={REPO / 'policies/access/lab'}",
    ]


def recap(done: subprocess.CompletedProcess, host: str = GATEWAY) -> dict[str, int]:
    """The PLAY RECAP counters of *host*."""
    counts = playbook_recap(done.stdout)
    assert host in counts, done.stdout[-3000:]
    return counts[host]


def ok(done: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    return done


@pytest.fixture(scope="module")
def addresses() -> dict[str, str]:
    """Each client's address on its LAN segment, read from the inventory."""
    inventory = load_inventory(LAB_INVENTORY)
    return {
        READER: str(inventory.asset(READER).ip_on("readers")),
        STAFF: str(inventory.asset(STAFF).ip_on("staff")),
        "internet": str(inventory.lab.internet.ip),
        "management": str(inventory.segments["management"].subnet),
    }


@pytest.fixture(scope="module")
def gateway(running_lab, in_lab):
    """The gateway converged and the policy pushed once; the touched machines are reset afterwards."""
    hosts = (GATEWAY, READER, STAFF)
    for host in hosts:
        lab.reset(running_lab, host, log=_quiet)
    ok(playbook("gateway.yml", "--limit", ",".join(hosts)))
    first = ok(push())
    # The staff machine takes its address from its reservation, which exists from the push on; its DHCP
    # client asks again by itself (networkctl renew only makes that sooner).
    staff_ip = str(load_inventory(LAB_INVENTORY).asset(STAFF).ip_on("staff"))
    deadline = time.monotonic() + 120
    while staff_ip not in in_lab(STAFF, "ip", "-4", "-o", "addr", "show").stdout:
        assert time.monotonic() < deadline, f"{STAFF} got no DHCP lease for {staff_ip}"
        in_lab(STAFF, "networkctl", "renew", "eth0", check=False)
        time.sleep(3)
    yield first
    for host in hosts:
        lab.reset(running_lab, host, log=_quiet)


def web(in_lab, host: str, url: str, *curl: str) -> str:
    """HTTP status of *url* fetched on *host* with its own settings (the proxy from /etc/environment)."""
    done = in_lab(
        host, "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10", *curl, url, check=False
    )
    return done.stdout.strip()


def evidence(in_lab) -> list[dict]:
    """The evidence records on the gateway, oldest first."""
    names = in_lab(GATEWAY, "ls", "-1", EVIDENCE).stdout.split()
    return [json.loads(in_lab(GATEWAY, "cat", f"{EVIDENCE}/{name}").stdout) | {"file": name} for name in sorted(names)]


def current_release(in_lab) -> str:
    return in_lab(GATEWAY, "readlink", CURRENT).stdout.strip()


def test_first_push_is_confirmed_and_recorded(gateway, in_lab):
    records = evidence(in_lab)
    assert records[-1]["kind"] == "policy.push" and records[-1]["outcome"] == "confirmed"
    assert records[-1]["release"] == Path(current_release(in_lab)).name
    assert records[-1]["revision"] and records[-1]["host"] == GATEWAY
    assert "nftables/gw.nft" in records[-1]["changes"]


def test_a_second_push_changes_nothing(gateway, in_lab):
    before = evidence(in_lab)
    counters = recap(ok(push()))
    assert counters["changed"] == 0 and counters["failed"] == 0
    assert evidence(in_lab) == before


def test_the_gateway_runs_in_the_centres_time_zone_and_forwards(gateway, in_lab):
    assert in_lab(GATEWAY, "date", "+%Z").stdout.strip() == "+05"
    assert in_lab(GATEWAY, "cat", "/proc/sys/net/ipv4/ip_forward").stdout.strip() == "1"
    assert in_lab(GATEWAY, "systemctl", "is-active", "squid").stdout.strip() == "active"


def test_a_reader_is_denied_a_restricted_site_and_gets_an_allowed_one(gateway, in_lab, addresses):
    assert web(in_lab, READER, f"http://{RESTRICTED}/") == "403"
    assert web(in_lab, READER, f"http://{ALLOWED}/") == "200"
    page = in_lab(READER, "curl", "-sS", "--max-time", "10", f"https://{ALLOWED}/kitoblar").stdout
    assert f"akm-lab site {ALLOWED}" in page
    refused = in_lab(READER, "curl", "-sS", "--max-time", "10", f"https://{RESTRICTED}/", check=False)
    assert refused.returncode != 0 and "403" in refused.stderr


def test_the_attempts_are_in_the_access_log_with_the_readers_address(gateway, in_lab, addresses):
    assert web(in_lab, READER, f"http://{RESTRICTED}/log-probe") == "403"
    assert web(in_lab, READER, f"http://{ALLOWED}/log-probe") == "200"
    log = in_lab(GATEWAY, "cat", "/var/log/squid/akm/access.log").stdout.splitlines()
    # Squid's native format: time, elapsed, client, code/status, bytes, method, URL, user, peer, type.
    mine = [line.split() for line in log if line.split()[2:3] == [addresses[READER]]]
    assert any(f[3] == "TCP_DENIED/403" and f[6] == f"http://{RESTRICTED}/log-probe" for f in mine), log[-5:]
    assert any(f[3].endswith("/200") and f[6] == f"http://{ALLOWED}/log-probe" for f in mine), log[-5:]


def test_without_proxy_settings_web_is_intercepted_and_https_dropped_by_the_kernels_ruleset(gateway, in_lab, addresses):
    """A reader that ignores its proxy settings: its web requests (port 80) reach the proxy all the same,
    which decides them as the policy says; its direct HTTPS is dropped and logged by the forward chain."""
    ruleset = in_lab(GATEWAY, "nft", "list", "ruleset").stdout
    forward = ruleset[ruleset.index("chain forward") :]
    assert "policy drop;" in forward.splitlines()[1]
    assert 'log prefix "akm-bypass " drop' in forward

    def direct(url: str, port: int, *curl: str) -> subprocess.CompletedProcess:
        host = url.split("/")[2]
        return in_lab(
            READER,
            "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--noproxy", "*", "--max-time", "5",
            "--resolve", f"{host}:{port}:{addresses['internet']}", *curl, url,
            check=False,
        )  # fmt: skip

    assert direct(f"http://{ALLOWED}/", 80).stdout == "200"
    assert direct(f"http://{RESTRICTED}/", 80).stdout == "403"
    https = direct(f"https://{ALLOWED}/", 443)
    assert https.returncode == 28, https.stderr  # timed out: the packets were dropped, not refused
    log = in_lab(GATEWAY, "cat", "/var/log/squid/akm/access.log").stdout
    assert any(addresses[READER] in line and f"http://{RESTRICTED}/" in line for line in log.splitlines())


def test_the_staff_grant_works_until_the_clock_of_the_check_passes_its_expiry(gateway, in_lab):
    assert web(in_lab, STAFF, f"http://{RESTRICTED}/") == "200"
    ok(push("-e", f"access_policy_at={GRANT_EXPIRES}T00:01"))
    assert web(in_lab, STAFF, f"http://{RESTRICTED}/") == "403"
    assert evidence(in_lab)[-1]["policy_at"] == f"{GRANT_EXPIRES}T00:01"
    assert evidence(in_lab)[-1]["outcome"] == "confirmed"
    ok(push("-e", f"access_policy_at={GRANT_EXPIRES[:-2]}29T23:59"))
    assert web(in_lab, STAFF, f"http://{RESTRICTED}/") == "200"


def test_a_release_squid_rejects_never_reaches_the_running_config(gateway, in_lab):
    before, records = current_release(in_lab), evidence(in_lab)
    # A space in the log directory makes Squid stop at the access_log line ("Bungled ...").
    done = push("-e", "access_policy_log_dir='/var/log/squid/akm rejected'")
    assert done.returncode != 0
    assert "rejected" in done.stdout and "running configuration is" in done.stdout
    assert current_release(in_lab) == before
    assert "akm rejected" not in in_lab(GATEWAY, "squid", "-k", "parse", check=False).stderr
    assert web(in_lab, READER, f"http://{ALLOWED}/") == "200"
    assert web(in_lab, READER, f"http://{RESTRICTED}/") == "403"
    new = evidence(in_lab)[len(records) :]
    assert [(r["result"], r["outcome"]) for r in new] == [("failed", "rejected")]
    assert "Validate the Squid configuration" in new[0]["reason"]


def test_a_release_that_cuts_the_management_path_is_rolled_back_by_itself(gateway, in_lab, tmp_path, addresses):
    before, records = current_release(in_lab), evidence(in_lab)
    # The operator's mistake: the management segment labelled as a server segment in the inventory the
    # policy is built from, so the ruleset no longer lets the control node reach SSH.
    wrong = tmp_path / "lab"
    shutil.copytree(LAB_INVENTORY, wrong)
    network = wrong / "network.yml"
    text = network.read_text()
    network.write_text(text.replace("purpose: management", "purpose: servers"))
    done = push(*built_from(wrong), "-e", "access_policy_confirm_timeout=30", "-e", "access_policy_check_timeout=5")
    assert done.returncode != 0
    assert "rolled back" in done.stdout
    deadline = time.monotonic() + 90
    while in_lab(GATEWAY, "true", check=False, timeout=15).returncode != 0:
        assert time.monotonic() < deadline, "management SSH did not come back"
        time.sleep(3)
    assert current_release(in_lab) == before
    ruleset = in_lab(GATEWAY, "nft", "list", "set", "inet", "akm_policy", "management").stdout
    assert addresses["management"] in ruleset
    new = evidence(in_lab)[len(records) :]
    assert "rolled_back" in [r.get("outcome") for r in new]
    assert "policy.rollback" in [r["kind"] for r in new]
    assert web(in_lab, READER, f"http://{ALLOWED}/") == "200"


def test_a_release_whose_dns_cannot_start_is_rolled_back_by_itself(gateway, in_lab, tmp_path):
    """The generated DNS configuration passes unbound-checkconf but names an address the gateway does not
    have (the inventory moved the gateway's staff leg): Unbound cannot start, so the push rolls the whole
    release back, and DHCP and DNS answer again with the previous one."""
    before, records = current_release(in_lab), evidence(in_lab)
    wrong = tmp_path / "lab"
    shutil.copytree(LAB_INVENTORY, wrong)
    assets = wrong / "assets.yml"
    assets.write_text(
        assets.read_text().replace("segment: staff, ip: 198.18.20.1,", "segment: staff, ip: 198.18.20.254,")
    )
    done = push(*built_from(wrong))
    assert done.returncode != 0
    assert "rolled back" in done.stdout, done.stdout[-3000:]
    assert "Restart Kea, Unbound and lighttpd" in done.stdout.split("rolled back")[-1], done.stdout[-3000:]
    assert current_release(in_lab) == before
    for unit in ("unbound", "kea-dhcp4-server"):
        assert in_lab(GATEWAY, "systemctl", "is-active", unit).stdout.strip() == "active"
    domain = load_inventory(LAB_INVENTORY).centre.domain
    answer = in_lab(GATEWAY, "dig", "+short", "@127.0.0.1", f"{GATEWAY}.{domain}").stdout.split()
    assert answer and "198.18.20.254" not in in_lab(GATEWAY, "cat", f"{CURRENT}/unbound/akm.conf").stdout
    new = evidence(in_lab)[len(records) :]
    assert "rolled_back" in [r.get("outcome") for r in new]
    assert web(in_lab, READER, f"http://{ALLOWED}/") == "200"
