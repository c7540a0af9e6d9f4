"""The backup roles on the running virtual library: bak serves, srv backs up, restores and drills.

Needs the running lab (``make lab``; skipped otherwise, a failure under ``AKM_LAB_TEST=1``). Secrets come
from the lab's run-time vault (made by ``akm lab up`` outside git), as ansible-vault supplies them in
production.
"""

from __future__ import annotations

import json
import secrets
import shlex
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


@pytest.fixture(scope="module")
def lab(running_lab, in_lab):
    """``lab(host, command)``: a shell command on a lab machine (strict host keys, the lab's key)."""

    def ssh(host: str, command: str, check: bool = True, timeout: int = 600) -> subprocess.CompletedProcess:
        return in_lab(host, command, check=check, timeout=timeout)

    return ssh


@pytest.fixture(scope="module")
def deployed(lab):
    files = simulator_files(load_inventory(LAB).lab.state_dir)
    vault = ["-e", f"@{files['vault']}", "--vault-password-file", str(files["vault_password"])]
    lab("srv", "mkdir -p /srv/archive/av /srv/elibrary /srv/shares")

    def playbook(name: str, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [ANSIBLE_PLAYBOOK, "-i", str(LAB / "akm.yml"), str(REPO / "playbooks" / name), *vault, *args],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=1200,
        )

    proc = playbook("backup.yml", "--limit", "bak,srv")
    assert proc.returncode == 0, proc.stdout[-3000:]
    return playbook


def latest(lab, kind: str) -> dict:
    out = lab("srv", f"cat $(ls -t /var/lib/akm/evidence/backup/{kind}-srv-*.json | head -1)").stdout
    return json.loads(out)


def test_backup_restore_drill_and_append_only_on_the_lab(lab, deployed):
    master = "/srv/archive/av/lab-test-master.wav"
    lab("srv", f"head -c 3000000 /dev/urandom > {master} && akm-backup fixity build /srv/archive/av")
    digest = lab("srv", f"sha256sum {master}").stdout.split()[0]

    lab("srv", "systemctl start akm-backup.service")
    run = latest(lab, "run")
    assert run["result"] == "ok", run
    assert {c["data_class"] for c in run["classes"]} >= {"av_masters", "configs"}
    assert "@" not in run["repository"]

    target = f"/var/lib/akm/restore/lab-test-{secrets.token_hex(4)}"
    proc = deployed(
        "restore.yml",
        "-e",
        "restore_host=srv",
        "-e",
        "restore_data_class=av_masters",
        "-e",
        f"restore_path={master}",
        "-e",
        f"restore_target={target}",
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert lab("srv", f"sha256sum {target}{master}").stdout.split()[0] == digest

    lab("srv", "systemctl start akm-backup-drill@av_masters.service")
    drill = latest(lab, "drill")
    assert drill["result"] == "ok" and drill["sample"], drill

    lab("srv", "systemctl start akm-backup-check.service")
    check = latest(lab, "check")
    assert check["result"] == "ok" and check["subset"].endswith("/30"), check

    probe = (
        "import os, ssl, urllib.request, urllib.parse, base64, json\n"
        "url = urllib.parse.urlsplit(os.environ['AKM_BACKUP_REPO'].removeprefix('rest:'))\n"
        "auth = base64.b64encode(f'{url.username}:{url.password}'.encode()).decode()\n"
        "base = f'https://{url.hostname}:{url.port}'\n"
        "tls = ssl.create_default_context(cafile=os.environ['AKM_BACKUP_CACERT'])\n"
        "def call(method, path):\n"
        "    req = urllib.request.Request(base + path, method=method, headers={'Authorization': 'Basic ' + auth})\n"
        "    try:\n"
        "        return urllib.request.urlopen(req, timeout=10, context=tls).status\n"
        "    except urllib.error.HTTPError as exc:\n"
        "        return exc.code\n"
        "snaps = json.load(urllib.request.urlopen(urllib.request.Request(base + '/srv/snapshots/',\n"
        "    headers={'Authorization': 'Basic ' + auth}), timeout=10, context=tls))\n"
        "print(call('DELETE', '/srv/snapshots/' + snaps[0]), call('GET', '/gw/keys/'))\n"
    )
    out = lab("srv", "set -a; . /etc/akm/backup/backup.env; python3 -c " + shlex.quote(probe)).stdout.split()
    # Append-only: deleting a snapshot is forbidden. Private repositories: srv's login opens no other
    # host's repository (restic's REST server refuses it as unauthorised).
    assert out[0] == "403" and out[1] in ("401", "403"), out
