"""Writers of a :class:`~akm.report.model.Report`: DOCX for filing, XLSX for the tables, HTML with charts.

Output is deterministic: the same report gives the same HTML byte for byte, and DOCX/XLSX carry no
creation time (their document properties are fixed to the period's label).
"""

from __future__ import annotations

import base64
import re
from datetime import date, datetime
from html import escape
from io import BytesIO
from pathlib import Path

from akm.i18n import _, format_date, format_number, language
from akm.report import charts
from akm.report.model import Report, Table

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


WIDE_TABLE = 6
"""A table of more columns than this is printed on a landscape page."""
TOC_LEVELS = "1-1"


def _field_char(paragraph, kind: str) -> None:
    """One mark of a complex field: ``begin``, ``separate`` (the shown result follows) or ``end``."""
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    element = OxmlElement("w:fldChar")
    element.set(qn("w:fldCharType"), kind)
    if kind == "begin":
        element.set(qn("w:dirty"), "true")
    paragraph.add_run()._r.append(element)


def _field_start(paragraph, instruction: str) -> None:
    """The beginning of a field: its instruction, then the mark after which its shown result comes."""
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    _field_char(paragraph, "begin")
    text = OxmlElement("w:instrText")
    text.set(qn("xml:space"), "preserve")
    text.text = f" {instruction} "
    paragraph.add_run()._r.append(text)
    _field_char(paragraph, "separate")


def _page_numbers(paragraph) -> None:
    """``Bet X / Y`` (``Page X of Y``): the catalog's sentence with PAGE and NUMPAGES fields in its places."""
    fields = {"{page}": "PAGE", "{pages}": "NUMPAGES"}
    for part in re.split(r"(\{page\}|\{pages\})", _("Page {page} of {pages}")):
        if part in fields:
            _field_start(paragraph, fields[part])
            paragraph.add_run("1")
            _field_char(paragraph, "end")
        elif part:
            paragraph.add_run(part)


def _contents(document, report: Report) -> None:
    """The table of contents: a Word TOC field, marked to be updated when the file is opened (Word then
    fills in the page numbers), whose shown result is the list of the section headings, so that the
    contents are there before any update and in programs that never update fields."""
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    title = document.add_paragraph()
    title.add_run(_("Contents")).bold = True
    lines = [_heading(number, section) for number, section in enumerate(report.sections, 1)]
    paragraph = document.add_paragraph()
    _field_start(paragraph, f'TOC \\o "{TOC_LEVELS}" \\h \\z \\u')
    paragraph.add_run(lines[0])
    for line in lines[1:]:
        paragraph = document.add_paragraph(line)
    _field_char(paragraph, "end")
    update = OxmlElement("w:updateFields")
    update.set(qn("w:val"), "true")
    document.settings.element.append(update)


def _heading(number: int, section) -> str:
    return f"{number}. {section.title}"


def _title_page(document, report: Report) -> None:
    """The page the director signs: the approval block, the centre (from the inventory), the title and
    period, the date, who prepared it."""
    from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_BREAK
    from docx.shared import Pt

    approver = report.signatures[-1]
    blank = _("Date: «____» ______________ 20___")
    for index, line in enumerate([_("APPROVED"), approver.position, f"____________________ {approver.name}", blank]):
        paragraph = document.add_paragraph(line)
        paragraph.alignment = WD_ALIGN_PARAGRAPH.RIGHT
        paragraph.runs[0].bold = index == 0
    for _blank in range(4):
        document.add_paragraph()
    for line in report.header:
        paragraph = document.add_paragraph(line)
        paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER
        paragraph.runs[0].bold = True
    for _blank in range(5):
        document.add_paragraph()
    title = document.add_paragraph()
    title.alignment = WD_ALIGN_PARAGRAPH.CENTER
    run = title.add_run(f"{report.title}: {report.period_label}")
    run.bold = True
    run.font.size = Pt(20)
    for line in (report.period_words, _("Date of the report: {date}").format(date=format_date(report.made_on))):
        document.add_paragraph(line).alignment = WD_ALIGN_PARAGRAPH.CENTER
    for _blank in range(8):
        document.add_paragraph()
    for signature in report.signatures[:-1]:
        document.add_paragraph(f"{signature.role}: {signature.position} ____________________ {signature.name}")
    document.add_paragraph().add_run().add_break(WD_BREAK.PAGE)


