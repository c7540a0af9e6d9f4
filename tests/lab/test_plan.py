"""Planning of the lab from an inventory, and the bad inputs it refuses before creating anything."""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path

import pytest

from akm.errors import Error
from akm.inventory import load_inventory
from akm.lab import image, lab, system
from akm.lab.aptcache import acng_config, base_source, lab_sources, machine_sources
from akm.lab.plan import LAB_RANGE, LabError, Route, bridge_name, plan_lab

from .fixture import Asset, Interface, make_inventory

REPO = Path(__file__).resolve().parents[2]


def codes(error: LabError) -> list[str]:
    return [p.code for p in error.problems]


def test_every_debian_machine_and_the_internet_become_machines():
    plan = plan_lab(make_inventory())
    assert [m.hostname for m in plan.machines] == ["gw", "srv", "oquvchi-01", "internet"]
    assert [m.netns for m in plan.machines] == ["akm-gw", "akm-srv", "akm-oquvchi-01", "akm-internet"]
    assert plan.simulated == ("mikrotik",)
    assert plan.netns_names[0] == "akm-switch"


def test_legs_addresses_and_bridges():
    plan = plan_lab(make_inventory())
    gw = plan.machine("gw")
    assert [(p.inner, p.bridge, str(p.address)) for p in gw.ports] == [
        ("wan", "br-wan", "198.18.0.2/24"),
        ("servers", "br-servers", "198.18.10.1/24"),
        ("readers", "br-readers", "198.18.30.1/24"),
        ("mgmt", "br-management", "198.19.255.2/24"),
    ]
    outer = [p.outer for m in plan.machines for p in m.ports]
    assert len(outer) == len(set(outer))
    assert all(len(name) <= 15 for name in outer + list(plan.bridges.values()))
    assert plan.bridges == {
        "management": "br-management",
        "readers": "br-readers",
        "servers": "br-servers",
        "wan": "br-wan",
    }
    assert plan.control == IPv4Interface("198.19.255.1/24")
    assert plan.apt_cache_url == "http://198.19.255.1:3142"


def test_routes_stay_inside_the_lab_and_no_default_route():
    plan = plan_lab(make_inventory())
    routes = {m.hostname: m.routes for m in plan.machines}
    assert routes["gw"] == ()
    assert routes["srv"] == (Route(LAB_RANGE, IPv4Address("198.18.10.1")),)
    assert routes["oquvchi-01"] == (Route(LAB_RANGE, IPv4Address("198.18.30.1")),)
    assert routes["internet"] == (Route(LAB_RANGE, IPv4Address("198.18.0.2")),)
    assert plan.host_routes == (Route(LAB_RANGE, IPv4Address("198.19.255.2")),)
    every = [r for m in plan.machines for r in m.routes] + list(plan.host_routes)
    assert all(r.destination.prefixlen > 0 and r.via in LAB_RANGE for r in every)
    assert [m.hostname for m in plan.machines if m.forwarding] == ["gw"]
    assert plan.dns_server == IPv4Address("198.18.0.1")


def test_long_segment_names_get_short_unique_bridges():
    one, two = bridge_name("digitization-east"), bridge_name("digitization-west")
    assert one != two and len(one) <= 15 and len(two) <= 15
    assert bridge_name("digitization") == "br-digitization"


def test_address_outside_the_lab_range_is_refused_with_its_place():
    inv = make_inventory()
    inv.assets[1].interfaces[0] = Interface("eth0", "servers", IPv4Address("10.0.0.5"))
    with pytest.raises(LabError) as caught:
        plan_lab(inv)
    assert codes(caught.value) == ["lab.outside-range"]
    problem = caught.value.problems[0]
    assert problem.field == "interfaces[0].ip"
    assert "10.0.0.5" in problem.message


