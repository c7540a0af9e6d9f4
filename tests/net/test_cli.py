"""``akm net`` end to end: the lab inventory (on free ports), a vault, the simulator, the real CLI."""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import subprocess
import sys

import pytest

from akm.cli import main
from akm.net.vault import write_vault
from tests.conftest import REPO, copy_lab_inventory


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def lab_inventory(tmp_path_factory):
    """A copy of inventory/lab whose simulated devices listen on free ports, its vault, and the simulator."""
    tmp = tmp_path_factory.mktemp("cli")
    inventory = tmp / "lab"
    copy_lab_inventory(inventory)
    assets = inventory / "assets.yml"
    text = assets.read_text()
    for port in ("22201", "22202"):
        text = re.sub(rf"\bport: {port}\b", f"port: {free_port()}", text)
    assets.write_text(text)
    creds = {
        name: {"username": "admin", "password": secrets.token_urlsafe(12), "secret": secrets.token_urlsafe(8)}
        for name in ("mikrotik", "sw-core")
    }
    password_file = tmp / "vault-password"
    password_file.write_text(secrets.token_hex(16))
    write_vault(
        inventory / "group_vars" / "all" / "vault.yml",
        password_file,
        {"vault_net_mikrotik": creds["mikrotik"], "vault_net_sw_core": creds["sw-core"]},
    )
    cred_file = tmp / "sim-credentials.json"
    cred_file.write_text(json.dumps({"devices": creds}))
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "akm.net.sim",
            "--inventory",
            str(inventory),
            "--credentials",
            str(cred_file),
            "--ready-file",
            str(tmp / "ready.json"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout.readline().strip() == "READY", process.stderr.read()
    # The devices' keys are recorded as in production, on first contact (only the simulated devices are
    # named: the lab's machines are not contacted).
    assert hostkeys(inventory, "--host", "mikrotik", "--host", "sw-core", "--write") == 0
    yield inventory, password_file, tmp
    process.terminate()
    process.wait(timeout=30)


def hostkeys(inventory, *argv) -> int:
    """``akm inventory hostkeys -i INVENTORY ...``, in English."""
    return main(["--lang", "en", "inventory", "hostkeys", "-i", str(inventory), *argv])


def run(capsys, *argv) -> tuple[int, str]:
    code = main(["--lang", "en", "net", *argv])
    return code, capsys.readouterr().out


def test_backup_push_health_through_the_cli(lab_inventory, capsys):
    inventory, password_file, tmp = lab_inventory
    common = [
        "--inventory",
        str(inventory),
        "--vault-password-file",
        str(password_file),
        "--evidence",
        str(tmp / "evidence"),
        "--timeout",
        "5",
    ]
    code, out = run(capsys, "backup", *common)
    assert code == 0, out
    record = json.loads((tmp / "evidence" / "net" / "backup-latest.json").read_text())
    assert {d["device"]: d["status"] for d in record["devices"]} == {"mikrotik": "changed", "sw-core": "changed"}
    assert record["commit"]
    assert sorted(p.name for p in (tmp / "evidence" / "netconfig").glob("*.[rc][sf][cg]")) == [
        "mikrotik.rsc",
        "sw-core.cfg",
    ]

    desired = tmp / "desired"
    desired.mkdir()
    (desired / "mikrotik.rsc").write_text("/ip firewall address-list\nadd address=198.18.20.0/24 list=akm-staff\n")
    (desired / "sw-core.cfg").write_text("ip access-list extended AKM-STAFF\n permit ip 198.18.20.0 0.0.0.255 any\n")
    code, out = run(capsys, "push", *common, str(desired), "--confirm", "yes")
    assert code == 0, out
    assert "+/ip firewall address-list add address=198.18.20.0/24 list=akm-staff" in out

    code, out = run(capsys, "backup", *common)
    assert code == 0
    log = subprocess.run(
        ["git", "log", "--format=%s"], cwd=tmp / "evidence" / "netconfig", capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert log[0] == "Config backup: 2 changed (mikrotik, sw-core)"
    assert len(log) == 2

    code, out = run(capsys, "health", *common)
    assert code == 0, out
    assert "mikrotik: uptime" in out and "interfaces up 5/5" in out


def test_wrong_vault_password_stops_before_any_device(lab_inventory, capsys, tmp_path):
    inventory, _password_file, _tmp = lab_inventory
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-password")
    code = main(
        [
            "--lang",
            "en",
            "net",
            "backup",
            "--inventory",
            str(inventory),
            "--vault-password-file",
            str(wrong),
            "--evidence",
            str(tmp_path / "evidence"),
        ]
    )
    assert code == 2
    assert "cannot be decrypted" in capsys.readouterr().err
    assert not (tmp_path / "evidence").exists()


def test_unknown_device_is_a_located_problem(lab_inventory, capsys):
    inventory, password_file, tmp = lab_inventory
    code = main(
        [
            "--lang",
            "en",
            "net",
            "backup",
            "--inventory",
            str(inventory),
            "--vault-password-file",
            str(password_file),
            "--device",
            "nosuch",
            "--evidence",
            str(tmp / "e2"),
        ]
    )
    assert code == 2
    assert "no network device named nosuch" in capsys.readouterr().err


def test_env_password_file_is_used(lab_inventory, capsys, monkeypatch):
    inventory, password_file, tmp = lab_inventory
    monkeypatch.setenv("ANSIBLE_VAULT_PASSWORD_FILE", str(password_file))
    code, out = run(
        capsys, "backup", "--inventory", str(inventory), "--device", "sw-core", "--evidence", str(tmp / "e3")
    )
    assert code == 0, out
    assert os.path.exists(tmp / "e3" / "netconfig" / "sw-core.cfg")


def test_the_built_access_policy_is_pushed_once_and_then_is_no_change(lab_inventory, capsys):
    """``akm policy build`` output for the lab, pushed to the lab's simulated router and switch."""
    inventory, password_file, tmp = lab_inventory
    out = tmp / "policy-out"
    code = main(
        [
            "--lang",
            "en",
            "policy",
            "build",
            "-i",
            str(inventory),
            "-p",
            str(REPO / "policies" / "access" / "lab"),
            "--out",
            str(out),
            "--only",
            "routeros,ios",
        ]
    )
    assert code == 0, capsys.readouterr()
    common = [
        "--inventory",
        str(inventory),
        "--vault-password-file",
        str(password_file),
        "--evidence",
        str(tmp / "evidence-policy"),
        "--timeout",
        "10",
    ]
    code, first = run(capsys, "push", *common, str(out), "--confirm", "yes")
    assert code == 0, first
    assert "applied and confirmed" in first
    code, second = run(capsys, "push", *common, str(out), "--confirm", "yes")
    assert code == 0, second
    assert second.count("already as desired") == 2


def test_a_device_whose_key_is_not_the_pinned_one_is_refused_until_the_inventory_is_updated(lab_inventory, capsys):
    """Another key pinned for mikrotik (as if the device answering were another one): netmiko refuses it,
    the run says which device and the command that records its key; after that command it proceeds."""
    from akm.inventory.hostkeys import write_keys

    inventory, password_file, tmp = lab_inventory
    other = subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp / "other")], capture_output=True, check=True
    )
    assert other.returncode == 0
    write_keys(inventory, {"mikrotik": [" ".join((tmp / "other.pub").read_text().split()[:2])]})
    common = ["--inventory", str(inventory), "--vault-password-file", str(password_file), "--timeout", "5"]
    common += ["--evidence", str(tmp / "evidence-refused"), "--device", "mikrotik"]
    code = main(["--lang", "en", "net", "health", *common])
    assert code == 1
    told = capsys.readouterr().err
    record = json.loads((tmp / "evidence-refused" / "net" / "health-latest.json").read_text())
    assert [(d["device"], d["status"]) for d in record["devices"]] == [("mikrotik", "host_key")]
    assert "not its pinned key" in record["devices"][0]["detail"]
    assert f"akm inventory hostkeys -i {inventory} --host mikrotik --replace mikrotik --write" in told

    assert hostkeys(inventory, "--host", "mikrotik") == 1
    assert "CHANGED" in capsys.readouterr().out
    assert hostkeys(inventory, "--host", "mikrotik", "--replace", "mikrotik", "--write") == 0
    code, out = run(capsys, "health", *common)
    assert code == 0, out
