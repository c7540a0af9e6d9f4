"""Alerts reach a person in the lab: a failed backup is told once, by the fake internet's Telegram Bot API
and its mail sink, and its recovery once.

On the lab: ``playbooks/backup.yml`` (backup machine and the management host, which is also a backup
client) and ``playbooks/management.yml`` converged with the lab vault, and the access policy pushed by the
management host's own ``akm-policy-push.service`` (its rules let the management host out to the Bot API
and the mail relay through the gateway). Then the backup machine's REST server is stopped, the client's
``akm-backup.service`` fails, and ``akm-alert-evidence.service`` on the management host sends exactly one
Telegram message naming the host and the backup duty, and one e-mail; a second run sends nothing; after
the REST server is back and the backup succeeds, one "recovered" message. Counted on the internet
machine itself: the Bot API stand-in's record and the sink's Maildir. Needs the gateway converged (its
DNS forwards to the fake internet), as ``make demo`` leaves it; run with ``make lab-test``.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from akm.duties import load as load_duties
from akm.inventory import load_inventory
from akm.lab import internet, lab
from tests.conftest import LAB_INVENTORY, REPO

pytestmark = pytest.mark.lab

ANSIBLE_PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")
REST_SERVER = "akm-restserver.service"


def _hosts() -> tuple[str, str]:
    """The management host (a backup client too) and the backup machine, from the inventory."""
    inventory = load_inventory(LAB_INVENTORY)
    (manager,) = [a.hostname for a in inventory.assets if "management" in a.profiles]
    (server,) = [a.hostname for a in inventory.assets if "backup_server" in a.profiles]
    return manager, server


def _playbook(plan, name: str, limit: str) -> None:
    files = lab.simulator_files(plan.state_dir)
    done = subprocess.run(
        [ANSIBLE_PLAYBOOK, "-i", str(LAB_INVENTORY / "akm.yml"), str(REPO / "playbooks" / name),
         "-e", f"@{files['vault']}", "--vault-password-file", str(files["vault_password"]), "--limit", limit],
        cwd=REPO,
        env=dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1"),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:]


def _start(in_lab, host: str, unit: str, ok: bool = True) -> None:
    """Start *unit* as its timer would; check how it ended."""
    done = in_lab(host, "systemctl", "start", unit, check=False, timeout=900)
    assert (done.returncode == 0) is ok, (unit, done.stdout, done.stderr)


def _sh(in_lab, host: str, script: str) -> str:
    return in_lab(host, shlex.join(["sh", "-c", script])).stdout


def _messages(plan, in_lab) -> list[dict]:
    """The messages the fake Bot API took so far, oldest first."""
    text = _sh(in_lab, plan.internet, f"cat {internet.TELEGRAM_RECORD} 2>/dev/null || true")
    return [json.loads(line) for line in text.splitlines()]


def _mails(plan, in_lab) -> int:
    return int(_sh(in_lab, plan.internet, f"ls {internet.MAIL_DIR}/new 2>/dev/null | wc -l").strip())


@pytest.fixture(scope="module")
def converged(running_lab, in_lab, no_foreign_backup_repositories):
    manager, server = _hosts()
    _playbook(running_lab, "backup.yml", f"{server},{manager}")
    _playbook(running_lab, "management.yml", manager)
    _start(in_lab, manager, "akm-policy-push.service")
    # A baseline: the client's backup works and whatever the alert state still owed is told now.
    _start(in_lab, manager, "akm-backup.service")
    _start(in_lab, manager, "akm-alert-evidence.service")
    yield running_lab, manager, server
    in_lab(server, "systemctl", "start", REST_SERVER, check=False)


def test_a_failed_backup_is_told_once_and_its_recovery_once(converged, in_lab):
    plan, manager, server = converged
    duty = next(d for d in load_duties() if d.id == "backup-run")
    sent, mailed = len(_messages(plan, in_lab)), _mails(plan, in_lab)

    in_lab(server, "systemctl", "stop", REST_SERVER)
    try:
        _start(in_lab, manager, "akm-backup.service", ok=False)
        _start(in_lab, manager, "akm-alert-evidence.service")
        new = _messages(plan, in_lab)[sent:]
        assert len(new) == 1, new
        (told,) = new
        chat = load_inventory(LAB_INVENTORY).people["n.toshmatova"].telegram
        assert told["chat"]["id"] == chat
        assert f"{manager} — {duty.name}" in told["text"], told["text"]
        # ... and the data classes the run did not back up (the inventory's placements of that host).
        classes = {d.data_class for d in load_inventory(LAB_INVENTORY).asset(manager).data}
        assert classes and all(c in told["text"] for c in classes), told["text"]
        assert _mails(plan, in_lab) == mailed + 1

        _start(in_lab, manager, "akm-alert-evidence.service")
        assert len(_messages(plan, in_lab)) == sent + 1, "nothing new: nothing told"
        assert _mails(plan, in_lab) == mailed + 1
    finally:
        in_lab(server, "systemctl", "start", REST_SERVER)

    _start(in_lab, manager, "akm-backup.service")
    _start(in_lab, manager, "akm-alert-evidence.service")
    recovered = _messages(plan, in_lab)[sent + 1 :]
    assert len(recovered) == 1, recovered
    assert f"TIKLANDI: {manager} — {duty.name}" in recovered[0]["text"], recovered[0]["text"]
    assert _mails(plan, in_lab) == mailed + 2
