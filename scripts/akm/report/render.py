"""Writers of a :class:`~akm.report.model.Report`: DOCX for filing, XLSX for the tables, HTML with charts.

Output is deterministic: the same report gives the same HTML byte for byte, and DOCX/XLSX carry no
creation time (their document properties are fixed to the period's label).
"""

from __future__ import annotations

from datetime import date, datetime
from html import escape
from pathlib import Path

from akm.i18n import _, format_date, format_number, language
from akm.report.model import Chart, Report, Table

FIXED_TIME = datetime(2000, 1, 1)


def cell_text(value) -> str:
    """A cell as text in the selected language."""
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, int | float):
        return format_number(value)
    if isinstance(value, date):
        return format_date(value, "medium")
    return str(value)


def _more(table: Table) -> str:
    return _("{shown} of {total} rows shown; all are in the XLSX file, sheet {sheet}.").format(
        shown=format_number(len(table.shown_rows())), total=format_number(len(table.rows)), sheet=table.key
    )


def write_docx(report: Report, path: Path) -> Path:
    """The paper copy: the centre's header, every section (tables that fit paper) and signature lines."""
    from docx import Document
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.shared import Pt

    document = Document()
    style = document.styles["Normal"]
    style.font.name = "Liberation Serif"
    style.font.size = Pt(11)
    for line in report.header:
        paragraph = document.add_paragraph(line)
        paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER
        paragraph.runs[0].bold = True
    title = document.add_heading(f"{report.title}: {report.period_label}", level=0)
    title.alignment = WD_ALIGN_PARAGRAPH.CENTER
    for number, section in enumerate(report.sections, 1):
        document.add_heading(f"{number}. {section.title}", level=1)
        for text in section.paragraphs:
            document.add_paragraph(text)
        for table in section.tables:
            if table.xlsx_only:
                document.add_paragraph(
                    _("{title}: in the XLSX file, sheet {sheet}.").format(title=table.title, sheet=table.key)
                )
                continue
            document.add_paragraph(table.title).runs[0].italic = True
            if not table.rows:
                document.add_paragraph(_("none"))
                continue
            grid = document.add_table(rows=1, cols=len(table.columns))
            grid.style = "Table Grid"
            for cell, name in zip(grid.rows[0].cells, table.columns, strict=True):
                cell.text = name
                cell.paragraphs[0].runs[0].bold = True
            for row in table.shown_rows():
                cells = grid.add_row().cells
                for cell, value in zip(cells, row, strict=True):
                    cell.text = cell_text(value)
                    if isinstance(value, int | float) and not isinstance(value, bool):
                        cell.paragraphs[0].alignment = WD_ALIGN_PARAGRAPH.RIGHT
            if len(table.shown_rows()) < len(table.rows):
                document.add_paragraph(_more(table))
    document.add_paragraph()
    for role, who in report.signatures:
        document.add_paragraph(f"{role}: ____________________  {who}")
        document.add_paragraph(_("Date: «____» ______________ 20___"))
    properties = document.core_properties
    properties.title = f"{report.title}: {report.period_label}"
    properties.author = report.header[0]
    properties.created = properties.modified = FIXED_TIME
    properties.last_modified_by = ""
    properties.revision = 1
    document.save(path)
    return path


