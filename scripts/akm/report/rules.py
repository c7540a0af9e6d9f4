"""Rules and the information-security policy (Nizom F2, R1): YAML documents under ``policies/rules/``
rendered as DOCX, each followed by a "Tanishdim" (acknowledgement) sheet for every member of staff.

A document::

    id: xodimlar-qoidalari
    title: Xodimlar uchun ... qoidalari
    title_en: Computer ... rules for staff
    audience: staff            # readers | staff
    version: "2026-11"
    sections:
      - title: Umumiy qoidalar
        clauses:
          - id: XQ-1.1
            text: ...
            control: {role: staff_workstation}    # or {policy: access/grants} or {procedure: tanishdim}

Every clause names the control that enforces it: an Ansible role (``roles/<name>``), a rule of the
access policy (``policies/access``), or a procedure people carry out. :func:`control_status` tells,
for roles, whether the role is already in the repository.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from akm.errors import Error, Problem
from akm.i18n import _, format_date

CONTROL_KINDS = ("role", "policy", "procedure")
SHEET_WIDTHS_CM = (1.0, 4.5, 6.5, 2.5, 3.0)


class RulesError(Error):
    """A rules document is not valid."""


@dataclass(frozen=True)
class Clause:
    id: str
    text: str
    control_kind: str
    control: str


@dataclass(frozen=True)
class Document:
    id: str
    title: str
    title_en: str
    audience: str
    version: str
    sections: tuple[tuple[str, tuple[Clause, ...]], ...]
    file: str

    @property
    def clauses(self) -> list[Clause]:
        return [clause for _title, clauses in self.sections for clause in clauses]


def _problem(path: Path, field: str, code: str, message: str, hint: str) -> Problem:
    return Problem(str(path), None, field, code, message, hint)


def load(path: Path) -> tuple[Document | None, list[Problem]]:
    """Read one document; return it (or ``None``) and its problems."""
    problems: list[Problem] = []
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        return None, [
            _problem(
                path,
                "",
                "rules.unreadable",
                _("not a readable YAML file: {error}").format(error=type(exc).__name__),
                _("fix the YAML syntax"),
            )
        ]
    if not isinstance(data, dict):
        return None, [
            _problem(
                path,
                "",
                "rules.not-mapping",
                _("a rules document must be a mapping"),
                _("see docs/reports.md"),
            )
        ]
    for name in ("id", "title", "audience", "version", "sections"):
        if not data.get(name):
            problems.append(
                _problem(path, name, "rules.missing", _("required field missing"), _("see docs/reports.md"))
            )
    if problems:
        return None, problems
    seen: set[str] = set()
    sections = []
    for s_index, section in enumerate(data["sections"]):
        clauses = []
        for c_index, clause in enumerate(section.get("clauses") or []):
            where = f"sections[{s_index}].clauses[{c_index}]"
            control = clause.get("control") or {}
            kinds = [k for k in CONTROL_KINDS if k in control]
            if not clause.get("id") or not clause.get("text"):
                problems.append(
                    _problem(
                        path,
                        where,
                        "rules.clause",
                        _("a clause needs id and text"),
                        _("add the missing field"),
                    )
                )
                continue
            if clause["id"] in seen:
                problems.append(
                    _problem(
                        path,
                        where,
                        "rules.duplicate-id",
                        _("clause id {id} is used twice").format(id=clause["id"]),
                        _("give every clause its own id"),
                    )
                )
            seen.add(clause["id"])
            if len(kinds) != 1:
                problems.append(
                    _problem(
                        path,
                        f"{where}.control",
                        "rules.control",
                        _("a clause must name exactly one control"),
                        _("write control: {{role: ...}}, {{policy: ...}} or {{procedure: ...}}"),
                    )
                )
                continue
            clauses.append(
                Clause(str(clause["id"]), " ".join(str(clause["text"]).split()), kinds[0], str(control[kinds[0]]))
            )
        sections.append((str(section.get("title", "")), tuple(clauses)))
    if problems:
        return None, problems
    return Document(
        str(data["id"]),
        str(data["title"]),
        str(data.get("title_en", data["title"])),
        str(data["audience"]),
        str(data["version"]),
        tuple(sections),
        str(path),
    ), []


def load_all(directory: Path | None) -> list[Document]:
    """Every document under *directory*, sorted by file name; raises :class:`RulesError` if any is bad."""
    if directory is None or not Path(directory).is_dir():
        return []
    documents, problems = [], []
    for path in sorted(Path(directory).glob("*.yml")):
        document, found = load(path)
        problems.extend(found)
        if document:
            documents.append(document)
    if problems:
        raise RulesError(problems)
    return documents


def control_status(clause: Clause, repository: Path) -> str:
    """``in repository`` for a role present under ``roles/``, ``not yet in repository`` for a missing
    one; policies and procedures are checked by their own areas and reported as ``policy``/``procedure``."""
    if clause.control_kind == "role":
        present = (Path(repository) / "roles" / clause.control).is_dir()
        return _("in repository") if present else _("not yet in repository")
    return _(clause.control_kind)


def control_label(clause: Clause) -> str:
    names = {"role": _("role"), "policy": _("policy"), "procedure": _("procedure")}
    return f"{names[clause.control_kind]}: {clause.control}"


def write_docx(documents: list[Document], inventory, path: Path, day=None) -> Path:
    """All documents in one DOCX, each with an approval block and a "Tanishdim" sheet listing every
    person of the inventory (name, position) with empty date and signature cells."""
    from docx import Document as Docx
    from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_BREAK
    from docx.shared import Cm, Pt

    from akm.report.render import FIXED_TIME

    docx = Docx()
    docx.styles["Normal"].font.name = "Liberation Serif"
    docx.styles["Normal"].font.size = Pt(11)
    director = inventory.director
    people = sorted(inventory.people.values(), key=lambda p: (p.department, p.name))
    for index, document in enumerate(documents):
        if index:
            docx.add_paragraph().add_run().add_break(WD_BREAK.PAGE)
        approval = docx.add_paragraph(
            _("APPROVED") + "\n" + f"{director.position} {inventory.centre.short_name}\n"
            f"____________ {director.name}\n" + _("«____» ______________ 20___")
        )
        approval.alignment = WD_ALIGN_PARAGRAPH.RIGHT
        heading = docx.add_heading(document.title, level=1)
        heading.alignment = WD_ALIGN_PARAGRAPH.CENTER
        docx.add_paragraph(f"{inventory.centre.name}. " + _("Version {version}.").format(version=document.version))
        for number, (title, clauses) in enumerate(document.sections, 1):
            docx.add_heading(f"{number}. {title}", level=2)
            for clause in clauses:
                paragraph = docx.add_paragraph()
                paragraph.add_run(f"{clause.id}. ").bold = True
                paragraph.add_run(clause.text)
                note = paragraph.add_run(f" [{control_label(clause)}]")
                note.italic = True
                note.font.size = Pt(8)
        docx.add_paragraph().add_run().add_break(WD_BREAK.PAGE)
        sheet_title = docx.add_heading(_("Tanishdim"), level=1)
        sheet_title.alignment = WD_ALIGN_PARAGRAPH.CENTER
        docx.add_paragraph(
            _("I have read «{title}» (version {version}) and undertake to follow it.").format(
                title=document.title, version=document.version
            )
        )
        table = docx.add_table(rows=1, cols=5)
        table.style = "Table Grid"
        for cell, name in zip(
            table.rows[0].cells, ("№", _("Full name"), _("Position"), _("Date"), _("Signature")), strict=True
        ):
            cell.text = name
            cell.paragraphs[0].runs[0].bold = True
        for number, person in enumerate(people, 1):
            department = inventory.departments.get(person.department)
            position = f"{person.position}, {department.name}" if department else person.position
            cells = table.add_row().cells
            cells[0].text = str(number)
            cells[1].text = person.name
            cells[2].text = position
            cells[3].text = format_date(day, "short") if day else ""
        table.autofit = False
        for column, width in zip(table.columns, SHEET_WIDTHS_CM, strict=True):
            column.width = Cm(width)
        for index, row in enumerate(table.rows):
            if index:
                row.height = Cm(0.9)
            for cell, width in zip(row.cells, SHEET_WIDTHS_CM, strict=True):
                cell.width = Cm(width)
    properties = docx.core_properties
    properties.created = properties.modified = FIXED_TIME
    properties.title = _("Rules and security policy")
    properties.author = inventory.centre.name
    properties.revision = 1
    docx.save(path)
    return path
