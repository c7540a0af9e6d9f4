"""The running lab: machines, services, the fake internet, the package cache and isolation.

Every test checks a real effect on the booted machines (an SSH login, a DNS answer, a page fetched
through the gateway, a route table), never a file the lab itself just wrote.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from ipaddress import IPv4Address, ip_address
from pathlib import Path

import pytest

from akm.lab import cgroups, lab
from akm.lab.plan import HOST_LINK, LAB_RANGE, PREFIX
from akm.lab.system import State

pytestmark = pytest.mark.lab


def _reader(plan):
    """A machine that is neither the gateway nor the internet: prefer a reader workstation."""
    ordinary = [m for m in plan.machines if not m.internet and not m.forwarding]
    return next((m for m in ordinary if "reader" in m.profiles), ordinary[0])


def _gateway(plan):
    return next(m for m in plan.machines if m.forwarding)


def test_every_machine_answers_ssh_with_its_own_name(running_lab, in_lab):
    for machine in running_lab.machines:
        assert in_lab(machine.hostname, "hostname").stdout.strip() == machine.hostname


def test_systemd_and_sshd_run_on_every_machine(running_lab, in_lab):
    for machine in running_lab.machines:
        state = in_lab(machine.hostname, "systemctl", "is-system-running", check=False).stdout.strip()
        assert state in {"running", "degraded"}, (machine.hostname, state)
        assert in_lab(machine.hostname, "systemctl", "is-active", "ssh").stdout.strip() == "active"


def test_nftables_works_inside_a_machine(running_lab, in_lab):
    gw = _gateway(running_lab).hostname
    in_lab(gw, "nft", "add table inet akm_lab_test")
    try:
        assert "akm_lab_test" in in_lab(gw, "nft", "list tables").stdout
    finally:
        in_lab(gw, "nft", "delete table inet akm_lab_test")


def test_fake_internet_dns_answers_only_for_its_sites(running_lab, in_lab):
    # Asked from the gateway: once the access policy is pushed (the demo test does), LAN machines reach
    # the web only through its proxy, so their own DNS lookups of outside names are dropped by design.
    gw = _gateway(running_lab).hostname
    for site in running_lab.sites:
        answer = in_lab(gw, "getent", "ahostsv4", site.domain).stdout.split()
        assert answer[0] == str(running_lab.dns_server), site.domain
    unknown = in_lab(gw, "getent", "hosts", "not-a-lab-site.example", check=False)
    assert unknown.returncode != 0 and unknown.stdout == ""


def test_the_host_does_not_use_the_lab_dns():
    resolv = Path("/etc/resolv.conf")
    lines = resolv.read_text().splitlines() if resolv.exists() else []
    resolvers = [line.split()[1] for line in lines if line.startswith("nameserver")]
    assert all(ip_address(r) not in LAB_RANGE for r in resolvers if r.count(".") == 3)


def test_a_page_comes_from_the_internet_through_the_gateway(running_lab, in_lab):
    reader, gateway = _reader(running_lab), _gateway(running_lab)
    site = next(s for s in running_lab.sites if s.https)
    route = in_lab(reader.hostname, "ip", "-j", "route", "get", str(running_lab.dns_server)).stdout
    hop = json.loads(route)[0]
    gateway_ips = {str(p.address.ip) for p in gateway.ports}
    assert hop["gateway"] in gateway_ips
    # The site's address is given, not looked up: on a fresh lab the gateway serves no DNS yet (the
    # access policy push sets it up); this checks the route and the forwarding.
    resolve = f"{site.domain}:443:{running_lab.dns_server}"
    page = in_lab(
        reader.hostname, "curl", "-sS", "--max-time", "10", "--resolve", resolve, f"https://{site.domain}/kitoblar"
    ).stdout
    assert f"akm-lab site {site.domain} category {site.category} path /kitoblar" in page


def test_no_lab_namespace_has_a_default_route_or_a_way_out(running_lab):
    namespaces = running_lab.netns_names
    for name in namespaces:
        routes = json.loads(
            subprocess.run(["ip", "-n", name, "-j", "route", "show"], capture_output=True, text=True, check=True).stdout
            or "[]"
        )
        for route in routes:
            assert route["dst"] != "default", name
            if route["dst"] != "default":
                assert IPv4Address(route["dst"].split("/")[0]) in LAB_RANGE, (name, route)
        # ip route get only consults the table, it sends nothing: an outside address has no route.
        probe = subprocess.run(["ip", "-n", name, "route", "get", "192.0.2.1"], capture_output=True, text=True)
        assert probe.returncode != 0, (name, probe.stdout)


def test_the_host_gains_only_the_lab_routes(running_lab):
    routes = json.loads(
        subprocess.run(
            ["ip", "-j", "route", "show", "dev", HOST_LINK], capture_output=True, text=True, check=True
        ).stdout
    )
    assert routes and all(IPv4Address(r["dst"].split("/")[0]) in LAB_RANGE for r in routes)
    links = json.loads(subprocess.run(["ip", "-j", "link", "show"], capture_output=True, text=True, check=True).stdout)
    assert [link["ifname"] for link in links if link["ifname"].startswith(PREFIX)] == [HOST_LINK]


def test_nothing_of_the_lab_listens_on_the_hosts_other_addresses(running_lab):
    state = State.load()
    ours = {ref.pid for ref in (state.processes or {}).values()}
    listing = subprocess.run(["ss", "-Hlntup"], capture_output=True, text=True, check=True).stdout
    checked = 0
    for line in listing.splitlines():
        pids = {
            int(p.split("=")[1]) for p in line.split("users:")[-1].replace(")", ",").split(",") if p.startswith("pid=")
        }
        if not pids & ours:
            continue
        checked += 1
        local = line.split()[4].rsplit(":", 1)[0].strip("[]").split("%")[0]
        address = ip_address(local) if local not in {"*", "0.0.0.0", "::"} else None
        assert address is not None and (address in LAB_RANGE or address.is_loopback), line
    assert checked >= 1


def test_packages_come_only_through_the_cache_on_the_control_node(running_lab, in_lab):
    host = _reader(running_lab).hostname
    sources = in_lab(host, "cat", "/etc/apt/sources.list.d/akm-lab.sources").stdout
    uris = {line.split()[1] for line in sources.splitlines() if line.startswith("URIs:")}
    assert uris and all(u.startswith(running_lab.apt_cache_url + "/") for u in uris)
    assert in_lab(host, "test", "!", "-e", "/etc/apt/sources.list", check=False).returncode == 0
    update = in_lab(host, "apt-get", "-q", "update", timeout=300)
    assert running_lab.apt_cache_url in update.stdout


def test_up_again_changes_nothing(running_lab):
    before = State.load().processes
    said = []
    lab.up(running_lab, log=said.append)
    assert said == ["The lab is already up; nothing changed."]
    assert State.load().processes == before


def test_reset_gives_a_machine_a_fresh_layer(running_lab, in_lab):
    host = _reader(running_lab).hostname
    in_lab(host, "echo yozuv > /root/akm-reset-test")
    assert in_lab(host, "cat", "/root/akm-reset-test").stdout == "yozuv\n"
    key_before = in_lab(host, "cat", "/etc/ssh/ssh_host_ed25519_key.pub").stdout
    lab.reset(running_lab, host, log=lambda _line: None)
    gone = in_lab(host, "test", "-e", "/root/akm-reset-test", check=False)
    assert gone.returncode == 1
    assert in_lab(host, "hostname").stdout.strip() == host
    # the login above checked the host key strictly; the machine kept its own key through the reset
    assert in_lab(host, "cat", "/etc/ssh/ssh_host_ed25519_key.pub").stdout == key_before


def test_every_machine_has_its_own_host_key(running_lab, in_lab):
    keys = {
        m.hostname: in_lab(m.hostname, "cat", "/etc/ssh/ssh_host_ed25519_key.pub").stdout.split()[1]
        for m in running_lab.machines
    }
    assert len(set(keys.values())) == len(keys)


def test_every_machine_keeps_its_processes_in_a_cgroup_of_its_own(running_lab, in_lab):
    # A shared tree made stopping root's user manager on one machine wait for another machine's
    # processes, and every SSH login meanwhile hang; each machine's tree now holds only its own.
    for machine in running_lab.machines:
        in_lab(machine.hostname, "true")  # a login: the machine's user slice exists now
    leaders = lab.leaders(running_lab)
    for root in cgroups.hierarchies():
        for machine in running_lab.machines:
            own = os.readlink(f"/proc/{leaders[machine.hostname]}/ns/pid")
            tree = root / cgroups.HOME / machine.hostname
            pids = [int(p) for procs in tree.rglob("cgroup.procs") for p in procs.read_text().split()]
            assert leaders[machine.hostname] in pids, (root, machine.hostname)
            strangers = [p for p in pids if _pid_namespace(p) not in {own, None}]
            nspawn = {p for p in strangers if "systemd-nspawn" in Path(f"/proc/{p}/cmdline").read_text()}
            assert set(strangers) == nspawn, (root, machine.hostname, strangers)


def _pid_namespace(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except FileNotFoundError:
        return None  # ended while we looked


def test_ansible_reaches_every_lab_machine_through_the_inventory_plugin(running_lab):
    repo = Path(__file__).resolve().parents[2]
    binary = Path(sys.executable).parent / "ansible"
    env = {**os.environ, "ANSIBLE_CONFIG": str(repo / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    done = subprocess.run(
        [
            str(binary),
            "-i",
            str(Path(running_lab.inventory).resolve() / "akm.yml"),
            "linux",
            "-m",
            "ansible.builtin.command",
            "-a",
            "hostname",
        ],
        capture_output=True,
        text=True,
        cwd=repo,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    answered = {line.split(" | ")[0] for line in done.stdout.splitlines() if " | CHANGED | rc=0" in line}
    assert answered == {m.hostname for m in running_lab.machines if not m.internet}


def test_the_lab_reaches_only_the_package_cache_on_the_host(running_lab, in_lab):
    host = _reader(running_lab).hostname
    control = running_lab.control.ip
    # Straight to the control node: a converged reader's login names the gateway's proxy, whose 403 page
    # for this address would be an answer from the gateway, not from the host.
    direct = ["curl", "-s", "--noproxy", "*", "-o", "/dev/null"]
    cache = in_lab(host, shlex.join([*direct, "--max-time", "5", f"http://{control}:3142/"]), check=False)
    assert cache.returncode == 0
    # A dropped SYN times out (curl exit 28); a reachable host port would answer or refuse (exit 0 or 7).
    fenced = in_lab(host, shlex.join([*direct, "--max-time", "3", f"http://{control}:22/"]), check=False)
    assert fenced.returncode == 28


def _ping(plan, host: str, playbook: Path) -> subprocess.CompletedProcess:
    """The IT specialist's kind of run (ansible-playbook with the project's ansible.cfg: the Mitogen
    strategy and the inventory's pinned keys) of a playbook that only pings *host*."""
    playbook.write_text(
        f"---\n- name: Ping\n  hosts: {host}\n  gather_facts: false\n  tasks:\n    - ansible.builtin.ping:\n"
    )
    binaries = Path(sys.executable).parent
    return subprocess.run(
        [str(binaries / "ansible-playbook"), "-i", str(plan.inventory / "akm.yml"), str(playbook)],
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "PATH": f"{binaries}{os.pathsep}{os.environ['PATH']}", "AKM_LANG": "en", "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _hostkeys(plan, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "akm.cli", "--lang", "en", "inventory", "hostkeys", "-i", str(plan.inventory)]
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=120, check=False)


