"""Records written by the other areas, in their own shapes, are read by the reports."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from akm.backup import evidence as backup_evidence
from akm.net.common import DeviceResult, results_record, write_evidence
from akm.report import evidence


def test_backup_network_and_policy_push_records_are_read(tmp_path):
    moment = datetime(2026, 11, 24, 21, 0, tzinfo=UTC)
    backup_evidence.write_record(
        tmp_path,
        "run",
        {
            "host": "srv",
            "started": "2026-11-24T20:58:00+00:00",
            "finished": "2026-11-24T21:00:00+00:00",
            "result": "partial",
        },
        moment,
        suffix="srv",
    )
    backup_evidence.write_record(tmp_path, "drill", {"started": "2026-11-24T22:00:00+00:00", "result": "ok"}, moment)
    results = [
        DeviceResult("mikrotik", "mikrotik_routeros", "changed"),
        DeviceResult("sw-core", "cisco_ios", "timeout"),
    ]
    record = results_record("backup", "2026-11-24T20:00:00Z", results)
    record["finished"] = "2026-11-24T20:00:05+00:00"
    write_evidence(tmp_path, "backup", record)
    push = {
        "kind": "access-policy-push",
        "host": "gw",
        "push": "20261124T190000Z",
        "release": "r-0123456789abcdef",
        "git_revision": "abc123",
        "changed_files": ["squid/akm.conf"],
        "result": "rolled_back",
        "reason": "management SSH lost",
    }
    (tmp_path / "access-policy").mkdir()
    (tmp_path / "access-policy" / "push.json").write_text(json.dumps(push))

    records, problems = evidence.read(tmp_path)

    assert problems == []
    found = {(r.kind, r.result, r.time.isoformat()) for r in records}
    assert found == {
        ("backup.run", "warning", "2026-11-24T21:00:00+00:00"),
        ("restore.drill", "ok", "2026-11-24T22:00:00+00:00"),
        ("network.config-backup", "failed", "2026-11-24T20:00:05+00:00"),
        ("policy.push", "failed", "2026-11-24T19:00:00+00:00"),
    }
    push_record = next(r for r in records if r.kind == "policy.push")
    assert push_record.revision == "abc123" and push_record.changes == ("squid/akm.conf",)
    network = next(r for r in records if r.kind.startswith("network."))
    assert "sw-core: timeout" in network.summary
