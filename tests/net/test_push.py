"""Pushes against the simulator: apply the difference, confirm, roll back on failed checks or no answer."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from akm.net.backup import backup
from akm.net.common import NetError
from akm.net.push import PushOptions, push, read_desired
from tests.net.conftest import Lab, wait_until

ROS_DESIRED = """\
/ip firewall address-list
add address=198.18.20.0/24 list=akm-staff comment="akm: staff"
add address=198.18.30.0/24 list=akm-readers comment="akm: readers"
/ip firewall filter
add chain=forward action=accept src-address-list=akm-staff comment="akm: staff may browse"
add chain=forward action=drop src-address-list=akm-readers dst-port=25 protocol=tcp comment="akm: no mail"
"""

IOS_DESIRED = """\
ip access-list extended AKM-READERS
 permit tcp 198.18.30.0 0.0.0.255 any eq 80
 permit tcp 198.18.30.0 0.0.0.255 any eq 443
 deny ip any any log
interface GigabitEthernet0/3
 description readers
 ip access-group AKM-READERS in
"""


def desired_dir(tmp_path, files: dict[str, str]):
    folder = tmp_path / "desired"
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def test_push_applies_only_the_difference_and_shows_in_the_next_backup(sim, tmp_path, fast):
    sim.control.exec(
        "sim-001",
        '/ip firewall address-list add list=akm-staff address=198.18.20.0/24 comment="akm: staff"',
        '/ip firewall address-list add list=akm-old address=198.18.99.0/24 comment="akm: old"',
        "/ip firewall address-list add list=manual address=198.18.50.1",
    )
    targets = sim.targets("sim-001", "sim-002")
    logins = sim.logins(targets)
    desired = read_desired(desired_dir(tmp_path, {"sim-001.rsc": ROS_DESIRED, "sim-002.cfg": IOS_DESIRED}), targets)
    seen = {}
    options = PushOptions(confirm="yes", timeouts=fast)
    results = push(targets, logins, desired, options, report=lambda device, diff: seen.setdefault(device, diff))

    assert [(r.device, r.status) for r in results] == [("sim-001", "changed"), ("sim-002", "changed")]
    assert seen["sim-001"] == [
        '-/ip firewall address-list add address=198.18.99.0/24 comment="akm: old" list=akm-old',
        '+/ip firewall address-list add address=198.18.30.0/24 list=akm-readers comment="akm: readers"',
        "+/ip firewall filter add chain=forward action=accept src-address-list=akm-staff "
        'comment="akm: staff may browse"',
        "+/ip firewall filter add chain=forward action=drop src-address-list=akm-readers dst-port=25 protocol=tcp "
        'comment="akm: no mail"',
    ]
    assert "+  permit tcp 198.18.30.0 0.0.0.255 any eq www" in seen["sim-002"]

    folder = tmp_path / "netconfig"
    backup(targets, logins, folder, fast)
    ros = (folder / "sim-001.rsc").read_text()
    assert 'add address=198.18.30.0/24 comment="akm: readers" list=akm-readers' in ros and "akm-old" not in ros
    assert "add address=198.18.50.1 list=manual" in ros  # not the policy's: left alone
    assert 'comment="akm: staff may browse"' in ros
    assert "akm-rollback" not in ros  # the safety net is gone once confirmed
    ios = (folder / "sim-002.cfg").read_text()
    assert (
        "interface GigabitEthernet0/3\n description readers\n no ip address\n ip access-group AKM-READERS in\n" in ios
    )
    assert " permit tcp 198.18.30.0 0.0.0.255 any eq 443\n" in ios
    assert "hostname sim-002" in sim.control.request(op="config", device="sim-002")["config"]

    again = push(targets, logins, desired, options)
    assert [r.status for r in again] == ["ok", "ok"]
    assert all(r.data["commands"] == [] for r in again)


def test_push_whose_post_check_fails_is_rolled_back(sim, tmp_path, fast):
    """The device accepts the filter rule but silently loses it: the re-read shows it, so roll back."""
    before_ros = sim.control.config("sim-003")
    before_ios = sim.control.config("sim-004")
    sim.control.fault("sim-003", ignore="firewall filter add")
    sim.control.fault("sim-004", ignore="deny ip any any")
    targets = sim.targets("sim-003", "sim-004")
    desired = read_desired(desired_dir(tmp_path, {"sim-003.rsc": ROS_DESIRED, "sim-004.cfg": IOS_DESIRED}), targets)
    results = push(targets, sim.logins(targets), desired, PushOptions(confirm="yes", timeouts=fast))
    assert [r.status for r in results] == ["rolled_back", "rolled_back"]
    assert all("post-check failed" in r.detail for r in results)
    assert sim.control.config("sim-003") == before_ros
    assert sim.control.config("sim-004") == before_ios


def test_connection_dropped_mid_push_is_rolled_back_and_others_still_succeed(sim, tmp_path, fast):
    before = sim.control.config("sim-003")
    sim.control.fault("sim-003", drop_on="akm-readers")
    targets = sim.targets("sim-003", "sim-004")
    desired = read_desired(desired_dir(tmp_path, {"sim-003.rsc": ROS_DESIRED, "sim-004.cfg": IOS_DESIRED}), targets)
    results = push(targets, sim.logins(targets), desired, PushOptions(confirm="yes", timeouts=fast))
    statuses = {r.device: r.status for r in results}
    assert statuses["sim-003"] == "rolled_back" and "apply failed" in results[0].detail
    assert statuses["sim-004"] == "changed"
    sim.control.fault("sim-003")
    assert sim.control.config("sim-003") == before


def test_no_confirmation_in_time_rolls_back(sim, tmp_path, fast):
    before = {name: sim.control.config(name) for name in ("sim-001", "sim-002")}
    targets = sim.targets("sim-001", "sim-002")
    text = {
        "sim-001.rsc": "/ip firewall address-list\nadd address=198.18.40.0/24 list=akm-digit\n",
        "sim-002.cfg": "ip access-list extended AKM-DIGIT\n permit ip 198.18.40.0 0.0.0.255 any\n",
    }
    desired = read_desired(desired_dir(tmp_path, text), targets)
    asked = []
    results = push(
        targets,
        sim.logins(targets),
        desired,
        PushOptions(confirm="ask", confirm_timeout=5, timeouts=fast),
        ask=lambda timeout: asked.append(timeout) or False,
    )
    assert asked == [5]
    assert [r.status for r in results] == ["rolled_back", "rolled_back"]
    assert {name: sim.control.config(name) for name in before} == before


def test_routeros_rolls_back_by_itself_when_the_operator_never_answers(sim, tmp_path, fast):
    """The tool is gone (here: the answer comes too late); the device's scheduler restores the backup."""
    before = sim.control.config("sim-001")
    targets = sim.targets("sim-001")
    desired = read_desired(desired_dir(tmp_path, {"sim-001.rsc": "/system identity\nset name=renamed\n"}), targets)

    def late_operator(timeout):
        assert "name=renamed" in sim.control.config("sim-001")
        assert wait_until(lambda: sim.control.config("sim-001") == before)
        return True

    options = PushOptions(confirm="ask", confirm_timeout=1, grace=1, timeouts=fast)
    results = push(targets, sim.logins(targets), desired, options, ask=late_operator)
    assert results[0].status == "rolled_back"
    assert "by itself" in results[0].detail
    assert sim.control.config("sim-001") == before


