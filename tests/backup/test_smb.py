"""Backups of Windows PCs' shares pulled over SMB (issue 16): the exact mirror, smbclient's failures, the
pulls file, and the backup as the PC with real restic. The whole pull from a real Samba share is the lab
test of tests/backup/test_lab_smb.py.

The mirror is fed tar streams made here, as smbclient's tar mode sends them (paths inside the share,
``./`` first, file times kept).
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
from backup_helpers import needs_restic

from akm.backup import BackupError, jobs, smb
from akm.backup import restic as r

SHARE = smb.Share("accounting", "198.18.10.10", "buxgalteriya")


def tar_of(entries: dict[str, bytes | None], times: dict[str, float] | None = None) -> tarfile.TarFile:
    """A tar stream as smbclient sends it: ``{path: content}``, ``None`` for a folder."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as out:
        for name, content in entries.items():
            info = tarfile.TarInfo("./" + name)
            info.mtime = (times or {}).get(name, 1_700_000_000.25)
            if content is None:
                info.type = tarfile.DIRTYPE
                out.addfile(info)
            else:
                info.size = len(content)
                out.addfile(info, io.BytesIO(content))
    return reader(buffer)


def reader(buffer: io.BytesIO) -> tarfile.TarFile:
    """The written *buffer* read as a stream, as the mirror reads smbclient's output."""
    buffer.seek(0)
    return tarfile.open(fileobj=buffer, mode="r|")


