"""The list of scheduled duties: it loads, matches the timers the roles install today, resolves against
an inventory, makes docs/operations.md, and reports every bad input with its code, file, line and field."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import pytest
import yaml

from akm import evidence
from akm.cli import main as akm
from akm.duties import REPORT_SECTIONS, DutiesError, assignments, load, time_of_day
from akm.duties.docs import render
from akm.inventory import load_inventory
from akm.inventory.model import is_debian

REPO = Path(__file__).resolve().parents[2]
DUTIES = REPO / "policies" / "duties.yml"
BAD = Path(__file__).parent / "bad"
CASES = sorted(p.name for p in BAD.iterdir() if p.is_dir())


@pytest.fixture(scope="module")
def duties():
    return load(DUTIES)


def test_the_issue_duties_are_all_listed(duties):
    ids = {d.id for d in duties}
    assert {
        "backup-run",
        "backup-check",
        "backup-check-full",
        "restore-drill",
        "backup-prune",
        "fixity-verify",
        "policy-push",
        "net-backup",
        "drift-facts",
        "collect",
        "proxy-log-retention",
        "report-weekly",
        "report-monthly",
        "report-quarterly",
        "report-annual",
        "package-updates",
    } <= ids


def test_every_own_timer_template_of_the_roles_is_a_listed_duty(duties):
    """A role's akm-*.timer that the list does not name would run unseen; every built duty's service has
    its template in its role (the report timers are one template, one file per report kind)."""
    listed = {d.timer for d in duties if d.status == "built"}
    management = yaml.safe_load((REPO / "roles/management/defaults/main.yml").read_text())
    installed = set()
    for template in REPO.glob("roles/*/templates/akm-*.timer.j2"):
        name = template.name.removesuffix(".j2")
        if name == "akm-report.timer":
            installed |= {f"akm-report-{kind}.timer" for kind in management["management_report_on_calendar"]}
        else:
            installed.add(name.replace("@.", "@{data_class}."))
    assert installed == {t for t in listed if t.startswith("akm-")}
    for duty in duties:
        if duty.status == "built" and not duty.stock:
            template = re.sub(r"@[^.]*\.", "@.", duty.service) + ".j2"
            assert (REPO / "roles" / duty.role / "templates" / template).is_file(), duty.id


def test_the_units_of_built_duties_name_their_duty_in_the_evidence(duties):
    """Each unit sets AKM_DUTY, so its evidence says which duty wrote it (``%i`` is the report's kind)."""
    for duty in duties:
        if duty.status == "built" and not duty.stock:
            template = REPO / "roles" / duty.role / "templates" / (re.sub(r"@[^.]*\.", "@.", duty.service) + ".j2")
            (value,) = re.findall(r"^Environment=AKM_DUTY=(\S+)$", template.read_text(), flags=re.MULTILINE)
            instance = duty.service.partition("@")[2].removesuffix(".service")
            assert value.replace("%i", instance) == duty.id, duty.id


def test_report_sections_are_the_reports(duties):
    from akm.report import periods
    from akm.report.build import Sources, build

    report = build(
        Sources(load_inventory(REPO / "inventory" / "lab")), periods.parse("weekly", "2026-W47", date(2026, 11, 30))
    )
    assert tuple(s.key for s in report.sections) == REPORT_SECTIONS


def test_evidence_of_built_duties_is_in_the_schema(duties):
    assert {k for d in duties if d.status == "built" for k in d.evidence} <= set(evidence.kinds())


def test_the_lab_inventory_decides_where_each_duty_runs(duties):
    found = {(a.host, a.service) for a in assignments(duties, load_inventory(REPO / "inventory" / "lab"))}
    # srv places the two data classes the lab marks fixity; the backup machine backs up nothing itself.
    assert {s for h, s in found if h == "srv" and s.startswith("akm-fixity-verify@")} == {
        "akm-fixity-verify@av_masters.service",
        "akm-fixity-verify@elibrary.service",
    }
    assert ("bak", "akm-backup-prune.service") in found and ("bak", "akm-backup.service") not in found
    assert {s for h, s in found if h == "gw" and s.startswith("akm-")} == {
        "akm-backup.service",
        "akm-backup-check.service",
        "akm-backup-check-full.service",
        "akm-backup-drill@configs.service",
    }
    linux = {a.hostname for a in load_inventory(REPO / "inventory" / "lab").assets if is_debian(a.os)}
    assert {h for h, s in found if s == "apt-daily-upgrade.service"} == linux
    assert {h for h, s in found if s == "akm-policy-push.service"} == {"srv"}


def test_list_as_json_for_an_inventory_and_a_profile(capsys):
    assert (
        akm(
            [
                "--lang",
                "en",
                "duties",
                "list",
                "-i",
                str(REPO / "inventory/lab"),
                "--profile",
                "management",
                "--format",
                "json",
            ]
        )
        == 0
    )
    rows = json.loads(capsys.readouterr().out)
    assert {r["host"] for r in rows} == {"srv"}
    assert [r["duty"] for r in rows][:2] == ["policy-push", "net-backup"]
    weekly = next(r for r in rows if r["duty"] == "report-weekly")
    assert (weekly["timer"], weekly["service"], weekly["time"]) == (
        "akm-report-weekly.timer",
        "akm-report@weekly.service",
        "06:00",
    )


def test_check_passes_on_the_repository(capsys):
    assert akm(["--lang", "en", "duties", "check", "--file", str(DUTIES)]) == 0
    assert "valid" in capsys.readouterr().out


def test_docs_operations_is_made_from_the_list(duties):
    assert (REPO / "docs" / "operations.md").read_text(encoding="utf-8") == render(duties), (
        "regenerate it: akm duties docs > docs/operations.md"
    )


@pytest.mark.parametrize(
    ("calendar", "expected"),
    [("*-*-* 01:30:00", "01:30"), ("Sun *-*-* 4:30", "04:30"), ("daily", "00:00"), ("*-*-* *:40:00", "**:40")],
)
def test_time_of_day(calendar, expected):
    assert time_of_day(calendar) == expected


def test_corpus_has_a_case_per_check():
    assert len(CASES) >= 12


@pytest.mark.parametrize("name", CASES)
def test_bad_input(name):
    case = BAD / name
    expected = yaml.safe_load((case / "expected.yml").read_text())["problems"]
    with pytest.raises(DutiesError) as caught:
        load(case / "duties.yml", roles=REPO / "roles")
    assert [(p.code, p.line, p.field) for p in caught.value.problems] == [
        (p["code"], p["line"], p["field"]) for p in expected
    ]
    assert {Path(p.file).resolve() for p in caught.value.problems} == {(case / "duties.yml").resolve()}
    assert all(p.message and p.hint for p in caught.value.problems)
