"""The report's charts: each draws the figures its table prints, those figures are right (counted again
here from the generated log, the evidence records and the inventory's YAML), a section without data has
none, and the pictures are the same bytes on every run, in the DOCX and in the HTML."""

from __future__ import annotations

import base64
import re
from collections import Counter
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import yaml
from docx import Document
from tests.report.conftest import BUSY_CATEGORIES, BUSY_WEEK, ROOT

from akm import i18n
from akm.report import charts, periods, render
from akm.report.build import MIB, Sources, build

WEEK = periods.parse("weekly", BUSY_WEEK, date(2026, 11, 30))
DAYS = [date(2026, 11, 16) + timedelta(days=n) for n in range(7)]


@pytest.fixture(scope="module")
def report(inventory, busy_week):
    return build(Sources(inventory, **busy_week), WEEK, made_on=date(2026, 11, 23))


def _section(report, key):
    return next(s for s in report.sections if s.key == key)


def _table(section, key):
    return next(t for t in section.tables if t.key == key)


def _charted(section) -> list[tuple[str, str, list[str]]]:
    """(table key, kind, series column names) of each chart of the section."""
    return [(c.table.key, c.kind, [c.table.columns[i] for i in c.series]) for c in section.charts]


def test_every_chart_draws_a_table_of_its_own_section(report):
    drawn = {s.key: _charted(s) for s in report.sections if s.charts}
    assert drawn == {
        "equipment": [
            ("equipment_departments", "bars", ["Items"]),
            ("equipment_age", "stacked", ["in use"]),
        ],
        "users": [
            ("users_days", "columns", ["Volume, MiB"]),
            ("users_segments", "bars", ["Volume, MiB"]),
            ("users_departments", "bars", ["Volume, MiB"]),
            ("users_denied", "bars", ["Denied"]),
        ],
        "backups": [
            ("backups_days", "stacked", ["Succeeded", "With warnings", "Failed"]),
            ("backups_days", "columns", ["Backed up, MiB", "Added, MiB"]),
        ],
        "digitised": [("digitised_collections", "bars", ["Added in the period"])],
    }
    for section in report.sections:
        for chart in section.charts:
            assert any(chart.table is table for table in section.tables), chart.title
            labels, series = chart.points()
            assert labels == [row[chart.labels] for row in chart.table.rows]
            for (name, values), column in zip(series, chart.series, strict=True):
                assert name == chart.table.columns[column]
                assert values == [row[column] for row in chart.table.rows]


def _log_lines(busy_week, inventory) -> list[tuple[date, str, int, bool, str]]:
    """(day in the centre's time zone, segment, bytes, denied, site) of every line, read here with
    split() as the log's format says (time, elapsed, client, code/status, bytes, method, URL ...)."""
    zone = ZoneInfo(inventory.centre.timezone)
    segment_of = {str(i.ip): i.segment for a in inventory.assets for i in a.interfaces if i.ip is not None}
    found = []
    for line in busy_week["access_logs"][0].read_text().splitlines():
        fields = line.split()
        site = re.sub(r"^[a-z]+://", "", fields[6]).split("/")[0].split(":")[0]
        day = datetime.fromtimestamp(float(fields[0]), zone).date()
        found.append((day, segment_of[fields[2]], int(fields[4]), fields[3].startswith("TCP_DENIED"), site))
    return found


def test_users_figures_per_day_segment_and_category_are_the_logs(report, busy_week, inventory):
    lines = _log_lines(busy_week, inventory)
    users = _section(report, "users")
    per_day = {d: [0, 0, 0] for d in DAYS}
    for day, _segment, size, denied, _site in lines:
        per_day[day][0] += 1
        per_day[day][1] += size
        per_day[day][2] += denied
    assert _table(users, "users_days").rows == [[d, n, round(b / MIB, 1), k] for d, (n, b, k) in per_day.items()]
    assert all(n > 0 for n, _b, _k in per_day.values())
    segments = Counter()
    for _day, segment, _size, _denied, _site in lines:
        segments[segment] += 1
    shown = {row[0]: row[1] for row in _table(users, "users_segments").rows}
    assert shown == {inventory.segments[k].id: n for k, n in segments.items()}
    denied = Counter(BUSY_CATEGORIES.get(site, "no category") for _d, _s, _b, was, site in lines if was)
    assert dict(map(tuple, _table(users, "users_denied").rows)) == dict(denied)
    assert [row[1] for row in _table(users, "users_denied").rows] == sorted(denied.values(), reverse=True)


def test_backups_per_day_and_their_size(report):
    rows = _table(_section(report, "backups"), "backups_days").rows
    assert [row[0] for row in rows] == DAYS
    assert [row[1:4] for row in rows] == [[0, 0, 1] if n == 3 else [1, 0, 0] for n in range(7)]
    assert [row[4:] for row in rows] == [[50.0 + n, 1.0 + n] for n in range(7)]


