"""Host firewalls (``hosts/<host>.nft``): which hosts get one, what each accepts and from whom, read from
the inventory and the policy; then real packets through the rulesets of the lab inventory.

The golden files are checked with the other generators' (``test_generators.py``, ``golden/hosts/``).
The traffic test builds throwaway namespaces (``pol-test-<pid>-*``) joined by one bridge per segment,
with the lab inventory's addresses on the management and readers segments, loads the generated
rulesets of ``srv`` and ``oqish-02`` and opens TCP connections.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import time
from ipaddress import IPv4Network

import pytest

from akm.inventory import load_inventory
from akm.policy.build import render
from akm.policy.compile import compile_policy
from akm.policy.load import load_policy

from .conftest import AT, ROOT
from .test_gateway_traffic import CONNECT, LISTEN


@pytest.fixture(scope="module")
def lab_policy():
    inventory = load_inventory(ROOT / "inventory" / "lab", today=AT.date())
    policy = compile_policy(load_policy(ROOT / "policies" / "access" / "lab"), inventory, AT)
    assert not policy.errors
    return policy


@pytest.fixture(scope="module")
def lab_rulesets(lab_policy):
    return {path[6:-4]: text for path, text in render(lab_policy, ["hosts"]).items() if path.startswith("hosts/")}


def _set(ruleset: str, name: str) -> set[str]:
    """The elements of the set *name* (without timeouts)."""
    match = re.search(rf"\tset {name} {{\n[^\n]*\n(?:\t\telements = {{ (.*) }}\n)?\t}}", ruleset)
    assert match is not None, f"no set {name}"
    return {e.split(" timeout ")[0] for e in (match.group(1) or "").split(", ") if e}


def _accepts(ruleset: str) -> list[str]:
    return [line.strip() for line in ruleset.splitlines() if line.rstrip().endswith('"') and " accept " in line]


def test_every_linux_host_but_the_gateway_gets_one(compiled, inventory):
    files = render(compiled, ["hosts"])
    linux = sorted(
        a.hostname
        for a in inventory.assets
        if a.status == "in_use" and a.os.startswith("debian") and "gateway" not in a.profiles
    )
    assert sorted(path[6:-4] for path in files if path.startswith("hosts/")) == linux
    assert "hosts/gw.nft" not in files and "hosts/router-01.nft" not in files


def test_ssh_only_from_the_admins_never_from_a_whole_segment(lab_policy, lab_rulesets):
    inventory = lab_policy.inventory
    admins = _set(lab_rulesets["srv"], "admins")
    control = str(inventory.lab.control.ip)
    management_host = {str(i.ip) for i in inventory.asset("srv").interfaces}
    it_staff = {str(i.ip) for i in inventory.asset("xodim-01").interfaces}
    assert admins == {control, *it_staff, *management_host}
    kiosk_legs = {str(i.ip) for i in inventory.asset("oqish-01").interfaces}
    for ruleset in lab_rulesets.values():
        assert _set(ruleset, "admins") == admins
        assert 'tcp dport 22 ip saddr @admins accept comment "management SSH is always allowed"' in ruleset
        assert not kiosk_legs & _set(ruleset, "admins")


def test_a_kiosk_opens_nothing_but_management_ssh_and_ping(lab_rulesets):
    for kiosk in ("oqish-01", "oqish-02"):
        accepts = _accepts(lab_rulesets[kiosk])
        assert [a.split(" comment ")[0] for a in accepts] == [
            "tcp dport 22 ip saddr @admins accept",
            "ip saddr @admins icmp type echo-request accept",
        ]
        assert "policy drop;" in lab_rulesets[kiosk]


def test_the_file_server_opens_the_shares_to_the_segments_the_policy_names(lab_policy, lab_rulesets):
    inventory = lab_policy.inventory
    srv = lab_rulesets["srv"]
    assert 'ip saddr @who_shares_for_staff tcp dport { 445 } accept comment "rule shares-for-staff: file_shares"' in srv
    shares = _set(srv, "who_shares_for_staff")
    for segment in ("staff", "digitization"):
        assert str(inventory.segments[segment].subnet) in shares
    # The staff workstation's management leg too, where /etc/hosts of the lab names srv; never a kiosk's.
    assert str(inventory.asset("xodim-01").ip_on("management")) in shares
    assert not {str(i.ip) for i in inventory.asset("oqish-01").interfaces} & shares
    assert str(inventory.segments["readers"].subnet) not in shares
    assert "tcp dport { 3142 } accept" in srv and "tcp dport { 80, 443 } accept" in srv


def test_the_backup_machine_opens_its_rest_port_to_the_hosts_with_data(lab_policy, lab_rulesets):
    from akm.backup import jobs

    inventory = lab_policy.inventory
    server = jobs.backup_server(inventory)
    bak = lab_rulesets[server.hostname]
    assert f"ip saddr @backup_clients tcp dport {jobs.server_port(server)} accept" in bak
    clients = _set(bak, "backup_clients")
    # A Windows PC's share is pulled by the backup machine: it has data but no connection of its own.
    holders = [a for a in inventory.assets if a.data and a.status == "in_use" and a.ip_on("servers")]
    assert holders
    for asset in holders:
        assert str(asset.ip_on("servers")) in clients
    assert not any(str(i.ip) in clients for i in inventory.asset("oqish-01").interfaces)
    # The grant for the digitization section ends at its expiry, a moment in its rule (seconds since the
    # epoch), not a timeout counted from the build.
    grant = next(d for d in lab_policy.decisions if d.id == "G-LAB-002")
    assert f"ip saddr @grant_G_LAB_002 meta time < {int(grant.expires.timestamp())} tcp dport" in bak
    assert " timeout " not in bak


def test_two_builds_of_one_day_are_the_same_bytes(lab_policy):
    """The push names a host's release after its ruleset's content: a ruleset that changed with the
    build's moment (a grant's timeout in seconds) made every converge push a new release."""
    inventory, raw = lab_policy.inventory, lab_policy.raw
    morning = render(compile_policy(raw, inventory, AT.replace(hour=8, minute=0, second=1)), ["hosts"])
    evening = render(compile_policy(raw, inventory, AT.replace(hour=21, minute=59, second=58)), ["hosts"])
    assert morning.keys() == evening.keys()
    assert any("meta time <" in text for text in morning.values())
    for path, text in morning.items():
        assert text.encode() == evening[path].encode(), path


def test_the_host_serving_a_share_opens_smb_to_the_backup_machine_only(lab_policy, lab_rulesets):
    """The backup machine pulls a Windows PC's share from the host serving it (the lab's stand-in,
    ``data[].smb.server``): that host's ruleset admits the backup machine on tcp/445, from the inventory."""
    from akm.inventory.ansible import smb_pulls

    inventory = lab_policy.inventory
    servers = {pull["server"] for pull in smb_pulls(inventory)}
    assert servers == {"srv"}
    srv = lab_rulesets["srv"]
    assert "ip saddr @smb_pullers tcp dport 445 accept" in srv
    backup = inventory.asset(next(a.hostname for a in inventory.assets if "backup_server" in a.profiles))
    assert _set(srv, "smb_pullers") == {str(i.ip) for i in backup.interfaces if i.ip is not None}
    assert not any("smb_pullers" in text for host, text in lab_rulesets.items() if host not in servers)


