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
            control: {role: file_server}    # or {access: grants}, {duty: backup-run}, {procedure: tanishdim}

Every clause names the control that enforces it, and the control must exist (:func:`controls` and
:meth:`Controls.problems`, run by ``akm policy check``):

* ``role``: an Ansible role, ``roles/<name>``;
* ``access``: a part of the access policy of the inventory (``policies/access/<name>``): a rule
  (``rule:<id>``), a default (``default:restricted``, ``default:internet``, ``default:services``), the
  grants (``grants``) or the fair share of the link (``bandwidth``);
* ``duty``: a scheduled duty of ``policies/duties.yml``;
* ``procedure``: a procedure people carry out, of ``policies/procedures.yml`` (:mod:`akm.procedures`).

Each control says what shows that it ran (:class:`Control`): a duty's evidence kinds, ``policy.push``
for the access policy, a procedure's evidence kind or register; a role leaves no evidence record. The
report shows, per clause, that evidence in its period (:func:`evidence_in_period`).

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
from dataclasses import dataclass, field
from datetime import date, datetime
from difflib import get_close_matches
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from akm import i18n, procedures
from akm.errors import Error, Problem
from akm.i18n import _, format_date
from akm.listfile import load_list
from akm.yamlsource import load_yaml

CONTROL_KINDS = ("role", "access", "duty", "procedure")
ACCESS_EVIDENCE = ("policy.push",)
"""What shows that the access policy was applied: the push of each of its releases to the gateway."""
ACCESS_DEFAULTS = ("default:restricted", "default:internet", "default:services")
SHEET_WIDTHS_CM = (1.0, 4.5, 6.5, 2.5, 3.0)


class RulesError(Error):
    """A rules document is not valid."""