def test_equipment_by_age_and_status_is_the_inventorys(report):
    assets = yaml.safe_load((ROOT / "inventory" / "lab" / "assets.yml").read_text())["assets"]
    last_day = date(2026, 11, 22)
    expected = Counter()
    for asset in assets:
        bought = asset["purchased"]
        years = last_day.year - bought.year - ((last_day.month, last_day.day) < (bought.month, bought.day))
        band = 0 if years < 1 else 1 if years < 3 else 2 if years < 5 else 3 if years < 8 else 4
        expected[(band, asset["status"].replace("_", " "))] += 1
    table = _table(_section(report, "equipment"), "equipment_age")
    assert [row[0] for row in table.rows] == ["0–1", "1–3", "3–5", "5–8", "8+"]
    found = {(band, table.columns[c]): row[c] for band, row in enumerate(table.rows) for c in range(1, len(row))}
    assert {k: v for k, v in found.items() if v} == dict(expected)
    assert sum(found.values()) == len(assets)


def test_a_section_without_data_has_no_chart(inventory, busy_week, tmp_path):
    """A week with nothing recorded: only the equipment register (always there) is drawn; the DOCX holds
    exactly its pictures, the HTML the same ones."""
    quiet = periods.parse("weekly", "2026-W30", date(2026, 11, 30))
    report = build(Sources(inventory, **busy_week), quiet)
    for section in report.sections:
        if section.no_data:
            assert section.charts == [], section.key
    assert [s.key for s in report.sections if s.charts] == ["equipment"]
    docx = Document(str(render.write_docx(report, tmp_path / "quiet.docx")))
    assert len(docx.inline_shapes) == 2
    html = render.write_html(report, tmp_path / "quiet.html").read_text()
    assert html.count("data:image/png;base64,") == 2


def test_no_chart_of_figures_that_are_all_zero(inventory, tmp_path):
    """A log without a denied request: the table of denied requests says «none», no chart is drawn."""
    address = next(a for a in inventory.assets if a.ip_on("readers")).ip_on("readers")
    log = tmp_path / "access.log"
    log.write_text(f"1795330800.000      5 {address} TCP_MISS/200 5242880 GET http://a.example/ - HIER_DIRECT/- -\n")
    users = _section(build(Sources(inventory, access_logs=[log]), WEEK), "users")
    assert _table(users, "users_denied").rows == []
    assert [key for key, _kind, _series in _charted(users)] == ["users_days", "users_segments", "users_departments"]


def test_pictures_are_the_same_bytes_on_every_run_and_in_both_files(report, tmp_path):
    pictures = [charts.png(c) for s in report.sections for c in s.charts]
    charts._draw.cache_clear()
    assert [charts.png(c) for s in report.sections for c in s.charts] == pictures
    assert all(p.startswith(b"\x89PNG\r\n\x1a\n") for p in pictures)
    assert not any(b"Software" in p or b"matplotlib" in p for p in pictures)
    docx = Document(str(render.write_docx(report, tmp_path / "r.docx")))
    embedded = [
        docx.part.related_parts[s._inline.graphic.graphicData.pic.blipFill.blip.embed] for s in docx.inline_shapes
    ]
    assert [part.blob for part in embedded] == pictures
    html = render.write_html(report, tmp_path / "r.html").read_text()
    assert re.findall(r'src="data:image/png;base64,([^"]+)"', html) == [base64.b64encode(p).decode() for p in pictures]
    assert render.write_html(report, tmp_path / "again.html").read_text() == html
    assert (tmp_path / "r.docx").read_bytes() == render.write_docx(report, tmp_path / "again.docx").read_bytes()


def test_charts_speak_the_reports_language(inventory, busy_week):
    """Uzbek by default: titles, series names (the table's columns) and dates on the axis (Babel)."""
    i18n.setup("uz")
    report = build(Sources(inventory, **busy_week), WEEK)
    users = _section(report, "users")
    assert users.charts[0].title == "Kunlar boʻyicha internetdan foydalanish, MiB"
    assert users.charts[0].points()[1][0][0] == "Hajmi, MiB"
    assert charts.day_label(DAYS[0]) == "16-noy"
    i18n.setup("en")
    assert charts.day_label(DAYS[0]) == "Nov 16"


def test_a_long_period_keeps_its_days_off_paper_but_charts_them(inventory, busy_week, tmp_path):
    """A quarter: the table of days is only in the XLSX (92 rows), the chart (a line) shows all of them."""
    quarter = periods.parse("quarterly", "2026-Q4", date(2027, 1, 5))
    report = build(Sources(inventory, **busy_week), quarter)
    days = _table(_section(report, "users"), "users_days")
    assert days.xlsx_only and len(days.rows) == 92
    assert _charted(_section(report, "users"))[0][0] == "users_days"
    assert charts.png(_section(report, "users").charts[0]).startswith(b"\x89PNG")
