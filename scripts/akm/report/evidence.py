"""Evidence records as the reports read them: what the other areas of the system did.

Every area writes one JSON object per event under the evidence directory, in the one format of
:mod:`akm.evidence` (its ``schema.json``: kind, time with its zone, result, host, duty ... and a part
per kind). The reports read every record with the same schema; a file that does not fit it is
reported as a problem and skipped, and never stops a report. Besides the envelope, a report reads a
kind's own part from :attr:`Record.extra` (``classes`` of a backup run, ``hosts`` of the drift facts).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from akm import evidence
from akm.errors import Problem

RESULTS = evidence.RESULTS
KNOWN = (
    "host",
    "duty",
    "subject",
    "who",
    "revision",
    "summary",
    "bytes",
    "files",
    "duration_s",
    "approved_by",
)


@dataclass(frozen=True)
class Record:
    """One evidence record."""

    kind: str
    time: datetime
    result: str
    file: str
    host: str = ""
    duty: str = ""
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


def _record(data: dict, where: str) -> Record:
    known = {name: data[name] for name in KNOWN if name in data}
    extra = {k: v for k, v in data.items() if k not in KNOWN and k not in ("kind", "time", "result", "changes")}
    return Record(
        kind=data["kind"],
        time=datetime.fromisoformat(data["time"]),
        result=data["result"],
        file=where,
        changes=tuple(data.get("changes", ())),
        extra=extra,
        **known,
    )


def read(directory: Path | None) -> tuple[list[Record], list[Problem]]:
    """Read every record under *directory*; return them sorted by time, and the problems found."""
    records: list[Record] = []
    problems: list[Problem] = []
    if directory is None or not Path(directory).is_dir():
        return records, problems
    for path in evidence.files(directory):
        found, wrong = evidence.load(path)
        problems.extend(wrong)
        records.extend(_record(data, where) for where, data in found)
    records.sort(key=lambda r: (r.time, r.kind, r.file))
    return records, problems


def in_period(records: list[Record], start: datetime, end: datetime, *prefixes: str) -> list[Record]:
    """The records of the given kinds (``backup.`` matches every backup record) in ``[start, end)``."""
    return [r for r in records if start <= r.time < end and any(r.kind.startswith(p) for p in prefixes)]
