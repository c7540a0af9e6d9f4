"""The simulated network devices the lab starts: a pushed change shows up in the device's configuration."""

from __future__ import annotations

import json

import pytest
from netmiko import ConnectHandler

from akm.lab import lab
from tests.conftest import unavailable

pytestmark = pytest.mark.lab


def _ready(plan) -> dict:
    files = lab.simulator_files(plan.state_dir)
    if not files["ready"].exists():
        unavailable("the lab runs no device simulator (akm.net.sim is not installed)")
    return json.loads(files["ready"].read_text())


def _session(plan, platform):
    files = lab.simulator_files(plan.state_dir)
    name, device = next((n, d) for n, d in sorted(_ready(plan)["devices"].items()) if d["platform"] == platform)
    login = json.loads(files["credentials"].read_text())["devices"][name]
    return ConnectHandler(
        device_type=device["platform"],
        host=device["host"],
        port=device["port"],
        username=login["username"],
        password=login["password"],
        secret=login["secret"],
    )


def test_the_simulator_listens_on_loopback_and_the_control_address_only(running_lab):
    ready = _ready(running_lab)
    devices = ready["devices"]
    assert set(devices) == set(running_lab.simulated)
    assert {d["host"] for d in devices.values()} == {"127.0.0.1"}
    assert ready["also_listen"] == [str(running_lab.control.ip)]


def test_a_routeros_change_shows_in_the_export(running_lab):
    with _session(running_lab, "mikrotik_routeros") as conn:
        conn.send_command('/ip firewall address-list add list=akm-lab-test address=198.18.30.99 comment="lab"')
        try:
            assert "add address=198.18.30.99 comment=lab list=akm-lab-test\n" in conn.send_command("/export")
        finally:
            conn.send_command("/ip firewall address-list remove [find list=akm-lab-test]")
        assert "akm-lab-test" not in conn.send_command("/export")


def test_an_ios_change_shows_in_the_running_config(running_lab):
    with _session(running_lab, "cisco_ios") as conn:
        conn.enable()
        conn.send_config_set(["ip access-list extended AKM-LAB-TEST", "permit tcp any host 198.18.10.10 eq 22"])
        try:
            assert "ip access-list extended AKM-LAB-TEST\n" in conn.send_command("show running-config")
        finally:
            conn.send_config_set(["no ip access-list extended AKM-LAB-TEST"])
        assert "AKM-LAB-TEST" not in conn.send_command("show running-config")