def test_a_machine_with_a_new_host_key_is_refused_until_the_inventory_records_it(running_lab, in_lab, tmp_path):
    """Issue 17: the lab's keys are pinned as production's are; a machine that answers with another key
    (reinstalled, or something else at its address) stops the run with what to do, and works again only
    after the key is recorded on purpose."""
    host = _reader(running_lab).hostname
    key = "/etc/ssh/ssh_host_ed25519_key"
    root = running_lab.state_dir / "machines" / host / "root"
    kept = {
        name: (root / key.lstrip("/")).with_name(name).read_bytes()
        for name in (Path(key).name, f"{Path(key).name}.pub")
    }
    in_lab(host, f"rm -f {key} {key}.pub && ssh-keygen -q -t ed25519 -N '' -f {key} && systemctl restart ssh")
    try:
        refused = _ping(running_lab, host, tmp_path / "ping.yml")
        output = refused.stdout + refused.stderr
        assert refused.returncode != 0 and "unreachable=1" in refused.stdout, output
        assert f"{host}: its SSH host key is not one the inventory pins" in output
        assert f"--host {host} --replace {host} --write" in output

        listed = _hostkeys(running_lab, "--host", host)
        assert "CHANGED" in listed.stdout, listed.stdout + listed.stderr
        assert _ping(running_lab, host, tmp_path / "ping.yml").returncode != 0, "a survey alone records nothing"

        recorded = _hostkeys(running_lab, "--host", host, "--replace", host, "--write")
        assert recorded.returncode == 0, recorded.stdout + recorded.stderr
        accepted = _ping(running_lab, host, tmp_path / "ping.yml")
        assert "ok=1" in accepted.stdout and "unreachable=0" in accepted.stdout, accepted.stdout + accepted.stderr
    finally:
        # The machine's own key (the one its state directory seeds after a reset) goes back, and is pinned again.
        for name, content in kept.items():
            (root / key.lstrip("/")).with_name(name).write_bytes(content)
        leader = lab.leaders(running_lab)[host]
        subprocess.run(
            ["nsenter", "-t", str(leader), "-m", "-u", "-i", "-n", "-p", "systemctl", "restart", "ssh"], check=True
        )
        restored = _hostkeys(running_lab, "--host", host, "--replace", host, "--write")
        assert restored.returncode == 0, restored.stdout + restored.stderr
    assert in_lab(host, "hostname").stdout.strip() == host
