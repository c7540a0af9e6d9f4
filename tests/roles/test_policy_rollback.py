"""The gateway's rollback puts the previous release back and leaves Kea, Unbound and lighttpd reading a
file that exists: the release's own, or Debian's configuration when the release put back has none for
them (a release from before the gateway served DHCP, DNS and WPAD)."""

from __future__ import annotations

from pathlib import Path

from .rollback import rollback


def _release(root: Path, name: str, files: list[str]) -> Path:
    release = root / name
    for file in ["nftables/gateway.nft", *files]:
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
