"""The simulator itself: vendor-like prompts, errors and state, seen through real netmiko sessions."""

from __future__ import annotations

import json

import pytest
from netmiko import ConnectHandler

from akm.net.sim import ios, routeros
from akm.net.sim.server import Simulator, SimulatorError
from tests.net.conftest import Lab, wait_until


def session(sim, name, **extra):
    info = sim.ready["devices"][name]
    cred = sim.credentials[name]
    extra = {"host": info["host"], **extra}
    return ConnectHandler(
        device_type=info["platform"],
        port=info["port"],
        username=cred["username"],
        password=cred["password"],
        secret=cred["secret"],
        **extra,
    )


def test_non_loopback_hosts_are_refused():
    with pytest.raises(SimulatorError, match="not a loopback address"):
        Simulator(
            [{"name": "x", "platform": "cisco_ios", "host": "198.18.0.5", "port": 0}],
            {"default": {"username": "a", "password": "b"}},
        )


def test_also_listen_refuses_addresses_outside_the_lab():
    with pytest.raises(SimulatorError, match="only loopback or lab addresses"):
        Simulator(
            [{"name": "x", "platform": "cisco_ios", "host": "127.0.0.1", "port": 0}],
            {"default": {"username": "a", "password": "b"}},
            also_listen=["10.0.0.1"],
        )


def test_a_device_answers_on_the_extra_address_with_the_same_state(tmp_path):
    lab = Lab(tmp_path)
    lab.start(1, "--also-listen", "127.0.0.2")
    try:
        assert lab.ready["also_listen"] == ["127.0.0.2"]
        lab.control.exec("sim-001", "/ip firewall address-list add list=both address=198.18.20.7")
        with session(lab, "sim-001", host="127.0.0.2") as conn:
            assert "list=both" in conn.send_command("/export")
    finally:
        lab.stop()


def test_routeros_console(sim):
    with session(sim, "sim-003") as conn:
        assert conn.find_prompt() == "[admin@sim-003] >"
        assert conn.send_command('/ip firewall address-list add list=t address=198.18.20.9 comment="a b"') == ""
        assert "failure: already have such entry" in conn.send_command(
            "/ip firewall address-list add list=t address=198.18.20.9"
        )
        assert conn.send_command("/ip firewall address-list print count-only where list=t") == "1"
        assert "bad command name frobnicate" in conn.send_command("/frobnicate")
        assert "expected end of command" in conn.send_command("/ip firewall address-list add list=t colour=red")
        conn.send_command("/ip firewall address-list set [find list=t] comment=changed")
        terse = conn.send_command("/ip firewall address-list print terse where list=t")
        assert "list=t address=198.18.20.9" in terse and "comment=changed" in terse
        export = conn.send_command("/export")
        assert export.splitlines()[0].endswith("by RouterOS 7.16.1")
        conn.send_command("/ip firewall address-list remove [find list=t]")
        assert conn.send_command("/ip firewall address-list print count-only where list=t") == "0"


def test_routeros_export_hides_secrets_unless_asked(sim):
    sim.control.exec("sim-003", '/ppp secret add name=u1 password="placeholder-x"')  # pragma: allowlist secret
    with session(sim, "sim-003") as conn:
        assert "placeholder-x" not in conn.send_command("/export")
        assert "placeholder-x" not in conn.send_command("/export hide-sensitive")
        assert "password=placeholder-x" in conn.send_command("/export show-sensitive")
    sim.control.exec("sim-003", "/ppp secret remove [find name=u1]")


def test_routeros_timeout_entries_expire_and_scheduler_runs():
    device = routeros.RouterOS("r")
    console = routeros.Session(device, "admin")
    assert console.run_line("/ip firewall address-list add list=x address=198.18.30.1 timeout=5s") == ""
    assert "198.18.30.1" not in device.export()  # dynamic entries are not configuration
    assert console.run_line("/ip firewall address-list print count-only") == "1\r\n"
    device.tick(now=device.items["ip firewall address-list"][0].created + 6)
    assert console.run_line("/ip firewall address-list print count-only") == "0\r\n"
    console.run_line('/system scheduler add name=j interval=10s on-event="/system identity set name=after"')
    job = device.items["system scheduler"][0]
    for script in device.tick(now=job.created + 11):
        device.run_script(script)
    assert device.name == "after"


