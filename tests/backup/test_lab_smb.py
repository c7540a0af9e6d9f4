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

from akm.inventory import load_inventory
from akm.lab.lab import simulator_files

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]
LAB = REPO / "inventory" / "lab"
ANSIBLE_PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")
SHARE = "/srv/windows-stand-in/buxgalter-01/buxgalteriya"
MIRROR = "/var/lib/akm/backup/smb-staging/buxgalter-01/buxgalteriya"


@pytest.fixture(scope="module")
def converged(running_lab, in_lab):
    """srv serves the stand-in share (servers.yml) and bak pulls it (backup.yml)."""
    files = simulator_files(load_inventory(LAB).lab.state_dir)
    vault = ["-e", f"@{files['vault']}", "--vault-password-file", str(files["vault_password"])]
    for playbook, hosts in (("servers.yml", "srv"), ("backup.yml", "bak")):
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
    """Start the pull unit on bak, wait for it, and return the newest evidence record of buxgalter-01."""
    lab("bak", "systemctl start akm-backup-smb.service", timeout=600)
    out = lab("bak", "cat $(ls -t /var/lib/akm/evidence/backup/run-buxgalter-01-*.json | head -1)").stdout
    return json.loads(out)


def restic(lab, *args: str) -> str:
    """restic on bak, on buxgalter-01's repository directory (the REST server serves the same files)."""
    command = "restic --no-lock -r /srv/akm-restic/buxgalter-01 --password-file /etc/akm/backup/password "
    return lab("bak", command + " ".join(args), timeout=600).stdout


def test_a_file_in_the_stand_in_share_is_backed_up_as_the_pc_and_leaves_when_deleted(converged):
    lab = converged
    name = f"hisobot-{secrets.token_hex(4)}.xlsx"
    lab("srv", f"head -c 300000 /dev/urandom > {SHARE}/{name} && chmod 0644 {SHARE}/{name}")
    digest = lab("srv", f"sha256sum {SHARE}/{name}").stdout.split()[0]

    record = pull(lab)
    assert record["host"] == "buxgalter-01" and record["pull"]["by"] == "bak", record
    assert [(c["data_class"], c["result"]) for c in record["classes"]] == [("accounting", "ok")], record
    assert record["result"] == "ok", record

    lab("bak", "rm -rf /tmp/akm-smb-restore")
    restic(lab, "restore latest --host buxgalter-01 --tag class:accounting --target /tmp/akm-smb-restore")
    restored = lab("bak", f"sha256sum /tmp/akm-smb-restore{MIRROR}/{name}").stdout.split()[0]
    assert restored == digest, "the restored file has the bytes of the share's"

    lab("srv", f"rm {SHARE}/{name}")
    record = pull(lab)
    assert record["pull"]["shares"][0]["deleted"] >= 1, record
    listing = restic(lab, "ls latest --host buxgalter-01 --tag class:accounting")
    assert f"{MIRROR}/{name}" not in listing, "the newest snapshot lacks the file deleted on the PC"
    lab("bak", "rm -rf /tmp/akm-smb-restore")
