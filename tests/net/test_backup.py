"""Backups against the simulator: all devices, exactly one diff and commit per change, no false diffs."""

from __future__ import annotations

import subprocess

from akm.net.backup import backup


def git(folder, *args):
    return subprocess.run(["git", *args], cwd=folder, check=True, capture_output=True, text=True).stdout


def test_backup_of_all_devices_then_one_change_is_one_diff_and_one_commit(sim, tmp_path, fast):
    targets = sim.targets()
    logins = sim.logins(targets)
    folder = tmp_path / "netconfig"

    first = backup(targets, logins, folder, fast)
    assert [r.status for r in first.results] == ["changed"] * len(targets)
    assert sorted(p.name for p in folder.iterdir() if p.name != ".git") == [
        "sim-001.rsc",
        "sim-002.cfg",
        "sim-003.rsc",
        "sim-004.cfg",
    ]
    assert "/system identity\nset name=sim-001\n" in (folder / "sim-001.rsc").read_text()
    assert "hostname sim-002\n" in (folder / "sim-002.cfg").read_text()
    assert git(folder, "rev-list", "--count", "HEAD").strip() == "1"

    sim.control.exec("sim-003", "/ip firewall address-list add list=akm-staff address=198.18.20.0/24")
    second = backup(targets, logins, folder, fast)
    statuses = {r.device: r.status for r in second.results}
    assert statuses == {"sim-001": "ok", "sim-002": "ok", "sim-003": "changed", "sim-004": "ok"}
    assert git(folder, "rev-list", "--count", "HEAD").strip() == "2"
    diff = git(folder, "show", "--format=%s", "HEAD")
    assert diff.splitlines()[0] == "Config backup: 1 changed (sim-003)"
    changed_lines = [line for line in diff.splitlines() if line[:1] in ("+", "-") and line[:3] not in ("+++", "---")]
    assert changed_lines == ["+/ip firewall address-list", "+add address=198.18.20.0/24 list=akm-staff"]

    third = backup(targets, logins, folder, fast)
    assert third.commit is None
    assert {r.status for r in third.results} == {"ok"}
    assert git(folder, "rev-list", "--count", "HEAD").strip() == "2"


def test_volatile_lines_never_cause_a_diff(sim, tmp_path, fast):
    """The export timestamp, IOS's change stamp and byte count and dynamic entries all move between runs."""
    targets = sim.targets()
    logins = sim.logins(targets)
    folder = tmp_path / "netconfig"
    backup(targets, logins, folder, fast)
    # dynamic (timeout) address-list entries are not configuration, and a no-op IOS change moves the
    # "Last configuration change" stamp without changing the configuration
    sim.control.exec("sim-001", "/ip firewall address-list add list=seen address=198.18.30.7 timeout=1h")
    sim.control.exec("sim-002", "hostname sim-002")
    run = backup(targets, logins, folder, fast)
    assert {r.status for r in run.results} == {"ok"}
    assert run.commit is None


def test_secrets_are_redacted(sim, tmp_path, fast):
    sim.control.exec(
        "sim-004",
        "enable secret 5 $1$placeholder$notarealhash",
        "username ops privilege 15 secret 5 $1$x$y",
        "snmp-server community placeholder-community RO",
    )
    sim.control.exec("sim-001", '/ppp secret add name=vpn-user password="placeholder pass"')  # pragma: allowlist secret
    targets = sim.targets("sim-001", "sim-004")
    folder = tmp_path / "netconfig"
    backup(targets, sim.logins(targets), folder, fast)
    ios_text = (folder / "sim-004.cfg").read_text()
    assert "enable secret 5 <redacted>" in ios_text
    assert "username ops privilege 15 secret 5 <redacted>" in ios_text
    assert "snmp-server community <redacted> RO" in ios_text
    assert "placeholder-community" not in ios_text
    ros_text = (folder / "sim-001.rsc").read_text()
    assert "add name=vpn-user" in ros_text and "placeholder pass" not in ros_text


def test_one_device_down_one_wrong_password_one_slow_while_the_others_succeed(sim, tmp_path, fast):
    sim.control.fault("sim-001", down=True)
    sim.control.fault("sim-002", refuse_login=True)
    sim.control.fault("sim-003", delay=fast.command * 3)
    targets = sim.targets()
    run = backup(targets, sim.logins(targets), tmp_path / "netconfig", fast)
    statuses = {r.device: r.status for r in run.results}
    assert statuses == {
        "sim-001": "unreachable",
        "sim-002": "auth_failed",
        "sim-003": "timeout",
        "sim-004": "changed",
    }
    assert not run.all_ok
    assert run.commit is not None
    assert sorted(p.name for p in (tmp_path / "netconfig").iterdir() if p.name != ".git") == ["sim-004.cfg"]
