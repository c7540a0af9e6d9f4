"""Real packets through the generated gateway ruleset, before the lab exists.

Five throwaway network namespaces (``pol-test-<pid>-*``, never the host's ruleset) play the lab's
gateway, a reader kiosk, a staff workstation, the file server and the internet, with the lab inventory's
addresses. The gateway loads ``nftables/gw.nft`` built from ``policies/access/lab`` and forwards between
them. Each case opens a TCP connection and checks it is accepted or dropped as the policy says.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from akm.policy.build import render
from akm.policy.compile import compile_policy
from akm.policy.load import load_policy

from .conftest import AT, ROOT

pytestmark = [pytest.mark.privileged, pytest.mark.needs("ip", "nft", "squid")]

LISTEN = (
    "import socket,sys\n"
    "s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    "s.bind(('0.0.0.0', int(sys.argv[1]))); s.listen(16)\n"
    "while True:\n    c,_=s.accept(); c.close()\n"
)
CONNECT = (
    "import socket,sys\n"
    "try:\n    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1).close()\n"
    "except OSError:\n    sys.exit(1)\n"
)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@contextlib.contextmanager
def lab_network(ruleset: Path, tag: str, servers: tuple = ()):
    """Build the five namespaces, load *ruleset* on the gateway, start TCP listeners and *servers*
    (``(role, argv)`` commands run inside a namespace); yield the namespace names and addresses."""
    from akm.inventory import load_inventory

    inventory = load_inventory(ROOT / "inventory" / "lab", today=AT.date())
    gw = inventory.asset("gw")
    names = {role: f"{tag}-{role}" for role in ("gw", "inet", "rdr", "stf", "srv")}
    hosts = {
        "inet": (inventory.lab.internet.ip, "wan"),
        "rdr": (inventory.asset("oqish-01").ip_on("readers"), "readers"),
        "stf": (inventory.asset("xodim-01").ip_on("staff"), "staff"),
        "srv": (inventory.asset("srv").ip_on("servers"), "servers"),
    }
    listeners: list[subprocess.Popen] = []
    for name in names.values():
        _ip("netns", "add", name)
    try:
        for number, (role, (address, segment)) in enumerate(hosts.items()):
            subnet = inventory.segments[segment].subnet
            here, there = f"{tag[-9:]}g{number}", f"{tag[-9:]}h{number}"
            _ip("link", "add", here, "type", "veth", "peer", "name", there)
            _ip("link", "set", here, "netns", names["gw"])
            _ip("link", "set", there, "netns", names[role])
            _ip("-n", names["gw"], "addr", "add", f"{gw.ip_on(segment)}/{subnet.prefixlen}", "dev", here)
            _ip("-n", names[role], "addr", "add", f"{address}/{subnet.prefixlen}", "dev", there)
            _ip("-n", names["gw"], "link", "set", here, "up")
            _ip("-n", names[role], "link", "set", there, "up")
            _ip("-n", names[role], "link", "set", "lo", "up")
            _ip("-n", names[role], "route", "add", "default", "via", str(gw.ip_on(segment)))
        _ip("-n", names["gw"], "link", "set", "lo", "up")
        subprocess.run(["ip", "netns", "exec", names["gw"], "sysctl", "-qw", "net.ipv4.ip_forward=1"], check=True)
        subprocess.run(["ip", "netns", "exec", names["gw"], "nft", "-f", str(ruleset)], check=True)
        for role, argv in servers:
            listeners.append(subprocess.Popen(["ip", "netns", "exec", names[role], *argv]))
        time.sleep(0.5)
        yield (
            names,
            {role: str(address) for role, (address, _s) in hosts.items()}
            | {"gw-readers": str(gw.ip_on("readers")), "gw-staff": str(gw.ip_on("staff"))},
        )
    finally:
        for process in listeners:
            process.kill()
            process.wait()
        for name in names.values():
            subprocess.run(["ip", "netns", "del", name], check=False)


@pytest.fixture(scope="module")
def lab_net(tmp_path_factory):
    from akm.inventory import load_inventory

    inventory = load_inventory(ROOT / "inventory" / "lab", today=AT.date())
    policy = compile_policy(load_policy(ROOT / "policies" / "access" / "lab"), inventory, AT)
    assert not policy.errors
    ruleset = tmp_path_factory.mktemp("nft") / "gw.nft"
    ruleset.write_text(render(policy, ["nftables"])["nftables/gw.nft"])
    servers = tuple(
        (role, [sys.executable, "-c", LISTEN, str(port)])
        for role, port in (
            ("inet", 80),
            ("inet", 443),
            ("inet", 587),
            ("srv", 445),
            ("gw", 3128),
            ("gw", 3129),
            ("gw", 22),
        )
    )
    with lab_network(ruleset, f"pol-test-{os.getpid() % 100000}", servers) as net:
        yield net


def _connects(names: dict, source: str, address: str, port: int) -> bool:
    result = subprocess.run(
        ["ip", "netns", "exec", names[source], sys.executable, "-c", CONNECT, address, str(port)], check=False
    )
    return result.returncode == 0


@pytest.mark.parametrize(
    ("source", "target", "port", "expected", "why"),
    [
        ("rdr", "inet", 443, False, "direct egress from the readers bypasses the proxy: dropped"),
        ("stf", "inet", 443, False, "direct egress from staff (even IT staff) bypasses the proxy: dropped"),
        ("rdr", "gw-readers", 3128, True, "the proxy on the gateway is open to the LAN"),
        ("stf", "srv", 445, True, "rule shares-for-staff"),
        ("rdr", "srv", 445, False, "internal data is closed to readers"),
        ("stf", "gw-staff", 22, True, "management SSH from the IT staff's workstation"),
        ("rdr", "gw-readers", 22, False, "no SSH to the gateway from a reader kiosk"),
        ("srv", "inet", 80, True, "direct egress of the package cache (settings.direct_egress)"),
        ("srv", "inet", 587, True, "the management host's alerts reach the mail relay (centre.upstream)"),
        ("stf", "inet", 587, False, "only the management host may submit mail outside the LAN"),
    ],
)
def test_gateway_ruleset_decides_real_connections(lab_net, source, target, port, expected, why):
    names, addresses = lab_net
    assert _connects(names, source, addresses[target], port) is expected, why


def test_without_the_ruleset_the_dropped_connections_pass(lab_net):
    """The control: the drops above come from the policy's ruleset, not from the test network."""
    names, addresses = lab_net
    subprocess.run(["ip", "netns", "exec", names["gw"], "nft", "delete", "table", "inet", "akm_policy"], check=True)
    assert _connects(names, "rdr", addresses["inet"], 80)
    assert _connects(names, "rdr", addresses["srv"], 445)


