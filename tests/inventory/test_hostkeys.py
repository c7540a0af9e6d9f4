"""The pinned host keys without a network: how they are compared, written into the inventory's YAML in
place, and turned into the known_hosts file every SSH client of the project reads."""

from __future__ import annotations

import base64
import shlex
import shutil
from datetime import date
from pathlib import Path

import pytest

from akm.inventory import hostkeys, load_inventory
from akm.inventory.ansible import build
from akm.sshsig import read_key_line

HERE = Path(__file__).parent
TODAY = date(2026, 11, 25)
SRV = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDdqBfoj9Wdq7oJNjR6kEqR4GuVXfUCleDrqrFpL78xI"
READER = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICLKX14Kt+Jq11bG5Vw2oH2FYBPgZP/1wqSZvZyufZox"
SRV_FINGERPRINT = "SHA256:L/KdfxgW6YKQrWsOR0RWrJOFYALJ5+7slga1tTblyP0"


@pytest.fixture
def inventory_dir(tmp_path) -> Path:
    for source in (HERE / "base").iterdir():
        shutil.copy(source, tmp_path / source.name)
    return tmp_path


def key(text: str):
    return read_key_line(text)


def test_a_key_line_reads_with_the_fingerprint_ssh_keygen_prints():
    assert key(SRV + " root@srv").fingerprint == SRV_FINGERPRINT
    assert key(SRV + " root@srv").text == SRV


def test_compare_new_same_and_changed():
    srv, reader = key(SRV), key(READER)
    assert hostkeys.compare([], [srv]) == "new"
    assert hostkeys.compare([srv], [srv]) == "same"
    assert hostkeys.compare([srv], [reader]) == "changed"
    rsa_blob = b"\x00\x00\x00\x07ssh-rsa\x00\x00\x00\x01\x03\x00\x00\x00\x02\x00\xff"
    rsa = key("ssh-rsa " + base64.b64encode(rsa_blob).decode())
    # The pinned type is all a client asks for: another type beside it changes nothing, and a host that
    # no longer offers the pinned type at all is not the pinned host.
    assert hostkeys.compare([srv], [srv, rsa]) == "same"
    assert hostkeys.compare([srv], [rsa]) == "changed"


def test_the_key_recorded_is_the_strongest_type_presented():
    rsa_blob = b"\x00\x00\x00\x07ssh-rsa\x00\x00\x00\x01\x03\x00\x00\x00\x02\x00\xff"
    rsa = key("ssh-rsa " + base64.b64encode(rsa_blob).decode())
    finding = hostkeys.Finding(hostkeys.Target("srv", "127.0.0.1"), "new", [], [rsa, key(SRV)])
    assert finding.chosen.text == SRV


def test_known_names_use_the_bracket_form_off_port_22():
    assert hostkeys.known_names("srv", "198.18.10.10", 22) == ["srv", "198.18.10.10"]
    assert hostkeys.known_names("mikrotik", "127.0.0.1", 22201) == ["[mikrotik]:22201", "[127.0.0.1]:22201"]


def test_write_keys_makes_host_keys_yml_then_adds_and_replaces_in_place(inventory_dir):
    written = hostkeys.write_keys(inventory_dir, {"srv": [SRV]})
    assert [(w.host, w.file.rsplit("/", 1)[-1], w.line) for w in written] == [("srv", "host_keys.yml", 4)]
    path = inventory_dir / "host_keys.yml"
    # A person adds a comment and another field order; the tool keeps both.
    path.write_text(
        path.read_text().replace("  - host: srv\n", "  # the file server, reinstalled 2026-03\n  - host: srv\n")
    )
    hostkeys.write_keys(inventory_dir, {"oqish-01": [READER], "srv": [READER.replace("AAAAI", "AAAAI", 1)]})
    assert path.read_text() == (
        "---\n"
        "# The hosts' SSH host keys, recorded by akm inventory hostkeys --write (docs/inventory.md).\n"
        "host_keys:\n"
        "  # the file server, reinstalled 2026-03\n"
        "  - host: srv\n"
        "    keys:\n"
        f"      - {READER}\n"
        "  - host: oqish-01\n"
        "    keys:\n"
        f"      - {READER}\n"
    )


