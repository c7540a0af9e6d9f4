"""One record of every kind the schema describes, each made by its real writer, fits the schema.

The backup jobs run real restic on a local repository, fixity runs through ``akm fixity``, the drift
collector really tries to connect, the access-policy role's push record is templated by Ansible from
the role's own variables, the gateway's rollback script is rendered from its template and run, and
the collected proxy logs' retention runs through ``akm report retention``.
"""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tests.roles.rollback import rollback

from akm import evidence
from akm.backup import jobs
from akm.backup import restic as r
from akm.cli import main as akm
from akm.cli import run_alone
from akm.evidence import cli as evidence_cli
from akm.inventory import load_inventory
from akm.net.common import DeviceResult, write_evidence
from akm.report import facts

REPO = Path(__file__).resolve().parents[2]
ROLE = REPO / "roles" / "access_policy"

needs_restic = pytest.mark.skipif(shutil.which("restic") is None, reason="restic is not installed")


def _kinds(folder: Path) -> dict[str, dict]:
    """Every record under *folder* by kind, each checked against the schema as a report reads it."""
    found: dict[str, dict] = {}
    for path in evidence.files(folder):
        records, problems = evidence.load(path)
        assert problems == [], [p.render() for p in problems]
        for _where, data in records:
            found.setdefault(data["kind"], data)
    return found


def _backup_records(base: Path, tmp_path: Path) -> None:
    """backup.run, backup.check, backup.alert, restore.run, restore.drill, backup.prune and (restic 0.18)
    backup.repair, from a local restic repository of host ws1."""
    password = tmp_path / "password"
    password.write_text("a throwaway test password\n")
    root = tmp_path / "repos"
    repo = r.Repo(str(root / "ws1"), password, tmp_path / "cache")
    jobs.init_repository(repo)
    data = tmp_path / "data" / "av"
    data.mkdir(parents=True)
    (data / "master.wav").write_bytes(os.urandom(4096))
    assert akm(["fixity", "build", str(data), "--data-class", "av_masters", "--evidence-dir", str(base)]) == 0
    run, _path = jobs.run_backup(repo, "ws1", [jobs.Source("av_masters", [str(data)])], base)
    assert run["result"] == "ok"
    jobs.run_check(repo, "ws1", "structure", base, tmp_path / "state")
    jobs.restore(repo, base, host="ws1", data_class="av_masters", target=tmp_path / "restored")
    jobs.drill(repo, "ws1", "av_masters", tmp_path / "scratch", base)
    wrong = r.Repo(str(root / "ws1"), tmp_path / "wrong", tmp_path / "cache")
    (tmp_path / "wrong").write_text("not the password\n")
    failed, _path = jobs.run_backup(wrong, "ws1", [jobs.Source("av_masters", [str(data)])], base)
    assert failed["result"] == "failed"
    classes = {"av_masters": type("Class", (), {"retention": type("R", (), {"keep_all": True})()})()}
    jobs.prune(root, password, classes, base)
    if r.supports("check-json"):
        jobs.repair(root, password, base)


def _fixity_records(base: Path, tmp_path: Path) -> None:
    """fixity.build, fixity.verify and fixity.alert, through ``akm fixity``."""
    archive = tmp_path / "archive"
    archive.mkdir()
    (archive / "scan.tif").write_bytes(b"page one")
    assert akm(["fixity", "build", str(archive), "--evidence-dir", str(base)]) == 0
    (archive / "scan.tif").write_bytes(b"page 0ne")
    assert akm(["fixity", "verify", str(archive), "--data-class", "elibrary", "--evidence-dir", str(base)]) == 1


def _network_records(base: Path) -> None:
    """network.config-backup, network.push and network.health: the one writer of ``akm net``."""
    started = evidence.iso(evidence.now())
    results = [
        DeviceResult("mikrotik", "mikrotik_routeros", "changed", "first backup", 0.4, {"file": "mikrotik.rsc"}),
        DeviceResult("sw-core", "cisco_ios", "timeout", "no answer in 30 s", 30.0),
    ]
    write_evidence(base, "backup", started, results, folder="/var/lib/akm/netconfig", commit="0" * 40)
    write_evidence(base, "push", started, [DeviceResult("mikrotik", "mikrotik_routeros", "rolled_back")])
    write_evidence(base, "health", started, [DeviceResult("sw-core", "cisco_ios", "ok", data={"up": 2})])


