"""The backup roles, playbooks and timers on the running virtual library, with the lab's run-time vault.

- the REST server speaks only HTTPS, with a certificate from a CA made on the backup machine;
- ``playbooks/restore-drill.yml`` leaves drill evidence whose hashes match the fixity manifest;
- the prune service on the backup machine applies each data class's retention, and the keep-everything
  class keeps every snapshot.

The fixture converges ``playbooks/backup.yml`` and runs backups through systemd. The roles' molecule
scenarios run with every other role's, in ``tests/lab/test_demo_roles.py``.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from tests.conftest import LAB_INVENTORY, REPO

from akm.inventory import load_inventory
from akm.lab import lab

pytestmark = pytest.mark.lab

ANSIBLE_PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")
CLIENT = "srv"
SERVER = "bak"
EVIDENCE = "/var/lib/akm/evidence/backup"
MASTER = "/srv/archive/av/lab-drill-master.wav"
# restic as the backup machine runs it in the prune service, on the repository directory itself.
SERVER_RESTIC = "restic --no-cache --password-file /etc/akm/backup/password -r /srv/akm-restic/{host}"


def _vault_args(plan) -> list[str]:
    files = lab.simulator_files(plan.state_dir)
    return ["-e", f"@{files['vault']}", "--vault-password-file", str(files["vault_password"])]


def _sh(in_lab, host: str, script: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run a shell script on a lab machine (ssh hands the remote shell one string)."""
    return in_lab(host, shlex.join(["sh", "-c", script]), timeout=timeout)


def _newest(in_lab, host: str, pattern: str) -> dict:
    return json.loads(_sh(in_lab, host, f'cat "$(ls -t {EVIDENCE}/{pattern} | head -1)"').stdout)


def _records(in_lab, host: str, kind: str) -> set[str]:
    return set(_sh(in_lab, host, f"ls {EVIDENCE}/ 2>/dev/null | grep '^{kind}-' || true").stdout.split())


def _snapshots(in_lab, host: str) -> list[dict]:
    return json.loads(_sh(in_lab, SERVER, f"{SERVER_RESTIC.format(host=host)} snapshots --json --no-lock").stdout)


def _class_of(snapshot: dict) -> str:
    return next((t for t in snapshot.get("tags") or [] if t.startswith("class:")), "")


@pytest.fixture(scope="module")
def server_address():
    inv = load_inventory(LAB_INVENTORY)
    from akm.backup import jobs

    server = jobs.backup_server(inv)
    return jobs.server_address(inv, server), int((server.vars or {}).get("backup_server_port", 8000))


