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
    return jobs.server_address(inv, server), jobs.server_port(server)


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
    # certificate is not trusted. Plain HTTP: refused before any login or file (400 from restic's
    # REST server: "client sent an HTTP request to an HTTPS server"), or no answer at all.
    assert out[:2] == ["401", "verify-failed"] and out[2] in ("400", "no-answer"), out


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
    # Every backup of a day but the newest is forgotten for the classes with a daily policy; restic 0.18
    # (Debian 13) also keeps the oldest snapshot while the repository has fewer days than the policy.
    for data_class in ("configs", "shares", "elibrary", "evidence"):
        times = sorted(s["time"] for s in _snapshots(in_lab, CLIENT) if _class_of(s) == f"class:{data_class}")
        days = Counter(time[:10] for time in times[1:])
        assert times and max(days.values(), default=1) == 1, (data_class, times)


# Run on the client with its own login (backup.env): each REST call's status, one per output line.
REST_PROBE = """
import base64, hashlib, json, os, secrets, ssl, urllib.error, urllib.parse, urllib.request
url = urllib.parse.urlsplit(os.environ["AKM_BACKUP_REPO"].removeprefix("rest:"))
tls = ssl.create_default_context(cafile=os.environ["AKM_BACKUP_CACERT"])
base = f"https://{url.hostname}:{url.port}"
V2 = "application/vnd.x.restic.rest.v2"

def call(method, path, body=None, password=url.password):
    login = f"{url.username}:{password}".encode()
    request = urllib.request.Request(base + path, data=body, method=method, headers={
        "Authorization": "Basic " + base64.b64encode(login).decode(), "Accept": V2})
    try:
        with urllib.request.urlopen(request, timeout=20, context=tls) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""

own = f"/{url.username}"
snapshots = json.loads(call("GET", own + "/snapshots/")[1])
blob = json.loads(call("GET", own + "/data/")[1])[0]["name"]
lock = secrets.token_bytes(64)
lock_name = hashlib.sha256(lock).hexdigest()
junk = secrets.token_bytes(64)
print("own-keys", call("GET", own + "/keys/")[0])
print("wrong-password", call("GET", own + "/keys/", password="x" * 64)[0])
print("delete-snapshot", call("DELETE", own + "/snapshots/" + snapshots[0]["name"])[0])
print("overwrite-data", call("POST", own + "/data/" + blob, junk)[0])
print("data-intact", hashlib.sha256(call("GET", own + "/data/" + blob)[1]).hexdigest() == blob)
print("add-lock", call("POST", own + "/locks/" + lock_name, lock)[0])
print("remove-lock", call("DELETE", own + "/locks/" + lock_name)[0])
print("mismatched-upload", call("POST", own + "/data/" + hashlib.sha256(b"other").hexdigest(), junk)[0])
print("second-config", call("POST", own + "/config", junk)[0])
print("outside-root", call("GET", own + "/../../etc/passwd")[0])
print("other-read", call("GET", "/" + os.environ["PROBE_OTHER"] + "/keys/")[0])
print("other-add", call("POST", "/" + os.environ["PROBE_OTHER"] + "/locks/" + lock_name, lock)[0])
"""


def test_the_rest_server_is_append_only_private_and_refuses_wrong_logins(converged, in_lab):
    """restic's REST server on the backup machine, asked by the client with its own login: nothing but
    locks can be deleted, nothing overwritten (data, config), an upload whose content is not its name is
    refused, no path leaves the repository root, another host's repository is neither read nor added to,
    and a wrong password is refused."""
    other = next(h for h in load_inventory(LAB_INVENTORY).assets if h.data and h.hostname != CLIENT).hostname
    script = f"set -a; . /etc/akm/backup/backup.env; PROBE_OTHER={other} python3 -c {shlex.quote(REST_PROBE)}"
    answers = dict(line.split() for line in _sh(in_lab, CLIENT, script).stdout.splitlines())
    assert answers == {
        "own-keys": "200",
        "wrong-password": "401",
        "delete-snapshot": "403",
        "overwrite-data": "403",
        "data-intact": "True",
        "add-lock": "200",
        "remove-lock": "200",
        "mismatched-upload": "400",
        "second-config": "403",
        # The path is cleaned to /etc/passwd: no repository of this login's, so refused, never served.
        "outside-root": "401",
        "other-read": "401",
        "other-add": "401",
    }, answers