@dataclass(frozen=True)
class Clause:
    id: str
    text: str
    control_kind: str
    control: str
    file: str = field(default="", compare=False)
    line: int | None = field(default=None, compare=False)
    field: str = field(default="", compare=False)
    """where the control is written: ``sections[i].clauses[j].control.<kind>``"""


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
            control = clause.get("control")
            control = control if isinstance(control, dict) else {}
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
                unknown = [str(k) for k in control if k not in CONTROL_KINDS]
                problems.append(
                    _problem(
                        path,
                        f"{where}.control",
                        "rules.control",
                        _("{kind!r} is not a kind of control").format(kind=unknown[0])
                        if unknown
                        else _("a clause must name exactly one control"),
                        _("write control: {role: ...}, {access: ...}, {duty: ...} or {procedure: ...}"),
                        _line(clause, "control"),
                    )
                )
                continue
            clauses.append(
                Clause(
                    str(clause["id"]),
                    " ".join(str(clause["text"]).split()),
                    kinds[0],
                    str(control[kinds[0]]),
                    str(path),
                    _line(control, kinds[0]) or _line(clause, "control"),
                    f"{where}.control.{kinds[0]}",
                )
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


@dataclass(frozen=True)
class Control:
    """What a clause's control is, and what shows that it ran."""

    kind: str
    name: str
    title: str = ""
    """the duty's or the procedure's name, in the language of the output"""
    evidence: tuple[str, ...] = ()
    """evidence kinds whose records show that it ran"""
    subject: str = ""
    """only the records about this subject count (a procedure's ``procedure.done``)"""
    register: str = ""
    """a file or folder of the repository whose commits show that it ran"""

    @property
    def label(self) -> str:
        text = f"{kind_name(self.kind)}: {self.name}"
        return f"{text} — {self.title}" if self.title else text


def kind_name(kind: str) -> str:
    """The name of a kind of control, as a person reads it."""
    return {"role": _("role"), "access": _("access rule"), "duty": _("duty"), "procedure": _("procedure")}[kind]


@dataclass(frozen=True)
class Controls:
    """Everything a clause may name as its control, read from one repository for one inventory."""

    inventory_name: str
    roles: frozenset[str]
    duties: dict
    procedures: dict
    access: frozenset[str] | None
    """the parts of the inventory's access policy; ``None`` when no compiled policy was given"""
    unreadable: frozenset[str] = frozenset()
    """kinds of control whose list has problems of its own (reported with them): not judged"""

    def resolve(self, clause: Clause) -> Control | None:
        """The control *clause* names, or ``None`` when it is not in the repository."""
        english = i18n.language() == "en"
        name = clause.control
        if clause.control_kind == "role":
            return Control("role", name) if name in self.roles else None
        if clause.control_kind == "access":
            return (
                Control("access", name, evidence=ACCESS_EVIDENCE)
                if self.access is None or name in self.access
                else None
            )
        if clause.control_kind == "duty":
            duty = self.duties.get(name)
            if duty is None:
                return None
            return Control("duty", name, duty.name_en if english else duty.name, tuple(duty.evidence))
        procedure = self.procedures.get(name)
        if procedure is None:
            return None
        title = procedure.name_en if english else procedure.name
        source = procedure.evidence
        if source.kind is not None:
            subject = name if source.kind == procedures.DONE else ""
            return Control("procedure", name, title, (source.kind,), subject=subject)
        return Control("procedure", name, title, register=source.register_path(self.inventory_name))

    def problems(self, documents: list[Document]) -> list[Problem]:
        """One problem for every clause of *documents* whose control is not in the repository."""
        return [
            self._dangling(clause)
            for document in documents
            for clause in document.clauses
            if clause.control_kind not in self.unreadable and not self.resolve(clause)
        ]

    def _dangling(self, clause: Clause) -> Problem:
        name = clause.control
        if clause.control_kind == "role":
            choices, what, hint = self.roles, _("there is no role {name!r}"), _("name a directory of roles/")
        elif clause.control_kind == "access":
            choices = self.access or frozenset()
            what = _("the access policy of {inventory} has no {name!r}")
            hint = _("name rule:<id> of its rules.yml, {defaults}, grants or bandwidth").format(
                defaults=", ".join(ACCESS_DEFAULTS)
            )
        elif clause.control_kind == "duty":
            choices = frozenset(self.duties)
            what, hint = _("there is no duty {name!r}"), _("name a duty of policies/duties.yml (akm duties list)")
        else:
            choices = frozenset(self.procedures)
            what = _("there is no procedure {name!r}")
            hint = _("name a procedure of policies/procedures.yml, or add it there with its owner and evidence")
        near = get_close_matches(name, sorted(choices), n=1)
        if near:
            hint += "; " + _("did you mean {name}?").format(name=near[0])
        return Problem(
            clause.file,
            clause.line,
            clause.field,
            f"rules.unknown-{clause.control_kind}",
            what.format(name=name, inventory=self.inventory_name),
            hint,
        )


def access_parts(policy) -> frozenset[str]:
    """What a clause may name in a compiled access policy: its rules, defaults, grants and, when the
    policy shares the link, bandwidth."""
    names = {f"rule:{d.id}" for d in policy.decisions if d.kind == "rule"}
    names |= {d.id for d in policy.decisions if d.kind == "default"} | {"default:services", "grants"}
    if policy.bandwidth:
        names.add("bandwidth")
    return frozenset(names)


def controls(repository: Path, inventory_name: str, policy=None) -> tuple[Controls, list[Problem]]:
    """Every control the repository holds for the inventory folder *inventory_name*, and the problems of
    the lists they come from (``policies/duties.yml``, ``policies/procedures.yml``). The access policy's
    parts are checked only when its compiled *policy* is given."""
    from akm import duties as duty_list

    repository = Path(repository)
    problems: list[Problem] = []
    found: dict[str, dict] = {"duty": {}, "procedure": {}}
    for kind, module in (("duty", duty_list), ("procedure", procedures)):
        try:
            found[kind] = {item.id: item for item in module.load(repository / module.DEFAULT_FILE)}
        except Error as exc:
            problems.extend(exc.problems)
    roles = (
        frozenset(p.name for p in (repository / "roles").iterdir() if p.is_dir())
        if (repository / "roles").is_dir()
        else frozenset()
    )
    access = access_parts(policy) if policy is not None else None
    unreadable = frozenset(kind for kind, items in found.items() if not items)
    return Controls(inventory_name, roles, found["duty"], found["procedure"], access, unreadable), problems


def register_changes(repository: Path, path: str, start: datetime, end: datetime) -> list[datetime]:
    """When the commits that changed *path* (a file or folder of *repository*) in ``[start, end)`` were
    made, newest first; none when *repository* is not a git checkout."""
    try:
        result = subprocess.run(
            [
                "git",
                "-C",
                str(repository),
                "log",
                "--format=%cI",
                f"--since={start.isoformat()}",
                f"--until={end.isoformat()}",
                "--",
                path,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:
        return []
    if result.returncode != 0:
        return []
    moments = [datetime.fromisoformat(line) for line in result.stdout.split()]
    return [moment for moment in moments if start <= moment < end]


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
                note = paragraph.add_run(f" [{kind_name(clause.control_kind)}: {clause.control}]")
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
