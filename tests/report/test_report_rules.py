"""The rules documents: every clause has an id and a control; the DOCX lists every person to sign."""

from __future__ import annotations

import shutil
import subprocess
from datetime import date, datetime
from pathlib import Path

import pytest
from docx import Document

from akm import i18n
from akm.report import rules

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "policies" / "rules"


def test_shipped_documents_are_valid_and_every_clause_has_a_control():
    documents = rules.load_all(RULES)
    assert {d.audience for d in documents} == {"readers", "staff"}
    assert len(documents) == 3
    ids = [c.id for d in documents for c in d.clauses]
    assert len(ids) == len(set(ids))
    assert all(c.control_kind in rules.CONTROL_KINDS and c.control for d in documents for c in d.clauses)
    assert all(len(d.clauses) >= 10 for d in documents)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        (
            "id: x\ntitle: T\naudience: staff\nversion: '1'\nsections:\n  - title: A\n    clauses:\n"
            "      - {id: A-1, text: t, control: {role: r}}\n"
            "      - {id: A-1, text: u, control: {role: r}}\n",
            "rules.duplicate-id",
        ),
        (
            "id: x\ntitle: T\naudience: staff\nversion: '1'\nsections:\n  - title: A\n    clauses:\n"
            "      - {id: A-1, text: t, control: {role: r, duty: p}}\n",
            "rules.control",
        ),
        (
            "id: x\ntitle: T\naudience: staff\nversion: '1'\nsections:\n  - title: A\n    clauses:\n"
            "      - {id: A-1, text: t}\n",
            "rules.control",
        ),
        ("title: T\n", "rules.missing"),
        ("[unclosed\n", "rules.unreadable"),
        ("- a list\n", "rules.not-mapping"),
    ],
)
def test_bad_documents_are_reported(tmp_path, text, code):
    (tmp_path / "bad.yml").write_text(text)
    with pytest.raises(rules.RulesError) as caught:
        rules.load_all(tmp_path)
    assert code in {p.code for p in caught.value.problems}


def test_docx_has_an_acknowledgement_row_for_every_person(inventory, tmp_path):
    i18n.setup("uz")
    try:
        documents = rules.load_all(RULES)
        path = rules.write_docx(documents, inventory, tmp_path / "rules.docx")
    finally:
        i18n.setup("en")
    docx = Document(str(path))
    sheets = [t for t in docx.tables if t.rows[0].cells[1].text == "F.I.Sh."]
    assert len(sheets) == len(documents)
    for sheet in sheets:
        assert [r.cells[4].text for r in sheet.rows[0:1]] == ["Imzo"]
        names = sorted(row.cells[1].text for row in sheet.rows[1:])
        assert names == sorted(p.name for p in inventory.people.values())
    text = "\n".join(p.text for p in docx.paragraphs)
    assert text.count("Tanishdim") == len(documents)
    assert "XQ-3.1. " in text and "[kirish qoidasi: grants]" in text
    assert f"____________ {inventory.director.name}" in text


def test_uzbek_catalogs_merge_without_conflicts(tmp_path):
    assert i18n.compile_catalog("uz", tmp_path).stat().st_size > 0


def test_akm_policy_docs_renders_every_document_for_the_production_staff(tmp_path, monkeypatch):
    from akm.cli import main
    from akm.inventory import load_inventory

    monkeypatch.chdir(ROOT)
    assert main(["policy", "docs", "--out", str(tmp_path)]) == 0
    docx = Document(str(tmp_path / "rules.docx"))
    sheets = [t for t in docx.tables if t.rows[0].cells[1].text == "F.I.Sh."]
    people = load_inventory(ROOT / "inventory/production").people.values()
    assert len(sheets) == 3
    assert sorted(row.cells[1].text for row in sheets[0].rows[1:]) == sorted(p.name for p in people)


def test_report_lists_who_has_not_yet_signed_the_current_version(inventory):
    from akm.report import periods
    from akm.report.build import Sources, build

    def missing(period: str) -> dict:
        report = build(Sources(inventory, rules_dir=RULES), periods.parse("weekly", period, date(2026, 12, 7)))
        section = next(s for s in report.sections if s.key == "rules")
        table = next(t for t in section.tables if t.key == "rules_acknowledgements")
        return {row[0].split()[0]: (row[2], row[3]) for row in table.rows}

    # policies/rules/acknowledgements/lab.yml: the 2026-11 versions signed on 2026-11-20 and -21 (week 47)
    # and -23 (week 48); the current 2026-12 versions of the staff's and the readers' rules on 2026-12-01
    # to -03 (week 49). A signature of the earlier version does not count for the current one.
    everyone = ", ".join(p.name for p in sorted(inventory.people.values(), key=lambda p: (p.department, p.name)))
    assert missing("2026-W47") == {
        "Xodimlar": (0, everyone),
        "Axborot": (1, "Otabek Ismoilov, Bahodir Yusupov, Dilorom Karimova, Gulnora Abdullayeva, Jasur Qodirov"),
        "Oʻquvchilar": (0, everyone),
    }
    assert missing("2026-W49") == {
        "Xodimlar": (2, "Otabek Ismoilov, Bahodir Yusupov, Gulnora Abdullayeva, Jasur Qodirov"),
        "Axborot": (1, "Otabek Ismoilov, Bahodir Yusupov, Dilorom Karimova, Gulnora Abdullayeva, Jasur Qodirov"),
        "Oʻquvchilar": (1, everyone.replace("Gulnora Abdullayeva, ", "")),
    }


