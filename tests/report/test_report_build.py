"""The periodic report: every figure checked against the sources it comes from."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections import Counter
from datetime import UTC, date, datetime

import pytest
from docx import Document
from openpyxl import load_workbook

from akm import evidence, i18n
from akm.backup import jobs
from akm.inventory import load_inventory
from akm.report import digitised, periods, render
from akm.report.build import Sources, build

ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def english():
    i18n.setup("en")
    yield
    i18n.setup("en")


def _commit(repo, message: str, when: str) -> None:
    env = {
        "GIT_AUTHOR_DATE": when,
        "GIT_COMMITTER_DATE": when,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
        "PATH": "/usr/bin:/bin",
    }
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True, env=env)
    subprocess.run(["git", "-C", str(repo), "commit", "-qm", message], check=True, env=env)


def _edit(path, asset: str, old: str, new: str) -> None:
    text = path.read_text()
    start = text.index(f"hostname: {asset}\n")
    end = text.find("hostname:", start + 10)
    end = len(text) if end < 0 else end
    block = text[start:end]
    assert old in block
    path.write_text(text[:start] + block.replace(old, new, 1) + text[end:])


@pytest.fixture(scope="module")
def history_inventory(tmp_path_factory):
    """A git repository whose inventory changes twice inside week 2026-W47 and once after it."""
    repo = tmp_path_factory.mktemp("repo")
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    shutil.copytree(ROOT / "inventory" / "lab", repo / "inventory" / "lab")
    assets = repo / "inventory" / "lab" / "assets.yml"
    _commit(repo, "initial", "2026-11-01T10:00:00+05:00")
    _edit(assets, "oqish-02", "status: in_use", "status: in_repair")
    _commit(repo, "oqish-02 to repair", "2026-11-17T11:00:00+05:00")
    _edit(assets, "printer-akt", "status: in_use", "status: written_off")
    _edit(assets, "raqam-01", "room: xona-203", "room: zal-201")
    _edit(assets, "raqam-01", "department: raqamlashtirish", "department: oqish_zali")
    _commit(repo, "printer written off, raqam-01 moved", "2026-11-19T15:00:00+05:00")
    _edit(assets, "oqish-02", "status: in_repair", "status: in_use")
    _commit(repo, "oqish-02 back", "2026-11-25T09:00:00+05:00")
    return load_inventory(repo / "inventory" / "lab")


def _table(section, key):
    return next(t for t in section.tables if t.key == key)


def _section(report, key):
    return next(s for s in report.sections if s.key == key)


def test_equipment_counts_and_changes_from_git(history_inventory):
    report = build(Sources(history_inventory), periods.parse("weekly", "2026-W47", date(2026, 11, 30)))
    section = _section(report, "equipment")
    assert dict(map(tuple, _table(section, "equipment_status").rows)) == {"in use": 11, "written off": 1}
    changes = [(row[2], row[3]) for row in _table(section, "equipment_changes").rows]
    assert changes == [("oqish-02", "sent to repair"), ("raqam-01", "moved"), ("printer-akt", "written off")]
    assert _table(section, "equipment_changes").rows[1][4] == "raqamlashtirish/xona-203 → oqish_zali/zal-201"
    next_week = build(Sources(history_inventory), periods.parse("weekly", "2026-W48", date(2026, 12, 7)))
    changes = [(row[2], row[3]) for row in _table(_section(next_week, "equipment"), "equipment_changes").rows]
    assert changes == [("oqish-02", "back from repair")]


def test_warranties_ending_soon(inventory):
    report = build(Sources(inventory), periods.parse("monthly", "2026-11", date(2026, 12, 5)))
    rows = _table(_section(report, "equipment"), "warranties").rows
    assert [(r[1], r[3]) for r in rows] == [("xodim-01", date(2027, 2, 1)), ("xodim-02", date(2027, 2, 1))]


def _backup_run(time: str, result: str, data_class: str, added: int = 0, files: int = 0) -> dict:
    """A backup run of one data class on srv, as the backup area writes it."""
    entry = {"data_class": data_class, "result": "ok" if result == "ok" else "error", "bytes_added": added}
    return evidence.record(
        "backup.run",
        result,
        time=time,
        host="srv",
        started=time,
        repository="rest:https://198.18.0.20:8000/srv/",
        classes=[{**entry, "files": files}],
        errors=[],
        copy={"result": "skipped"},
        bytes_added=added,
        files=files,
    )


@pytest.fixture
def evidence_dir(tmp_path):
    records = {
        "b1.json": _backup_run("2026-11-17T02:00:05+05:00", "ok", "av_masters", 3 * 2**20, 12),
        "b2.json": {**_backup_run("2026-11-18T02:00:05+05:00", "failed", "av_masters"), "summary": "disk full"},
        "b3.json": _backup_run("2026-11-19T02:00:05+05:00", "ok", "shares", 2**20, 3),
        "f1.json": [
            evidence.record(
                "fixity.verify",
                "ok",
                time="2026-11-19T03:00:00+05:00",
                host="srv",
                started="2026-11-19T02:59:00+05:00",
                subject="av_masters",
                archive="/srv/archive/av",
                unchanged=12,
                changed=[],
                missing=[],
                new=[],
            )
        ],
        "old.json": _backup_run("2026-10-01T02:00:00+05:00", "ok", "x"),
        "p1.json": evidence.record(
            "policy.push",
            "ok",
            time="2026-11-20T12:00:00+05:00",
            host="gw",
            started="2026-11-20T11:59:00+05:00",
            outcome="confirmed",
            push="20261120T065900Z",
            release="r-0123456789abcdef",
            previous_release="none",
            operator="o.ismoilov",
            policy_at="now",
            who="o.ismoilov",
            revision="0123456789abcdef",
            approved_by="d.karimova",
            changes=["grant social"],
        ),
        "bad.json": "{not json",
        "nokind.json": {"time": "2026-11-20T12:00:00+05:00", "result": "ok", "host": "srv"},
    }
    for name, data in records.items():
        (tmp_path / name).write_text(data if isinstance(data, str) else json.dumps(data))
    return tmp_path


def test_evidence_sections(inventory, evidence_dir):
    report = build(
        Sources(inventory, evidence_dir=evidence_dir), periods.parse("weekly", "2026-W47", date(2026, 11, 30))
    )
    backups = _section(report, "backups")
    assert backups.paragraphs[0] == "4 records: succeeded: 3, failed: 1."
    assert _table(backups, "backups_last").rows == [
        ["av_masters", "srv", "2026-11-17 02:00", 3.0, 12],
        ["shares", "srv", "2026-11-19 02:00", 1.0, 3],
    ]
    access = _section(report, "access")
    assert _table(access, "access_pushes").rows == [
        ["2026-11-20 12:00", "o.ismoilov", "0123456789", "d.karimova", "succeeded", "grant social"]
    ]
    assert sorted(p.split(": ", 1)[0].rsplit("/", 1)[-1] for p in report.problems) == ["bad.json:1", "nokind.json:1"]
    assert "a required field is missing" in next(p for p in report.problems if "nokind.json" in p)


def test_alerts_and_rollbacks_are_counted_where_their_area_is_reported(inventory, evidence_dir):
    """An alert of the backup area (its real writer) and a rollback record of the gateway are records
    like any other: the backups and access sections count them as failures, none is malformed."""
    jobs.raise_alert(
        evidence_dir,
        "backup.target-full",
        "the backup target is full",
        datetime(2026, 11, 18, 21, 5, tzinfo=UTC),
        "srv",
        evidence_dir / "b2.json",
        repository="rest:https://198.18.0.20:8000/srv/",
    )
    rollback = evidence.record(
        "policy.rollback",
        "failed",
        time="2026-11-20T12:02:00+05:00",
        host="gw",
        release="r-0123456789abcdef",
        back_to="none",
        reason='a "quoted" reason\nwith a new line',
    )
    evidence.write(evidence_dir / "access-policy", "20261120T070200Z-r-0123456789abcdef-rollback", rollback)
    report = build(
        Sources(inventory, evidence_dir=evidence_dir), periods.parse("weekly", "2026-W47", date(2026, 11, 30))
    )
    assert _section(report, "backups").paragraphs[0] == "5 records: succeeded: 3, failed: 2."
    backups = _table(_section(report, "backups"), "backups_records").rows
    assert ["2026-11-19 02:05", "backup.alert", "srv", "failed", "the backup target is full"] in backups
    access = _section(report, "access")
    assert access.paragraphs[0] == "2 records: succeeded: 1, failed: 1."
    assert [r[1] for r in _table(access, "access_records").rows] == ["policy.push", "policy.rollback"]
    assert len(report.problems) == 2


def test_sections_without_records_say_so(inventory, evidence_dir):
    report = build(
        Sources(inventory, evidence_dir=evidence_dir), periods.parse("weekly", "2026-W30", date(2026, 11, 30))
    )
    for key in ("drift", "access", "users", "backups", "network", "digitised"):
        section = _section(report, key)
        assert section.no_data, key
        assert section.paragraphs[-1] == "No data for the period."
        assert section.tables == []


def test_users_history_section(inventory, small_log):
    report = build(Sources(inventory, access_logs=[small_log]), periods.parse("weekly", "2026-W47", date(2026, 11, 30)))
    users = _section(report, "users")
    assert users.paragraphs[0] == (
        "15 log lines were rejected and not counted; see «Appendix: access log lines not counted»."
    )
    assert users.paragraphs[1] == "7 requests, 0 MiB, 3 denied."
    assert [r[0] for r in _table(users, "users_departments").rows] == [
        "Readers' hall",
        "ICT and Digitization Service",
        "Digitization section",
        "unknown",
    ]
    assert [r[1] for r in _table(users, "users_departments").rows] == [2, 3, 1, 1]
    assert not any(t.key == "users_people" for t in users.tables)
    director = build(
        Sources(inventory, access_logs=[small_log], director=True),
        periods.parse("weekly", "2026-W47", date(2026, 11, 30)),
    )
    people = _table(_section(director, "users"), "users_people").rows
    # The staff's history is per person, with the computers each logged in at (readers stay anonymous).
    assert [(r[0], r[1], r[2]) for r in people] == [
        ("Nodira Toshmatova", "xodim-01", 3),
        ("Jasur Qodirov", "raqam-01", 1),
    ]


def test_log_appendix_counts_every_rejected_line_by_reason(inventory, small_log):
    week = periods.parse("weekly", "2026-W47", date(2026, 11, 30))
    report = build(Sources(inventory, access_logs=[small_log]), week)
    appendix = report.sections[-1]
    assert appendix.key == "log_rejects"
    assert appendix.title == "Appendix: access log lines not counted"
    assert appendix.paragraphs[0].startswith("15 of 23 lines of the access logs were rejected and not counted.")
    assert _table(appendix, "log_rejects").rows == [
        ["the line is longer than 64 KiB", "too-long", 1],
        ["the line holds a control character (carriage return, tab, NUL…)", "control-character", 1],
        ["fewer fields than the native format has", "too-few-fields", 2],
        ["more fields than the native format has", "too-many-fields", 2],
        ["the time is not seconds.milliseconds before the year 10000", "bad-time", 2],
        ["the elapsed time is not a whole number of milliseconds", "bad-elapsed", 1],
        ["the client address is not an IPv4 or IPv6 address", "bad-address", 2],
        ["the action/status field is not ACTION/NNN", "bad-status", 1],
        ["the size field is not a whole number of bytes", "bad-size", 1],
        ["the size is larger than Squid can write (2^63−1 bytes)", "size-too-large", 1],
        ["no host name in the URL", "bad-url", 1],
    ]
    samples = _table(appendix, "log_reject_lines").rows
    assert [(code, line) for code, _log, line, _text in samples] == [
        ("too-long", 15),
        ("control-character", 16),
        ("too-few-fields", 9),
        ("too-few-fields", 10),
        ("too-many-fields", 17),
        ("too-many-fields", 23),
        ("bad-time", 11),
        ("bad-time", 18),
        ("bad-elapsed", 19),
        ("bad-address", 12),
        ("bad-address", 20),
        ("bad-status", 14),
        ("bad-size", 13),
        ("size-too-large", 21),
        ("bad-url", 22),
    ]
    assert {log for _code, log, _line, _text in samples} == {"access.log"}
    assert samples[0][3].endswith("xxxx…") and len(samples[0][3]) == 241
    assert "a.example/\\r/ - HIER_DIRECT" in samples[1][3]
    extra = samples[5][3]
    assert extra.endswith(" *** HIER_DIRECT/198.18.0.1 text/html extra1 extra2"), extra
    director = build(Sources(inventory, access_logs=[small_log], director=True), week).sections[-1]
    assert " n.toshmatova HIER_DIRECT" in _table(director, "log_reject_lines").rows[5][3]
    assert "User names are hidden" not in " ".join(director.paragraphs)


def test_no_log_no_appendix_and_a_clean_log_says_so(inventory, tmp_path):
    week = periods.parse("weekly", "2026-W47", date(2026, 11, 30))
    assert build(Sources(inventory), week).sections[-1].key != "log_rejects"
    clean = tmp_path / "access.log"
    clean.write_text(
        "1795000000.000      5 198.18.30.11 TCP_MISS/200 10 GET http://a.example/ - HIER_DIRECT/198.18.0.1 -\n"
    )
    appendix = build(Sources(inventory, access_logs=[clean]), week).sections[-1]
    assert appendix.paragraphs == ["Every line of the access logs was counted (lines read: 1)."]
    assert appendix.tables == []


def test_digitised_resources_against_plan(inventory, tmp_path):
    register = tmp_path / "register.csv"
    register.write_text(
        "id,collection,type,format,pages,minutes,bytes,date\n"
        "EK-1,Oʻlkashunoslik,book,PDF/A,200,,1048576,2026-03-01\n"
        "EK-2,Oʻlkashunoslik,book,PDF/A,100,,1048576,2026-11-18\n"
        "AV-1,Folklor,audio,FLAC,,45,2097152,2026-11-19\n"
        "AV-2,Folklor,audio,FLAC,,30,2097152,2026-12-02\n"
        "BAD,Folklor,cassette,?,,,,yesterday\n"
    )
    plan = tmp_path / "plan.yml"
    plan.write_text(
        "year: 2026\ntargets:\n  - {collection: Oʻlkashunoslik, items: 4}\n  - {collection: Folklor, items: 10}\n"
    )
    report = build(
        Sources(inventory, register=register, plan=plan),
        periods.parse("monthly", "2026-11", date(2026, 12, 5)),
    )
    section = _section(report, "digitised")
    assert _table(section, "digitised_collections").rows == [
        ["Folklor", 1, 1, 0, 45, 2.0, 10, 10.0],
        ["Oʻlkashunoslik", 2, 1, 300, 0, 2.0, 4, 50.0],
    ]
    assert "register.csv:6" in section.paragraphs[0]


def test_items_akm_ocr_entered_are_counted_beside_the_register(inventory, tmp_path):
    """A digitisation station's akm-ocr -c writes a digitised.item record per item; the report counts
    those beside the register CSV kept by hand (an id in both counts once, as the CSV says), an item
    made again counts once, dated by its newest record in the centre's time zone."""
    register = tmp_path / "register.csv"
    register.write_text(
        "id,collection,type,format,pages,minutes,bytes,date\nEK-1,Oʻlkashunoslik,book,PDF/A,200,,1048576,2026-11-18\n"
    )
    folder = tmp_path / "evidence" / "raqam-01" / "digitised"

    def item(subject: str, when: str, pages: int) -> None:
        parts = {"collection": "Oʻlkashunoslik", "type": "book", "format": "PDF", "pages": pages, "file": "/x.pdf"}
        record = evidence.record(
            "digitised.item", "ok", time=when, host="raqam-01", subject=subject, bytes=2097152, **parts
        )
        evidence.write(folder, f"item-{subject}-{when[:10]}", record)

    item("EK-1", "2026-11-19T10:00:00+05:00", 999)
    item("EK-2", "2026-11-20T10:00:00+05:00", 10)
    item("EK-2", "2026-11-21T10:00:00+05:00", 12)
    item("EK-3", "2026-11-30T19:30:00+00:00", 7)  # 1 December in Tashkent: outside November
    report = build(
        Sources(inventory, register=register, evidence_dir=tmp_path / "evidence"),
        periods.parse("monthly", "2026-11", date(2026, 12, 5)),
    )
    rows = _table(_section(report, "digitised"), "digitised_collections").rows
    assert rows == [["Oʻlkashunoslik", 2, 2, 212, 0, 3.0, 0, ""]]
    assert _table(_section(report, "digitised"), "digitised_formats").rows == [["book", "PDF", 1], ["book", "PDF/A", 1]]