def _drift_record(base: Path, monkeypatch) -> None:
    """drift.facts from a real collection whose one host refuses the connection."""
    monkeypatch.setattr(facts, "targets", lambda *_args: {"ghost": {"ssh_hostname": "127.0.0.1", "ssh_port": 9}})
    facts.write_record(facts.collect(load_inventory(REPO / "inventory" / "lab"), connect_timeout=3), base)


def _policy_push_record(base: Path) -> None:
    """policy.push: the role's record variable templated by Ansible, as the copy task writes it."""
    from ansible.parsing.dataloader import DataLoader
    from ansible.plugins.loader import init_plugin_loader
    from ansible.template import Templar

    init_plugin_loader()
    loader = DataLoader()
    role_vars = loader.load_from_file(str(ROLE / "vars" / "main.yml"), trusted_as_template=True)
    defaults = loader.load_from_file(str(ROLE / "defaults" / "main.yml"), trusted_as_template=True)
    facts_of_push = {
        "inventory_hostname": "gw",
        "_access_policy_push": "20261125T233000Z",
        "_access_policy_release": "r-0123456789abcdef",
        "_access_policy_previous": "/etc/akm/access-policy/r-fedcba9876543210",  # pragma: allowlist secret
        "_access_policy_operator": "o.ismoilov",
        "_access_policy_revision": "abc123",
        "_access_policy_outcome": "rolled_back",
        "_access_policy_reason": 'Check that the proxy answers: "timeout"\nafter 10 s',
        "_access_policy_changes": ["nftables/gw.nft", "squid/akm-access.conf"],
    }
    templar = Templar(loader=loader, variables={**defaults, **role_vars, **facts_of_push})
    record = templar.template(role_vars["_access_policy_record"]) | templar.template(role_vars["_access_policy_duty"])
    evidence.write(base / "access-policy", "20261125T233000Z-r-0123456789abcdef", record)
    assert record["started"] == "2026-11-25T23:30:00Z" and record["result"] == "failed"


def _rollback_record(base: Path, tmp_path: Path) -> None:
    """policy.rollback: the gateway's rollback script, rendered from its template and run with a reason
    that has quotes, a backslash and a new line (a first push: nothing to go back to)."""
    world = rollback(tmp_path, base / "access-policy")
    reason = 'health check "proxy" failed\\ then\nmanagement SSH lost'
    done = world.run("", str(world.root / "r-0123456789abcdef"), reason)
    assert done.returncode == 0, done.stderr
    (path,) = (base / "access-policy").glob("*-rollback.json")
    ((_where, record),), problems = evidence.load(path)
    assert problems == [] and record["reason"] == reason and record["back_to"] == "none"
    assert not any(link.exists() for link in world.links.values())
    assert world.asked() == [
        "nft delete table inet akm_policy",
        "systemctl daemon-reload",
        "systemctl restart kea-dhcp4-server unbound lighttpd",
    ]


def _retention_record(base: Path, tmp_path: Path) -> None:
    """proxylog.retention: ``akm report retention`` on collected logs, one of them past the lab policy's
    retention."""
    logs = tmp_path / "proxy" / "gw"
    logs.mkdir(parents=True)
    (logs / "access.log-old.gz").write_bytes(b"old")
    old = (datetime.now(UTC) - timedelta(days=400)).timestamp()
    os.utime(logs / "access.log-old.gz", (old, old))
    policy = REPO / "policies" / "access" / "lab"
    argv = ["report", "retention", "--logs", str(logs.parent), "--access-policy", str(policy)]
    assert akm([*argv, "--evidence", str(base)]) == 0