def test_segment_control_and_gateway_outside_the_range_are_all_reported():
    inv = make_inventory(
        segments={
            "servers": make_inventory()
            .segments["servers"]
            .__class__(
                "servers",
                "Servers",
                "servers",
                IPv4Network("192.168.10.0/24"),
                10,
                IPv4Address("192.168.10.1"),
            ),
        }
    )
    inv.lab.control = replace(inv.lab.control, ip=IPv4Address("192.0.2.10"))
    with pytest.raises(LabError) as caught:
        plan_lab(inv)
    fields = sorted(p.field for p in caught.value.problems)
    assert set(codes(caught.value)) == {"lab.outside-range"}
    assert {"segments[servers].subnet", "segments[servers].gateway", "lab.control.ip"} <= set(fields)


def test_production_inventory_is_not_a_lab():
    with pytest.raises(LabError) as caught:
        plan_lab(make_inventory(lab=None))
    assert codes(caught.value) == ["lab.not-a-lab"]


def test_machine_without_management_leg_is_refused():
    inv = make_inventory()
    inv.assets.append(
        Asset("yolgiz", [Interface("eth0", "servers", IPv4Address("198.18.10.77"))], inventory_no="AKM-9099")
    )
    with pytest.raises(LabError) as caught:
        plan_lab(inv)
    assert codes(caught.value) == ["lab.no-management"]


def test_reserved_and_too_long_names_are_refused():
    inv = make_inventory()
    inv.assets.append(
        Asset(
            "switch",
            [Interface("a-very-long-interface-name", "management", IPv4Address("198.19.255.99"))],
            inventory_no="AKM-9098",
        )
    )
    with pytest.raises(LabError) as caught:
        plan_lab(inv)
    assert {"lab.reserved-name", "lab.interface-name"} <= set(codes(caught.value))


def test_unknown_host_names_the_known_ones():
    plan = plan_lab(make_inventory())
    with pytest.raises(LabError) as caught:
        plan.machine("nope")
    assert codes(caught.value) == ["lab.unknown-host"]
    assert "oquvchi-01" in caught.value.problems[0].hint


def test_not_root_and_missing_tools_are_reported_together():
    checks = lab.HostChecks(is_root=lambda: False, which=lambda tool: None if tool == "debootstrap" else "/bin/x")
    problems = lab.preflight(checks)
    assert [(p.code, p.field) for p in problems] == [
        ("lab.not-root", ""),
        ("lab.missing-tool", "debootstrap"),
    ]
    assert "debootstrap" in problems[1].hint


def test_up_refuses_before_creating_anything(tmp_path):
    plan = plan_lab(make_inventory(state_dir=tmp_path / "state"))
    with pytest.raises(LabError) as caught:
        lab.up(plan, checks=lab.HostChecks(is_root=lambda: False))
    assert codes(caught.value) == ["lab.not-root"]
    assert not (tmp_path / "state").exists()


def test_mirror_is_read_from_the_apt_configuration(tmp_path):
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.invalid/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main\n\n"
        "Types: deb\nURIs: http://mirror.invalid/debian-security\nSuites: bookworm-security\n"
        "Components: main\n\n"
        "Types: deb-src\nURIs: http://mirror.invalid/debian\nSuites: bookworm\nComponents: main\n"
    )
    sources = lab_sources(tmp_path, suites=("bookworm",))["bookworm"]
    assert [(s.path, s.suites) for s in sources] == [
        ("/debian", ("bookworm", "bookworm-updates")),
        ("/debian-security", ("bookworm-security",)),
    ]
    config = acng_config(Path("/state/apt-cache"), "198.19.255.1", sources)
    assert "BindAddress: 198.19.255.1\n" in config
    assert "Remap-debian: /debian ; http://mirror.invalid/debian/\n" in config
    assert "Remap-debiansecurity: /debian-security ; http://mirror.invalid/debian-security/\n" in config
    machine = machine_sources("http://198.19.255.1:3142", sources)
    assert "mirror.invalid" not in machine
    assert "URIs: http://198.19.255.1:3142/debian-security\n" in machine


