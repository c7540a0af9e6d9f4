"""The gateway's rollback puts the previous release back and leaves Kea, Unbound and lighttpd reading a
file that exists: the release's own, or Debian's configuration when the release put back has none for
them (a release from before the gateway served DHCP, DNS and WPAD). Another Linux host's rollback puts
its host firewall back, or removes it after a first push, and touches no daemon."""

from __future__ import annotations

import json
from pathlib import Path

from .rollback import rollback


def _release(root: Path, name: str, files: list[str], ruleset: str = "nftables/gateway.nft") -> Path:
    release = root / name
    for file in [ruleset, *files]:
        (release / file).parent.mkdir(parents=True, exist_ok=True)
        (release / file).write_text("from the release\n")
    return release


def test_back_to_a_release_with_dhcp_dns_and_wpad_keeps_the_daemons_on_it(tmp_path):
    world = rollback(tmp_path, tmp_path / "evidence")
    previous = _release(world.root, "r-old", ["kea/dhcp4.json", "unbound/akm.conf", "wpad/wpad.dat"])
    failed = _release(world.root, "r-new", ["kea/dhcp4.json", "unbound/akm.conf", "wpad/wpad.dat"])
    (world.root / "current").symlink_to(failed)
    done = world.run(str(previous), str(failed), "a check failed")
    assert done.returncode == 0, done.stderr
    assert (world.root / "current").resolve() == previous
    assert all(link.exists() for link in world.links.values())
    assert f"nft -f {world.root}/current/nftables/gateway.nft" in world.asked()
    assert world.asked()[-2:] == ["systemctl daemon-reload", "systemctl restart kea-dhcp4-server unbound lighttpd"]


def test_back_to_a_release_from_before_dhcp_and_dns_gives_the_daemons_their_own_configuration(tmp_path):
    world = rollback(tmp_path, tmp_path / "evidence")
    previous = _release(world.root, "r-old", [])
    failed = _release(world.root, "r-new", ["kea/dhcp4.json", "unbound/akm.conf", "wpad/wpad.dat"])
    (world.root / "current").symlink_to(failed)
    done = world.run(str(previous), str(failed), "a check failed")
    assert done.returncode == 0, done.stderr
    assert (world.root / "current").resolve() == previous
    assert not any(link.exists() for link in world.links.values())
    assert world.asked()[-1] == "systemctl restart kea-dhcp4-server unbound lighttpd"


def test_a_host_goes_back_to_its_previous_firewall_and_no_daemon_is_touched(tmp_path):
    world = rollback(tmp_path, tmp_path / "evidence", gateway=False)
    previous = _release(world.root, "r-old", [], ruleset="hosts/host.nft")
    failed = _release(world.root, "r-new", [], ruleset="hosts/host.nft")
    (world.root / "current").symlink_to(failed)
    done = world.run(str(previous), str(failed), "Check that management SSH still answers")
    assert done.returncode == 0, done.stderr
    assert (world.root / "current").resolve() == previous
    assert world.asked() == [f"nft -f {world.root}/current/hosts/host.nft"]
    (record,) = (tmp_path / "evidence").glob("*-rollback.json")
    data = json.loads(record.read_text())
    assert (data["kind"], data["host"], data["reason"]) == (
        "policy.rollback",
        "srv",
        "Check that management SSH still answers",
    )


def test_a_hosts_first_push_rolled_back_removes_its_table(tmp_path):
    world = rollback(tmp_path, tmp_path / "evidence", gateway=False)
    failed = _release(world.root, "r-new", [], ruleset="hosts/host.nft")
    (world.root / "current").symlink_to(failed)
    done = world.run("", str(failed), "not confirmed")
    assert done.returncode == 0, done.stderr
    assert world.asked() == ["nft delete table inet akm_host"]