@pytest.mark.needs("git")
def test_a_version_the_document_had_in_git_history_is_known(tmp_path, inventory):
    def git(*args: str) -> None:
        subprocess.run(
            ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
            check=True,
            capture_output=True,
        )

    text = (RULES / "xodimlar.yml").read_text()
    (tmp_path / "xodimlar.yml").write_text(text.replace('version: "2026-12"', 'version: "2026-05"'))
    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "first version")
    (tmp_path / "xodimlar.yml").write_text(text)
    git("commit", "-qam", "second version")
    register = tmp_path / "acknowledgements" / "register.yml"
    register.parent.mkdir()
    register.write_text(
        "---\nacknowledgements:\n"
        '  - {person: d.karimova, document: xodimlar-qoidalari, version: "2026-05", date: 2026-05-20}\n'
        '  - {person: d.karimova, document: xodimlar-qoidalari, version: "2026-06", date: 2026-06-20}\n'
    )
    documents = rules.load_all(tmp_path)
    records, problems = rules.load_acknowledgements(register, documents, inventory, date(2026, 11, 25))
    assert [r.version for r in records] == ["2026-05"]
    assert [(p.code, p.line) for p in problems] == [("rules.ack-unknown-version", 4)]
    missing = dict(rules.not_acknowledged(documents, records, inventory, date(2026, 11, 25)))
    assert inventory.people["d.karimova"] in missing[documents[0]], "the old version does not count for the new"


def test_akm_policy_check_refuses_a_bad_register(tmp_path, monkeypatch, capsys):
    from akm.cli import main

    for part in ("inventory/lab", "policies/access/lab", "policies/access/lists", "policies/rules"):
        shutil.copytree(ROOT / part, tmp_path / part)
    register = tmp_path / "policies/rules/acknowledgements/lab.yml"
    register.write_text(register.read_text().replace("person: g.abdullayeva", "person: g.abdulayeva"))
    monkeypatch.chdir(tmp_path)
    assert main(["--lang", "en", "policy", "check", "-i", "inventory/lab", "--at", "2026-12-01"]) == 2
    err = capsys.readouterr().err
    assert (
        "policies/rules/acknowledgements/lab.yml:7: acknowledgements[3].person: there is no person 'g.abdulayeva'"
        in err
    )


@pytest.mark.parametrize("name", ["production", "lab"])
def test_every_clause_is_tied_to_a_control_that_exists(name):
    """The shipped documents' controls resolve for both inventories, each to what shows it ran."""
    from zoneinfo import ZoneInfo

    from akm.inventory import load_inventory
    from akm.policy.compile import compile_policy
    from akm.policy.load import load_policy

    inventory = load_inventory(ROOT / "inventory" / name)
    at = datetime(2026, 12, 7, 12, 0, tzinfo=ZoneInfo(inventory.centre.timezone))
    policy = compile_policy(load_policy(ROOT / "policies" / "access" / name), inventory, at)
    known, problems = rules.controls(ROOT, name, policy)
    documents = rules.load_all(RULES)
    assert problems == [] and known.problems(documents) == []
    resolved = {c.id: known.resolve(c) for d in documents for c in d.clauses}
    assert resolved["AX-4.1"].evidence == ("backup.run", "backup.alert")
    assert resolved["XQ-3.1"].evidence == ("policy.push",)
    assert resolved["XQ-4.3"] == rules.Control(
        "procedure",
        "akt-xizmatiga-xabar",
        "Recording faults and security incidents",
        ("procedure.done",),
        subject="akt-xizmatiga-xabar",
    )
    assert resolved["AX-5.3"].register == f"policies/rules/acknowledgements/{name}.yml"
    assert {c.kind for c in resolved.values()} == set(rules.CONTROL_KINDS)


def _repository_copy(tmp_path: Path) -> Path:
    """The repository's inventory, policies and rules documents in *tmp_path* (roles linked), without the
    register of signed sheets (its versions come from git history, which the copy has not)."""
    for name in ("inventory/lab", "policies/access/lab", "policies/rules", "policies/access/lists"):
        shutil.copytree(ROOT / name, tmp_path / name)
    for name in ("policies/duties.yml", "policies/procedures.yml"):
        shutil.copy(ROOT / name, tmp_path / name)
    (tmp_path / "roles").symlink_to(ROOT / "roles")
    (tmp_path / "policies/rules/acknowledgements/lab.yml").unlink()
    return tmp_path


