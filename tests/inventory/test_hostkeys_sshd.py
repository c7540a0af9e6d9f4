"""Pinned host keys against a real OpenSSH server: ``akm inventory hostkeys`` records its key, and
OpenSSH's client, Ansible with the Mitogen strategy and pyinfra (``akm report facts``) trust that key and
refuse another one, until the inventory is updated.

The test starts its own ``sshd`` on a free loopback port with host keys and an authorized key made in a
temporary directory; it logs in as the user who runs the tests. Run as root, sshd needs its privilege
separation directory ``/run/sshd``, which the test makes if it is missing (as the openssh-server service
does when it starts). The inventory is the bad-input corpus' base with ``srv`` reached at 127.0.0.1 on
that port and the other host out of use, so nothing else is contacted.
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.conftest import REPO

from akm.cli import main
from akm.inventory import hostkeys, load_inventory
from akm.report.facts import host_key_reasons

HERE = Path(__file__).parent
pytestmark = pytest.mark.needs("sshd", "ssh", "ssh-keyscan", "ssh-keygen")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def keygen(path: Path) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f", str(path)], check=True)
    return path


class Sshd:
    """An OpenSSH server of the test's own on 127.0.0.1, restartable with another host key."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.port = free_port()
        self.client = keygen(tmp / "client")
        (tmp / "authorized_keys").write_text((tmp / "client.pub").read_text())
        self.process: subprocess.Popen | None = None

    def start(self, host_key: Path) -> None:
        self.stop()
        config = self.tmp / "sshd_config"
        config.write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {host_key}\n"
            f"AuthorizedKeysFile {self.tmp / 'authorized_keys'}\nPidFile none\nUsePAM no\nStrictModes no\n"
        )
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        self.process = subprocess.Popen(
            [shutil.which("sshd"), "-D", "-e", "-f", str(config)], stderr=(self.tmp / "sshd.log").open("ab")
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as conn:
                    if conn.recv(4) == b"SSH-":
                        return
            except OSError:
                time.sleep(0.1)
        raise AssertionError("sshd did not start: " + (self.tmp / "sshd.log").read_text()[-2000:])

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@pytest.fixture
def sshd(tmp_path):
    server = Sshd(tmp_path)
    server.start(keygen(tmp_path / "host_key"))
    yield server
    server.stop()


@pytest.fixture
def inventory_dir(tmp_path, sshd) -> Path:
    """The corpus' base inventory with srv managed at 127.0.0.1:<sshd's port>, oqish-01 in store."""
    inventory = tmp_path / "inventory"
    inventory.mkdir()
    for source in (HERE / "base").iterdir():
        shutil.copy(source, inventory / source.name)
    (inventory / "akm.yml").write_text("---\nplugin: akm\n")
    network = inventory / "network.yml"
    network.write_text(
        network.read_text() + "  - {id: mgmt, name: Boshqaruv, purpose: management, subnet: 127.0.0.0/24}\n"
    )
    assets = inventory / "assets.yml"
    text = assets.read_text()
    text = text.replace(
        '      - {segment: servers, ip: 198.18.10.10, mac: "02:00:00:00:00:01"}\n',
        '      - {segment: servers, ip: 198.18.10.10, mac: "02:00:00:00:00:01"}\n'
        "      - {name: eth1, segment: mgmt, ip: 127.0.0.1}\n",
    )
    text = text.replace(
        "    profiles: [file_server]\n", f"    profiles: [file_server]\n    vars: {{ansible_port: {sshd.port}}}\n"
    )
    text = text.replace(
        "    status: in_use\n    os: debian12\n    profiles: [reader]",
        "    status: in_store\n    os: debian12\n    profiles: [reader]",
    )
    assets.write_text(text)
    return inventory


def hostkeys_cli(inventory: Path, *argv: str) -> int:
    return main(["--lang", "en", "inventory", "hostkeys", "-i", str(inventory), *argv])


def login(sshd: Sshd, inventory: Path) -> subprocess.CompletedProcess:
    """``ssh srv true`` as every SSH client of the project is told to connect: the generated file only."""
    options = hostkeys.ssh_options(hostkeys.known_hosts_path(inventory))
    command = ["ssh", "-i", str(sshd.client), "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", *options]
    return subprocess.run(
        [*command, "-p", str(sshd.port), f"{getpass.getuser()}@127.0.0.1", "true"], capture_output=True, text=True
    )


def fingerprint(public: Path) -> str:
    return subprocess.run(["ssh-keygen", "-lf", str(public)], capture_output=True, text=True).stdout.split()[1]


def test_a_key_is_recorded_on_first_contact_trusted_then_a_changed_one_refused_until_replaced(
    sshd, inventory_dir, tmp_path, capsys
):
    assert hostkeys_cli(inventory_dir) == 0
    shown = capsys.readouterr().out
    assert f"srv   127.0.0.1:{sshd.port}  new" in shown and fingerprint(tmp_path / "host_key.pub") in shown
    assert "Nothing was written" in shown and not (inventory_dir / "host_keys.yml").exists()

    assert hostkeys_cli(inventory_dir, "--write") == 0
    assert "recorded the key of srv in" in capsys.readouterr().out
    pinned = load_inventory(inventory_dir).host_keys["srv"].keys
    assert pinned == [" ".join((tmp_path / "host_key.pub").read_text().split()[:2])]
    assert login(sshd, inventory_dir).returncode == 0
    assert hostkeys_cli(inventory_dir) == 0
    assert "unchanged" in capsys.readouterr().out

    sshd.start(keygen(tmp_path / "other_key"))
    assert hostkeys_cli(inventory_dir, "--write") == 1
    captured = capsys.readouterr()
    assert "CHANGED" in captured.out and fingerprint(tmp_path / "other_key.pub") in captured.out
    assert f"akm inventory hostkeys -i {inventory_dir} --host srv --replace srv --write" in captured.err
    assert load_inventory(inventory_dir).host_keys["srv"].keys == pinned, "a changed key is never written alone"
    refused = login(sshd, inventory_dir)
    assert refused.returncode == 255 and "Host key verification failed" in refused.stderr

    assert hostkeys_cli(inventory_dir, "--host", "srv", "--replace", "srv", "--write") == 0
    assert login(sshd, inventory_dir).returncode == 0


def ansible_ping(inventory: Path, sshd: Sshd, *extra: str, env: dict | None = None) -> subprocess.CompletedProcess:
    playbook = inventory.parent / "ping.yml"
    playbook.write_text(
        "---\n- name: Ping\n  hosts: srv\n  gather_facts: false\n  tasks:\n    - ansible.builtin.ping:\n"
    )
    binaries = Path(sys.executable).parent
    return subprocess.run(
        [
            *(str(binaries / "ansible-playbook"), "-i", str(inventory / "akm.yml"), str(playbook)),
            *("-u", getpass.getuser(), "--private-key", str(sshd.client), *extra),
        ],
        cwd=REPO,
        env={
            **os.environ,
            "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
            "PATH": f"{binaries}{os.pathsep}{os.environ['PATH']}",
            "AKM_LANG": "en",
            "NO_COLOR": "1",
            **(env or {}),
        },
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_ansible_with_mitogen_connects_only_to_the_pinned_key(sshd, inventory_dir, tmp_path):
    assert hostkeys_cli(inventory_dir, "--write") == 0
    done = ansible_ping(inventory_dir, sshd)
    assert "ok=1" in done.stdout and "unreachable=0" in done.stdout, done.stdout + done.stderr

    sshd.start(keygen(tmp_path / "other_key"))
    done = ansible_ping(inventory_dir, sshd)
    output = done.stdout + done.stderr
    assert done.returncode != 0 and "unreachable=1" in done.stdout
    assert "mismatching host key" in output, "the refusal is Mitogen's: the strategy ran the connection"
    assert "srv: its SSH host key is not one the inventory pins" in output
    assert f"akm inventory hostkeys -i {inventory_dir} --host srv --replace srv --write" in output
    # Molecule's own ansible.cfg turns host_key_checking off; the inventory turns it on for every host.
    done = ansible_ping(inventory_dir, sshd, env={"ANSIBLE_HOST_KEY_CHECKING": "False"})
    assert "unreachable=1" in done.stdout
    # Why it must: with checking off Mitogen puts "StrictHostKeyChecking no" and "UserKnownHostsFile
    # /dev/null" before ansible_ssh_common_args, ssh keeps the first value, and the other key is let in.
    done = ansible_ping(inventory_dir, sshd, "-e", "ansible_host_key_checking=false")
    assert "ok=1" in done.stdout, done.stdout + done.stderr

    assert hostkeys_cli(inventory_dir, "--replace", "srv", "--write") == 0
    done = ansible_ping(inventory_dir, sshd)
    assert "ok=1" in done.stdout and "unreachable=0" in done.stdout, done.stdout + done.stderr


def report_facts(inventory: Path, sshd: Sshd, evidence: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            *(sys.executable, "-m", "akm.cli", "--lang", "en", "report", "facts", "--inventory", str(inventory)),
            *("--evidence", str(evidence), "--ssh-key", str(sshd.client), "--timeout", "5"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_pyinfra_collects_only_from_the_pinned_key(sshd, inventory_dir, tmp_path):
    assert hostkeys_cli(inventory_dir, "--write") == 0
    evidence = tmp_path / "evidence"
    done = report_facts(inventory_dir, sshd, evidence)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 of 1 hosts answered" in done.stdout

    earlier = set((evidence / "drift").glob("facts-*.json"))
    sshd.start(keygen(tmp_path / "other_key"))
    done = report_facts(inventory_dir, sshd, evidence)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "unreachable: srv (127.0.0.1): its SSH host key is not the one the inventory pins" in done.stdout
    assert "--host srv --replace srv --write" in done.stderr
    # Two runs in one second name the second record facts-<stamp>-2.json: found by difference, not by name.
    (latest,) = set((evidence / "drift").glob("facts-*.json")) - earlier
    assert json.loads(latest.read_text())["unreachable"]["srv"]["reason"] == host_key_reasons()[0]


def test_the_lab_pins_its_machines_keys_through_the_same_survey(sshd, inventory_dir, tmp_path):
    """``akm lab up``'s step (:func:`akm.lab.lab.record_host_keys`) on a plan whose one machine is the
    test's sshd: a new key is pinned; a changed one is not, and the log says what to do; a machine whose
    key the lab had to make anew (its key file was missing) gets the new key pinned."""
    from dataclasses import replace

    from akm.lab import lab, machines

    real = lab.load_plan(REPO / "inventory" / "lab")
    plan = replace(
        real,
        inventory=inventory_dir,
        state_dir=tmp_path / "state",
        machines=(replace(real.machines[0], hostname="srv"),),
        simulated=(),
    )
    assert lab.new_host_keys(plan) == {"srv"}
    machines.host_key(plan.state_dir, "srv")
    assert lab.new_host_keys(plan) == set()

    said: list[str] = []
    assert lab.record_host_keys(plan, set(), said.append) is True
    assert said == [f"Recorded the host keys of srv in {inventory_dir / 'host_keys.yml'}."]
    assert hostkeys.read_known_hosts(inventory_dir / ".known_hosts")[f"[127.0.0.1]:{sshd.port}"]
    said.clear()
    assert lab.record_host_keys(plan, set(), said.append) is False
    assert said == []

    sshd.start(keygen(tmp_path / "other_key"))
    assert lab.record_host_keys(plan, set(), said.append) is False
    assert said == [hostkeys.advice(inventory_dir, "srv", changed=True)]
    assert login(sshd, inventory_dir).returncode == 255
    said.clear()
    assert lab.record_host_keys(plan, {"srv"}, said.append) is True
    assert login(sshd, inventory_dir).returncode == 0