def test_unreachable_and_wrong_password_devices_fail_alone(sim, tmp_path, fast):
    sim.control.fault("sim-001", down=True)
    sim.control.fault("sim-002", refuse_login=True)
    sim.control.fault("sim-003", delay=fast.command * 3)
    targets = sim.targets()
    text = {
        "sim-001.rsc": ROS_DESIRED,
        "sim-002.cfg": IOS_DESIRED,
        "sim-003.rsc": ROS_DESIRED,
        "sim-004.cfg": "ip access-list extended AKM-X\n permit ip any any\n",
    }
    desired = read_desired(desired_dir(tmp_path, text), targets)
    results = push(targets, sim.logins(targets), desired, PushOptions(confirm="yes", timeouts=fast))
    assert {r.device: r.status for r in results} == {
        "sim-001": "unreachable",
        "sim-002": "auth_failed",
        "sim-003": "timeout",
        "sim-004": "changed",
    }


def test_desired_files_are_checked_before_any_device_is_touched(sim, tmp_path):
    targets = sim.targets()
    folder = desired_dir(
        tmp_path,
        {
            "sim-001.cfg": "hostname x\n",
            "nobody.rsc": "/system identity\n",
            "sim-003.rsc": "/ip firewall address-list\nadd list=a address=1.2.3.4\nbogus\n",
        },
    )
    with pytest.raises(NetError) as caught:
        read_desired(folder, targets)
    assert sorted(p.code for p in caught.value.problems) == [
        "net.desired-bad-line",
        "net.desired-unknown-device",
        "net.desired-wrong-platform",
    ]
    bad_line = next(p for p in caught.value.problems if p.code == "net.desired-bad-line")
    assert bad_line.line == 3