def test_a_control_that_does_not_exist_fails_akm_policy_check(tmp_path, capsys):
    from akm.cli import main

    repository = _repository_copy(tmp_path)
    argv = ["--lang", "en", "policy", "check", "-i", str(repository / "inventory/lab"), "--at", "2026-12-07T12:00"]
    assert main(argv) == 0
    capsys.readouterr()
    document = repository / "policies/rules/xodimlar.yml"
    text = document.read_text()
    document.write_text(text.replace("control: {role: file_server}", "control: {role: staff_workstation}"))
    line = text[: text.index("control: {role: file_server}")].count("\n") + 1
    assert main(argv) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"{document}:{line}: sections[0].clauses[0].control.role: there is no role 'staff_workstation' — "
        "name a directory of roles/; did you mean workstation_staff?"
    ]


def test_report_shows_each_control_and_the_evidence_that_it_ran_in_the_period(inventory, tmp_path):
    """Records of the control's kind in the period count (a procedure's only with its subject); none is
    "no evidence in the period"; a register's commits in the period count."""
    from zoneinfo import ZoneInfo

    from akm import evidence
    from akm.report import periods
    from akm.report.build import Sources, build

    zone = ZoneInfo(inventory.centre.timezone)
    folder = tmp_path / "evidence"

    def done(subject: str, day: int, result: str = "ok") -> None:
        moment = datetime(2026, 11, day, 10, 0, tzinfo=zone)
        record = evidence.record("procedure.done", result, time=moment, host="mgmt", subject=subject, who="o.ismoilov")
        evidence.write(folder, f"{subject}-{day}", record)

    done("akt-xizmatiga-xabar", 24)
    done("akt-xizmatiga-xabar", 26, "warning")
    done("akt-xizmatiga-xabar", 12)  # the week before
    done("kutubxonachi-nazorati", 13)  # the week before, another procedure
    i18n.setup("en")
    report = build(
        Sources(inventory, rules_dir=RULES, evidence_dir=folder), periods.parse("weekly", "2026-W48", date(2026, 12, 7))
    )
    table = next(t for t in next(s for s in report.sections if s.key == "rules").tables if t.key == "rules_controls")
    rows = {row[0]: row[1:] for row in table.rows}
    assert rows["XQ-4.3"] == [
        "procedure: akt-xizmatiga-xabar — Recording faults and security incidents",
        "procedure.done",
        "2 records (succeeded: 1, warning: 1), the last on 11/26/26",
    ]
    assert rows["OQ-1.2"][2] == "no evidence in the period"
    assert rows["AX-4.1"][:2] == [
        "duty: backup-run — Daily backup of the host's data classes",
        "backup.run, backup.alert",
    ]
    assert rows["OQ-1.3"] == ["role: reader_kiosk", "—", "no evidence in the period"]
    assert rows["XQ-3.1"][:2] == ["access rule: grants", "policy.push"]
    assert rows["AX-5.3"][1] == "policies/rules/acknowledgements/lab.yml"
    assert len(rows) == sum(len(d.clauses) for d in rules.load_all(RULES))


@pytest.mark.needs("git")
def test_a_register_is_evidence_by_its_commits_in_the_period(tmp_path):
    from zoneinfo import ZoneInfo

    zone = ZoneInfo("Asia/Tashkent")

    def commit(day: str, text: str) -> None:
        (tmp_path / "register.yml").write_text(text)
        moment = f"{day}T10:00:00+05:00"
        subprocess.run(
            [
                "git",
                "-C",
                str(tmp_path),
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@example.invalid",
                "commit",
                "-qam",
                text,
            ],
            check=True,
            env={"PATH": "/usr/bin:/bin", "GIT_COMMITTER_DATE": moment, "GIT_AUTHOR_DATE": moment},
        )

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "register.yml").write_text("")
    subprocess.run(["git", "-C", str(tmp_path), "add", "register.yml"], check=True)
    commit("2026-11-20", "a")
    commit("2026-11-24", "b")
    commit("2026-11-26", "c")
    commit("2026-12-01", "d")
    start, end = datetime(2026, 11, 23, tzinfo=zone), datetime(2026, 11, 30, tzinfo=zone)
    changes = rules.register_changes(tmp_path, "register.yml", start, end)
    assert [c.date() for c in changes] == [date(2026, 11, 26), date(2026, 11, 24)]
    assert rules.register_changes(tmp_path, "other.yml", start, end) == []
    assert rules.register_changes(tmp_path / "not-git", "register.yml", start, end) == []
