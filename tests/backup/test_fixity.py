"""Fixity manifests: BagIt form, streaming, and the four outcomes of a verification."""

from __future__ import annotations

import hashlib
import json

import pytest
from backup_helpers import flip_byte, write_random

from akm.backup import fixity


@pytest.fixture
def archive(tmp_path):
    root = tmp_path / "av"
    write_random(root / "1998" / "concert.wav", 3 * 1024 * 1024 + 17)
    write_random(root / "scans" / "kitob-001.tif", 200_000)
    (root / "readme.txt").write_text("Arxiv\n", encoding="utf-8")
    return root


def test_build_writes_a_bagit_manifest_of_every_file(archive):
    result = fixity.build(archive, date_text="2026-11-25")
    mdir = archive / fixity.MANIFEST_DIR_NAME
    assert sorted(e.path for e in result.added) == ["1998/concert.wav", "readme.txt", "scans/kitob-001.tif"]
    lines = (mdir / "manifest-sha256.txt").read_text().splitlines()
    wav = hashlib.sha256((archive / "1998" / "concert.wav").read_bytes()).hexdigest()
    assert f"{wav}  data/1998/concert.wav" in lines
    assert (mdir / "bagit.txt").read_text() == "BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"
    info = (mdir / "bag-info.txt").read_text()
    size = sum(p.stat().st_size for p in archive.rglob("*") if p.is_file() and mdir not in p.parents)
    assert f"Payload-Oxum: {size}.3" in info
    for line in (mdir / "tagmanifest-sha256.txt").read_text().splitlines():
        digest, name = line.split("  ")
        assert hashlib.sha256((mdir / name).read_bytes()).hexdigest() == digest


def test_streamed_hash_equals_whole_file_hash_with_tiny_chunks(archive):
    path = archive / "1998" / "concert.wav"
    digest, size = fixity.hash_file(path, chunk_size=4096)
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()
    assert size == path.stat().st_size


def test_verify_tells_bit_rot_from_additions_and_deletions(archive):
    fixity.build(archive, date_text="2026-11-25")
    flip_byte(archive / "1998" / "concert.wav", 1_000_000)
    (archive / "readme.txt").unlink()
    write_random(archive / "2026" / "new-recording.flac", 5000)
    result = fixity.verify(archive, workers=2)
    assert [c.path for c in result.changed] == ["1998/concert.wav"]
    assert result.missing == ["readme.txt"]
    assert result.new == ["2026/new-recording.flac"]
    assert result.unchanged == ["scans/kitob-001.tif"]
    assert not result.ok


def test_build_adds_new_files_but_never_rerecords_a_changed_one(archive):
    fixity.build(archive, date_text="2026-11-25")
    before = fixity.read_manifest(archive / fixity.MANIFEST_DIR_NAME)
    flip_byte(archive / "scans" / "kitob-001.tif", 10)
    write_random(archive / "scans" / "kitob-002.tif", 1000)
    result = fixity.build(archive, date_text="2026-11-26")
    after = fixity.read_manifest(archive / fixity.MANIFEST_DIR_NAME)
    assert [e.path for e in result.added] == ["scans/kitob-002.tif"]
    assert after["scans/kitob-001.tif"] == before["scans/kitob-001.tif"]
    assert [c.path for c in fixity.verify(archive).changed] == ["scans/kitob-001.tif"]


def test_names_with_newline_and_percent_are_encoded(tmp_path):
    root = tmp_path / "odd"
    root.mkdir()
    (root / "a\nb%c.txt").write_text("x")
    fixity.build(root, date_text="2026-11-25")
    text = (root / fixity.MANIFEST_DIR_NAME / "manifest-sha256.txt").read_text()
    assert "data/a%0Ab%25c.txt" in text
    assert fixity.verify(root).unchanged == ["a\nb%c.txt"]


def test_bad_manifest_line_is_located(archive):
    fixity.build(archive, date_text="2026-11-25")
    manifest = archive / fixity.MANIFEST_DIR_NAME / "manifest-sha256.txt"
    manifest.write_text(manifest.read_text() + "not-a-checksum data/x\n")
    with pytest.raises(fixity.FixityError) as caught:
        fixity.verify(archive)
    problem = caught.value.problems[0]
    assert (problem.code, problem.line) == ("fixity.bad-manifest-line", 4)


def test_verify_without_manifest_says_how_to_make_one(archive):
    with pytest.raises(fixity.FixityError) as caught:
        fixity.verify(archive)
    assert caught.value.problems[0].code == "fixity.no-manifest"


def test_cli_verify_exits_1_and_writes_evidence_and_alert(archive, tmp_path, akm, capsys):
    ev = tmp_path / "evidence"
    assert akm(["fixity", "build", str(archive), "--evidence-dir", str(ev)]) == 0
    assert akm(["fixity", "verify", str(archive), "--evidence-dir", str(ev)]) == 0
    flip_byte(archive / "1998" / "concert.wav", 5)
    assert akm(["fixity", "verify", str(archive), "--evidence-dir", str(ev)]) == 1
    assert "CHANGED" in capsys.readouterr().out
    records = sorted((ev / "backup").glob("fixity-verify-*.json"))
    damaged = [json.loads(p.read_text()) for p in records if json.loads(p.read_text())["result"] == "failed"]
    assert damaged and damaged[0]["changed"][0]["path"] == "1998/concert.wav"
    (alert,) = [json.loads(p.read_text()) for p in (ev / "alerts").glob("alert-fixity-damaged-*.json")]
    assert alert["kind"] == "fixity.alert" and alert["details"]["archive"] == str(archive.resolve())


def test_cli_missing_archive_is_a_clear_error(tmp_path, akm, capsys):
    assert akm(["fixity", "build", str(tmp_path / "nope"), "--evidence-dir", str(tmp_path)]) == 2
    assert "fixity.no-archive" in capsys.readouterr().out
