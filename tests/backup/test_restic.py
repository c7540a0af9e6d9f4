"""The backup CLI with real restic on local directory repositories, as the backup machine's REST server
keeps them (``<root>/<host>/``).

Each test is one of the faults of issue 7; data is small and lives in pytest's tmp directory. The REST
server's own guarantees (append-only, private repositories, HTTPS only, a full disk on the server) are
lab tests against Debian's restic-rest-server.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from backup_helpers import flip_byte, needs_restic, tmpfs, write_random

from akm.backup import jobs
from akm.backup import restic as r

pytestmark = needs_restic


def common(restic_repo: r.Repo, ev: Path, host: str = "ws1") -> list[str]:
    return [
        "--repo",
        restic_repo.url,
        "--password-file",
        str(restic_repo.password_file),
        "--host",
        host,
        "--evidence-dir",
        str(ev),
        "--state-dir",
        str(ev / "state"),
    ]


@pytest.fixture
def archive(tmp_path):
    root = tmp_path / "data" / "av"
    write_random(root / "master-01.wav", 2 * 1024 * 1024)
    write_random(root / "master-02.mkv", 1024 * 1024 + 3)
    (root / "catalogue.txt").write_text("1. Navoiy kechasi\n", encoding="utf-8")
    return root


def last_record(ev: Path, kind: str) -> dict:
    paths = sorted((ev / "backup").glob(f"{kind}-*.json"), key=lambda p: p.stat().st_mtime_ns)
    return json.loads(paths[-1].read_text())


def test_deleted_file_is_restored_byte_identical(restic_repo, archive, tmp_path, akm):
    ev = tmp_path / "ev"
    original = (archive / "master-01.wav").read_bytes()
    assert akm(["backup", "run", *common(restic_repo, ev), "--source", f"audio_video={archive}"]) == 0
    run = last_record(ev, "run")
    assert run["result"] == "ok" and run["classes"][0]["files_new"] == 3 and run["snapshot_ids"]
    assert run["repository"] == restic_repo.url
    assert run["copy"]["result"] == "skipped"
    (archive / "master-01.wav").unlink()
    target = tmp_path / "restored"
    assert (
        akm(["backup", "restore", *common(restic_repo, ev), "--data-class", "audio_video", "--target", str(target)])
        == 0
    )
    assert (target / str(archive).lstrip("/") / "master-01.wav").read_bytes() == original
    assert last_record(ev, "restore")["snapshot_id"].startswith(run["snapshot_ids"][0])


def test_restore_never_writes_into_a_non_empty_directory(restic_repo, archive, tmp_path, akm, capsys):
    ev = tmp_path / "ev"
    akm(["backup", "run", *common(restic_repo, ev), "--source", f"audio_video={archive}"])
    assert akm(["backup", "restore", *common(restic_repo, ev), "--target", str(archive)]) == 2
    assert "backup.restore-target-not-empty" in capsys.readouterr().out
    assert akm(["backup", "restore", *common(restic_repo, ev)]) == 2
    assert "backup.restore-no-target" in capsys.readouterr().out


def test_flipped_byte_in_a_pack_is_found_by_the_data_check(restic_repo, archive, tmp_path, akm):
    ev = tmp_path / "ev"
    akm(["backup", "run", *common(restic_repo, ev), "--source", f"audio_video={archive}"])
    assert akm(["backup", "check", *common(restic_repo, ev), "--tier", "structure"]) == 0
    packs = sorted((Path(restic_repo.url) / "data").rglob("*"), key=lambda p: p.stat().st_size)
    biggest = [p for p in packs if p.is_file()][-1]
    flip_byte(biggest, biggest.stat().st_size // 2)
    assert akm(["backup", "check", *common(restic_repo, ev), "--tier", "full"]) == 1
    record = last_record(ev, "check")
    assert record["result"] == "failed" and record["subset"] == "all"
    assert record["errors"][0]["code"] == "backup.check-failed"
    assert list((ev / "alerts").glob("alert-backup-check-failed-*.json"))
    assert record["reread_next"] is True


def test_after_a_failed_check_backups_read_every_file_until_a_check_is_clean(restic_repo, archive, tmp_path, akm):
    """A check that found damage makes the next backups re-read every file (restic --force), so data the
    repository lost comes back even from restic 0.14, which trusts its last snapshot; a clean check ends it."""
    ev = tmp_path / "ev"
    run = [*common(restic_repo, ev), "--source", f"audio_video={archive}"]
    akm(["backup", "run", *run])
    assert last_record(ev, "run")["reread"] is False
    pack = max((p for p in (Path(restic_repo.url) / "data").rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    original = pack.read_bytes()
    flip_byte(pack, pack.stat().st_size // 2)
    assert akm(["backup", "check", *common(restic_repo, ev), "--tier", "full"]) == 1
    akm(["backup", "run", *run])
    assert last_record(ev, "run")["reread"] is True
    pack.write_bytes(original)
    assert akm(["backup", "check", *common(restic_repo, ev)]) == 0
    assert last_record(ev, "check")["reread_next"] is False
    akm(["backup", "run", *run])
    assert last_record(ev, "run")["reread"] is False


def test_rotating_subset_check_records_what_was_read(restic_repo, archive, tmp_path, akm):
    ev = tmp_path / "ev"
    akm(["backup", "run", *common(restic_repo, ev), "--source", f"audio_video={archive}"])
    seen = []
    for _ in range(4):
        assert akm(["backup", "check", *common(restic_repo, ev), "--tier", "subset", "--subsets", "3"]) == 0
        seen.append(last_record(ev, "check")["subset"])
    assert seen == ["1/3", "2/3", "3/3", "1/3"]


def test_killed_backup_leaves_a_consistent_repository_and_the_next_run_succeeds(restic_repo, tmp_path, akm):
    ev = tmp_path / "ev"
    big = tmp_path / "data" / "big"
    write_random(big / "tape.wav", 24 * 1024 * 1024)
    proc = subprocess.Popen(
        ["restic", "backup", "--limit-upload", "2048", "--host", "ws1", str(big)],
        env=restic_repo.env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    locks = []
    while time.monotonic() < deadline and proc.poll() is None:
        locks = jobs.list_locks(restic_repo)
        if locks:
            time.sleep(1.5)
            break
        time.sleep(0.2)
    assert proc.poll() is None, "the slow backup finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert jobs.list_locks(restic_repo), "a killed restic leaves its lock behind"
    assert akm(["backup", "check", *common(restic_repo, ev)]) == 0
    assert last_record(ev, "check")["locks_removed"]
    assert akm(["backup", "run", *common(restic_repo, ev), "--source", f"audio_video={big}"]) == 0
    assert last_record(ev, "run")["result"] == "ok"
    assert akm(["backup", "check", *common(restic_repo, ev), "--tier", "full"]) == 0
    assert jobs.list_locks(restic_repo) == []


def test_stale_lock_is_removed_by_the_next_run(restic_repo, archive, tmp_path, akm):
    ev = tmp_path / "ev"
    proc = subprocess.Popen(
        ["restic", "backup", "--limit-upload", "512", "--host", "ws1", str(archive)],
        env=restic_repo.env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not jobs.list_locks(restic_repo) and proc.poll() is None:
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert jobs.list_locks(restic_repo)
    assert akm(["backup", "run", *common(restic_repo, ev), "--source", f"audio_video={archive}"]) == 0
    assert last_record(ev, "run")["locks_removed"]


def test_wrong_password_is_a_clear_error(restic_repo, archive, tmp_path, akm, capsys):
    ev = tmp_path / "ev"
    wrong = tmp_path / "wrong-password"
    wrong.write_text("not the password\n")
    args = common(restic_repo, ev)
    args[args.index("--password-file") + 1] = str(wrong)
    assert akm(["backup", "run", *args, "--source", f"audio_video={archive}"]) == 2
    assert "backup.wrong-password" in capsys.readouterr().err
    record = last_record(ev, "run")
    assert record["result"] == "failed" and record["errors"][0]["code"] == "backup.wrong-password"
    # The alert's line names the class the run did not back up.
    assert record["summary"].startswith("not backed up: audio_video (")


@pytest.mark.privileged
def test_full_target_disk_is_a_clear_error_with_an_alert(password_file, tmp_path, akm, capsys):
    ev = tmp_path / "ev"
    source = tmp_path / "data" / "share"
    write_random(source / "big.bin", 12 * 1024 * 1024)
    with tmpfs(tmp_path / "small", "4m") as root:
        restic_repo = r.Repo(str(root / "ws1"), password_file, tmp_path / "cache")
        assert jobs.init_repository(restic_repo) is True
        code = akm(["backup", "run", *common(restic_repo, ev), "--source", f"staff_share={source}"])
        assert code == 2
        assert "backup.target-full" in capsys.readouterr().err
        record = last_record(ev, "run")
        assert record["result"] == "failed"
        assert record["classes"][0]["errors"][-1]["code"] == "backup.target-full"
        alerts = [json.loads(p.read_text()) for p in (ev / "alerts").glob("*.json")]
        assert [a["code"] for a in alerts] == ["backup.target-full"]


def test_bit_rotted_master_is_flagged_by_fixity_and_restored_from_backup(restic_repo, archive, tmp_path, akm):
    ev = tmp_path / "ev"
    assert akm(["fixity", "build", str(archive), "--evidence-dir", str(ev)]) == 0
    assert akm(["backup", "run", *common(restic_repo, ev), "--source", f"audio_video={archive}"]) == 0
    flip_byte(archive / "master-02.mkv", 777)
    assert akm(["fixity", "verify", str(archive), "--evidence-dir", str(ev)]) == 1
    damaged = last_record(ev, "fixity-verify")["changed"]
    assert [d["path"] for d in damaged] == ["master-02.mkv"]
    assert (
        akm(
            [
                "backup",
                "restore",
                *common(restic_repo, ev),
                "--data-class",
                "audio_video",
                "--include",
                str(archive / "master-02.mkv"),
                "--in-place",
            ]
        )
        == 0
    )
    assert akm(["fixity", "verify", str(archive), "--evidence-dir", str(ev)]) == 0
    assert last_record(ev, "fixity-verify")["unchanged"] == 3


def test_absent_removable_disk_is_a_soft_failure(restic_repo, archive, tmp_path, akm):
    ev = tmp_path / "ev"
    not_mounted = tmp_path / "usb"
    not_mounted.mkdir()
    assert (
        akm(
            [
                "backup",
                "run",
                *common(restic_repo, ev),
                "--source",
                f"audio_video={archive}",
                "--removable",
                str(not_mounted),
            ]
        )
        == 0
    )
    record = last_record(ev, "run")
    assert record["result"] == "ok"
    assert record["copy"]["result"] == "soft-failure"
    assert os.listdir(not_mounted) == []


@pytest.mark.privileged
def test_mounted_removable_disk_gets_a_second_copy(restic_repo, archive, tmp_path, akm):
    ev = tmp_path / "ev"
    with tmpfs(tmp_path / "usb", "64m") as usb:
        assert (
            akm(
                [
                    "backup",
                    "run",
                    *common(restic_repo, ev),
                    "--source",
                    f"audio_video={archive}",
                    "--removable",
                    str(usb),
                ]
            )
            == 0
        )
        record = last_record(ev, "run")
        assert record["copy"]["result"] == "ok"
        copy = r.Repo(str(usb / "akm-restic" / "ws1"), restic_repo.password_file, tmp_path / "cache")
        copied = json.loads(r.ensure(r.run(copy, ["snapshots", "--json"])).stdout)
        assert [s["tags"] for s in copied] == [["akm", "class:audio_video"]]
        r.ensure(r.run(copy, ["check", "--read-data"]))


def test_retention_per_data_class_runs_on_the_backup_machine(repo_root, restic_repo, tmp_path, akm):
    ev = tmp_path / "ev"
    share = tmp_path / "data" / "share"
    write_random(share / "doc.odt", 1000)
    masters = tmp_path / "data" / "av"
    write_random(masters / "m.wav", 1000)
    for day in ("2026-11-20", "2026-11-21", "2026-11-22"):
        for cls, path in (("staff_share", share), ("audio_video", masters)):
            r.ensure(
                r.run(
                    restic_repo,
                    [
                        "backup",
                        "--host",
                        "ws1",
                        "--tag",
                        "akm",
                        "--tag",
                        f"class:{cls}",
                        "--time",
                        f"{day} 03:00:00",
                        str(path),
                    ],
                )
            )
    classes = tmp_path / "data-classes.json"
    classes.write_text(
        json.dumps({"audio_video": {"retention": {"keep_all": True}}, "staff_share": {"retention": {"daily": 1}}})
    )
    args = ["backup", "prune", "--root", str(repo_root), "--password-file", str(restic_repo.password_file)]
    assert akm([*args, "--classes-file", str(classes), "--evidence-dir", str(ev)]) == 0
    record = last_record(ev, "prune")
    assert record["result"] == "ok", record
    by_class = {c["data_class"]: c for c in record["repositories"][0]["classes"]}
    assert by_class["audio_video"] == {"data_class": "audio_video", "policy": "keep-all", "removed": 0}
    assert by_class["staff_share"]["removed"] == 2
    left = json.loads(r.ensure(r.run(restic_repo, ["snapshots", "--json"])).stdout)
    counts = {}
    for snap in left:
        counts[snap["tags"][1]] = counts.get(snap["tags"][1], 0) + 1
    assert counts == {"class:audio_video": 3, "class:staff_share": 1}
    r.ensure(r.run(restic_repo, ["check"]))


def test_restore_drill_verifies_a_sample_against_fixity_and_snapshot(restic_repo, archive, tmp_path, akm):
    ev = tmp_path / "ev"
    assert akm(["fixity", "build", str(archive), "--evidence-dir", str(ev)]) == 0
    assert akm(["backup", "run", *common(restic_repo, ev), "--source", f"audio_video={archive}"]) == 0
    drill = ["backup", "drill", *common(restic_repo, ev), "--data-class", "audio_video", "--sample", "3"]
    assert akm([*drill, "--scratch", str(tmp_path / "scratch")]) == 0
    record = last_record(ev, "drill")
    assert record["result"] == "ok" and record["outcome"] == "verified" and len(record["sample"]) == 3
    assert {f["fixity"] for f in record["sample"]} == {"match"}
    assert {f["snapshot"] for f in record["sample"]} == {"match"}
    assert not any((tmp_path / "scratch").iterdir())


def test_restore_drill_catches_a_master_that_rotted_before_its_backup(restic_repo, archive, tmp_path, akm):
    ev = tmp_path / "ev"
    assert akm(["fixity", "build", str(archive), "--evidence-dir", str(ev)]) == 0
    flip_byte(archive / "master-01.wav", 4096)
    assert akm(["backup", "run", *common(restic_repo, ev), "--source", f"audio_video={archive}"]) == 0
    drill = ["backup", "drill", *common(restic_repo, ev), "--data-class", "audio_video", "--sample", "3"]
    assert akm([*drill, "--scratch", str(tmp_path / "scratch")]) == 1
    record = last_record(ev, "drill")
    bad = [f["path"] for f in record["sample"] if f["result"] == "failed"]
    assert bad == [str(archive / "master-01.wav")]
    assert record["result"] == "failed" and record["outcome"] == "damaged"
    assert list((ev / "alerts").glob("alert-backup-drill-failed-*.json"))


def test_rest_login_is_never_recorded_and_a_silent_server_is_unreachable(password_file, tmp_path, akm, capsys):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        repo = r.Repo(f"rest:https://ws1:ws1-token@127.0.0.1:{port}/ws1/", password_file, tmp_path / "cache")
        data = tmp_path / "data"
        write_random(data / "f.bin", 1000)
        ev = tmp_path / "ev"
        assert akm(["backup", "run", *common(repo, ev), "--source", f"configs={data}"]) == 2
    printed = capsys.readouterr()
    assert "backup.unreachable" in printed.err
    record = last_record(ev, "run")
    assert record["repository"] == f"rest:https://127.0.0.1:{port}/ws1/"
    assert record["errors"][0]["code"] == "backup.unreachable"
    assert "ws1-token" not in json.dumps(record) + printed.out + printed.err


def test_the_ca_certificate_given_reaches_restic(restic_repo, archive, tmp_path, akm, capsys):
    ev = tmp_path / "ev"
    args = ["backup", "run", *common(restic_repo, ev), "--source", f"audio_video={archive}"]
    assert akm([*args, "--cacert", str(tmp_path / "absent.pem")]) == 2
    assert "backup.no-cacert" in capsys.readouterr().out
    assert not (ev / "backup").exists()
    not_a_certificate = tmp_path / "ca.pem"
    not_a_certificate.write_text("not a certificate\n")
    assert akm([*args, "--cacert", str(not_a_certificate)]) == 2
    error = last_record(ev, "run")["errors"][0]
    assert error["code"] == "backup.restic-failed" and "root certificate" in error["message"]


def test_compression_per_data_class_reaches_restic(restic_repo, archive, tmp_path, akm):
    ev = tmp_path / "ev"
    text = tmp_path / "ocr"
    text.mkdir()
    (text / "page-0001.txt").write_text("Xonobod shahar axborot-kutubxona markazi. " * 20000)
    args = [
        "backup", "run", *common(restic_repo, ev),
        "--source", f"av_masters={archive}", "--source", f"elibrary={text}",
        "--compression", "auto", "--class-compression", "av_masters=off", "--pack-size", "4",
    ]  # fmt: skip
    assert akm(args) == 0
    classes = {c["data_class"]: c for c in last_record(ev, "run")["classes"]}
    assert classes["av_masters"]["compression"] == "off"
    assert classes["elibrary"]["compression"] == "auto"
    # restic 0.14 reports bytes before compression, so the repository directory is measured: the
    # masters are stored whole, the 840 kB of OCR text in a small fraction of that.
    stored = sum(p.stat().st_size for p in (Path(restic_repo.url) / "data").rglob("*") if p.is_file())
    masters = classes["av_masters"]["bytes_processed"]
    assert masters < stored < masters + classes["elibrary"]["bytes_processed"] / 4


def test_bad_class_compression_is_refused_before_anything_runs(restic_repo, archive, tmp_path, akm, capsys):
    ev = tmp_path / "ev"
    args = ["backup", "run", *common(restic_repo, ev), "--source", f"av_masters={archive}"]
    assert akm([*args, "--class-compression", "av_masters=zip"]) == 2
    assert "backup.bad-compression" in capsys.readouterr().out
    assert not (ev / "backup").exists()


def test_restore_drill_of_an_empty_class_is_recorded_as_empty_not_failed(restic_repo, tmp_path, akm):
    ev = tmp_path / "ev"
    empty = tmp_path / "shares"
    (empty / "akt").mkdir(parents=True)
    assert akm(["backup", "run", *common(restic_repo, ev), "--source", f"shares={empty}"]) == 0
    args = ["backup", "drill", *common(restic_repo, ev), "--data-class", "shares", "--scratch", str(tmp_path / "s")]
    assert akm(args) == 0
    record = last_record(ev, "drill")
    assert record["result"] == "ok" and record["outcome"] == "empty" and record["sample"] == []
    assert not (ev / "alerts").exists()


def test_an_unchanged_class_makes_a_snapshot_only_where_restic_cannot_skip_it(restic_repo, archive, tmp_path, akm):
    """The same data backed up twice: restic 0.17 and later (Debian 13) make no second snapshot and the
    record says the class was unchanged; restic 0.14 (Debian 12) makes one. Both records are valid."""
    ev = tmp_path / "ev"
    assert akm(["backup", "run", *common(restic_repo, ev), "--source", f"audio_video={archive}"]) == 0
    assert akm(["backup", "run", *common(restic_repo, ev), "--source", f"audio_video={archive}"]) == 0
    second = last_record(ev, "run")["classes"][0]
    snapshots = json.loads(r.ensure(r.run(restic_repo, ["snapshots", "--json", "--no-lock"])).stdout)
    skips = r.supports("skip-if-unchanged")
    assert second["unchanged"] is skips and bool(second["snapshot_id"]) is not skips
    assert len(snapshots) == (1 if skips else 2)
    assert second["files_unmodified"] == 3 and second["duration_seconds"] >= 0


def test_always_snapshot_makes_a_snapshot_of_unchanged_data(restic_repo, archive, tmp_path, akm):
    ev = tmp_path / "ev"
    for _round in range(2):
        run = [*common(restic_repo, ev), "--source", f"audio_video={archive}", "--always-snapshot"]
        assert akm(["backup", "run", *run]) == 0
    assert last_record(ev, "run")["classes"][0]["unchanged"] is False
    assert len(json.loads(r.ensure(r.run(restic_repo, ["snapshots", "--json", "--no-lock"])).stdout)) == 2