ORIGIN = (
    "import http.server,sys\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    def do_GET(self):\n"
    "        self.wfile.write(b'HTTP/1.0 200 OK\\r\\nContent-Length: 3\\r\\n\\r\\nok\\n')\n"
    "    def log_message(self, *a):\n        pass\n"
    "http.server.ThreadingHTTPServer(('0.0.0.0', 80), H).serve_forever()\n"
)
FETCH = (
    "import http.client,sys\n"
    "c=http.client.HTTPConnection(sys.argv[1], 3128, timeout=5)\n"
    "c.request('GET', 'http://' + sys.argv[2] + '/')\n"
    "print(c.getresponse().status)\n"
)


def _build_squid(inventory, at, out: Path, log_dir: Path) -> Path:
    from akm.policy.build import write_tree
    from akm.policy.generators import Options

    policy = compile_policy(load_policy(ROOT / "policies" / "access" / "lab"), inventory, at)
    assert not policy.errors
    write_tree(render(policy, ["squid"], Options(squid_dir=out / "squid", squid_log_dir=log_dir)), out)
    return out / "squid" / "squid.conf"


@pytest.fixture(scope="module")
def squid_net(tmp_path_factory):
    """The lab network with the real Squid on the gateway, running the policy built at AT."""
    import tempfile
    from datetime import timedelta

    from akm.inventory import load_inventory

    if shutil.which("squid") is None:
        pytest.skip("squid is not installed")
    inventory = load_inventory(ROOT / "inventory" / "lab", today=AT.date())
    policy = compile_policy(load_policy(ROOT / "policies" / "access" / "lab"), inventory, AT)
    ruleset = tmp_path_factory.mktemp("nft") / "gw.nft"
    ruleset.write_text(render(policy, ["nftables"])["nftables/gw.nft"])
    # Squid drops to the proxy user: its files must be below world-readable directories.
    work = Path(tempfile.mkdtemp(prefix="pol-test-squid-"))
    work.chmod(0o755)
    logs = work / "logs"
    logs.mkdir(mode=0o777)
    logs.chmod(0o777)
    now_conf = _build_squid(inventory, AT, work / "now", logs)
    expiry = policy.grant_expiry(next(g.record for g in policy.active_grants if g.record.id == "G-LAB-001"))
    later_conf = _build_squid(inventory, expiry + timedelta(hours=1), work / "later", logs)
    hosts = work / "hosts"
    hosts.write_text("".join(f"{inventory.lab.internet.ip} {site.domain}\n" for site in inventory.lab.internet.sites))
    wrapper = work / "squid.conf"

    def point_at(conf: Path) -> None:
        wrapper.write_text(
            f"include {conf}\npid_filename {work}/squid.pid\ncache_log {logs}/cache.log\n"
            f"hosts_file {hosts}\ndns_nameservers 127.0.0.1\ncoredump_dir {work}\nshutdown_lifetime 0 seconds\n"
        )

    point_at(now_conf)
    for path in work.rglob("*"):
        path.chmod(0o777 if path.is_dir() else 0o644)
    servers = (("inet", [sys.executable, "-c", ORIGIN]), ("gw", ["squid", "-N", "-f", str(wrapper)]))
    try:
        with lab_network(ruleset, f"pol-sq-{os.getpid() % 100000}", servers) as (names, addresses):
            deadline = time.monotonic() + 60
            while not _connects(names, "rdr", addresses["gw-readers"], 3128):
                assert time.monotonic() < deadline, (logs / "cache.log").read_text()[-2000:]
                time.sleep(0.5)

            def reconfigure(conf: Path) -> None:
                point_at(conf)
                subprocess.run(
                    ["ip", "netns", "exec", names["gw"], "squid", "-k", "reconfigure", "-f", str(wrapper)],
                    check=True,
                    capture_output=True,
                )
                time.sleep(2)

            yield names, addresses, inventory, logs, reconfigure, later_conf
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _fetch(names: dict, source: str, proxy: str, domain: str) -> int:
    result = subprocess.run(
        ["ip", "netns", "exec", names[source], sys.executable, "-c", FETCH, proxy, domain],
        capture_output=True,
        text=True,
        check=False,
    )
    if not result.stdout.strip():
        raise AssertionError(f"no answer from the proxy {proxy}: {result.stderr[-300:]}")
    return int(result.stdout.strip())


def test_real_squid_enforces_the_lab_policy_and_logs_the_host(squid_net):
    names, addresses, inventory, logs, reconfigure, later_conf = squid_net
    sites = {site.category: site.domain for site in inventory.lab.internet.sites}
    reader, staff = ("rdr", addresses["gw-readers"]), ("stf", addresses["gw-staff"])

    assert _fetch(names, *reader, sites["social"]) == 403, "a restricted site is denied to a reader"
    assert _fetch(names, *reader, sites["news"]) == 200, "an allowed site loads for a reader"
    assert _fetch(names, *reader, sites["piracy"]) == 403, "piracy is denied to everyone"
    assert _fetch(names, *staff, sites["social"]) == 200, "the staff member's grant G-LAB-001 lets them through"

    reconfigure(later_conf)
    assert _fetch(names, *staff, sites["social"]) == 403, "after the grant expires the next build denies again"
    assert _fetch(names, *staff, sites["news"]) == 200

    log = (logs / "access.log").read_text()
    denied = [line for line in log.splitlines() if addresses["rdr"] in line and sites["social"] in line]
    assert denied and "TCP_DENIED/403" in denied[0], log[-1500:]