def test_a_dhcp_host_takes_replies_from_its_segments_gateway_only(lab_policy, lab_rulesets):
    inventory = lab_policy.inventory
    gateway = inventory.segments["staff"].gateway
    rule = f"ip saddr {{ {gateway} }} udp sport 67 udp dport 68 accept"
    assert rule in lab_rulesets["xodim-01"]
    assert "udp dport 68" not in lab_rulesets["srv"]


def test_the_ssh_port_is_the_one_ansible_is_told(tmp_path):
    import shutil

    from .conftest import INVENTORY, POLICY

    copy = tmp_path / "inventory"
    shutil.copytree(INVENTORY, copy)
    assets = copy / "assets.yml"
    text = assets.read_text()
    kiosk = "profiles: [reader], interfaces: [{segment: readers, ip: 198.18.30.20"
    assert kiosk in text
    assets.write_text(text.replace(kiosk, kiosk.replace("interfaces:", "vars: {ansible_port: 2222}, interfaces:")))
    policy = compile_policy(load_policy(POLICY), load_inventory(copy, today=AT.date()), AT)
    ruleset = render(policy, ["hosts"])["hosts/zal-01.nft"]
    assert "tcp dport 2222 ip saddr @admins accept" in ruleset
    assert "tcp dport 22 " not in ruleset


# --- real packets -----------------------------------------------------------------------------------


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@contextlib.contextmanager
def segments_network(inventory, tag: str, legs: dict[str, list[tuple[str, str]]], rulesets: dict[str, str], tmp):
    """A namespace per role, one bridge per segment in a switch namespace, the *legs* (role → [(segment,
    address)]) on them, *rulesets* (role → text) loaded, a TCP listener on 22, 445 and 3142 everywhere."""
    switch = f"{tag}-sw"
    names = {role: f"{tag}-{number}" for number, role in enumerate(legs)}
    listeners: list[subprocess.Popen] = []
    _ip("netns", "add", switch)
    for name in names.values():
        _ip("netns", "add", name)
    try:
        bridges = sorted({segment for pairs in legs.values() for segment, _a in pairs})
        for number in range(len(bridges)):
            _ip("-n", switch, "link", "add", f"br{number}", "type", "bridge")
            _ip("-n", switch, "link", "set", f"br{number}", "up")
        for host, (role, pairs) in enumerate(legs.items()):
            _ip("-n", names[role], "link", "set", "lo", "up")
            for leg, (segment, address) in enumerate(pairs):
                here, there = f"{tag[-6:]}s{host}x{leg}", f"{tag[-6:]}h{host}x{leg}"
                _ip("link", "add", here, "type", "veth", "peer", "name", there)
                _ip("link", "set", here, "netns", switch)
                _ip("link", "set", there, "netns", names[role])
                _ip("-n", switch, "link", "set", here, "master", f"br{bridges.index(segment)}")
                _ip("-n", switch, "link", "set", here, "up")
                prefix = inventory.segments[segment].subnet.prefixlen
                _ip("-n", names[role], "addr", "add", f"{address}/{prefix}", "dev", there)
                _ip("-n", names[role], "link", "set", there, "up")
        for role, text in rulesets.items():
            path = tmp / f"{role}.nft"
            path.write_text(text)
            subprocess.run(["ip", "netns", "exec", names[role], "nft", "-c", "-f", str(path)], check=True)
            subprocess.run(["ip", "netns", "exec", names[role], "nft", "-f", str(path)], check=True)
        for role in names:
            for port in (22, 445, 3142):
                listeners.append(
                    subprocess.Popen(["ip", "netns", "exec", names[role], sys.executable, "-c", LISTEN, str(port)])
                )
        time.sleep(0.5)
        yield names
    finally:
        for process in listeners:
            process.kill()
            process.wait()
        for name in [*names.values(), switch]:
            subprocess.run(["ip", "netns", "del", name], check=False)


