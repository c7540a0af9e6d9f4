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

The signed sheets stay on paper. The IT specialist records each signature in the register of the
inventory's staff, ``policies/rules/acknowledgements/<inventory folder>.yml``::

    acknowledgements:
      - {person: d.karimova, document: xodimlar-qoidalari, version: "2026-11", date: 2026-11-20}

:func:`load_acknowledgements` checks it (``akm policy check`` runs it) and :func:`not_acknowledged`
gives the report its list of who has not yet signed the current version of each document.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from akm.errors import Error, Problem
from akm.i18n import _, format_date
from akm.listfile import load_list
from akm.yamlsource import load_yaml

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


def _problem(path: Path, field: str, code: str, message: str, hint: str, line: int | None = None) -> Problem:
    return Problem(str(path), line, field, code, message, hint)


def _line(container: Any, key: Any = None) -> int | None:
    """Where *key* of a located mapping or list (or the container itself) was written."""
    lines = getattr(container, "lines", None)
    if key is not None and isinstance(lines, dict) and key in lines:
        return lines[key]
    return getattr(container, "line", None)


def load(path: Path) -> tuple[Document | None, list[Problem]]:
    """Read one document; return it (or ``None``) and its problems, each with its line."""
    problems: list[Problem] = []
    data, unreadable = load_yaml(Path(path))
    if unreadable:
        return None, [Problem(str(path), p.line, p.field, "rules.unreadable", p.message, p.hint) for p in unreadable]
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
                _problem(
                    path, name, "rules.missing", _("required field missing"), _("see docs/reports.md"), _line(data)
                )
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
                        _line(clause),
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
                        _line(clause, "id"),
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
                        _line(clause, "control"),
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


# --- "Tanishdim" sheets signed on paper, recorded in the repository -----------------------------------

ACKNOWLEDGEMENTS = "acknowledgements"
"""The folder under ``policies/rules/`` of the registers of signed sheets, one per inventory."""
_VERSION_LINE = re.compile(r"""^[-+]version:[ \t]*["']?([^"'\s#]+)""", re.M)


class Acknowledgement(BaseModel):
    """One person's signature on the "Tanishdim" sheet of one version of a document, on paper."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    person: Annotated[str, Field(pattern=r"^[a-z][a-z0-9._-]{0,31}$")]
    document: Annotated[str, Field(min_length=1)]
    version: Annotated[str, Field(min_length=1)]
    signed_on: date = Field(alias="date")


def acknowledgements_file(rules_dir: Path, inventory) -> Path:
    """The register of the inventory's staff: ``policies/rules/acknowledgements/<inventory folder>.yml``."""
    return Path(rules_dir) / ACKNOWLEDGEMENTS / f"{Path(inventory.root).resolve().name}.yml"


def versions(document: Document) -> set[str]:
    """The versions *document* has had: its current one and every other ``version:`` its file had in the
    git history (none when the file is not in a git checkout)."""
    path = Path(document.file)
    try:
        result = subprocess.run(
            ["git", "log", "--format=", "-p", "--follow", "--", path.name],
            cwd=path.parent,
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:
        return {document.version}
    found = set(_VERSION_LINE.findall(result.stdout)) if result.returncode == 0 else set()
    return found | {document.version}


def _record_problem(
    record: Acknowledgement,
    inventory,
    documents: dict[str, Document],
    history: dict[str, set[str]],
    seen: dict[tuple[str, str, str], int | None],
    today: date | None,
) -> tuple[str, str, str, str] | None:
    """What is wrong with one record of the register, as (field, code, message, hint), or ``None``.
    *history* keeps the versions of each document already read from git."""
    document = documents.get(record.document)
    if record.person not in inventory.people:
        return (
            "person",
            "rules.ack-unknown-person",
            _("there is no person {login!r} in the inventory").format(login=record.person),
            _("write the login as in the inventory's people:, e.g. {login}").format(login=inventory.director.id),
        )
    if document is None:
        return (
            "document",
            "rules.ack-unknown-document",
            _("there is no rules document {id!r}").format(id=record.document),
            _("use one of: {choices}").format(choices=", ".join(sorted(documents)) or "-"),
        )
    if document.id not in history:
        history[document.id] = versions(document)
    if record.version not in history[document.id]:
        return (
            "version",
            "rules.ack-unknown-version",
            _("{document} has never had the version {version!r}").format(document=document.id, version=record.version),
            _("write the version printed on the signed sheet; the current one is {current}").format(
                current=document.version
            ),
        )
    if today is not None and record.signed_on > today:
        return (
            "date",
            "rules.ack-future-date",
            _("the sheet's date {date} is in the future").format(date=record.signed_on),
            _("write the date written next to the signature"),
        )
    key = (record.person, record.document, record.version)
    if key in seen:
        return (
            "person",
            "rules.ack-duplicate",
            _("{login} is already recorded for {document} version {version} (line {line})").format(
                login=record.person, document=record.document, version=record.version, line=seen[key]
            ),
            _("keep one of the two records"),
        )
    return None


def load_acknowledgements(
    path: Path, documents: list[Document], inventory, today: date | None = None
) -> tuple[list[Acknowledgement], list[Problem]]:
    """Read the register at *path*: every record with a known person, document and version, signed at
    the latest *today* (not checked when ``None``), and recorded once. A missing file is an empty
    register. Returns the good records and the problems, with file, line and field."""
    if not Path(path).exists():
        return [], []
    items, problems = load_list(Path(path), ACKNOWLEDGEMENTS, Acknowledgement, empty_ok=True)
    by_id = {d.id: d for d in documents}
    history: dict[str, set[str]] = {}
    seen: dict[tuple[str, str, str], int | None] = {}
    records = []
    for item in items:
        record = item.record
        found = _record_problem(record, inventory, by_id, history, seen, today)
        if found is None:
            seen[(record.person, record.document, record.version)] = item.line
            records.append(record)
        else:
            problems.append(item.problem(ACKNOWLEDGEMENTS, *found))
    return records, problems


def not_acknowledged(documents: list[Document], records: list[Acknowledgement], inventory, until: date) -> list:
    """For each document, the people of the inventory with no record of its current version signed on or
    before *until*, in the order of the sheet (department, then name)."""
    people = sorted(inventory.people.values(), key=lambda p: (p.department, p.name))
    missing = []
    for document in documents:
        signed = {
            r.person
            for r in records
            if r.document == document.id and r.version == document.version and r.signed_on <= until
        }
        missing.append((document, [person for person in people if person.id not in signed]))
    return missing
