"""Fixtures: a simulator process on free loopback ports, a throwaway ansible-vault, device targets.

The simulator is a real separate process (``python -m akm.net.sim``); the tests talk to it with real
netmiko sessions. Its credentials file and the vault are generated in a temporary directory with random
passwords, so nothing secret is in git. Faults set by a test are cleared after it.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest

from akm.net.common import Target, Timeouts
from akm.net.sim import known_hosts as sim_known_hosts
from akm.net.sim.control import SimControl
from akm.net.vault import login_for, read_vault, write_vault

DEVICES = 4  # sim-001 and sim-003 are RouterOS, sim-002 and sim-004 IOS


class Lab:
    """A running simulator and the vault that holds its credentials."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.vault_file = tmp / "vault.yml"
        self.password_file = tmp / "vault-password"
        self.password_file.write_text(secrets.token_hex(16) + "\n")
        os.chmod(self.password_file, 0o600)
        self.ready_file = tmp / "ready.json"
        self.process: subprocess.Popen | None = None
        self.credentials: dict = {}

    def start(self, count: int, *extra: str) -> None:
        names = [f"sim-{n:03d}" for n in range(1, count + 1)]
        self.credentials = {
            name: {
                "username": "admin",
                "password": secrets.token_urlsafe(12),
                "secret": secrets.token_urlsafe(8),
            }
            for name in names
        }
        cred_file = self.tmp / "sim-credentials.json"
        cred_file.write_text(json.dumps({"devices": self.credentials}))
        os.chmod(cred_file, 0o600)
        write_vault(
            self.vault_file,
            self.password_file,
            {f"vault_net_{n.replace('-', '_')}": c for n, c in self.credentials.items()},
        )
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "akm.net.sim",
                "--devices",
                str(count),
                "--credentials",
                str(cred_file),
                "--ready-file",
                str(self.ready_file),
                "--state",
                str(self.tmp / "sim-state.json"),
                *extra,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        line = self.process.stdout.readline()  # blocks until READY (or the process died)
        if line.strip() != "READY":
            raise RuntimeError("simulator did not start: " + self.process.stderr.read())
        self.ready = json.loads(self.ready_file.read_text())
        self.control = SimControl(self.ready["control"])
        for name, info in self.ready["devices"].items():
            if info["platform"] == "cisco_ios":  # the switches' baseline: the archive IOS rollback needs
                self.control.exec(name, "archive", "path flash:akm-archive")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)

    def targets(self, *names: str) -> list[Target]:
        """The devices as the tools reach them, each trusting only its own host key (pinned from the
        simulator's ready file, which says which key each device has)."""
        known = self.tmp / "known_hosts"
        known.write_text(sim_known_hosts(self.ready))
        return [
            Target(
                name,
                info["platform"],
                info["host"],
                info["port"],
                f"vault_net_{name.replace('-', '_')}",
                known_hosts=str(known),
            )
            for name, info in sorted(self.ready["devices"].items())
            if not names or name in names
        ]

    def logins(self, targets: list[Target]) -> dict:
        """Credentials as the tools get them: only from the vault."""
        variables = read_vault(self.vault_file, self.password_file)
        return {t.name: login_for(variables, t.credentials, self.vault_file) for t in targets}


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    lab = Lab(tmp_path_factory.mktemp("netlab"))
    lab.start(DEVICES)
    yield lab
    lab.stop()


@pytest.fixture
def sim(lab):
    yield lab
    for name in lab.ready["devices"]:
        lab.control.fault(name)


@pytest.fixture
def fast() -> Timeouts:
    return Timeouts(connect=5.0, command=4.0)


def wait_until(predicate, limit: float = 20.0, step: float = 0.2):
    """Poll *predicate* until it is true (a test never asserts on time; this only bounds a hang)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return predicate()