@pytest.fixture(scope="module")
def lab_hosts(lab_policy, lab_rulesets, tmp_path_factory):
    inventory = lab_policy.inventory

    def legs(hostname: str) -> list[tuple[str, str]]:
        asset = inventory.asset(hostname)
        return [(i.segment, str(i.ip)) for i in asset.interfaces if i.segment in ("management", "readers")]

    roles = {
        "control": [("management", str(inventory.lab.control.ip))],
        **{host: legs(host) for host in ("srv", "oqish-01", "oqish-02", "xodim-01", "bak")},
    }
    tmp = tmp_path_factory.mktemp("hosts")
    with segments_network(
        inventory,
        f"pol-test-{os.getpid() % 100000}",
        roles,
        {host: lab_rulesets[host] for host in ("srv", "oqish-02")},
        tmp,
    ) as names:
        yield names, inventory


def _connects(names: dict, source: str, address: str, port: int) -> bool:
    done = subprocess.run(
        ["ip", "netns", "exec", names[source], sys.executable, "-c", CONNECT, address, str(port)], check=False
    )
    return done.returncode == 0


@pytest.mark.privileged
@pytest.mark.needs("ip", "nft")
@pytest.mark.parametrize(
    ("source", "target", "segment", "port", "expected", "why"),
    [
        ("control", "srv", "management", 22, True, "the control node reaches every host's SSH"),
        ("oqish-01", "srv", "management", 22, False, "a kiosk's management leg is no admin"),
        ("oqish-01", "oqish-02", "readers", 22, False, "a kiosk does not reach another kiosk's SSH"),
        ("oqish-01", "oqish-02", "management", 22, False, "nor over the management segment"),
        ("oqish-01", "oqish-02", "readers", 445, False, "nor anything else on it"),
        (
            "xodim-01",
            "srv",
            "management",
            445,
            True,
            "staff reach the shares (rule shares-for-staff)",
        ),
        ("oqish-01", "srv", "management", 445, False, "a kiosk does not reach the shares"),
        ("bak", "srv", "management", 445, True, "the backup machine pulls the stand-in's share (data[].smb)"),
        ("oqish-01", "srv", "management", 3142, True, "every host uses the package cache"),
        ("xodim-01", "srv", "management", 22, True, "the IT staff's workstation is an admin"),
    ],
)
def test_host_rulesets_decide_real_connections(lab_hosts, source, target, segment, port, expected, why):
    names, inventory = lab_hosts
    address = str(inventory.asset(target).ip_on(segment))
    assert _connects(names, source, address, port) is expected, why


@pytest.mark.privileged
@pytest.mark.needs("ip", "nft")
def test_without_the_ruleset_the_kiosk_reaches_the_other_kiosk(lab_hosts):
    """The control: the drops come from the host's ruleset, not from the test network."""
    names, inventory = lab_hosts
    address = str(inventory.asset("oqish-02").ip_on("readers"))
    subprocess.run(["ip", "netns", "exec", names["oqish-02"], "nft", "delete", "table", "inet", "akm_host"], check=True)
    assert _connects(names, "oqish-01", address, 22)
    assert IPv4Network(address).subnet_of(inventory.segments["readers"].subnet)


def test_two_checkouts_of_the_repository_build_the_same_bytes(lab_policy, tmp_path):
    """The management host builds from its own checkout (/opt/akm/repo) on its timer, the IT specialist
    from theirs: a release that named the checkout's path made each of them push a new one in turn."""
    builds = []
    for checkout in (tmp_path / "home" / "it", tmp_path / "opt" / "akm" / "repo"):
        shutil.copytree(ROOT / "policies", checkout / "policies")
        raw = load_policy(checkout / "policies" / "access" / "lab")
        builds.append(render(compile_policy(raw, lab_policy.inventory, AT)))
    first, second = builds
    assert first.keys() == second.keys()
    assert "from policies/access/lab;" in first["nftables/gw.nft"]
    assert all(first[path] == second[path] for path in first)
