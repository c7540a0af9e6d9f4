"""Retention of the collected proxy logs: files older than the policy's log_retention_days are removed,
newer ones and a collector's dot files stay, one schema-valid record says what happened, and a policy
whose settings are wrong stops it with the file, line and field."""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from akm import evidence
from akm.cli import main as akm
from akm.report import retention

REPO = Path(__file__).resolve().parents[2]
LAB_POLICY = REPO / "policies" / "access" / "lab"
NOW = datetime(2026, 11, 25, 4, 45, tzinfo=UTC)


def _log(folder: Path, name: str, age_days: float, now: datetime = NOW, size: int = 100) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    moment = (now - timedelta(days=age_days)).timestamp()
    os.utime(path, (moment, moment))
    return path


def test_old_files_go_new_ones_and_dot_files_stay_and_the_record_fits(tmp_path):
    logs = tmp_path / "proxy"
    _log(logs, "gw/access.log-20260801.gz", 116, size=300)
    _log(logs, "gw/access.log-20261124.gz", 1)
    _log(logs, "gw/.access.log.part", 200)
    _log(logs, ".incoming/access.log", 200)
    _log(logs, "gw2/access.log-20261025.gz", 31, size=50)
    _log(logs, "gw2/access.log-20261026.gz", 29.9)

    record = retention.apply(logs, 30, now=NOW)

    assert record["removed"] == ["gw/access.log-20260801.gz", "gw2/access.log-20261025.gz"]
    assert record["kept"] == 2
    assert record["bytes"] == 350
    assert record["result"] == "ok" and record["errors"] == []
    assert record["days"] == 30 and record["folder"] == str(logs.resolve())
    assert record["time"] == "2026-11-25T04:45:00Z"
    left = sorted(p.relative_to(logs).as_posix() for p in logs.rglob("*") if p.is_file())
    kept = ["gw/access.log-20261124.gz", "gw2/access.log-20261026.gz"]
    assert left == [".incoming/access.log", "gw/.access.log.part", *kept]
    assert (logs / "gw2").is_dir()
    evidence.check(record)


def test_the_days_are_the_policys(tmp_path):
    settings = yaml.safe_load((LAB_POLICY / "settings.yml").read_text())["settings"]
    assert retention.retention_days(LAB_POLICY) == settings["log_retention_days"]


def test_a_wrong_retention_in_the_policy_stops_it_with_its_place(tmp_path):
    policy = tmp_path / "policy"
    shutil.copytree(LAB_POLICY, policy)
    text = (policy / "settings.yml").read_text()
    (policy / "settings.yml").write_text(text.replace("log_retention_days: 30", "log_retention_days: 0"))
    rows = (policy / "settings.yml").read_text().splitlines()
    line = next(n for n, row in enumerate(rows, 1) if "log_retention" in row)
    with pytest.raises(retention.RetentionError) as caught:
        retention.retention_days(policy)
    assert [(p.field, p.line) for p in caught.value.problems] == [("settings.log_retention_days", line)]
    assert Path(caught.value.problems[0].file).resolve() == (policy / "settings.yml").resolve()


def _retention(logs: Path, records: Path) -> int:
    argv = ["report", "retention", "--logs", str(logs), "--access-policy", str(LAB_POLICY)]
    return akm(["--lang", "en", *argv, "--evidence", str(records)])


def test_the_command_writes_the_record_where_the_reports_read(tmp_path, capsys):
    logs, records = tmp_path / "proxy", tmp_path / "evidence"
    now = datetime.now(UTC)
    _log(logs, "gw/access.log-old.gz", 400, now=now)
    _log(logs, "gw/access.log", 0, now=now)

    assert _retention(logs, records) == 0
    out = capsys.readouterr().out.splitlines()
    (path,) = (records / "proxylog").glob("retention-*.json")
    assert out[0] == str(path)
    assert out[1:] == ["1 files older than 30 days removed, 1 kept", "removed: gw/access.log-old.gz"]
    ((_where, record),), problems = evidence.load(path)
    assert problems == [] and record["kind"] == "proxylog.retention"
    assert sorted(p.name for p in (logs / "gw").iterdir()) == ["access.log"]


def test_a_missing_folder_is_said_and_nothing_is_written(tmp_path, capsys):
    assert _retention(tmp_path / "none", tmp_path / "evidence") == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'none'}: the folder of the collected proxy logs does not exist" in err
    assert "management_proxy_log_dir" in err
    assert not (tmp_path / "evidence").exists()
