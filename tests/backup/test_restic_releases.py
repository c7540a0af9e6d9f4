"""What the jobs ask of restic follows the installed release: 0.14 on Debian 12, 0.18 on Debian 13.

The release is read from ``restic version`` of the binary the jobs run (``AKM_RESTIC``); here a script
answering as each release stands in for it, so both releases' command lines are checked on any host.
The real 0.18 runs in the lab (the backup machine's repair, the Debian 13 client's unchanged runs).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from backup_helpers import run_akm

from akm.backup import jobs
from akm.backup import restic as r


@pytest.fixture
def release(tmp_path, monkeypatch):
    """Make the jobs' restic a script that answers ``restic version`` as the given release."""

    def answer(text: str) -> None:
        script = tmp_path / "restic"
        script.write_text(f"#!/bin/sh\necho '{text}'\n")
        script.chmod(0o755)
        monkeypatch.setattr(r, "RESTIC", str(script))
        r.version.cache_clear()

    yield answer
    r.version.cache_clear()


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("restic 0.14.0 compiled with go1.19.8 on linux/amd64", (0, 14)),
        ("restic 0.18.0 compiled with go1.24.4 on linux/amd64", (0, 18)),
        ("something else", (0, 0)),
    ],
)
def test_the_release_is_read_from_restic_version(release, answer, expected):
    release(answer)
    assert r.version() == expected


def test_restic_0_18_reads_concurrently_and_skips_unchanged_snapshots(release):
    release("restic 0.18.0 compiled with go1.24.4 on linux/amd64")
    tuning = jobs.Tuning(pack_size=64, read_concurrency=4)
    assert tuning.backup_args() == ["--pack-size", "64", "--read-concurrency", "4", "--skip-if-unchanged"]
    assert jobs.Tuning(skip_if_unchanged=False).backup_args() == []


def test_restic_0_14_gets_only_what_it_knows(release):
    release("restic 0.14.0 compiled with go1.19.8 on linux/amd64")
    assert jobs.Tuning(pack_size=64, read_concurrency=4).backup_args() == ["--pack-size", "64"]


@pytest.mark.parametrize(
    ("code", "cause"),
    [(10, "backup.no-repository"), (11, "backup.locked"), (12, "backup.wrong-password")],
)
def test_the_exit_codes_of_restic_0_17_name_the_cause(code, cause):
    assert r.classify(r.Result(["restic"], code, "", "")) == cause


def test_repair_needs_restic_0_18_and_says_so(release, tmp_path, capsys):
    release("restic 0.14.0 compiled with go1.19.8 on linux/amd64")
    password = tmp_path / "password"
    password.write_text("x")
    argv = ["backup", "repair", "--root", str(tmp_path), "--password-file", str(password)]
    assert run_akm([*argv, "--evidence-dir", str(tmp_path / "ev")]) == 2
    assert "backup.repair-needs-restic-0.18" in capsys.readouterr().out
    assert not Path(tmp_path / "ev").exists()


@pytest.mark.parametrize("value", ["0", "-2", "many"])
def test_counts_on_the_command_line_must_be_whole_numbers_of_one_or_more(value, capsys):
    with pytest.raises(SystemExit) as exit_:
        run_akm(["backup", "run", "--host", "ws1", "--read-concurrency", value])
    assert exit_.value.code == 2
    assert f"'{value}' is not a whole number of 1 or more" in capsys.readouterr().err