def test_dry_run_changes_nothing(sim, tmp_path, fast):
    before = sim.control.config("sim-004")
    targets = sim.targets("sim-004")
    desired = read_desired(desired_dir(tmp_path, {"sim-004.cfg": IOS_DESIRED.replace("READERS", "DRY")}), targets)
    results = push(targets, sim.logins(targets), desired, replace(PushOptions(timeouts=fast), dry_run=True))
    assert results[0].status == "ok" and results[0].data["commands"]
    assert sim.control.config("sim-004") == before


def test_redacted_secrets_are_never_pushed(sim, tmp_path):
    targets = sim.targets()
    folder = desired_dir(tmp_path, {"sim-002.cfg": "enable secret 5 <redacted>\nhostname x\n"})
    with pytest.raises(NetError) as caught:
        read_desired(folder, targets)
    assert [(p.code, p.line) for p in caught.value.problems] == [("net.desired-redacted", 1)]


def test_a_stored_backup_restores_a_routeros_device(sim, tmp_path, fast):
    """The restore path: the stored file of a backup is the desired state of a push."""
    targets = sim.targets("sim-003")
    logins = sim.logins(targets)
    sim.control.exec("sim-003", "/ip firewall address-list add list=keep address=198.18.20.77")
    folder = tmp_path / "netconfig"
    backup(targets, logins, folder, fast)
    sim.control.exec(
        "sim-003",
        "/ip firewall address-list remove [find list=keep]",
        "/ip firewall address-list add list=intruder address=198.18.99.1",
        "/system identity set name=tampered",
    )
    desired = read_desired(folder / "sim-003.rsc", targets)
    results = push(targets, logins, desired, PushOptions(confirm="yes", timeouts=fast, owner=""))
    assert results[0].status == "changed", results[0].detail
    again = backup(targets, logins, folder, fast)
    assert again.results[0].status == "ok" and again.commit is None
    sim.control.exec("sim-003", "/ip firewall address-list remove [find list=keep]")


def test_a_stored_backup_restores_an_ios_device_and_removes_acls_it_lacks(sim, tmp_path, fast):
    targets = sim.targets("sim-004")
    logins = sim.logins(targets)
    sim.control.exec("sim-004", "configure terminal", "ip access-list extended KEEP", "permit ip any any", "end")
    folder = tmp_path / "netconfig"
    backup(targets, logins, folder, fast)
    sim.control.exec(
        "sim-004",
        "configure terminal",
        "ip access-list extended INTRUDER",
        "permit ip any any",
        "exit",
        "ip access-list extended KEEP",
        "deny ip any any",
        "end",
    )
    desired = read_desired(folder / "sim-004.cfg", targets)
    results = push(targets, logins, desired, PushOptions(confirm="yes", timeouts=fast, owner=""))
    assert results[0].status == "changed", results[0].detail
    again = backup(targets, logins, folder, fast)
    assert again.results[0].status == "ok" and again.commit is None
    assert "INTRUDER" not in (folder / "sim-004.cfg").read_text()
    sim.control.exec("sim-004", "configure terminal", "no ip access-list extended KEEP", "end")


