"""A YAML file that holds one list of records (``duties:``, ``secrets:``, ``procedures:``,
``acknowledgements:``), each validated by a model.

The located reading of :mod:`akm.yamlsource` gives every problem its file and line; pydantic's errors
are turned into the same located problems the inventory reports (:mod:`akm.inventory.errors_map`),
with the field written as ``<section>[<index>].<field>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from akm.errors import Problem
from akm.i18n import _
from akm.inventory.errors_map import locate, problems_from
from akm.yamlsource import display_path, read_sections


@dataclass(frozen=True)
class Item:
    """A validated record and where it is written."""

    record: Any
    index: int
    file: str
    line: int | None
    written: Any
    """the record as the file has it (a located mapping)"""

    def problem(self, section: str, field: str, code: str, message: str, hint: str) -> Problem:
        """A problem of this record's *field*, ``name`` or ``name.sub`` (the field's own line when it is
        written, else the record's)."""
        line, _path = locate(self.written, tuple(field.split(".")))
        return Problem(self.file, line or self.line, f"{section}[{self.index}].{field}", code, message, hint)


def load_list(
    path: Path, section: str, model: type[BaseModel], empty_ok: bool = False
) -> tuple[list[Item], list[Problem]]:
    """The records of *section* in the file at *path* that fit *model*, and the problems of the file
    and of the records that do not. An empty list is a problem unless *empty_ok* (a register that has
    no record yet)."""
    joined, _singles, problems = read_sections([Path(path)], (section,), (), section, section)
    items: list[Item] = []
    for index, (item, file, line) in enumerate(joined[section]):
        where = f"{section}[{index}]"
        if not isinstance(item, dict):
            problems.append(
                Problem(
                    file,
                    line,
                    where,
                    f"{section}.not-a-mapping",
                    _("each item must be a block of fields, not {value!r}").format(value=item),
                    _("write field: value lines under the '- '"),
                )
            )
            continue
        try:
            record = model.model_validate(item)
        except ValidationError as exc:
            problems.extend(
                Problem(p.file, p.line, where if p.field == where else f"{where}.{p.field}", p.code, p.message, p.hint)
                for p in problems_from(exc, item, where)
            )
            continue
        items.append(Item(record, index, file, line, item))
    if not items and not problems and not empty_ok:
        problems.append(
            Problem(
                display_path(Path(path)),
                None,
                section,
                f"{section}.empty",
                _("the list is empty"),
                _("add items under {section}:").format(section=section),
            )
        )
    return items, problems