def test_write_keys_goes_into_the_file_that_holds_host_keys_and_keeps_everything_else(inventory_dir):
    assets = inventory_dir / "assets.yml"
    before = assets.read_text()
    assets.write_text(before + "host_keys:\n  - {host: oqish-01, keys: [x]}\n")
    with pytest.raises(hostkeys.HostKeysError) as refused:
        hostkeys.write_keys(inventory_dir, {"oqish-01": [READER]})
    assert (refused.value.problems[0].code, refused.value.problems[0].line) == ("hostkeys.flow-style", 33)
    assert assets.read_text().endswith("keys: [x]}\n"), "nothing is written when the file is refused"
    assets.write_text(before + "# keys reviewed by the IT specialist\nhost_keys:\n  - host: oqish-01\n    keys: [x]\n")
    hostkeys.write_keys(inventory_dir, {"oqish-01": [READER], "srv": [SRV]})
    assert assets.read_text() == before + (
        "# keys reviewed by the IT specialist\nhost_keys:\n"
        f"  - host: oqish-01\n    keys:\n      - {READER}\n"
        f"  - host: srv\n    keys:\n      - {SRV}\n"
    )
    assert not (inventory_dir / "host_keys.yml").exists()
    inventory = load_inventory(inventory_dir, today=TODAY)
    assert {h: r.keys for h, r in inventory.host_keys.items()} == {"oqish-01": [READER], "srv": [SRV]}


def test_known_hosts_names_each_host_by_hostname_and_address_and_is_rewritten_only_when_it_changes(inventory_dir):
    hostkeys.write_keys(inventory_dir, {"srv": [SRV + " root@srv"]})
    inventory = load_inventory(inventory_dir, today=TODAY)
    path = hostkeys.write_known_hosts(inventory)
    assert path == inventory_dir / ".known_hosts"
    lines = path.read_text().splitlines()
    assert lines[0].startswith("# Made by akm")
    assert lines[1:] == [f"srv,198.18.10.10 {SRV}"]
    assert hostkeys.read_known_hosts(path)["srv"] == [key(SRV)]
    inode = path.stat().st_ino
    hostkeys.write_known_hosts(inventory)
    assert path.stat().st_ino == inode, "the same content is not written again"


def test_ansible_checks_every_host_against_the_generated_file(inventory_dir):
    inventory = load_inventory(inventory_dir, today=TODAY)
    variables = build(inventory)["vars"]
    known = str(inventory_dir / ".known_hosts")
    assert variables["akm_known_hosts"] == known
    assert variables["ansible_host_key_checking"] is True
    assert shlex.split(variables["ansible_ssh_common_args"]) == [
        "-o",
        f"UserKnownHostsFile={known}",
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        "-o",
        "StrictHostKeyChecking=yes",
    ]


def test_the_advice_names_the_host_and_the_command():
    changed = hostkeys.advice(Path("inventory/production"), "gw", changed=True)
    assert changed.startswith("gw: its SSH host key is not the one the inventory pins.")
    assert "akm inventory hostkeys -i inventory/production --host gw --replace gw --write" in changed
    new = hostkeys.advice(Path("inventory/production"), "gw", changed=False)
    assert new.endswith("akm inventory hostkeys -i inventory/production --host gw --write")


def test_a_host_named_that_is_not_reached_over_ssh_is_an_error(inventory_dir):
    inventory = load_inventory(inventory_dir, today=TODAY)
    with pytest.raises(hostkeys.HostKeysError) as unknown:
        hostkeys.targets(inventory, ["nosuch"])
    assert unknown.value.problems[0].code == "hostkeys.unknown-host"
    assert [t.name for t in hostkeys.targets(inventory, ["srv"])] == ["srv"]