@pytest.mark.parametrize(("host", "other"), [("bookworm", "trixie"), ("trixie", "bookworm")])
def test_each_release_is_derived_from_the_hosts_repositories(tmp_path, host, other):
    """A Debian 12 host's mirror serves the lab's Debian 13 machines, and the other way round."""
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        f"Types: deb\nURIs: http://mirror.invalid/debian\nSuites: {host} {host}-updates\nComponents: main\n\n"
        f"Types: deb\nURIs: http://mirror.invalid/debian-security\nSuites: {host}-security\nComponents: main\n\n"
        "Types: deb\nURIs: http://other.invalid/tool\nSuites: nodistro\nComponents: main\n"
    )
    sources = lab_sources(tmp_path, suites=(other, host))
    assert [(s.uri, s.suites) for s in sources[other]] == [
        ("http://mirror.invalid/debian", (other, f"{other}-updates")),
        ("http://mirror.invalid/debian-security", (f"{other}-security",)),
    ]
    assert [s.suites for s in sources[host]] == [(host, f"{host}-updates"), (f"{host}-security",)]
    assert base_source(sources[other], other).uri == "http://mirror.invalid/debian"


def test_one_line_style_sources_list_is_read_too(tmp_path):
    (tmp_path / "sources.list").write_text("# comment\ndeb [arch=amd64] http://m.invalid/debian bookworm main\n")
    assert [s.uri for s in lab_sources(tmp_path)["trixie"]] == ["http://m.invalid/debian"]


def test_no_mirror_is_a_clear_problem(tmp_path):
    (tmp_path / "sources.list").write_text("deb http://m.invalid/tool nodistro main\n")
    with pytest.raises(LabError) as caught:
        lab_sources(tmp_path)
    assert codes(caught.value) == ["lab.no-mirror"]


def test_the_real_lab_inventory_plans_every_machine():
    plan = lab.load_plan(REPO / "inventory" / "lab")
    names = [m.hostname for m in plan.machines]
    assert names[-1] == plan.internet and len(names) == len(set(names))
    assert [m.hostname for m in plan.machines if m.forwarding] == ["gw"]
    every = [p.address.ip for m in plan.machines for p in m.ports] + [plan.control.ip]
    assert all(ip in LAB_RANGE for ip in every)
    assert len(every) == len(set(every))


def test_a_lab_inventory_outside_the_range_stops_before_anything_is_made(tmp_path):
    inventory = tmp_path / "lab"
    shutil.copytree(REPO / "inventory" / "lab", inventory)
    network = inventory / "network.yml"
    network.write_text(network.read_text().replace("198.18.10.", "10.10.10."))
    with pytest.raises(Error) as caught:
        lab.up(inventory, checks=lab.HostChecks(is_root=lambda: False))
    found = {(p.code, Path(p.file).name, p.field) for p in caught.value.problems}
    assert ("lab.outside-benchmark-range", "network.yml", "subnet") in found
    assert all(p.line for p in caught.value.problems if p.code == "lab.outside-benchmark-range")


def test_the_simulator_hook_records_waits_for_ready_and_is_found_again(tmp_path, monkeypatch):
    monkeypatch.setattr(system, "RUN_DIR", tmp_path / "run")
    plan = plan_lab(make_inventory(state_dir=tmp_path / "state"))
    ready = lab.simulator_files(plan.state_dir)["ready"]
    ready.parent.mkdir(parents=True)
    monkeypatch.setattr(lab, "simulator_credentials", lambda _plan: None)
    fake = "import pathlib, sys, time; pathlib.Path(sys.argv[1]).write_text('{}'); time.sleep(60)"
    monkeypatch.setattr(lab, "simulator_command", lambda _plan: [sys.executable, "-c", fake, str(ready), lab.SIMULATOR])
    state = system.State(state_dir=str(plan.state_dir), processes={})
    said = []
    lab._start_simulator(plan, state, said.append, wait=10)
    ref = system.State.load().processes["simulator"]
    try:
        assert said == [] and ready.exists() and ref.alive()
        assert [name for name, found in lab._swept(plan.state_dir) if found.pid == ref.pid] == ["simulator"]
    finally:
        system.stop([ref], wait=5)
        system.reap(ref)
    assert not ref.alive()