def test_digitised_item_types_are_the_registers():
    assert tuple(evidence.schema()["$defs"]["digitised.item"]["properties"]["type"]["enum"]) == digitised.TYPES


def test_uzbek_is_the_default_with_babel_formats(inventory, small_log, tmp_path):
    i18n.setup("uz")
    period = periods.parse("monthly", "2026-11", date(2026, 12, 5))
    assert period.title() == "noyabr, 2026"
    assert periods.parse("quarterly", "2026-Q4", date(2027, 1, 5)).title() == "2026-yil 4-chorak"
    report = build(Sources(inventory, access_logs=[small_log]), period)
    html = render.write_html(report, tmp_path / "r.html").read_text()
    assert '<html lang="uz">' in html
    assert "<title>Oylik hisobot: 2026-11</title>" in html
    assert '<p class="nodata">Davr uchun maʼlumot yoʻq.</p>' in html
    assert "<td>Oʻquvchilar zali</td>" in html
    assert render.cell_text(1234567) == "1\xa0234\xa0567"
    assert render.cell_text(date(2027, 2, 1)) == "1-fev, 2027"


def test_files_are_written_and_readable(inventory, small_log, tmp_path):
    report = build(Sources(inventory, access_logs=[small_log]), periods.parse("annual", "2026", date(2027, 1, 5)))
    docx = render.write_docx(report, tmp_path / "r.docx")
    text = "\n".join(p.text for p in Document(str(docx)).paragraphs)
    assert inventory.centre.name_en in text
    assert inventory.director.name in text
    book = load_workbook(render.write_xlsx(report, tmp_path / "r.xlsx"))
    register = book["register"]
    assert register.max_row == 2 + len(inventory.assets)
    hosts = book["users_hosts"]
    assert sum(hosts.cell(row=r, column=3).value for r in range(3, hosts.max_row + 1)) == 8
    html = render.write_html(report, tmp_path / "r.html").read_text()
    charted = sum(len(section.charts) for section in report.sections)
    assert html.count('<img src="data:image/png;base64,') == charted == 6 and "<script" not in html
    assert render.write_html(report, tmp_path / "again.html").read_text() == html