@pytest.fixture(scope="module")
def converged(running_lab, in_lab, no_foreign_backup_repositories):
    """backup.yml converged on bak and srv with the lab vault, a fixity-recorded master in the archive,
    then two backups started through systemd (two snapshots per data class to apply retention to)."""
    in_lab(CLIENT, "mkdir", "-p", "/srv/archive/av", "/srv/elibrary", "/srv/shares")
    done = subprocess.run(
        [
            ANSIBLE_PLAYBOOK,
            "-i",
            str(LAB_INVENTORY / "akm.yml"),
            str(REPO / "playbooks/backup.yml"),
            *_vault_args(running_lab),
            "--limit",
            f"{SERVER},{CLIENT}",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:]
    _sh(
        in_lab,
        CLIENT,
        f"[ -f {MASTER} ] || head -c 2000000 /dev/urandom > {MASTER}; akm-backup fixity build /srv/archive/av; "
        "echo 'Oylik hisobot' > /srv/shares/lab-hisobot.txt; echo 'Alisher Navoiy' > /srv/elibrary/lab-kitob.txt",
    )
    for _round in range(2):
        in_lab(CLIENT, "systemctl", "start", "akm-backup.service", timeout=600)
    return {"foreign_removed": no_foreign_backup_repositories}


def test_client_backs_up_over_https_and_plain_http_is_not_served(converged, in_lab, server_address):
    address, port = server_address
    env = in_lab(CLIENT, "cat", "/etc/akm/backup/backup.env").stdout
    assert f"AKM_BACKUP_REPO=rest:https://{CLIENT}:" in env
    run = _newest(in_lab, CLIENT, f"run-{CLIENT}-*.json")
    assert run["result"] == "ok", run
    assert run["repository"] == f"rest:https://{address}:{port}/{CLIENT}/"
    probe = (
        "import ssl, sys, urllib.request, urllib.error\n"
        "def ask(url, context=None):\n"
        "    try:\n"
        "        return str(urllib.request.urlopen(url, timeout=10, context=context).status)\n"
        "    except urllib.error.HTTPError as exc:\n"
        "        return str(exc.code)\n"
        "    except (urllib.error.URLError, OSError) as exc:\n"
        "        reason = getattr(exc, 'reason', exc)\n"
        "        return 'verify-failed' if isinstance(reason, ssl.SSLCertVerificationError) else 'no-answer'\n"
        "url = sys.argv[1]\n"
        "trusted = ssl.create_default_context(cafile='/etc/akm/backup/ca.pem')\n"
        "print(ask('https://' + url, trusted), ask('https://' + url), ask('http://' + url))\n"
    )
    out = in_lab(CLIENT, shlex.join(["python3", "-c", probe, f"{address}:{port}/{CLIENT}/config"])).stdout.split()
    # With the backup CA: the server answers (401: login needed). With the system's CAs: the
    # certificate is not trusted. Plain HTTP: no HTTP answer at all.
    assert out == ["401", "verify-failed", "no-answer"], out


def test_restore_drill_playbook_writes_evidence_matching_the_fixity_manifest(converged, running_lab, in_lab):
    before = _records(in_lab, CLIENT, "drill")
    done = subprocess.run(
        [
            ANSIBLE_PLAYBOOK,
            "-i",
            str(LAB_INVENTORY / "akm.yml"),
            str(REPO / "playbooks/restore-drill.yml"),
            *_vault_args(running_lab),
            "--limit",
            CLIENT,
            "-e",
            "restore_drill_sample=50",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:]
    after = _records(in_lab, CLIENT, "drill")
    records = [json.loads(in_lab(CLIENT, "cat", f"{EVIDENCE}/{name}").stdout) for name in sorted(after - before)]
    placed = {p.data_class for p in load_inventory(LAB_INVENTORY).asset(CLIENT).data}
    assert {r["data_class"] for r in records} == placed
    for record in records:
        assert record["kind"] == "restore.drill" and record["host"] == CLIENT
        assert record["result"] == "ok", record
        assert record["started"] <= record["time"]
        assert record["snapshot_id"]
    av = next(r for r in records if r["data_class"] == "av_masters")
    manifest = in_lab(CLIENT, "cat", "/srv/archive/av/.akm-fixity/manifest-sha256.txt").stdout
    recorded = {
        "/srv/archive/av/" + path.removeprefix("data/"): digest
        for digest, path in (line.split("  ", 1) for line in manifest.splitlines() if line.strip())
    }
    drilled = {f["path"]: f for f in av["sample"]}
    assert MASTER in drilled
    for path, entry in drilled.items():
        assert entry["fixity"] == "match" and entry["sha256"] == recorded[path], entry


def test_prune_service_applies_retention_per_data_class(converged, in_lab):
    before = Counter(_class_of(s) for s in _snapshots(in_lab, CLIENT))
    assert before["class:av_masters"] >= 2 and before["class:configs"] >= 2, before
    stamps = _records(in_lab, SERVER, "prune")
    in_lab(SERVER, "systemctl", "start", "akm-backup-prune.service", timeout=900)
    new = sorted(_records(in_lab, SERVER, "prune") - stamps)
    assert len(new) == 1, new
    record = json.loads(in_lab(SERVER, "cat", f"{EVIDENCE}/{new[0]}").stdout)
    assert record["result"] == "ok", record
    entry = next(e for e in record["repositories"] if e["repository"].endswith(f"/{CLIENT}"))
    policies = {c["data_class"]: c for c in entry["classes"]}
    assert policies["av_masters"] == {"data_class": "av_masters", "policy": "keep-all", "removed": 0}
    assert policies["configs"]["policy"] == "--keep-daily 30"
    assert policies["configs"]["removed"] >= 1
    after = Counter(_class_of(s) for s in _snapshots(in_lab, CLIENT))
    assert after["class:av_masters"] == before["class:av_masters"]
    # Every backup of a day but the newest is forgotten for the classes with a daily policy.
    for data_class in ("configs", "shares", "elibrary", "evidence"):
        days = Counter(s["time"][:10] for s in _snapshots(in_lab, CLIENT) if _class_of(s) == f"class:{data_class}")
        assert days and max(days.values()) == 1, (data_class, days)