def test_ios_modes_and_errors(sim):
    with session(sim, "sim-004") as conn:
        assert conn.find_prompt() == "sim-004>"
        assert "% Invalid input" in conn.send_command("show running-config")
        conn.enable()
        assert conn.find_prompt() == "sim-004#"
        output = conn.send_config_set(
            [
                "ip access-list extended T1",
                "permit tcp any host 198.18.10.5 eq 53",
                "interface Gi0/8",
                "ip access-group T1 out",
                "frobnicate now",
            ]
        )
        assert "sim-004(config-ext-nacl)#" in output and "sim-004(config-if)#" in output
        lines = output.splitlines()
        caret = lines.index("% Invalid input detected at '^' marker.") - 1
        assert lines[caret].index("^") == len("sim-004(config-if)#")
        running = conn.send_command("show running-config")
        assert "ip access-list extended T1\n permit tcp any host 198.18.10.5 eq domain\n" in running
        assert " ip access-group T1 out\n" in running
        conn.send_config_set(["no ip access-list extended T1", "interface Gi0/8", "no ip access-group T1 out"])
        assert "T1" not in conn.send_command("show running-config")


def test_restarted_simulator_keeps_saved_configuration(tmp_path):
    lab = Lab(tmp_path)
    lab.start(2)
    try:
        lab.control.exec("sim-001", "/ip firewall address-list add list=kept address=198.18.20.1")
        lab.control.exec("sim-002", "hostname saved-name")
        with session(lab, "sim-002") as conn:
            conn.enable()
            assert "[OK]" in conn.send_command("write memory")
        lab.control.exec("sim-002", "hostname unsaved-name")
        assert wait_until(lambda: "kept" in (tmp_path / "sim-state.json").read_text())
    finally:
        lab.stop()
    lab.start(2)
    try:
        assert "list=kept" in lab.control.config("sim-001")
        assert "hostname saved-name" in lab.control.config("sim-002")  # IOS boots its startup-config
    finally:
        lab.stop()


def test_ios_ace_normalisation():
    assert (
        ios.ace(["permit", "tcp", "198.18.20.0", "0.0.0.255", "any", "eq", "80"])
        == "permit tcp 198.18.20.0 0.0.0.255 any eq www"
    )
    assert (
        ios.ace(["deny", "ip", "198.18.30.7", "0.0.0.0", "0.0.0.0", "255.255.255.255", "log"])
        == "deny ip host 198.18.30.7 any log"
    )
    with pytest.raises(ios.InvalidInput):
        ios.ace(["permit", "tcp", "any", "any", "eq", "nosuchport"])


def test_simulator_refuses_an_inventory_with_real_addresses(tmp_path, repo, capsys):
    """The production inventory's devices are on the centre's addresses: never served, never contacted."""
    from akm.net.sim.__main__ import main

    credentials = tmp_path / "creds.json"
    credentials.write_text('{"default": {"username": "a", "password": "placeholder"}}')  # pragma: allowlist secret
    assert main(["--inventory", str(repo / "inventory" / "production"), "--credentials", str(credentials)]) == 2
    assert "is not a loopback address" in capsys.readouterr().err


def test_lab_credentials_are_made_at_run_time_and_kept(tmp_path, repo):
    from akm.net.sim.credentials import make
    from akm.net.vault import read_vault

    password_file = tmp_path / "pw"
    password_file.write_text("placeholder-lab-vault-password")
    vault, out = tmp_path / "vault.yml", tmp_path / "sim.json"
    assert make(repo / "inventory" / "lab", vault, password_file, out) == ["vault_net_mikrotik", "vault_net_sw_core"]
    first = read_vault(vault, password_file)
    assert make(repo / "inventory" / "lab", vault, password_file, out) == []
    assert read_vault(vault, password_file) == first
    devices = json.loads(out.read_text())["devices"]
    assert devices["mikrotik"]["password"] == first["vault_net_mikrotik"]["password"]
    assert oct(out.stat().st_mode & 0o777) == "0o600"
