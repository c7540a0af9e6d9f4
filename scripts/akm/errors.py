"""Errors a person can act on.

Every module of the package raises a subclass of :class:`Error`. An error carries one or more
:class:`Problem` records: the file and line where the bad input is, the field, what is wrong and how to
fix it. The CLI prints every problem and exits non-zero; no traceback reaches a user for bad input.

``code`` is a stable identifier (``inventory.duplicate``, ``lab.not-root`` ...) so tests and tools can
tell problems apart without parsing translated text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Self


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with an input, located as precisely as the input allows."""

    file: str
    line: int | None
    field: str
    code: str
    message: str
    hint: str = ""
    severity: str = field(default="error", compare=False)

    def render(self) -> str:
        """Return the one-line form ``file:line: field: message (hint)`` used by the CLI."""
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        parts = [where]
        if self.field:
            parts.append(self.field)
        text = ": ".join(parts) + f": {self.message}"
        if self.hint:
            text += f" — {self.hint}"
        return text


class Error(Exception):
    """Base class of every error the package raises on purpose."""

    exit_code = 2

    def __init__(self, problems: list[Problem] | str) -> None:
        if isinstance(problems, str):
            problems = [Problem(file="", line=None, field="", code="error", message=problems)]
        self.problems = sorted(problems)
        super().__init__("\n".join(p.render() for p in self.problems))

    @classmethod
    def one(
        cls, code: str, message: str, hint: str = "", *, file: str = "", line: int | None = None, field: str = ""
    ) -> Self:
        """The error of one problem, the usual case: ``raise LabError.one(code, message, hint, file=...)``."""
        return cls([Problem(file=file, line=line, field=field, code=code, message=message, hint=hint)])
