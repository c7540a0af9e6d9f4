"""The register of digitised resources (Nizom F8, T2): items of the electronic library and of the
audio/video archive, and the plan they are measured against.

Register: a CSV file with a header row and these columns (one row per item)::

    id,collection,type,format,pages,minutes,bytes,date
    EK-000123,Oʻlkashunoslik,book,PDF/A,212,,48213344,2026-11-18
    AV-000045,Xalq ogʻzaki ijodi,audio,FLAC,,46,512000000,2026-11-19

``type`` is ``book``, ``periodical``, ``manuscript``, ``photo``, ``map``, ``audio`` or ``video``;
``pages`` (scans) or ``minutes`` (recordings) may be empty; ``date`` is when the item entered the
register (ISO date). Items a digitisation station's akm-ocr enters come as evidence records
(``digitised.item``, :func:`items_from_records`) and are counted beside the CSV's. Plan: a YAML file
of yearly targets per collection::

    year: 2026
    targets:
      - {collection: Oʻlkashunoslik, items: 400, pages: 60000}
      - {collection: Xalq ogʻzaki ijodi, items: 120, minutes: 5000}

Bad rows are reported with their line number and skipped.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml

from akm.errors import Problem
from akm.i18n import _

COLUMNS = ("id", "collection", "type", "format", "pages", "minutes", "bytes", "date")
TYPES = ("book", "periodical", "manuscript", "photo", "map", "audio", "video")


@dataclass(frozen=True)
class Item:
    id: str
    collection: str
    type: str
    format: str
    pages: int
    minutes: int
    bytes: int
    date: date


def _number(text: str) -> int:
    return int(text) if text.strip() else 0


def read_register(path: Path) -> tuple[list[Item], list[Problem]]:
    """Read the register CSV; return its items and the problems of rows that were skipped."""
    items: list[Item] = []
    problems: list[Problem] = []
    with Path(path).open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            problems.append(
                Problem(
                    str(path),
                    1,
                    ", ".join(missing),
                    "report.register-columns",
                    _("columns missing from the header"),
                    _("the header is: {columns}").format(columns=",".join(COLUMNS)),
                )
            )
            return items, problems
        for row in reader:
            try:
                if row["type"] not in TYPES:
                    raise ValueError("type")
                items.append(
                    Item(
                        row["id"],
                        row["collection"],
                        row["type"],
                        row["format"],
                        _number(row["pages"]),
                        _number(row["minutes"]),
                        _number(row["bytes"]),
                        date.fromisoformat(row["date"]),
                    )
                )
            except (ValueError, TypeError, AttributeError) as exc:
                problems.append(
                    Problem(
                        str(path),
                        reader.line_num,
                        str(exc) if str(exc) == "type" else "",
                        "report.register-row",
                        _("row skipped: a value is not valid"),
                        _("check type, numbers and the ISO date"),
                    )
                )
    return items, problems


def items_from_records(records: Iterable, zone: ZoneInfo) -> list[Item]:
    """The items that ``digitised.item`` evidence records entered (akm-ocr on a digitisation station),
    dated on the centre's calendar; an item made again (same id) counts once, as its newest record
    says."""
    newest = {r.subject: r for r in sorted((r for r in records if r.kind == "digitised.item"), key=lambda r: r.time)}
    return [
        Item(
            r.subject,
            r.extra["collection"],
            r.extra["type"],
            r.extra["format"],
            r.extra["pages"],
            0,
            r.bytes or 0,
            r.time.astimezone(zone).date(),
        )
        for r in newest.values()
    ]


def read_plan(path: Path) -> dict[str, dict[str, int]]:
    """Return ``{collection: {"items": n, "pages": n, "minutes": n}}`` of the plan file."""
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    plan = {}
    for target in data.get("targets", []):
        plan[str(target["collection"])] = {k: int(target.get(k, 0) or 0) for k in ("items", "pages", "minutes")}
    return plan
