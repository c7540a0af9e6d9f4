"""The rules documents: every clause has an id and a control; the DOCX lists every person to sign."""

from __future__ import annotations

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