def _png_pixels(path) -> tuple[int, int, list[bytes]]:
    """Width, height and the unfiltered rows of an 8-bit RGB or grey PNG (what pdftoppm writes)."""
    import struct
    import zlib

    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, at = {}, 8
    while at < len(data):
        length, kind = struct.unpack(">I4s", data[at : at + 8])
        chunks.setdefault(kind, []).append(data[at + 8 : at + 8 + length])
        at += 12 + length
    width, height, depth, colour, _c, _f, interlace = struct.unpack(">IIBBBBB", chunks[b"IHDR"][0])
    assert depth == 8 and colour in (0, 2) and interlace == 0
    step = 3 if colour == 2 else 1
    raw = zlib.decompress(b"".join(chunks[b"IDAT"]))
    stride = width * step
    rows, previous = [], bytes(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for x in range(stride):
            left = line[x - step] if x >= step else 0
            up, corner = previous[x], previous[x - step] if x >= step else 0
            if kind == 1:
                line[x] = (line[x] + left) & 0xFF
            elif kind == 2:
                line[x] = (line[x] + up) & 0xFF
            elif kind == 3:
                line[x] = (line[x] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[x] = (line[x] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 0xFF
        rows.append(bytes(line))
        previous = line
    return width, height, rows


def _run(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True, timeout=300).stdout


def _coloured(png) -> int:
    """Pixels of a PNG (RGB) with a colour in them (channels apart by more than 60): a chart's bars and
    lines, not black or grey text."""
    width, _height, rows = _png_pixels(png)
    return sum(1 for row in rows for x in range(0, width * 3, 3) if max(row[x : x + 3]) - min(row[x : x + 3]) > 60)


CHART_INK = 1500
"""Coloured pixels a page at 40 dpi has at least per chart on it (a small bar chart has about 3,000; a
page of text with a blue heading about 200)."""


@pytest.mark.needs("soffice", "pdftoppm", "pdftotext", "pdfimages", "pdfinfo")
def test_docx_is_a_document_to_sign_with_its_charts(inventory, busy_week, tmp_path):
    """The Uzbek DOCX of a busy week is opened by LibreOffice (headless), printed to PDF and looked at
    with poppler: page 1 is the title page (the centre, the title, the period, the date, who approves
    and who prepared it, all from the inventory; no page number), page 2 the contents, every later page
    says «Bet N / M»; every chart is a picture on a page whose PNG has the chart's colours; the wide
    table is on a landscape page and every other page is A4 portrait."""
    i18n.setup("uz")
    week = periods.parse("weekly", "2026-W47", date(2026, 11, 30))
    report = build(Sources(inventory, **busy_week), week, made_on=date(2026, 11, 23))
    drawn = [chart for section in report.sections for chart in section.charts]
    docx = render.write_docx(report, tmp_path / "weekly.docx")
    assert len(Document(str(docx)).inline_shapes) == len(drawn) == 9
    _run(
        "soffice",
        f"-env:UserInstallation=file://{tmp_path}/lo",
        "--headless",
        "--norestore",
        "--convert-to",
        "pdf",
        "--outdir",
        str(tmp_path),
        str(docx),
    )
    pdf = tmp_path / "weekly.pdf"
    assert pdf.read_bytes().startswith(b"%PDF")
    pages = int(re.search(r"^Pages:\s+(\d+)", _run("pdfinfo", str(pdf)), re.MULTILINE).group(1))
    text = [
        " ".join(_run("pdftotext", "-enc", "UTF-8", "-f", str(n), "-l", str(n), str(pdf), "-").split())
        for n in range(1, pages + 1)
    ]

    title, contents = text[0], text[1]
    it_head = next(p for p in inventory.people_with("it_staff") if "head_of_department" in p.duties)
    for line in (
        inventory.centre.name,
        inventory.centre.city,
        inventory.departments[it_head.department].name,
        "Haftalik hisobot: 2026-W47",
        "Davr: 16-noyabr, 2026 – 22-noyabr, 2026",
        "Hisobot sanasi: 23-noyabr, 2026",
        f"TASDIQLAYMAN {inventory.director.position} ____________________ {inventory.director.name}",
        f"Tayyorladi: {it_head.position} ____________________ {it_head.name}",
    ):
        assert line in title, line
    assert "Bet " not in title
    assert contents.startswith("Mundarija 1. Jihozlar reyestri 2. ")
    for number, section in enumerate(report.sections, 1):
        assert f"{number}. {section.title}" in contents
        assert any(f"{number}. {section.title}" in page for page in text[2:]), section.title
    for number, page in enumerate(text[1:], 2):
        assert f"Bet {number} / {pages}" in page, number

    listed = [line.split() for line in _run("pdfimages", "-list", str(pdf)).splitlines()[2:]]
    on_page = Counter(int(fields[0]) for fields in listed if fields[2] == "image")
    assert sum(on_page.values()) == len(drawn)
    for page, count in sorted(on_page.items()):
        _run("pdftoppm", "-png", "-r", "40", "-f", str(page), "-l", str(page), str(pdf), str(tmp_path / f"p{page}"))
        (png,) = tmp_path.glob(f"p{page}-*.png")
        assert _coloured(png) > CHART_INK * count, (page, count)

    sizes = re.findall(
        r"^Page\s+(\d+) size:\s+([\d.]+) x ([\d.]+) pts",
        _run("pdfinfo", "-f", "1", "-l", str(pages), str(pdf)),
        re.MULTILINE,
    )
    landscape = [int(n) for n, w, h in sizes if float(w) > float(h)]
    wide = _table(_section(report, "digitised"), "digitised_collections")
    assert len(wide.columns) > render.WIDE_TABLE
    assert landscape and all(wide.title in text[n - 1] for n in landscape), landscape
    assert all(round(float(w)) == 595 and round(float(h)) == 842 for n, w, h in sizes if int(n) not in landscape)


def test_cli_writes_three_files_and_reports_bad_input_without_traceback(tmp_path, small_log, capsys):
    from akm.cli import main

    inventory = str(ROOT / "inventory" / "lab")
    out = tmp_path / "out"
    code = main(
        [
            "--lang",
            "en",
            "report",
            "weekly",
            "--period",
            "2026-W47",
            "--inventory",
            inventory,
            "--access-log",
            str(small_log),
            "--out",
            str(out),
        ]
    )
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "weekly-2026-W47.docx",
        "weekly-2026-W47.html",
        "weekly-2026-W47.xlsx",
    ]
    assert (
        main(
            [
                "--lang",
                "en",
                "report",
                "monthly",
                "--period",
                "2026-13",
                "--inventory",
                inventory,
                "--out",
                str(tmp_path / "bad"),
            ]
        )
        == 2
    )
    assert "'2026-13' is not a monthly period" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_long_tables_are_cut_on_paper_but_whole_in_xlsx(inventory, tmp_path):
    from akm.report.squidgen import generate

    clients = [(f"{inventory.segments['readers'].subnet.network_address + 100 + k}", "-") for k in range(40)]
    log = generate(tmp_path / "a.log", 2000, clients, ["a.example"], datetime(2026, 11, 17, tzinfo=UTC), 3600)
    report = build(Sources(inventory, access_logs=[log]), periods.parse("weekly", "2026-W47", date(2026, 11, 30)))
    html = render.write_html(report, tmp_path / "r.html").read_text()
    assert "30 of 40 rows shown; all are in the XLSX file, sheet users_hosts." in html
    book = load_workbook(render.write_xlsx(report, tmp_path / "r.xlsx"))
    assert book["users_hosts"].max_row == 2 + 40


def test_policy_view_file_drives_the_restricted_checks(inventory, small_log, tmp_path):
    view = tmp_path / "view.yml"
    view.write_text(
        "categories: {social: [social.example], video: [video.example]}\n"
        "restricted_for: [segment:readers]\n"
        "grants:\n  - {person: n.toshmatova, category: social, from: 2026-11-16, until: 2026-11-17}\n"
    )
    report = build(
        Sources(inventory, access_logs=[small_log], policy_view=view),
        periods.parse("weekly", "2026-W47", date(2026, 11, 30)),
    )
    users = _section(report, "users")
    assert _table(users, "users_restricted").rows == [
        ["allowed by grant", 0],
        ["denied as intended", 1],
        ["anomaly: let through without a grant", 1],
        ["denied although a grant was in force", 0],
    ]
    assert _table(users, "users_anomalies").rows == [
        ["oqish-02", "video", "video.example", "anomaly: let through without a grant", 1]
    ]


def test_restricted_checks_from_the_lab_access_policy(inventory, tmp_path):
    """policies/access/lab: readers are restricted from social sites; n.toshmatova has a grant."""
    staff = inventory.asset("xodim-01").ip_on("staff")
    reader = inventory.asset("oqish-01").ip_on("readers")
    line = "{t} 100 {ip} {st} 10 CONNECT www.facebook.com:443 {user} HIER_DIRECT/198.18.0.1 -"
    log = tmp_path / "access.log"
    log.write_text(
        "\n".join(
            [
                line.format(t="1795330800.000", ip=staff, st="TCP_TUNNEL/200", user="n.toshmatova"),
                line.format(t="1795330801.000", ip=reader, st="TCP_DENIED/403", user="-"),
                line.format(t="1795330802.000", ip=reader, st="TCP_TUNNEL/200", user="-"),
            ]
        )
        + "\n"
    )
    report = build(
        Sources(inventory, access_logs=[log], access_policy=ROOT / "policies" / "access" / "lab"),
        periods.parse("weekly", "2026-W47", date(2026, 11, 30)),
    )
    rows = dict(map(tuple, _table(_section(report, "users"), "users_restricted").rows))
    assert rows == {
        "allowed by grant": 0,
        "denied as intended": 1,
        "anomaly: let through without a grant": 1,
        "denied although a grant was in force": 0,
    }


def test_a_backup_run_counts_for_each_of_its_data_classes_that_succeeded(inventory, tmp_path):
    """A backup run lists its data classes, each with its own result."""
    run = {
        **_backup_run("2026-11-18T21:01:00+00:00", "warning", "configs"),
        "classes": [
            {"data_class": "configs", "result": "ok", "bytes_added": 2 * 2**20, "files": 256},
            {"data_class": "shares", "result": "error", "bytes_added": 0, "files": 0},
        ],
    }
    (tmp_path / "run-srv.json").write_text(json.dumps(run))
    report = build(Sources(inventory, evidence_dir=tmp_path), periods.parse("weekly", "2026-W47", date(2026, 11, 30)))
    assert _table(_section(report, "backups"), "backups_last").rows == [
        ["configs", "srv", "2026-11-19 02:01", 2.0, 256]
    ]


def test_a_report_of_a_period_before_a_grant_was_approved_still_reads_the_policy(inventory, tmp_path):
    """The quarterly report of a quarter that ended before the lab's grants were approved: the grants are
    not mistakes of the policy then, only not yet in force."""
    log = tmp_path / "access.log"
    log.write_text(
        "1790000000.000      5 198.18.30.11 TCP_MISS/200 10 GET http://a.example/ - HIER_DIRECT/198.18.0.1 -\n"
    )
    report = build(
        Sources(inventory, access_logs=[log], access_policy=ROOT / "policies" / "access" / "lab"),
        periods.parse("quarterly", "2026-Q3", date(2026, 12, 7)),
    )
    assert report.sections
