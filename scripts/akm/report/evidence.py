"""Evidence records: what the other areas of the system did, kept as small JSON files for the reports.

Every area writes one JSON object per event into a file under the evidence directory (any depth,
``*.json``; a file may also hold a JSON list of records). Required fields:

``kind``
    what happened, ``area.event``: ``policy.push``, ``backup.run``, ``backup.check``,
    ``fixity.verify``, ``restore.drill``, ``network.config-backup``, ``network.push``, ``drift.facts``.
``time``
    when it ended, ISO 8601 with a UTC offset (``2026-11-20T02:00:05+05:00``).
``result``
    ``ok``, ``warning``, ``soft_failure`` or ``failed``.

Optional common fields: ``host`` (inventory hostname), ``subject`` (data class, device, policy name ...),
``who`` (person id), ``revision`` (git), ``summary`` (one line a person reads), ``bytes``, ``files``,
``duration_s``, ``approved_by`` and ``changes`` (list of strings). Anything else is kept in ``extra``
and ignored by the reports. A file that is not valid JSON or lacks a required field is reported as a
problem and skipped; it never stops a report.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from akm.errors import Problem
from akm.i18n import _

RESULTS = ("ok", "warning", "soft_failure", "failed")
KNOWN = (
    "host",
    "subject",
    "who",
    "revision",
    "summary",
    "bytes",
    "files",
    "duration_s",
    "approved_by",
    "changes",
)


@dataclass(frozen=True)
class Record:
    """One evidence record."""

    kind: str
    time: datetime
    result: str
    file: str
    host: str = ""
    subject: str = ""
    who: str = ""
    revision: str = ""
    summary: str = ""
    bytes: int | None = None
    files: int | None = None
    duration_s: float | None = None
    approved_by: str = ""
    changes: tuple[str, ...] = ()
    extra: dict = field(default_factory=dict, compare=False, hash=False)


# What the other areas write in their own records, as the report's results.
_RESULTS = {
    "ok": "ok",
    "confirmed": "ok",
    "changed": "ok",
    "partial": "warning",
    "skipped": "warning",
    "soft-failure": "soft_failure",
    "error": "failed",
    "rolled_back": "failed",
    "rejected": "failed",
}
_BACKUP_KINDS = {
    "run": "backup.run",
    "check": "backup.check",
    "prune": "backup.prune",
    "restore": "restore.run",
    "drill": "restore.drill",
    "fixity-build": "fixity.build",
    "fixity-verify": "fixity.verify",
}


def _push_time(push: str) -> str:
    """``20261125T233000Z`` (the push id of the access-policy role) as ISO 8601."""
    return datetime.strptime(push, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).isoformat()


def from_areas(data: dict) -> dict:
    """Read a record of the backup, access-policy push or network areas, written in that area's own
    shape (``kind: run``, ``kind: access-policy-push``, ``kind: net.backup``), as a record of the
    format above. Records already in that format, and anything unknown, are returned as they are."""
    kind = data.get("kind")
    if not isinstance(kind, str) or isinstance(data.get("time"), str):
        return data
    if kind == "access-policy-push" and isinstance(data.get("push"), str):
        return {
            **data,
            "kind": "policy.push",
            "time": _push_time(data["push"]),
            "result": _RESULTS.get(str(data.get("result")), "failed"),
            "revision": str(data.get("git_revision", "")),
            "summary": " ".join(filter(None, (str(data.get("release", "")), str(data.get("reason", ""))))),
            "changes": [str(c) for c in data.get("changed_files", [])],
        }
    if kind.startswith("net.") and isinstance(data.get("finished"), str):
        devices = data.get("devices") or []
        failed = [d.get("device", "?") for d in devices if d.get("status") not in ("ok", "changed")]
        event = {"backup": "config-backup"}.get(kind[4:], kind[4:])
        return {
            **data,
            "kind": f"network.{event}",
            "time": data["finished"],
            "result": "failed" if failed else "ok",
            "summary": ", ".join(f"{d.get('device')}: {d.get('status')}" for d in devices),
        }
    if kind in _BACKUP_KINDS and isinstance(data.get("finished") or data.get("started"), str):
        return {
            **data,
            "kind": _BACKUP_KINDS[kind],
            "time": data.get("finished") or data["started"],
            "result": _RESULTS.get(str(data.get("result")), "failed"),
        }
    return data


def _record(data, where: str, problems: list[Problem]) -> Record | None:
    if isinstance(data, dict):
        data = from_areas(data)
    if not isinstance(data, dict):
        problems.append(
            Problem(
                where,
                None,
                "",
                "report.evidence-not-object",
                _("a record must be a JSON object"),
                _("write one object with kind, time and result"),
            )
        )
        return None
    missing = [name for name in ("kind", "time", "result") if not isinstance(data.get(name), str)]
    if missing:
        problems.append(
            Problem(
                where,
                None,
                ", ".join(missing),
                "report.evidence-missing",
                _("required field missing or not text"),
                _("see docs/reports.md"),
            )
        )
        return None
    try:
        when = datetime.fromisoformat(data["time"])
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        problems.append(
            Problem(
                where,
                None,
                "time",
                "report.evidence-time",
                _("time {value!r} is not ISO 8601 with an offset").format(value=data["time"]),
                _("write it like 2026-11-20T02:00:05+05:00"),
            )
        )
        return None
    if data["result"] not in RESULTS:
        problems.append(
            Problem(
                where,
                None,
                "result",
                "report.evidence-result",
                _("unknown result {value!r}").format(value=data["result"]),
                _("use one of: {choices}").format(choices=", ".join(RESULTS)),
            )
        )
        return None
    numeric = {"bytes": int, "files": int, "duration_s": (int, float)}
    wrong = [
        name
        for name, kinds in numeric.items()
        if data.get(name) is not None and (isinstance(data[name], bool) or not isinstance(data[name], kinds))
    ]
    if "changes" in data and not isinstance(data["changes"], list):
        wrong.append("changes")
    if wrong:
        problems.append(
            Problem(
                where,
                None,
                ", ".join(wrong),
                "report.evidence-bad",
                _("a field has the wrong type"),
                _("bytes and files are whole numbers, duration_s a number, changes a list of strings"),
            )
        )
        return None
    known = {name: data[name] for name in KNOWN if name in data and data[name] is not None}
    if "changes" in known:
        known["changes"] = tuple(str(c) for c in known["changes"]) if isinstance(known["changes"], list) else ()
    for name in ("host", "subject", "who", "revision", "summary", "approved_by"):
        if name in known:
            known[name] = str(known[name])
    extra = {k: v for k, v in data.items() if k not in KNOWN and k not in ("kind", "time", "result")}
    try:
        return Record(kind=data["kind"], time=when, result=data["result"], file=where, extra=extra, **known)
    except TypeError:
        problems.append(
            Problem(
                where,
                None,
                "",
                "report.evidence-bad",
                _("a field has the wrong type"),
                _("see docs/reports.md"),
            )
        )
        return None


def read(directory: Path | None) -> tuple[list[Record], list[Problem]]:
    """Read every record under *directory*; return them sorted by time, and the problems found."""
    records: list[Record] = []
    problems: list[Problem] = []
    if directory is None or not Path(directory).is_dir():
        return records, problems
    for path in sorted(Path(directory).rglob("*.json")):
        if path.name.endswith("-latest.json"):
            continue  # the network area's copy of its newest record, already read under its own name
        where = str(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            problems.append(
                Problem(
                    where,
                    getattr(exc, "lineno", None),
                    "",
                    "report.evidence-unreadable",
                    _("not a readable JSON file"),
                    _("fix or remove the file"),
                )
            )
            continue
        for index, item in enumerate(data if isinstance(data, list) else [data]):
            record = _record(item, where if not isinstance(data, list) else f"{where}[{index}]", problems)
            if record is not None:
                records.append(record)
    records.sort(key=lambda r: (r.time, r.kind, r.file))
    return records, problems


def in_period(records: list[Record], start: datetime, end: datetime, *prefixes: str) -> list[Record]:
    """The records of the given kinds (``backup.`` matches every backup record) in ``[start, end)``."""
    return [r for r in records if start <= r.time < end and any(r.kind.startswith(p) for p in prefixes)]
