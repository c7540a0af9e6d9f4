"""The rules documents: every clause has an id and a control; the DOCX lists every person to sign."""

from __future__ import annotations

import shutil
import subprocess
from datetime import date
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
            "      - {id: A-1, text: t, control: {role: r, policy: p}}\n",
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
    assert "XQ-3.1. " in text and "[siyosat: access/grants]" in text
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

    # policies/rules/acknowledgements/lab.yml: signatures on 2026-11-20 and -21 (week 47) and -23 (week 48).
    assert missing("2026-W47") == {
        "Xodimlar": (2, "Otabek Ismoilov, Bahodir Yusupov, Gulnora Abdullayeva, Jasur Qodirov"),
        "Axborot": (1, "Otabek Ismoilov, Bahodir Yusupov, Dilorom Karimova, Gulnora Abdullayeva, Jasur Qodirov"),
        "Oʻquvchilar": (
            0,
            ", ".join(p.name for p in sorted(inventory.people.values(), key=lambda p: (p.department, p.name))),
        ),
    }
    assert missing("2026-W48")["Oʻquvchilar"][0] == 1


@pytest.mark.needs("git")
def test_a_version_the_document_had_in_git_history_is_known(tmp_path, inventory):
    def git(*args: str) -> None:
        subprocess.run(
            ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
            check=True,
            capture_output=True,
        )

    text = (RULES / "xodimlar.yml").read_text()
    (tmp_path / "xodimlar.yml").write_text(text.replace('version: "2026-11"', 'version: "2026-05"'))
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