def files_under(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


FIRST = {"1C": None, "1C/baza.1cd": b"ledger" * 100, "hisobot.xlsx": b"report", "eski": None, "eski/a.txt": b"old"}


def test_the_mirror_follows_the_share_and_leaves_unchanged_files_alone(tmp_path):
    root = tmp_path / "buxgalteriya"
    done = smb.mirror_stream(SHARE, tar_of(FIRST), root, set())
    assert (done.files, done.written, done.deleted, done.unreadable) == (3, 3, 0, [])
    assert files_under(root) == {k: v for k, v in FIRST.items() if v is not None}
    assert (root / "1C/baza.1cd").stat().st_mtime_ns == 1_700_000_000_250_000_000
    inode = (root / "1C/baza.1cd").stat().st_ino

    again = smb.mirror_stream(SHARE, tar_of(FIRST), root, set())
    assert (again.written, again.deleted) == (0, 0)
    assert (root / "1C/baza.1cd").stat().st_ino == inode, "an unchanged file is not written again"

    changed = {"1C": None, "1C/baza.1cd": b"ledger, a new entry", "hisobot.xlsx": b"report"}
    after = smb.mirror_stream(SHARE, tar_of(changed), root, set())
    assert (after.written, after.deleted) == (1, 2), "the changed file, and eski/ with its file"
    assert files_under(root) == {"1C/baza.1cd": b"ledger, a new entry", "hisobot.xlsx": b"report"}
    assert sorted(p.name for p in root.iterdir()) == ["1C", "hisobot.xlsx"]


def test_a_file_the_share_lists_but_does_not_send_keeps_its_last_copy(tmp_path):
    """The accounting program holds its database open: smbclient leaves it out of the stream silently."""
    root = tmp_path / "buxgalteriya"
    smb.mirror_stream(SHARE, tar_of(FIRST), root, set())
    held = {k: v for k, v in FIRST.items() if k != "1C/baza.1cd"}
    done = smb.mirror_stream(SHARE, tar_of(held), root, {"1C/baza.1cd", "hisobot.xlsx", "eski/a.txt"})
    assert done.unreadable == ["1C/baza.1cd"]
    assert (root / "1C/baza.1cd").read_bytes() == FIRST["1C/baza.1cd"]
    assert done.deleted == 0


def test_a_folder_becomes_a_file_and_back(tmp_path):
    root = tmp_path / "buxgalteriya"
    smb.mirror_stream(SHARE, tar_of({"x": None, "x/y": b"1"}), root, set())
    smb.mirror_stream(SHARE, tar_of({"x": b"now a file"}), root, set())
    assert (root / "x").read_bytes() == b"now a file"
    smb.mirror_stream(SHARE, tar_of({"x": None, "x/z": b"2"}), root, set())
    assert files_under(root) == {"x/z": b"2"}


def test_only_the_placements_folder_is_mirrored(tmp_path):
    share = smb.Share("accounting", "198.18.10.10", "buxgalteriya", "/1C")
    root = tmp_path / "buxgalteriya"
    (root / "boshqa").mkdir(parents=True)
    (root / "boshqa" / "keep.txt").write_text("not the placement's")
    done = smb.mirror_stream(share, tar_of({"1C/baza.1cd": b"ledger"}), root, set())
    assert (done.files, done.deleted) == (1, 0)
    assert files_under(root) == {"1C/baza.1cd": b"ledger", "boshqa/keep.txt": b"not the placement's"}


@pytest.mark.parametrize(
    "name",
    ["../etc/passwd", "1C/../../x", "/etc/passwd", "boshqa/x.txt"],
    ids=["climbs", "climbs-inside", "absolute", "outside"],
)
def test_an_entry_outside_the_placement_fails_the_pull_and_deletes_nothing(tmp_path, name):
    share = smb.Share("accounting", "198.18.10.10", "buxgalteriya", "/1C")
    root = tmp_path / "buxgalteriya"
    smb.mirror_stream(share, tar_of({"1C/old.txt": b"old"}), root, set())
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as out:
        info = tarfile.TarInfo(name)
        info.size = 4
        out.addfile(info, io.BytesIO(b"evil"))
    with pytest.raises(smb.PullError) as caught:
        smb.mirror_stream(share, reader(buffer), root, set())
    assert caught.value.problems[0].code == "backup.smb-bad-entry"
    assert files_under(root) == {"1C/old.txt": b"old"}
    assert not (tmp_path / "etc").exists()


def test_a_link_in_the_stream_is_refused(tmp_path):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as out:
        info = tarfile.TarInfo("./link")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/shadow"
        out.addfile(info)
    with pytest.raises(smb.PullError):
        smb.mirror_stream(SHARE, reader(buffer), tmp_path / "m", set())
    assert not (tmp_path / "m" / "link").exists()


LISTING = """\
  .                                   D        0  Mon Dec  7 15:12:47 2026
  ..                                  D        0  Mon Dec  7 15:12:33 2026
  locked.dat                          N        3  Mon Dec  7 15:12:26 2026
  deep dir                            D        0  Mon Dec  7 15:12:47 2026

\\sub\\deep dir
  .                                   D        0  Mon Dec  7 15:12:47 2026
  ..                                  D        0  Mon Dec  7 15:12:47 2026
  f  A  N 1.txt                       A        2  Mon Dec  7 15:12:47 2026

\t\t264212084 blocks of size 1024. 73700456 blocks available
"""


def test_the_listing_of_smbclient_is_read_with_odd_names():
    from pathlib import PurePosixPath

    files, folders = smb.parse_listing(LISTING, PurePosixPath("sub"))
    assert files == {"sub/locked.dat", "sub/deep dir/f  A  N 1.txt"}
    assert folders == {"sub/deep dir"}


def test_the_smbclient_command():
    auth = Path("/etc/akm/backup/smb.auth")
    assert SHARE.command(auth, "-Tc", "-") == [
        smb.SMBCLIENT,
        "-s",
        "/dev/null",
        "//198.18.10.10/buxgalteriya",
        "-p",
        "445",
        "-A",
        str(auth),
        "-Tc",
        "-",
    ]
    deep = smb.Share("accounting", "10.77.20.71", "Buxgalteriya 1C", "/Baza/2026/", 4450)
    assert deep.command(auth, "-c", "recurse; ls")[3:] == [
        "//10.77.20.71/Buxgalteriya 1C",
        "-p",
        "4450",
        "-A",
        str(auth),
        "-D",
        "Baza/2026",
        "-c",
        "recurse; ls",
    ]


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("session setup failed: NT_STATUS_LOGON_FAILURE", "backup.smb-login"),
        ("tree connect failed: NT_STATUS_BAD_NETWORK_NAME", "backup.smb-no-share"),
        ("cd \\nope\\: NT_STATUS_OBJECT_NAME_NOT_FOUND", "backup.smb-no-path"),
        ("do_connect: Connection to 10.77.20.71 failed (Error NT_STATUS_IO_TIMEOUT)", "backup.smb-unreachable"),
        ("tree connect failed: NT_STATUS_ACCESS_DENIED", "backup.smb-denied"),
        ("something else", "backup.smb-failed"),
    ],
)
def test_smbclients_failures_are_told_apart(text, code):
    assert smb.classify(text) == code
    problem = smb.problem_for(code, SHARE, text)
    assert problem.hint and text in problem.message and problem.file == "//198.18.10.10/buxgalteriya"


