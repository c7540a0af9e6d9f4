"""Real packets through the generated gateway ruleset, before the lab exists.

Five throwaway network namespaces (``pol-test-<pid>-*``, never the host's ruleset) play the lab's
gateway, a reader kiosk, a staff workstation, the file server and the internet, with the lab inventory's
addresses. The gateway loads ``nftables/gw.nft`` built from ``policies/access/lab`` and forwards between
them. Each case opens a TCP connection and checks it is accepted or dropped as the policy says.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest

from akm.policy.build import render
from akm.policy.compile import compile_policy
from akm.policy.load import load_policy

from .conftest import AT, ROOT

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("nft") is None or shutil.which("ip") is None,
    reason="needs root, ip and nft for network namespaces",
)

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


@pytest.fixture(scope="module")
def lab_net(tmp_path_factory):
    from akm.inventory import load_inventory

    inventory = load_inventory(ROOT / "inventory" / "lab", today=AT.date())
    policy = compile_policy(load_policy(ROOT / "policies" / "access" / "lab"), inventory, AT)
    assert not policy.errors
    ruleset = tmp_path_factory.mktemp("nft") / "gw.nft"
    ruleset.write_text(render(policy, ["nftables"])["nftables/gw.nft"])
    gw = inventory.asset("gw")

    tag = f"pol-test-{os.getpid()}"
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
            here, there = f"pt{os.getpid() % 100000}g{number}", f"pt{os.getpid() % 100000}h{number}"
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
        for role, port in (("inet", 80), ("srv", 445), ("gw", 3128), ("gw", 22)):
            listeners.append(
                subprocess.Popen(["ip", "netns", "exec", names[role], sys.executable, "-c", LISTEN, str(port)])
            )
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


def _connects(names: dict, source: str, address: str, port: int) -> bool:
    result = subprocess.run(
        ["ip", "netns", "exec", names[source], sys.executable, "-c", CONNECT, address, str(port)], check=False
    )
    return result.returncode == 0


@pytest.mark.parametrize(
    ("source", "target", "port", "expected", "why"),
    [
        ("rdr", "inet", 80, False, "direct egress from the readers bypasses the proxy: dropped"),
        ("stf", "inet", 80, False, "direct egress from staff (even IT staff) bypasses the proxy: dropped"),
        ("rdr", "gw-readers", 3128, True, "the proxy on the gateway is open to the LAN"),
        ("stf", "srv", 445, True, "rule shares-for-staff"),
        ("rdr", "srv", 445, False, "internal data is closed to readers"),
        ("stf", "gw-staff", 22, True, "management SSH from the IT staff's workstation"),
        ("rdr", "gw-readers", 22, False, "no SSH to the gateway from a reader kiosk"),
        ("srv", "inet", 80, True, "direct egress of the package cache (settings.direct_egress)"),
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