class _Paper:
    """The sections of the document: portrait pages, and landscape ones for wide tables."""

    def __init__(self, document):
        from docx.enum.section import WD_ORIENT
        from docx.enum.text import WD_ALIGN_PARAGRAPH
        from docx.shared import Cm

        self.document = document
        first = document.sections[0]
        first.orientation = WD_ORIENT.PORTRAIT
        first.page_width, first.page_height = Cm(21), Cm(29.7)
        first.left_margin = first.right_margin = Cm(2.5)
        first.top_margin = first.bottom_margin = Cm(2)
        first.different_first_page_header_footer = True
        footer = first.footer.paragraphs[0]
        footer.alignment = WD_ALIGN_PARAGRAPH.CENTER
        _page_numbers(footer)
        first.first_page_footer.is_linked_to_previous = False

    def landscape(self, wanted: bool) -> None:
        """Continue on a new page of the orientation wanted (nothing if it already is)."""
        from docx.enum.section import WD_ORIENT, WD_SECTION

        current = self.document.sections[-1]
        if (current.orientation == WD_ORIENT.LANDSCAPE) == wanted:
            return
        section = self.document.add_section(WD_SECTION.NEW_PAGE)
        section.orientation = WD_ORIENT.LANDSCAPE if wanted else WD_ORIENT.PORTRAIT
        section.page_width, section.page_height = current.page_height, current.page_width
        section.different_first_page_header_footer = False


def _caption(document, text: str):
    """A title kept on the page of the chart or table under it; returns its run."""
    paragraph = document.add_paragraph()
    paragraph.paragraph_format.keep_with_next = True
    return paragraph.add_run(text)


def _table(document, table: Table) -> None:
    from docx.enum.text import WD_ALIGN_PARAGRAPH

    _caption(document, table.title).italic = True
    if not table.rows:
        document.add_paragraph(_("none"))
        return
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


def write_docx(report: Report, path: Path) -> Path:
    """The paper copy the director signs: a title page, the contents, every section with its charts and
    the tables that fit paper (wide ones on landscape pages), page numbers in the footer."""
    from docx import Document
    from docx.shared import Cm, Pt

    document = Document()
    style = document.styles["Normal"]
    style.font.name = "Liberation Serif"
    style.font.size = Pt(11)
    paper = _Paper(document)
    _title_page(document, report)
    _contents(document, report)
    for number, section in enumerate(report.sections, 1):
        paper.landscape(False)
        document.add_heading(_heading(number, section), level=1).paragraph_format.page_break_before = True
        for text in section.paragraphs:
            document.add_paragraph(text)
        for chart in section.charts:
            _caption(document, chart.title).bold = True
            document.add_picture(BytesIO(charts.png(chart)), width=Cm(charts.WIDTH_IN * 2.54))
        for table in section.tables:
            if table.xlsx_only:
                paper.landscape(False)
                document.add_paragraph(
                    _("{title}: in the XLSX file, sheet {sheet}.").format(title=table.title, sheet=table.key)
                )
                continue
            paper.landscape(len(table.columns) > WIDE_TABLE)
            _table(document, table)
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


NUMBER_CELL = '<td class="n">'
CSS = """body{font-family:sans-serif;max-width:60em;margin:2em auto;color:#222}
h1{text-align:center}.header{text-align:center;font-weight:bold}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #999;padding:.2em .5em}
td.n{text-align:right}.nodata{color:#a00}.sign{margin-top:2em}.period{text-align:center}
figure img{max-width:100%}"""


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
    made = _("Date of the report: {date}").format(date=format_date(report.made_on))
    lines += [f'<p class="period">{escape(report.period_words)}<br>{escape(made)}</p>', "<nav><ol>"]
    lines += [f'<li><a href="#{s.key}">{escape(s.title)}</a></li>' for s in report.sections]
    lines.append("</ol></nav>")
    for number, section in enumerate(report.sections, 1):
        lines.append(f'<section id="{section.key}"><h2>{escape(_heading(number, section))}</h2>')
        for text in section.paragraphs:
            css = ' class="nodata"' if section.no_data else ""
            lines.append(f"<p{css}>{escape(text)}</p>")
        for chart in section.charts:
            picture = base64.b64encode(charts.png(chart)).decode("ascii")
            lines.append(
                f"<figure><figcaption>{escape(chart.title)}</figcaption>"
                f'<img src="data:image/png;base64,{picture}" alt="{escape(chart.title)}"></figure>'
            )
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
    for signature in report.signatures:
        lines.append(
            f'<p class="sign">{escape(signature.role)}: {escape(signature.position)} '
            f"____________________ {escape(signature.name)}</p>"
        )
    lines += ["</body>", "</html>", ""]
    Path(path).write_text("\n".join(lines), encoding="utf-8")
    return path