@pytest.mark.parametrize(
    ("content", "field"),
    [
        ("not json", ""),
        ('{"hosts": []}', "hosts"),
        ('{"hosts": {"buxgalter-01": {"shares": []}}}', "hosts.buxgalter-01"),
        (
            '{"hosts": {"buxgalter-01": {"repository": "r", "shares": [{"share": "b"}]}}}',
            "hosts.buxgalter-01.shares[0]",
        ),
    ],
    ids=["not-json", "hosts-not-a-mapping", "no-repository", "share-incomplete"],
)
def test_a_bad_pulls_file_is_named_with_its_field(tmp_path, content, field):
    path = tmp_path / "smb-pulls.json"
    path.write_text(content)
    with pytest.raises(BackupError) as caught:
        smb.read_pulls(path)
    (problem,) = caught.value.problems
    assert (problem.code, problem.file, problem.field) == ("backup.bad-pulls-file", str(path), field)
    assert problem.hint


def _snapshot_paths(repo: r.Repo) -> set[str]:
    snap = jobs.find_snapshot(repo, "latest", "buxgalter-01", "accounting")
    return {f["path"] for f in jobs._snapshot_files(repo, snap["id"])}


@needs_restic
def test_the_mirror_is_backed_up_as_the_pc_and_a_deleted_file_leaves_the_next_snapshot(
    tmp_path, repo_root, password_file
):
    """What pull_and_back_up does after the pulls, with real restic: the record's host is the PC."""
    repo = r.Repo(str(repo_root / "buxgalter-01"), password_file, tmp_path / "cache")
    jobs.init_repository(repo)
    staging = tmp_path / "staging" / "buxgalter-01"
    root = staging / "buxgalteriya"
    base = tmp_path / "evidence"

    def back_up(entries: dict, listed: set[str] = frozenset()):
        done = smb.mirror_stream(SHARE, tar_of(entries), root, set(listed))
        share = {"data_class": "accounting", "share": "buxgalteriya", "path": "/", "address": SHARE.address}
        share.update(result="warning" if done.unreadable else "ok", files=done.files, bytes=done.bytes)
        share.update(written=done.written, deleted=done.deleted, unreadable=done.unreadable, errors=[])
        part = {"protocol": "smb", "by": "bak", "staging": str(staging), "shares": [share]}
        return jobs.run_backup(repo, "buxgalter-01", [jobs.Source("accounting", [str(root)])], base, pull=part)

    record, path = back_up(FIRST)
    assert (record["host"], record["result"], record["classes"][0]["data_class"]) == (
        "buxgalter-01",
        "ok",
        "accounting",
    )
    assert json.loads(path.read_text())["pull"]["by"] == "bak"
    assert str(root / "eski" / "a.txt") in _snapshot_paths(repo)

    target = tmp_path / "restored"
    jobs.restore(repo, base, host="buxgalter-01", data_class="accounting", target=target)
    assert (target / str(root / "1C/baza.1cd").lstrip("/")).read_bytes() == FIRST["1C/baza.1cd"]

    record, _path = back_up({k: v for k, v in FIRST.items() if not k.startswith("eski")})
    assert record["pull"]["shares"][0]["deleted"] == 2
    assert str(root / "eski" / "a.txt") not in _snapshot_paths(repo)

    held = {k: v for k, v in FIRST.items() if not k.startswith(("eski", "1C/"))}
    record, _path = back_up(held, {"1C/baza.1cd", "hisobot.xlsx"})
    assert record["result"] == "warning"
    assert str(root / "1C/baza.1cd") in _snapshot_paths(repo)


@needs_restic
@pytest.mark.needs("smbclient")
def test_a_share_that_cannot_be_read_fails_the_run_and_backs_nothing_up(tmp_path, repo_root, password_file):
    """Nothing answers on port 1 of loopback: the class is not backed up and the run failed."""
    repo = r.Repo(str(repo_root / "buxgalter-01"), password_file, tmp_path / "cache")
    jobs.init_repository(repo)
    share = smb.Share("accounting", "127.0.0.1", "buxgalteriya", "/", 1)
    auth = tmp_path / "smb.auth"
    auth.write_text("username = akm\npassword = not-a-real-one-0000\n")  # pragma: allowlist secret
    record, _path = smb.pull_and_back_up(repo, "buxgalter-01", [share], auth, tmp_path / "staging", tmp_path / "ev")
    assert record["result"] == "failed" and record["classes"] == []
    assert record["pull"]["shares"][0]["errors"][0]["code"] == "backup.smb-unreachable"
    assert record["copy"]["result"] == "skipped"
