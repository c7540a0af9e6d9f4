"""The report as data: sections of paragraphs, tables and charts, rendered by docx/xlsx/html writers.

Cells hold plain values (``int``, ``float``, ``str``, ``date``); each writer formats them for its
medium (Babel numbers and dates in DOCX and HTML; real numbers in XLSX).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date


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
    """A picture of the figures of *table*: the number columns ``series`` (indexes) drawn against the
    labels of column ``labels``. A chart holds no numbers of its own, so it shows what the table prints.

    ``kind``: ``bars`` (horizontal, one bar per row; the first series), ``columns`` (vertical, the
    series side by side) or ``stacked`` (vertical, the series on top of each other). Rows labelled by
    dates make a time axis (a line from :data:`akm.report.charts.MANY_POINTS` days on). ``colours``:
    one per series, else the report's palette."""

    title: str
    table: Table
    series: tuple[int, ...]
    kind: str = "bars"
    labels: int = 0
    colours: tuple[str, ...] = ()

    def points(self) -> tuple[list, list[tuple[str, list]]]:
        """The labels, and (column name, values) of each series, from the table's rows."""
        rows = self.table.rows
        series = [(self.table.columns[i], [row[i] for row in rows]) for i in self.series]
        return [row[self.labels] for row in rows], series


@dataclass
class Section:
    """One section; ``no_data`` is true when nothing was recorded for the period."""

    key: str
    title: str
    paragraphs: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)
    no_data: bool = False


@dataclass(frozen=True)
class Signature:
    """A line of the title page: who prepared or approves the report (from the inventory's people)."""

    role: str
    position: str
    name: str


@dataclass
class Report:
    """A whole report: the title page (header lines naming the centre, title, period in words, the date
    it was made, the people who sign it), the sections, and problems met in the sources."""

    kind: str
    period_label: str
    title: str
    header: list[str]
    period_words: str
    made_on: date
    sections: list[Section]
    signatures: list[Signature]
    problems: list[str] = field(default_factory=list)