def test_a_full_disk_is_a_clear_error_and_leaves_no_partial_object(converged, in_lab):
    """The same server binary and flags on a small file system of the backup machine: restic's upload
    fails with the server's 507, and every object the server kept is whole (its name is its SHA-256)."""
    small = "/srv/akm-small"
    unit = "akm-restserver-small-test"
    port = 8099
    setup = (
        f"mkdir -p {small} && mount -t tmpfs -o size=4m,mode=0700 tmpfs {small} && chown akm-backup: {small} && "
        f"systemd-run --unit={unit} --uid=akm-backup --gid=akm-backup "
        f"/usr/bin/restic-rest-server --path {small} --listen 127.0.0.1:{port} --no-auth --append-only && "
        f"for i in $(seq 50); do ss -ltn | grep -q :{port} && break; sleep 0.2; done"
    )
    _sh(in_lab, SERVER, setup)
    try:
        backup = (
            "export RESTIC_PASSWORD=lab-small-disk; d=$(mktemp -d); head -c 12000000 /dev/urandom > $d/big; "
            f"restic -r rest:http://127.0.0.1:{port}/t/ init >/dev/null && "
            # restic retries a refused upload for minutes; its first 507 is all this test needs.
            f"timeout -s INT 60 restic -r rest:http://127.0.0.1:{port}/t/ --no-cache backup $d; echo exit=$?; "
            "rm -rf $d"
        )
        done = in_lab(SERVER, shlex.join(["sh", "-c", backup]), check=False, timeout=300)
        assert "exit=0" not in done.stdout, done.stdout
        assert "507" in done.stderr or "insufficient storage" in done.stderr.lower(), done.stderr[-2000:]
        whole = (
            f"cd {small}/t && for f in $(find data keys snapshots index -type f 2>/dev/null); do "
            '[ "$(sha256sum < $f | cut -d" " -f1)" = "$(basename $f)" ] || echo "partial $f"; done; '
            "find . -type f -name '*tmp*' -printf 'leftover %p\\n'"
        )
        assert _sh(in_lab, SERVER, whole).stdout == ""
    finally:
        _sh(in_lab, SERVER, f"systemctl stop {unit} || true; umount {small} || true; rmdir {small} || true")


def test_a_damaged_pack_is_found_repaired_and_healed_by_the_next_backup(converged, in_lab):
    """Bit rot (64 bytes overwritten) in the client's repository on the backup machine (restic 0.18
    there): the client's full check fails with an alert; the repair service salvages the pack (removes
    it, keeps its intact blobs, rebuilds the index) and records that data is still missing; the client's
    next backup reads every file again (the failed check asked for it) and adds the data back; the full
    check is clean and the masters restore byte-identical."""
    repository = f"/srv/akm-restic/{CLIENT}"
    biggest = _sh(in_lab, SERVER, f"find {repository}/data -type f -printf '%s %p\\n' | sort -n | tail -1")
    pack = biggest.stdout.split()[1]
    damage = (
        f"chmod u+w {pack} && python3 -c \"import sys; f = open(sys.argv[1], 'r+b'); f.seek(f.seek(0, 2) // 2); "
        f"f.write(b'bit rot ' * 8)\" {pack} && chmod u-w {pack}"
    )
    _sh(in_lab, SERVER, damage)

    check = in_lab(CLIENT, "akm-backup", "check", "--host", CLIENT, "--tier", "full", check=False, timeout=600)
    assert check.returncode == 1, check.stdout + check.stderr
    assert _newest(in_lab, CLIENT, f"check-{CLIENT}-*.json")["errors"][0]["code"] == "backup.check-failed"

    def repair() -> dict:
        before = _records(in_lab, SERVER, "repair")
        in_lab(SERVER, "systemctl", "start", f"akm-backup-repair@{CLIENT}.service", timeout=900)
        (new,) = _records(in_lab, SERVER, "repair") - before
        return json.loads(in_lab(SERVER, "cat", f"{EVIDENCE}/{new}").stdout)

    first = repair()
    (entry,) = first["repositories"]
    assert first["kind"] == "backup.repair" and entry["repository"] == repository
    assert entry["broken_packs"] == [pack.rsplit("/", 1)[1]] and entry["actions"] == ["repair packs"]
    assert entry["errors_left"] > 0 and entry["result"] == first["result"] == "warning", first
    assert _sh(in_lab, SERVER, f"test -e {pack} && echo kept || echo removed").stdout.strip() == "removed"

    # The failed check left the client's marker: this backup reads every file again (restic 0.14 on
    # srv would otherwise trust its last snapshot and never add the lost data back).
    in_lab(CLIENT, "systemctl", "start", "akm-backup.service", timeout=600)
    healing = _newest(in_lab, CLIENT, f"run-{CLIENT}-*.json")
    assert healing["result"] == "ok" and healing["reread"] is True, healing
    in_lab(CLIENT, "akm-backup", "check", "--host", CLIENT, "--tier", "full", timeout=600)
    second = repair()
    assert second["result"] == "ok" and second["repositories"][0]["actions"] == [], second

    compare = (
        "t=$(mktemp -d) && akm-backup restore --host srv --data-class av_masters --target $t >/dev/null && "
        "cd /srv/archive/av && find . -type f ! -path './.akm-fixity/*' | sort | xargs sha256sum > $t.want && "
        "cd $t/srv/archive/av && sha256sum -c --quiet $t.want && echo identical; rm -rf $t $t.want"
    )
    assert _sh(in_lab, CLIENT, compare, timeout=600).stdout.strip() == "identical"
