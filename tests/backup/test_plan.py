"""What a host backs up and where, derived from the inventory (contract of BRIEF, small fixtures)."""

from __future__ import annotations

from ipaddress import IPv4Address
from pathlib import Path
from types import SimpleNamespace as NS

import pytest

from akm.backup import BackupError, jobs


def asset(hostname, profiles=(), data=(), address=None, variables=None):
    return NS(
        hostname=hostname,
        profiles=list(profiles),
        address=address,
        vars=variables or {},
        interfaces=[],
        data=[NS(data_class=c, path=p) for c, p in data],
    )


class Inventory:
    def __init__(self, assets):
        self.assets = assets
        self.segments = {}
        self.root = "inventory/fixture"

    def asset(self, name):
        for a in self.assets:
            if a.hostname == name:
                return a
        raise KeyError(name)


@pytest.fixture
def inv():
    return Inventory(
        [
            asset(
                "srv",
                ["file_server"],
                [
                    ("staff_share", "/srv/samba/staff"),
                    ("audio_video", "/srv/archive/av"),
                    ("staff_share", "/srv/samba/common"),
                    ("configs", "/etc"),
                ],
            ),
            asset(
                "bak",
                ["backup_server"],
                address=IPv4Address("198.18.10.20"),
                variables={"backup_server_port": 8080},
            ),
        ]
    )


def test_sources_group_paths_by_data_class(inv):
    sources = jobs.sources_for_host(inv, "srv")
    assert [(s.data_class, s.paths) for s in sources] == [
        ("audio_video", ["/srv/archive/av"]),
        ("configs", ["/etc"]),
        ("staff_share", ["/srv/samba/common", "/srv/samba/staff"]),
    ]


def test_each_client_has_its_own_repository_on_the_backup_machine(inv):
    assert jobs.repository_url(inv, "srv") == "rest:https://198.18.10.20:8080/srv/"


WITH_LOGIN = "rest:https://srv:placeholder@198.18.10.20:8000/srv/"  # pragma: allowlist secret (a made-up login)


@pytest.mark.parametrize(
    ("given", "recorded"),
    [
        (WITH_LOGIN, "rest:https://198.18.10.20:8000/srv/"),
        ("rest:https://198.18.10.20:8000/srv/", "rest:https://198.18.10.20:8000/srv/"),
        ("rest:https://198.18.10.20:8000/user@lab/", "rest:https://198.18.10.20:8000/user@lab/"),
        ("/srv/akm-restic/srv", "/srv/akm-restic/srv"),
        ("/media/usb@2/akm-restic/srv", "/media/usb@2/akm-restic/srv"),
    ],
)
def test_evidence_records_the_repository_without_its_login(given, recorded):
    assert jobs.public_url(given) == recorded


def test_lab_inventory_places_the_archive_on_srv_and_reaches_bak_on_the_servers_segment():
    from akm.inventory import load_inventory

    lab = load_inventory(Path(__file__).parents[2] / "inventory" / "lab")
    classes = {s.data_class for s in jobs.sources_for_host(lab, "srv")}
    assert {"av_masters", "configs"} <= classes
    assert jobs.repository_url(lab, "srv") == "rest:https://198.18.10.20:8000/srv/"
    assert jobs.retention_args(lab.data_classes["av_masters"].retention) is None


def test_unknown_host_and_missing_backup_server_are_clear_errors(inv):
    with pytest.raises(BackupError) as caught:
        jobs.sources_for_host(inv, "nope")
    assert caught.value.problems[0].code == "backup.unknown-host"
    with pytest.raises(BackupError) as caught:
        jobs.repository_url(Inventory([asset("srv")]), "srv")
    assert caught.value.problems[0].code == "backup.no-backup-server"


def test_retention_flags_per_data_class():
    keep_all = NS(keep_all=True, daily=None, weekly=None, monthly=None, yearly=None)
    shares = NS(keep_all=False, daily=14, weekly=8, monthly=24, yearly=None)
    assert jobs.retention_args(keep_all) is None
    assert jobs.retention_args(shares) == ["--keep-daily", "14", "--keep-weekly", "8", "--keep-monthly", "24"]


def test_run_for_a_host_without_data_is_a_clear_error(tmp_path, akm, capsys):
    password = tmp_path / "pw"
    password.write_text("placeholder-password\n")
    lab = str(Path(__file__).parents[2] / "inventory" / "lab")
    code = akm(
        [
            "backup",
            "run",
            "--inventory",
            lab,
            "--host",
            "bak",
            "--repo",
            "rest:http://127.0.0.1:9/bak/",
            "--password-file",
            str(password),
            "--evidence-dir",
            str(tmp_path),
        ]
    )
    assert code == 2
    assert "backup.nothing-to-back-up" in capsys.readouterr().out
