"""``akm.collect`` with real files: the forced-command program answers from folders in tmp_path, and
logrotate's moves (rename with a date, then compress) happen between collections. Every line of the
proxy log and every evidence record must arrive exactly once."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from akm import collect, evidence
from tests.collect.local import SERVE, Host, Local

LEASES_HEADER = (
    "address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,state,user_context\n"
)


def line(number: int) -> bytes:
    """One Squid line of the akm format, told apart by its number."""
    return (
        f"{1764000000 + number}.000      5 198.18.1.10 TCP_MISS/200 100 GET http://site{number}.uz/ - "
        "HIER_DIRECT/198.18.100.1 text/html\n"
    ).encode()


def append(path: Path, *numbers: int, partial: bytes = b"") -> None:
    with path.open("ab") as handle:
        handle.write(b"".join(line(n) for n in numbers) + partial)


def rotate(host: Host, suffix: str) -> None:
    """logrotate's daily rotation of the policy's file (dateext, compress, delaycompress): the last
    rotated file is compressed, the live one renamed with the date, and Squid opens a new one."""
    for older in sorted(host.squid.glob("access.log-*")):
        if not older.name.endswith(".gz"):
            with older.open("rb") as source, gzip.open(f"{older}.gz", "wb") as target:
                shutil.copyfileobj(source, target)
            shutil.copystat(older, f"{older}.gz")
            older.unlink()
    host.log.rename(host.squid / f"access.log-{suffix}")
    host.log.touch()


def record(host: Host, name: str, summary: str = "done") -> Path:
    data = evidence.record("backup.alert", "failed", host="gw", code="backup.test", summary=summary)
    return evidence.write(host.evidence / "backup", name, data)


@pytest.fixture
def centre(tmp_path):
    hosts = {"gw": Host(tmp_path / "gw", gateway=True), "pc": Host(tmp_path / "pc", gateway=False)}
    places = collect.Places(tmp_path / "mgmt" / "evidence", tmp_path / "mgmt" / "logs", tmp_path / "mgmt" / "state")
    for folder in (places.evidence, places.logs, places.state):
        folder.mkdir(parents=True)
    targets = {name: {"ssh_hostname": name} for name in hosts}
    return hosts, places, lambda: collect.collect(targets, Local(hosts), places)


def collected_lines(places: collect.Places) -> list[bytes]:
    found = []
    for path in sorted((places.logs / "gw").glob("access-*.log")):
        found += path.read_bytes().splitlines(keepends=True)
    return found


def test_every_line_arrives_once_across_rotations_and_compression(centre):
    hosts, places, run = centre
    gw = hosts["gw"]
    append(gw.log, 1, 2, 3, partial=b"1764000004.000      5 198.18.1.10 TCP_")
    first = run()
    assert first["result"] == "ok", first
    assert collected_lines(places) == [line(1), line(2), line(3)], "a line Squid is still writing waits"

    with gw.log.open("ab") as handle:
        handle.write(line(4)[len(b"1764000004.000      5 198.18.1.10 TCP_") :])
    append(gw.log, 5)
    rotate(gw, "20261125")
    append(gw.log, 6, 7)
    second = run()
    assert second["hosts"]["gw"]["logs"]["proxy"]["files"] == ["access.log-20261125", "access.log"]
    assert second["hosts"]["gw"]["logs"]["proxy"]["lines"] == 4

    append(gw.log, 8)
    rotate(gw, "20261126")
    append(gw.log, 9)
    third = run()
    assert third["hosts"]["gw"]["logs"]["proxy"]["files"] == ["access.log-20261126", "access.log"]
    assert (gw.squid / "access.log-20261125.gz").exists()

    assert run()["hosts"]["gw"]["logs"]["proxy"]["bytes"] == 0
    assert collected_lines(places) == [line(n) for n in range(1, 10)]


def test_a_cursor_in_a_file_compressed_since_is_found_by_its_first_bytes(centre):
    hosts, places, run = centre
    gw = hosts["gw"]
    append(gw.log, 1)
    run()
    append(gw.log, 2)
    rotate(gw, "20261125")
    append(gw.log, 3)
    rotate(gw, "20261126")  # the host was off for a day: the file read last is compressed now
    append(gw.log, 4)
    entry = run()["hosts"]["gw"]
    assert entry["logs"]["proxy"]["files"] == ["access.log-20261125.gz", "access.log-20261126", "access.log"]
    assert entry["problems"] == []
    assert collected_lines(places) == [line(n) for n in (1, 2, 3, 4)]


def test_a_run_stopped_before_its_state_is_saved_counts_nothing_twice(centre):
    hosts, places, run = centre
    gw = hosts["gw"]
    append(gw.log, 1, 2)
    record(gw, "one")
    run()
    saved = (places.state / "gw.json").read_bytes()
    append(gw.log, 3)
    record(gw, "two")
    run()
    (places.state / "gw.json").write_bytes(saved)  # as if that run stopped after its files, before its state
    append(gw.log, 4)
    again = run()
    assert again["hosts"]["gw"]["logs"]["proxy"]["lines"] == 2
    assert collected_lines(places) == [line(n) for n in (1, 2, 3, 4)]
    copies = sorted(p.name for p in (places.evidence / "hosts" / "gw").rglob("*.json"))
    assert copies == ["one.json", "two.json"]


def test_evidence_is_copied_once_by_name_and_content_and_checked_on_arrival(centre):
    hosts, places, run = centre
    gw, pc = hosts["gw"], hosts["pc"]
    record(gw, "one")
    record(pc, "two")
    evidence.write(
        pc.evidence / "backup",
        "three",
        evidence.record("backup.alert", "ok", host="pc", code="x", summary="s"),
        latest="backup",
    )
    (pc.evidence / "backup" / "broken.json").write_text('{"kind": "backup.alert"}\n')
    first = run()
    assert (first["records"], first["hosts"]["pc"]["evidence"]) == (4, 3)
    assert first["result"] == "warning"
    assert {p["item"] for p in first["hosts"]["pc"]["problems"]} == {"backup/broken.json"}
    copied = places.evidence / "hosts" / "pc" / "backup"
    assert sorted(p.name for p in copied.iterdir()) == ["broken.json", "three.json", "two.json"]
    assert json.loads((copied / "two.json").read_text()) == json.loads(
        (pc.evidence / "backup" / "two.json").read_text()
    )

    assert run()["records"] == 0
    os.utime(pc.evidence / "backup" / "two.json", ns=(1, 1))  # touched, same content: not written again
    assert run()["records"] == 0
    changed = pc.evidence / "backup" / "two.json"
    changed.write_text(changed.read_text().replace('"s"', '"t"').replace("done", "changed"))
    assert run()["records"] == 1
    assert "changed" in (copied / "two.json").read_text()


def test_the_gateway_leases_become_a_presence_record(centre):
    hosts, _places, run = centre
    (hosts["gw"].kea / "kea-leases4.csv.2").write_text(
        LEASES_HEADER + "198.18.1.10,02:00:00:00:00:0A,,3600,1764003600,1,0,0,oqish-01,0,\n"
    )
    (hosts["gw"].kea / "kea-leases4.csv").write_text(
        LEASES_HEADER + "198.18.1.10,02:00:00:00:00:0a,,3600,1764007200,1,0,0,oqish-01,0,\n"
        "198.18.1.11,02:00:00:00:00:0b,,3600,1764007200,1,0,0,,0,\n"
    )
    os.utime(hosts["gw"].kea / "kea-leases4.csv.2", ns=(1, 1))
    entry = run()["hosts"]["gw"]
    records, problems = evidence.load(Path(entry["presence"]))
    assert problems == []
    ((_where, presence),) = records
    assert presence["kind"] == "network.presence" and presence["host"] == "gw"
    assert presence["leases"] == [
        {
            "address": "198.18.1.10",
            "mac": "02:00:00:00:00:0a",
            "hostname": "oqish-01",
            "expires": "2025-11-24T18:00:00Z",
            "state": 0,
        },
        {
            "address": "198.18.1.11",
            "mac": "02:00:00:00:00:0b",
            "hostname": "",
            "expires": "2025-11-24T18:00:00Z",
            "state": 0,
        },
    ]
    assert "presence" not in run()["hosts"]["pc"]


def test_a_cursor_whose_file_is_gone_is_reported_and_the_collection_starts_again(centre):
    hosts, places, run = centre
    gw = hosts["gw"]
    append(gw.log, 1)
    run()
    append(gw.log, 2)
    rotate(gw, "20261125")
    (gw.squid / "access.log-20261125").unlink()  # beyond the policy's retention while the host was off
    append(gw.log, 3)
    result = run()
    assert result["result"] == "warning"
    assert [p["code"] for p in result["hosts"]["gw"]["problems"]] == ["collect.log-cursor-lost"]
    assert collected_lines(places) == [line(1), line(3)]


def serve(host: Host, request: str, stdin: bytes = b"") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-I", str(SERVE), *host.arguments()],
        input=stdin,
        capture_output=True,
        env={**os.environ, "SSH_ORIGINAL_COMMAND": request},
        check=False,
    )


@pytest.mark.parametrize(
    ("piece", "code"),
    [
        ({"source": "evidence", "path": "../gw/squid/access.json"}, "outside"),
        ({"source": "evidence", "path": "/etc/passwd"}, "outside"),
        ({"source": "proxy", "name": "../../etc/passwd"}, "not-found"),
        ({"source": "shadow", "name": "shadow"}, "unknown-source"),
        ({"source": "neighbours"}, "unknown-source"),
    ],
)
def test_the_forced_command_shows_nothing_outside_its_roots(tmp_path, piece, code):
    host = Host(tmp_path / "gw", gateway=True)
    (tmp_path / "gw" / "squid" / "access.json").write_text("{}")
    done = serve(host, "get", json.dumps([piece]).encode())
    assert (done.returncode, json.loads(done.stdout)) == (0, {"error": code})


@pytest.mark.parametrize("request_text", ["rm -rf /", "cat /etc/shadow", "", "list proxy=0", "get extra", "list 'x"])
def test_the_forced_command_refuses_any_other_request(tmp_path, request_text):
    done = serve(Host(tmp_path / "gw", gateway=True), request_text)
    assert done.returncode == 2 and done.stdout == b""
    assert "error" in json.loads(done.stderr)


def test_the_management_role_names_the_paths_the_policy_writes_and_the_base_role_ships_the_program(repo):
    import yaml

    from akm.policy.generators.base import Options

    defaults = yaml.safe_load((repo / "roles" / "management" / "defaults" / "main.yml").read_text())
    assert defaults["management_collect_proxy_log"] == str(Options().squid_log_dir / "access.log")
    base = yaml.safe_load((repo / "roles" / "base" / "defaults" / "main.yml").read_text())
    assert defaults["management_collect_serve"] == f"{base['base_akm_lib']}/{collect.SERVE}"
    assert defaults["management_collect_host_evidence_dir"] == base["base_evidence_dir"]
    base_vars = (repo / "roles" / "base" / "vars" / "main.yml").read_text()
    assert "'collect/serve.py'" in base_vars


def test_the_report_reads_every_collected_day_file_and_nothing_half_written(centre, repo):
    from datetime import datetime

    from akm.inventory import load_inventory
    from akm.report.build import Sources, read_logs

    hosts, places, run = centre
    append(hosts["gw"].log, 1, 2)
    run()
    (places.logs / "gw" / ".tmp-unfinished").write_bytes(line(3))
    sources = Sources(load_inventory(repo / "inventory" / "lab"), access_logs=[places.logs])
    read = read_logs(sources, datetime.fromtimestamp(0).astimezone(), datetime.now().astimezone())
    assert [path.parent.name for path, _usage in read] == ["gw"]
    assert sum(usage.requests for _path, usage in read) == 2
