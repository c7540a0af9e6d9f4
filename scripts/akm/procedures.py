"""Procedures: what people of the centre carry out by hand, in one list (``policies/procedures.yml``).

A clause of the rules documents (``policies/rules/``) that no role, access rule or scheduled duty
enforces names one of these. Each procedure has an owner — a duty of the inventory's people
(``it_staff``, ``director`` ...), never a person, so it outlives a change of staff — and the evidence
that shows it was done:

* ``kind``: records of an evidence kind (``scripts/akm/evidence/schema.json``). For the kind
  ``procedure.done`` only the records whose ``subject`` is the procedure's id count; the owner writes
  one with ``akm evidence write`` each time the procedure is done.
* ``register``: a file or folder of the repository the procedure keeps up to date (the register of
  signed «Tanishdim» sheets, the inventory); its commits are the evidence. ``{inventory}`` in the path
  is the inventory folder's name (``production``, ``lab``).

:func:`load` reads the list and checks it against the repository; ``akm policy check`` runs it.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from akm import evidence
from akm.errors import Error
from akm.i18n import _
from akm.inventory.model import Duty as PersonDuty
from akm.listfile import load_list

DEFAULT_FILE = Path("policies/procedures.yml")
DONE = "procedure.done"
"""The evidence kind a person writes when a procedure is done; its ``subject`` names the procedure."""
INVENTORY = "{inventory}"

Text = Annotated[str, Field(min_length=1)]


class ProceduresError(Error):
    """The list of procedures has problems; each names the file, line and field."""


class Evidence(BaseModel):
    """What shows that a procedure was done: records of an evidence kind, or a register's commits."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Annotated[str, Field(pattern=r"^[a-z]+\.[a-z-]+$")] | None = None
    path: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.{}/-]+$")] | None = Field(default=None, alias="register")
    """the register (``register:`` in the file; ``register`` is a name pydantic's BaseModel keeps)"""

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.kind is None) == (self.path is None):
            raise ValueError(_("write either kind or register"))
        return self

    def register_path(self, inventory_name: str) -> str:
        """The register's path in the repository for the inventory folder *inventory_name*."""
        return (self.path or "").replace(INVENTORY, inventory_name)


class Procedure(BaseModel):
    """One procedure (see the head of ``policies/procedures.yml``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,62}$")]
    name: Text
    name_en: Text
    owner: PersonDuty
    does: Text
    does_en: Text
    evidence: Evidence


def load(path: Path = DEFAULT_FILE, repository: Path | None = None) -> list[Procedure]:
    """Read and check the list at *path* against *repository* (default: the folder above its own);
    raise :class:`ProceduresError` with every problem found."""
    path = Path(path)
    repository = Path(repository) if repository else path.resolve().parent.parent
    items, problems = load_list(path, "procedures", Procedure)
    seen: dict[str, int | None] = {}
    for item in items:
        procedure = item.record
        if procedure.id in seen:
            problems.append(
                item.problem(
                    "procedures",
                    "id",
                    "procedures.duplicate",
                    _("{value!r} is written twice (first on line {first})").format(
                        value=procedure.id, first=seen[procedure.id]
                    ),
                    _("give each procedure its own id"),
                )
            )
        seen.setdefault(procedure.id, item.line)
        found = _evidence_problem(procedure.evidence, repository)
        if found is not None:
            problems.append(item.problem("procedures", *found))
    if problems:
        raise ProceduresError(problems)
    return [item.record for item in items]


def _evidence_problem(source: Evidence, repository: Path) -> tuple[str, str, str, str] | None:
    """What is wrong with a procedure's evidence, as (field, code, message, hint), or ``None``."""
    if source.kind is not None:
        if source.kind in evidence.kinds():
            return None
        return (
            "evidence.kind",
            "procedures.unknown-kind",
            _("the evidence kind {kind!r} is not in the evidence schema").format(kind=source.kind),
            _("use {done} (written by hand with akm evidence write) or another kind of {schema}").format(
                done=DONE, schema="scripts/akm/evidence/schema.json"
            ),
        )
    register = PurePosixPath(source.register_path("x"))
    if register.is_absolute() or ".." in register.parts:
        return (
            "evidence.register",
            "procedures.register-outside",
            _("the register {path!r} is not a path inside the repository").format(path=source.path),
            _("write the path from the repository's top, e.g. policies/rules/acknowledgements/{inventory}.yml"),
        )
    # A register may not exist yet (a new centre has signed no sheet); the folder that will hold it must.
    folder = (repository / register).parent if INVENTORY in (source.path or "") else repository / register
    if not folder.exists():
        return (
            "evidence.register",
            "procedures.unknown-register",
            _("there is no {path} in the repository").format(path=folder.relative_to(repository).as_posix()),
            _("name a file or folder of the repository that the procedure keeps up to date"),
        )
    return None