def test_ios_reverts_by_itself_when_the_confirmation_never_comes(tmp_path, fast):
    """IOS ``configure terminal revert timer``: here a simulator minute lasts one second."""
    lab = Lab(tmp_path)
    lab.start(2, "--ios-minute", "1")
    try:
        before = lab.control.config("sim-002")
        targets = lab.targets("sim-002")
        desired = read_desired(desired_dir(tmp_path, {"sim-002.cfg": "hostname renamed-switch\n"}), targets)

        def late_operator(timeout):
            assert "hostname renamed-switch" in lab.control.config("sim-002")
            assert wait_until(lambda: lab.control.config("sim-002") == before)
            return True

        options = PushOptions(confirm="ask", confirm_timeout=1, grace=0, timeouts=fast)
        results = push(targets, lab.logins(targets), desired, options, ask=late_operator)
        assert results[0].status == "rolled_back"
        assert "by itself" in results[0].detail
        assert lab.control.config("sim-002") == before
    finally:
        lab.stop()


def test_firewall_rule_order_is_applied(sim, tmp_path, fast):
    rules = [
        "add action=accept chain=forward comment=first",
        "add action=drop chain=forward comment=second",
        "add action=accept chain=forward comment=third",
    ]
    targets = sim.targets("sim-003")
    logins = sim.logins(targets)
    for n, order in enumerate((rules, [rules[0], rules[2], rules[1]])):
        folder = desired_dir(tmp_path / str(n), {"sim-003.rsc": "/ip firewall filter\n" + "\n".join(order) + "\n"})
        options = PushOptions(confirm="yes", timeouts=fast, owner="")
        results = push(targets, logins, read_desired(folder, targets), options)
        assert results[0].status == "changed", results[0].detail
        exported = [line for line in sim.control.config("sim-003").splitlines() if "comment=" in line]
        assert [line.split("comment=")[1] for line in exported] == [r.split("comment=")[1] for r in order]
    sim.control.exec("sim-003", "/ip firewall filter remove [find]")


POLICY_OUTPUT = Path(__file__).parent / "policy-output"


def test_policy_build_layout_is_pushed_once_and_then_is_no_change(sim, fast):
    """The layout of ``akm policy build`` (routeros/<host>.rsc, ios/<host>.txt, comments, a timed grant,
    a time-range): the first push changes both devices, a second push finds nothing to do."""
    targets = sim.targets("sim-001", "sim-002")
    logins = sim.logins(targets)
    desired = read_desired(POLICY_OUTPUT, targets, known=["sim-003", "sim-004"])
    assert sorted(desired) == ["sim-001", "sim-002"]
    first = push(targets, logins, desired, PushOptions(confirm="yes", timeouts=fast))
    assert [r.status for r in first] == ["changed", "changed"], [r.detail for r in first]
    ros = sim.control.config("sim-001")
    assert "akm-grant-scanner" not in ros.split("/ip firewall filter")[0]  # the timed entry is dynamic
    assert "dst-address-list=!akm-lan" in ros and "time=8h-17h,mon,tue,wed,thu,fri" in ros
    ios = sim.control.config("sim-002")
    assert " permit udp 198.18.30.0 0.0.0.255 host 198.18.30.1 eq domain\n" in ios
    assert "time-range AKM-WORKDAYS\n periodic Monday Tuesday Wednesday Thursday Friday 08:00 to 17:00\n" in ios
    second = push(targets, logins, desired, PushOptions(confirm="yes", timeouts=fast))
    assert [(r.status, r.data["commands"]) for r in second] == [("ok", []), ("ok", [])]


def test_ios_connection_dropped_mid_push_is_rolled_back(sim, tmp_path, fast):
    before = sim.control.config("sim-004")
    sim.control.fault("sim-004", drop_on="eq 443")
    targets = sim.targets("sim-004")
    text = IOS_DESIRED.replace("READERS", "DROPPED").replace("GigabitEthernet0/3", "GigabitEthernet0/6")
    desired = read_desired(desired_dir(tmp_path, {"sim-004.cfg": text}), targets)
    results = push(targets, sim.logins(targets), desired, PushOptions(confirm="yes", timeouts=fast))
    assert results[0].status == "rolled_back" and "apply failed" in results[0].detail
    assert sim.control.config("sim-004") == before