def write_xlsx(report: Report, path: Path) -> Path:
    """Every table on its own sheet, numbers as numbers and dates as dates."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    book.remove(book.active)
    used: set[str] = set()
    for section in report.sections:
        for table in section.tables:
            name = table.key[:31]
            while name in used:
                name = name[:29] + f"_{len(used)}"
            used.add(name)
            sheet = book.create_sheet(name)
            sheet.append([table.title])
            sheet["A1"].font = Font(bold=True)
            sheet.append(table.columns)
            for cell in sheet[2]:
                cell.font = Font(bold=True)
            for row in table.rows:
                sheet.append([v if isinstance(v, int | float | date) else str(v) for v in row])
            for column in sheet.columns:
                width = max((len(str(c.value)) for c in column if c.value is not None and c.row > 1), default=8)
                sheet.column_dimensions[column[0].column_letter].width = min(max(width + 2, 8), 60)
    if not used:
        book.create_sheet("empty")
    book.properties.created = book.properties.modified = FIXED_TIME
    book.properties.creator = report.header[0]
    book.save(path)
    return path


def _short(label: str, limit: int = 34) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


def svg_bars(chart: Chart) -> str:
    """A horizontal bar chart as inline SVG (no script, no external file)."""
    if not chart.values:
        return ""
    label_width, bar_width, row = 220, 360, 22
    top = max(chart.values) or 1
    height = row * len(chart.values) + 10
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_width + bar_width + 120}" '
        f'height="{height}" role="img" aria-label="{escape(chart.title)}">'
    ]
    for index, (label, value) in enumerate(zip(chart.labels, chart.values, strict=True)):
        y = 5 + index * row
        width = round(bar_width * value / top, 1)
        parts.append(
            f'<text x="{label_width - 6}" y="{y + 15}" text-anchor="end" font-size="12">'
            f"{escape(_short(str(label)))}</text>"
        )
        parts.append(f'<rect x="{label_width}" y="{y + 3}" width="{width}" height="{row - 6}" fill="#2f6f9f"/>')
        parts.append(
            f'<text x="{label_width + width + 4}" y="{y + 15}" font-size="12">{escape(format_number(value))}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts)


NUMBER_CELL = '<td class="n">'
CSS = """body{font-family:sans-serif;max-width:60em;margin:2em auto;color:#222}
h1{text-align:center}.header{text-align:center;font-weight:bold}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #999;padding:.2em .5em}
td.n{text-align:right}.nodata{color:#a00}.sign{margin-top:2em}"""


def write_html(report: Report, path: Path) -> Path:
    """One self-contained page: the tables and an SVG chart per chart of the report."""
    lines = [
        "<!DOCTYPE html>",
        f'<html lang="{language()}">',
        "<head>",
        '<meta charset="utf-8">',
        f"<title>{escape(report.title)}: {escape(report.period_label)}</title>",
        f"<style>{CSS}</style>",
        "</head>",
        "<body>",
    ]
    lines += [f'<div class="header">{escape(line)}</div>' for line in report.header]
    lines.append(f"<h1>{escape(report.title)}: {escape(report.period_label)}</h1>")
    for number, section in enumerate(report.sections, 1):
        lines.append(f'<section id="{section.key}"><h2>{number}. {escape(section.title)}</h2>')
        for text in section.paragraphs:
            css = ' class="nodata"' if section.no_data else ""
            lines.append(f"<p{css}>{escape(text)}</p>")
        for chart in section.charts:
            lines.append(f"<figure><figcaption>{escape(chart.title)}</figcaption>{svg_bars(chart)}</figure>")
        for table in section.tables:
            if table.xlsx_only:
                note = _("{title}: in the XLSX file, sheet {sheet}.").format(title=table.title, sheet=table.key)
                lines.append(f"<p>{escape(note)}</p>")
                continue
            lines.append(f"<h3>{escape(table.title)}</h3>")
            if not table.rows:
                lines.append(f"<p>{escape(_('none'))}</p>")
                continue
            lines.append("<table><tr>" + "".join(f"<th>{escape(c)}</th>" for c in table.columns) + "</tr>")
            for row in table.shown_rows():
                cells = "".join(
                    (NUMBER_CELL if isinstance(v, int | float) else "<td>") + escape(cell_text(v)) + "</td>"
                    for v in row
                )
                lines.append(f"<tr>{cells}</tr>")
            lines.append("</table>")
            if len(table.shown_rows()) < len(table.rows):
                lines.append(f"<p>{escape(_more(table))}</p>")
        lines.append("</section>")
    for role, who in report.signatures:
        lines.append(f'<p class="sign">{escape(role)}: ____________________ {escape(who)}</p>')
    lines += ["</body>", "</html>", ""]
    Path(path).write_text("\n".join(lines), encoding="utf-8")
    return path
