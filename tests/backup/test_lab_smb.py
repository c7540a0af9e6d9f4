"""The backup machine pulls a Windows PC's share over SMB, on the running virtual library (issue 16).

The lab has no Windows: ``buxgalter-01`` of the lab inventory is a stand-in whose share ``buxgalteriya``
Samba serves on srv (``smb.server: srv``). bak's ``akm-backup-smb.service`` mirrors it with smbclient and
backs it up as ``buxgalter-01``; a file put into the share is restored byte for byte, and once deleted
from the share it is gone from the newest snapshot. Run with ``make lab-test`` (``AKM_LAB_TEST=1``).
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from akm.inventory import load_inventory
from akm.lab.lab import simulator_files

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]
LAB = REPO / "inventory" / "lab"
ANSIBLE_PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")


def _roles_default(role: str, name: str) -> str:
    return yaml.safe_load((REPO / "roles" / role / "defaults" / "main.yml").read_text())[name]


def _stand_in() -> tuple[str, str, str, str, str]:
    """From the lab inventory: the Windows PC, its class and share, the machine whose Samba stands in for it,
    and the backup machine."""
    inventory = load_inventory(LAB)
    (pc, placement) = next((a, p) for a in inventory.assets for p in a.data if p.smb)
    (server,) = [a.hostname for a in inventory.assets if "backup_server" in a.profiles]
    return pc.hostname, placement.data_class, placement.smb.share, placement.smb.server, server


PC, CLASS, SHARE_NAME, SAMBA, BACKUP = _stand_in()
SHARE = f"{_roles_default('file_server', 'file_server_stand_in_root')}/{PC}/{SHARE_NAME}"
MIRROR = f"{_roles_default('backup_server', 'backup_server_smb_staging')}/{PC}/{SHARE_NAME}"


@pytest.fixture(scope="module")
def converged(running_lab, in_lab):
    """The stand-in's machine serves the share (servers.yml) and the backup machine pulls it (backup.yml)."""
    files = simulator_files(load_inventory(LAB).lab.state_dir)
    vault = ["-e", f"@{files['vault']}", "--vault-password-file", str(files["vault_password"])]
    for playbook, hosts in (("servers.yml", SAMBA), ("backup.yml", BACKUP)):
        proc = subprocess.run(
            [ANSIBLE_PLAYBOOK, "-i", str(LAB / "akm.yml"), str(REPO / "playbooks" / playbook), *vault, "-l", hosts],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=1200,
        )
        assert proc.returncode == 0, proc.stdout[-3000:]
    return in_lab


def pull(lab) -> dict:
    """Start the pull unit on the backup machine, wait for it, and return the PC's newest evidence record."""
    lab(BACKUP, "systemctl start akm-backup-smb.service", timeout=600)
    out = lab(BACKUP, f"cat $(ls -t /var/lib/akm/evidence/backup/run-{PC}-*.json | head -1)").stdout
    return json.loads(out)


def restic(lab, *args: str) -> str:
    """restic on the backup machine, on the PC's repository directory (the REST server serves the same files)."""
    root = _roles_default("backup_server", "backup_server_root")
    command = f"restic --no-lock -r {root}/{PC} --password-file /etc/akm/backup/password "
    return lab(BACKUP, command + " ".join(args), timeout=600).stdout


def test_a_file_in_the_stand_in_share_is_backed_up_as_the_pc_and_leaves_when_deleted(converged):
    lab = converged
    name = f"hisobot-{secrets.token_hex(4)}.xlsx"
    lab(SAMBA, f"head -c 300000 /dev/urandom > {SHARE}/{name} && chmod 0644 {SHARE}/{name}")
    digest = lab(SAMBA, f"sha256sum {SHARE}/{name}").stdout.split()[0]

    record = pull(lab)
    assert record["host"] == PC and record["pull"]["by"] == BACKUP, record
    assert [(c["data_class"], c["result"]) for c in record["classes"]] == [(CLASS, "ok")], record
    assert record["result"] == "ok", record

    lab(BACKUP, "rm -rf /tmp/akm-smb-restore")
    restic(lab, f"restore latest --host {PC} --tag class:{CLASS} --target /tmp/akm-smb-restore")
    restored = lab(BACKUP, f"sha256sum /tmp/akm-smb-restore{MIRROR}/{name}").stdout.split()[0]
    assert restored == digest, "the restored file has the bytes of the share's"

    lab(SAMBA, f"rm {SHARE}/{name}")
    record = pull(lab)
    assert record["pull"]["shares"][0]["deleted"] >= 1, record
    listing = restic(lab, f"ls latest --host {PC} --tag class:{CLASS}")
    assert f"{MIRROR}/{name}" not in listing, "the newest snapshot lacks the file deleted on the PC"
    lab(BACKUP, "rm -rf /tmp/akm-smb-restore")
