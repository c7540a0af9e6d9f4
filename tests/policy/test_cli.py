"""``akm policy check | build | query | diff`` end to end, with the clock moved by ``--at``."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from akm.policy.cli import main

from .conftest import HERE
from .signing import APPROVALS

BASE = ["--lang", "en", "policy"]
WHERE = ["-i", "tests/policy/inventory", "-p", "tests/policy/policy"]


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main([*BASE, *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_check_lists_expiring_grants_and_warns_about_expired_ones(capsys):
    code, out, err = run(capsys, "check", *WHERE, "--at", "2026-11-25T12:00")
    assert code == 0
    assert "G-2026-020: host:zal-01 — December 1, 2026" in out
    assert "grants.yml:38: grants[2].expires_on: grant G-2026-003 expired on 2026-07-01" in err
    assert "5 rules, 3 active grants (1 expired)" in out


def test_check_after_the_clock_moves_drops_the_next_grant(capsys):
    code, out, err = run(capsys, "check", *WHERE, "--at", "2026-12-01T00:00")
    assert code == 0
    assert "grant G-2026-020 expired on 2026-12-01" in err
    assert "2 active grants (2 expired)" in out


def test_check_fails_with_file_line_and_fix(capsys):
    code, _out, err = run(
        capsys,
        "check",
        "-i",
        "tests/policy/inventory",
        "-p",
        "tests/policy/bad/26-not-an-approver.yml",
        "--at",
        "2026-11-25",
    )
    assert code != 0
    assert "tests/policy/bad/26-not-an-approver.yml:22: grants[0].approval.by: d.karimova may not approve" in err
    assert "Traceback" not in err


def test_build_writes_nothing_when_the_policy_has_errors(capsys, tmp_path):
    out = tmp_path / "out"
    code, _o, _e = run(
        capsys,
        "build",
        "-i",
        "tests/policy/inventory",
        "-p",
        "tests/policy/bad/24-shadowed-rule.yml",
        "--out",
        str(out),
    )
    assert code != 0
    assert not out.exists()


def test_build_writes_every_platform(capsys, tmp_path):
    out = tmp_path / "out"
    code, text, _e = run(capsys, "build", *WHERE, "--at", "2026-11-25T12:00", "--out", str(out))
    assert code == 0, text
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "MANIFEST",
        *(
            f"hosts/{host}.nft"
            for host in (
                "akt-01",
                "bak",
                "bibl-01",
                "bolalar-01",
                "direktor-01",
                "raqam-01",
                "srv",
                "zal-01",
                "zal-02",
                "zal-mudir-01",
            )
        ),
        "ios/switch-01.txt",
        "kea/gw.json",
        "nftables/gw.nft",
        "routeros/router-01.rsc",
        "squid/acl/adult.txt",
        "squid/acl/games.txt",
        "squid/acl/piracy.txt",
        "squid/acl/social.txt",
        "squid/acl/video.txt",
        "squid/akm-access.conf",
        "squid/logrotate",
        "squid/squid.conf",
        "unbound/gw.conf",
        "wpad/gw.dat",
    ]


@pytest.mark.parametrize(
    ("who", "what", "at", "code", "expected"),
    [
        ("zal-01", "www.youtube.com", "2026-11-25T12:00", 0, "zal-01: allowed — grant G-2026-020"),
        ("zal-01", "www.youtube.com", "2026-11-25T20:00", 3, "zal-01: denied — default:restricted"),
        ("zal-01", "www.youtube.com", "2026-12-01T12:00", 3, "zal-01: denied — default:restricted"),
        ("zal-02", "kutubxona.uz", "2026-11-25T12:00", 0, "zal-02: allowed — default:internet"),
        # The test policy makes the staff log in (staff_login: required): a person is their login.
        ("n.rahimova", "facebook.com", "2026-11-25T12:00", 0, "on any staff computer: allowed — grant G-2026-014"),
        ("m.ergasheva", "facebook.com", "2026-11-25T19:00", 0, "on any staff computer: allowed — default:internet"),
        ("direktor-01", "facebook.com", "2026-11-25T19:00", 3, "direktor-01: denied — the proxy asks for a personal"),
        ("direktor-01 --as r.yusupova", "facebook.com", "2026-11-25T12:00", 3, "denied — rule staff-work-hours"),
        ("direktor-01 --as r.yusupova", "facebook.com", "2026-11-25T19:00", 0, "allowed — default:internet"),
        ("direktor-01 --as n.rahimova", "facebook.com", "2026-11-25T12:00", 0, "as n.rahimova: allowed — grant G"),
        ("bibl-01 --as d.karimova", "facebook.com", "2026-11-25T12:00", 3, "denied — rule staff-work-hours"),
        ("segment:staff", "kun.uz", "2026-11-25T12:00", 3, "segment:staff: denied — the proxy asks for a personal"),
        ("segment:staff --as u.qodirov", "kun.uz", "2026-11-25T12:00", 0, "allowed — default:internet"),
        (
            "department:oqish_zali",
            "youtube.com",
            "2026-11-25T12:00",
            3,
            "zal-02: denied — default:restricted",
        ),
        ("zal-01", "adult-site.test", "2026-11-25T12:00", 3, "denied — rule adult-and-piracy"),
        ("zal-01", "service:file_shares", "2026-11-25T12:00", 3, "no rule names it"),
        ("bibl-01", "service:file_shares", "2026-11-25T12:00", 0, "allowed — rule shares-for-staff"),
        ("n.rahimova", "service:file_shares", "2026-11-25T12:00", 0, "bibl-01: allowed — rule shares-for-staff"),
        ("raqam-01", "service:backups", "2026-11-25T12:00", 0, "allowed — grant G-2026-031"),
        ("raqam-01", "service:backups", "2026-11-25T21:00", 3, "no rule names it"),
    ],
)
def test_query_answers_with_the_deciding_rule(capsys, who, what, at, code, expected):
    result, out, err = run(capsys, "query", *WHERE, "--at", at, *who.split(), what)
    assert expected in out, out + err
    assert result == code


def test_query_of_an_unknown_host_is_a_problem_not_a_traceback(capsys):
    code, _out, err = run(capsys, "query", *WHERE, "--at", "2026-11-25T12:00", "zal-99", "youtube.com")
    assert code != 0
    assert "there is no host 'zal-99' in the inventory" in err


@pytest.mark.needs("git")
def test_diff_tells_who_gains_and_loses_access_in_both_languages(capsys, tmp_path, signing):
    repo = tmp_path / "repo"
    policy = repo / "policies" / "access" / "test"
    shutil.copytree(HERE / "policy", policy)
    shutil.copytree(HERE / "lists", repo / "policies" / "access" / "lists")
    where = ["-i", str(signing.inventory_dir), "-p", str(policy)]

    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)

    def approve(grant: str, login: str, day: str) -> None:
        assert run(capsys, "approve", *where, "--at", day, "--key", str(signing.key(login)), grant)[0] == 0

    for grant, login, day in APPROVALS:
        approve(grant, login, day)
    git("init", "-q")
    git("-c", "user.name=t", "-c", "user.email=t@example.invalid", "add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-qm", "one")
    grants = (policy / "grants.yml").read_text()
    grants = grants.replace("expires_on: 2026-12-01", "expires_on: 2027-02-01")
    grants += (
        "  - id: G-2026-040\n    who: host:zal-02\n    allow: [category:social]\n"
        '    why: "Request 2026-040: book club page"\n    expires_on: 2027-01-01\n'
    )
    (policy / "grants.yml").write_text(grants)
    approve("G-2026-020", "b.toshmatov", "2026-11-20")
    approve("G-2026-040", "r.yusupova", "2026-11-20")
    rules = (
        (policy / "rules.yml")
        .read_text()
        .replace(
            "  - id: shares-for-staff\n    who: [segment:staff, segment:digitization]",
            "  - id: shares-for-staff\n    who: [segment:staff]",
        )
    )
    (policy / "rules.yml").write_text(rules)
    git("-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-qam", "two")

    code, out, err = run(
        capsys,
        "diff",
        *where,
        "--at",
        "2026-11-25T12:00",
        "HEAD~1",
        "HEAD",
    )
    assert code == 0, err
    english = out.split("## English")[1]
    uzbek = out.split("## English")[0]
    assert "- host zal-02 gains access to Social networks" in english
    assert "- segment digitization loses access to Shared folders" in english
    assert "- grant G-2026-020 is renewed until 2027-02-01" in english
    assert "- grant G-2026-040 is new (until 2027-01-01)" in english
    assert "- grant G-2026-003 has expired (2026-07-01) and is left out" in english
    assert uzbek.startswith("## Oʻzbekcha: HEAD~1 → HEAD\n")
    assert "- zal-02 kompyuteri uchun kirish ochiladi: Ijtimoiy tarmoqlar" in uzbek
    assert "- Raqamlashtirish segmenti uchun kirish yopiladi: Umumiy papkalar" in uzbek
    assert "- G-2026-020 ruxsatnomasi 2027-02-01 gacha uzaytirildi" in uzbek
    assert "- G-2026-040 ruxsatnomasi yangi, 2027-01-01 gacha amal qiladi" in uzbek
    assert "- G-2026-003 ruxsatnomasining muddati 2026-07-01 da tugagan, u hisobga olinmaydi" in uzbek
