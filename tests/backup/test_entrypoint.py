"""``python3 -m akm.backup`` as the roles run it on hosts: settings from backup.env, status output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def run(args, env_file: Path, **env):
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("AKM_", "RESTIC_"))}
    environment.update(PYTHONPATH=str(SCRIPTS), AKM_BACKUP_ENV_FILE=str(env_file), **env)
    return subprocess.run(
        [sys.executable, "-m", "akm.backup", "--lang", "en", *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_status_reads_the_evidence_dir_from_the_env_file(tmp_path):
    ev = tmp_path / "evidence"
    (ev / "backup").mkdir(parents=True)
    for host, result, finished in (
        ("srv", "ok", "2026-11-24T01:40:00Z"),
        ("srv", "failed", "2026-11-25T01:40:00Z"),
        ("gw", "ok", "2026-11-25T01:35:00Z"),
    ):
        record = {
            "kind": "backup.run",
            "host": host,
            "result": result,
            "time": finished,
            "files": 3,
            "bytes_added": 2048,
            "copy": {"result": "soft-failure"},
        }
        (ev / "backup" / f"run-{host}-{finished.replace(':', '')}.json").write_text(json.dumps(record))
    env_file = tmp_path / "backup.env"
    env_file.write_text(f"# written by the backup_client role\nAKM_EVIDENCE_DIR={ev}\n")
    proc = run(["status"], env_file)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("gw: ok at 2026-11-25T01:35:00Z")
    assert lines[1].startswith("srv: failed at 2026-11-25T01:40:00Z")
    assert "second copy: soft-failure" in lines[1]


def test_missing_archive_is_reported_before_a_missing_manifest(tmp_path):
    proc = run(["fixity", "verify", str(tmp_path / "nope"), "--evidence-dir", str(tmp_path)], tmp_path / "none")
    assert proc.returncode == 2
    assert "does not exist" in proc.stderr and "Traceback" not in proc.stderr
