"""Shared fixtures of the report tests: the lab inventory and a small access log whose every figure is
known, built from the inventory's own addresses (no address is typed here)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from akm.inventory import load_inventory
from akm.report.squidgen import BAD_LINES

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 11, 16, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def inventory():
    return load_inventory(ROOT / "inventory" / "lab")


def _line(when: datetime, ip, status: str, size: int, method: str, url: str, user: str = "-") -> str:
    hier = "HIER_NONE/-" if "DENIED" in status else "HIER_DIRECT/198.18.0.1"
    return f"{when.timestamp():.3f} {123:6d} {ip} {status} {size} {method} {url} {user} {hier} text/html"


@pytest.fixture(scope="session")
def small_log(tmp_path_factory, inventory) -> Path:
    """Eight good lines (one outside the period), at least one line per reason a line is rejected (the
    last with a login, to be hidden in the appendix), one unknown host."""
    staff = inventory.asset("xodim-01").ip_on("staff")
    reader1 = inventory.asset("oqish-01").ip_on("readers")
    reader2 = inventory.asset("oqish-02").ip_on("readers")
    digit = inventory.asset("raqam-01").ip_on("digitization")
    stranger = inventory.segments["readers"].subnet.broadcast_address - 5
    lines = [
        _line(T0, staff, "TCP_MISS/200", 1000, "GET", "http://kitob.example.uz/a", "n.toshmatova"),
        _line(
            T0 + timedelta(seconds=100),
            staff,
            "TCP_TUNNEL/200",
            2000,
            "CONNECT",
            "www.social.example:443",
            "n.toshmatova",
        ),
        _line(T0 + timedelta(seconds=10), reader1, "TCP_DENIED/403", 3900, "CONNECT", "social.example:443"),
        _line(T0 + timedelta(seconds=20), reader2, "TCP_MISS/200", 5000, "GET", "http://VIDEO.example/v"),
        _line(
            T0 + timedelta(hours=2),
            staff,
            "TCP_DENIED/403",
            3900,
            "CONNECT",
            "www.social.example:443",
            "n.toshmatova",
        ),
        _line(
            T0 + timedelta(seconds=50),
            digit,
            "TCP_DENIED/403",
            3900,
            "CONNECT",
            "social.example:443",
            "j.qodirov",
        ),
        _line(T0 + timedelta(seconds=60), stranger, "TCP_MISS/200", 700, "GET", "http://kitob.example.uz/b"),
        _line(
            T0 - timedelta(days=30),
            staff,
            "TCP_MISS/200",
            99999,
            "GET",
            "http://old.example/",
            "n.toshmatova",
        ),
        *BAD_LINES,
        _line(T0, staff, "TCP_MISS/200", 1, "GET", "http://a.example/", "n.toshmatova") + " extra1 extra2",
    ]
    path = tmp_path_factory.mktemp("squid") / "access.log"
    path.write_text("\n".join(lines) + "\n")
    return path


BUSY_WEEK = "2026-W47"
BUSY_DOMAINS = ("kitob.example.uz", "social.example", "video.example", "news.example")
BUSY_CATEGORIES = {"social.example": "social", "video.example": "video"}


def _backup_record(asset, when: datetime, result: str, processed: int, added: int) -> dict:
    """A backup run of the first data class *asset* holds, as the backup area writes it."""
    from akm import evidence

    entry = {"data_class": asset.data[0].data_class, "result": "ok" if result == "ok" else "error", "files": 12}
    entry |= {"bytes_processed": processed, "bytes_added": added}
    return evidence.record(
        "backup.run",
        result,
        time=when.isoformat(),
        host=asset.hostname,
        started=when.isoformat(),
        repository=f"rest:https://backup.invalid:8000/{asset.hostname}/",
        classes=[entry],
        errors=[],
        copy={"result": "skipped"},
        bytes_added=added,
        files=12,
    )


@pytest.fixture(scope="session")
def busy_week(tmp_path_factory, inventory) -> dict:
    """Sources (keyword arguments of ``Sources``) of week 2026-W47 with something in every charted
    section: 7,000 requests spread over the whole week in the centre's time zone from one computer of
    each user segment (addresses from the inventory), 15 % of them denied, two restricted categories,
    a backup run every night at 02:00 (the fourth one failed) and three items digitised."""
    import json
    from zoneinfo import ZoneInfo

    from akm.report.squidgen import generate

    folder = tmp_path_factory.mktemp("busy")
    zone = ZoneInfo(inventory.centre.timezone)
    clients = []
    for segment in ("readers", "staff", "digitization"):
        asset = next(a for a in inventory.assets if a.ip_on(segment) is not None)
        clients.append((str(asset.ip_on(segment)), "-"))
    monday = datetime(2026, 11, 16, tzinfo=zone)
    log = generate(folder / "access.log", 7000, clients, BUSY_DOMAINS, monday, 7 * 86400, denied_share=15)
    view = folder / "view.yml"
    view.write_text(
        "categories: {"
        + ", ".join(f"{category}: [{domain}]" for domain, category in sorted(BUSY_CATEGORIES.items()))
        + "}\n"
    )
    records = folder / "evidence"
    records.mkdir()
    holder = next(a for a in inventory.assets if a.data)
    for day in range(7):
        when = monday + timedelta(days=day, hours=2)
        record = _backup_record(holder, when, "failed" if day == 3 else "ok", (50 + day) * 2**20, (day + 1) * 2**20)
        (records / f"backup-{day}.json").write_text(json.dumps(record))
    register = folder / "register.csv"
    register.write_text(
        "id,collection,type,format,pages,minutes,bytes,date\n"
        "EK-1,Oʻlkashunoslik,book,PDF/A,200,,1048576,2026-11-17\n"
        "AV-1,Folklor,audio,FLAC,,45,2097152,2026-11-19\n"
        "AV-2,Folklor,audio,FLAC,,30,2097152,2026-11-20\n"
    )
    plan = folder / "plan.yml"
    plan.write_text(
        "year: 2026\ntargets:\n  - {collection: Oʻlkashunoslik, items: 4}\n  - {collection: Folklor, items: 10}\n"
    )
    return {"access_logs": [log], "evidence_dir": records, "policy_view": view, "register": register, "plan": plan}
