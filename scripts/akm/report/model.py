"""The report as data: sections of paragraphs, tables and charts, rendered by docx/xlsx/html writers.

Cells hold plain values (``int``, ``float``, ``str``, ``date``); each writer formats them for its
medium (Babel numbers and dates in DOCX and HTML; real numbers in XLSX).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Table:
    """A titled table; ``key`` names its XLSX sheet. ``xlsx_only`` tables are too long for paper;
    ``paper_rows`` caps the rows shown in DOCX and HTML (the XLSX sheet always has them all)."""

    key: str
    title: str
    columns: list[str]
    rows: list[list]
    xlsx_only: bool = False
    paper_rows: int | None = None

    def shown_rows(self) -> list[list]:
        """The rows that fit on paper."""
        return self.rows if self.paper_rows is None else self.rows[: self.paper_rows]


@dataclass
class Chart:
    """A horizontal bar chart of one series."""

    title: str
    labels: list[str]
    values: list[float]
    unit: str = ""


@dataclass
class Section:
    """One section; ``no_data`` is true when nothing was recorded for the period."""

    key: str
    title: str
    paragraphs: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)
    no_data: bool = False


@dataclass
class Report:
    """A whole report: header lines, sections and the people who sign it."""

    kind: str
    period_label: str
    title: str
    header: list[str]
    sections: list[Section]
    signatures: list[tuple[str, str]]
    problems: list[str] = field(default_factory=list)