def _unit_failed_record(base: Path) -> None:
    """unit.failed: the evidence command akm-alert@.service runs on a host."""
    argv = ["write", "--dir", str(base / "units"), "--name", "unit-failed-akm-backup.service-{stamp}"]
    argv += ["--kind", "unit.failed", "--result", "failed", "--set", "unit=akm-backup.service"]
    assert run_alone("python3 -m akm.evidence", evidence_cli.register, ("evidence",), argv) == 0


def _procedure_record(base: Path) -> None:
    """procedure.done: a procedure of policies/procedures.yml recorded by hand, as docs/reports.md says."""
    argv = ["write", "--dir", str(base / "procedures"), "--name", "{stamp}-akt-xizmatiga-xabar"]
    argv += ["--kind", "procedure.done", "--result", "ok", "--host", "mgmt"]
    argv += ["--set", "subject=akt-xizmatiga-xabar", "--set", "who=o.ismoilov", "--set", "summary=Virus on xodim-03"]
    assert run_alone("akm", evidence_cli.register, ("evidence",), argv) == 0


def _digitised_record(base: Path) -> None:
    """What akm-ocr -c (roles/digitization) writes for an item entered in the register."""
    argv = ["write", "--dir", str(base / "digitised"), "--name", "item-EK-7-{stamp}", "--kind", "digitised.item"]
    argv += ["--result", "ok", "--set", "subject=EK-7", "--set", "collection=Oʻlkashunoslik", "--set", "type=book"]
    argv += ["--set", "format=PDF", "--number", "pages=12", "--number", "bytes=48213", "--set", "file=/srv/EK-7.pdf"]
    assert run_alone("akm", evidence_cli.register, ("evidence",), argv) == 0


@needs_restic
def test_every_kind_of_record_comes_from_its_writer_and_fits_the_schema(tmp_path, monkeypatch):
    base = tmp_path / "evidence"
    monkeypatch.setenv("AKM_DUTY", "backup-run")
    _backup_records(base, tmp_path)
    _fixity_records(base, tmp_path)
    _network_records(base)
    _drift_record(base, monkeypatch)
    _policy_push_record(base)
    _rollback_record(base, tmp_path)
    _retention_record(base, tmp_path)
    _unit_failed_record(base)
    _procedure_record(base)
    _digitised_record(base)

    found = _kinds(base)
    # backup.repair needs restic 0.18: its writer runs on the lab's backup machine (Debian 13), in
    # tests/backup/test_lab_roles.py, where evidence.write checks the record against the schema.
    lab_only = set() if r.supports("check-json") else {"backup.repair"}
    assert sorted(found) == sorted(set(evidence.kinds()) - lab_only)
    assert found["backup.run"]["duty"] == "backup-run"
    assert found["backup.alert"]["code"] == "backup.wrong-password"
    assert found["fixity.alert"]["details"]["archive"] == str((tmp_path / "archive").resolve())
    assert datetime.fromisoformat(found["policy.push"]["time"]).tzinfo is not None
    assert found["network.config-backup"]["result"] == "failed"
    assert (base / "net" / "backup-latest.json").is_file()
    assert found["procedure.done"]["subject"] == "akt-xizmatiga-xabar"
    assert (found["digitised.item"]["pages"], found["digitised.item"]["bytes"]) == (12, 48213)


def test_a_record_that_does_not_fit_is_not_written(tmp_path):
    data = evidence.record("policy.rollback", "rolled_back", time=datetime(2026, 11, 25, tzinfo=UTC), host="gw")
    with pytest.raises(evidence.EvidenceError) as caught:
        evidence.write(tmp_path, "x", data)
    assert sorted((p.code, p.field) for p in caught.value.problems) == [
        ("evidence.missing", "back_to"),
        ("evidence.missing", "reason"),
        ("evidence.missing", "release"),
        ("evidence.value", "result"),
    ]
    assert not any(tmp_path.iterdir())


def test_a_name_already_taken_gets_a_number(tmp_path):
    data = evidence.record("policy.rollback", "failed", host="gw", release="r-1", back_to="none", reason="x")
    first = evidence.write(tmp_path, "same", data)
    second = evidence.write(tmp_path, "same", data)
    assert (first.name, second.name) == ("same.json", "same-2.json")