def test_a_missing_simulator_is_said_not_hidden(tmp_path, monkeypatch):
    monkeypatch.setattr(lab, "simulator_command", lambda _plan: None)
    plan = plan_lab(make_inventory(state_dir=tmp_path / "state"))
    said = []
    lab._start_simulator(plan, system.State(), said.append)
    assert said == ["The network device simulator (akm.net.sim) is not installed; devices are not simulated."]


def test_image_states_half_built_outdated_ready(tmp_path):
    assert image.image_state(tmp_path, "trixie") == "missing"
    build = tmp_path / "image" / ".build-trixie-abc"
    build.mkdir(parents=True)
    assert image.image_state(tmp_path, "trixie") == "half-built"
    assert image.image_state(tmp_path, "bookworm") == "missing", "another release's build is not this one's"
    build.rmdir()
    root = image.image_dir(tmp_path, "trixie")
    (root / "etc").mkdir(parents=True)
    assert image.image_state(tmp_path, "trixie") == "half-built"
    stamp = {**image.wanted_stamp("trixie", ("openssh-server",)), "build": "b1"}
    (root / image.STAMP).write_text(json.dumps(stamp))
    assert image.image_state(tmp_path, "trixie", ("openssh-server",)) == "ready"
    assert image.image_state(tmp_path, "trixie", ("openssh-server", "squid")) == "outdated"
    assert image.image_state(tmp_path, "bookworm", ("openssh-server",)) == "missing"


def test_each_machine_boots_the_release_its_inventory_entry_names():
    plan = lab.load_plan(REPO / "inventory" / "lab")
    suites = {m.hostname: m.suite for m in plan.machines}
    assert suites.pop("srv") == "bookworm"
    assert set(suites.values()) == {"trixie"}
    assert plan.suites == ("bookworm", "trixie")


def test_a_machines_profiles_do_not_change_the_plans_identity(tmp_path):
    """Giving a lab machine a role (here: management) must not make ``akm lab up`` rebuild the lab."""
    copy = tmp_path / "lab"
    shutil.copytree(REPO / "inventory" / "lab", copy)
    assets = copy / "assets.yml"
    assert ", management]" in assets.read_text()
    with_role = plan_lab(load_inventory(copy))
    assets.write_text(assets.read_text().replace(", management]", "]"))
    assert plan_lab(load_inventory(copy)).ident == with_role.ident


def test_an_outdated_simulator_is_restarted_alone_and_a_current_one_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(system, "RUN_DIR", tmp_path / "run")
    plan = plan_lab(make_inventory(state_dir=tmp_path / "state"))
    ready = lab.simulator_files(plan.state_dir)["ready"]
    ready.parent.mkdir(parents=True)
    monkeypatch.setattr(lab, "simulator_credentials", lambda _plan: None)
    opened = []
    monkeypatch.setattr(lab.network, "host_firewall", lambda _plan, ports: opened.append(list(ports)))
    fake = (
        "import json, pathlib, sys, time; pathlib.Path(sys.argv[1]).write_text("
        "json.dumps({'devices': {'mikrotik': {'port': 22201}}})); time.sleep(60)"
    )
    old = [sys.executable, "-c", fake, str(ready), lab.SIMULATOR, "--old"]
    new = [sys.executable, "-c", fake, str(ready), lab.SIMULATOR, "--also-listen", "198.19.255.1"]
    monkeypatch.setattr(lab, "simulator_command", lambda _plan: old)
    state = system.State(state_dir=str(plan.state_dir), processes={})
    lab._start_simulator(plan, state, lambda _m: None, wait=10)
    first = state.processes["simulator"]
    monkeypatch.setattr(lab, "simulator_command", lambda _plan: new)
    said = []
    try:
        assert lab.refresh_simulator(plan, state, said.append) is True
        second = state.processes["simulator"]
        assert not first.alive() and second.alive() and second.pid != first.pid
        assert lab.refresh_simulator(plan, state, said.append) is False
        assert state.processes["simulator"].pid == second.pid
        assert said == ["The network device simulator was restarted."]
        assert opened == [[22201], [22201]]
    finally:
        refs = [first, state.processes["simulator"]]
        system.stop(refs, wait=5)
        for ref in refs:
            system.reap(ref)
