"""Evidence records: one JSON file per run, read later by the reports.

Records are written atomically (temporary file, then rename) so a report never reads half a record.
The directory comes from ``--evidence-dir``, else ``AKM_EVIDENCE_DIR``, else ``/var/lib/akm/evidence``;
backup records go to its ``backup/`` subdirectory and alerts to ``alerts/``.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path

DEFAULT_EVIDENCE_DIR = Path("/var/lib/akm/evidence")


def evidence_dir(explicit: Path | str | None = None) -> Path:
    """Return the evidence directory chosen by flag, environment or default."""
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("AKM_EVIDENCE_DIR", DEFAULT_EVIDENCE_DIR))


def now() -> datetime:
    """Return the current time in UTC, to the second."""
    return datetime.now(UTC).replace(microsecond=0)


def stamp(moment: datetime) -> str:
    """Return *moment* as a compact UTC stamp used in file names (``20261125T221500Z``)."""
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def iso(moment: datetime) -> str:
    """Return *moment* as an ISO 8601 UTC string."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def write_json(path: Path, record: dict) -> Path:
    """Write *record* to *path* atomically, sorted and indented, and return *path*."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(record, handle, indent=2, sort_keys=True, ensure_ascii=False)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_record(base: Path, kind: str, record: dict, moment: datetime, suffix: str = "") -> Path:
    """Write an evidence record of *kind* under ``base/backup/`` and return its path."""
    name = f"{kind}-{suffix + '-' if suffix else ''}{stamp(moment)}"
    path = base / "backup" / f"{name}.json"
    number = 1
    while path.exists():
        number += 1
        path = base / "backup" / f"{name}-{number}.json"
    record = {"kind": kind, **record}
    return write_json(path, record)


def write_alert(base: Path, code: str, message: str, moment: datetime, details: dict | None = None) -> Path:
    """Write an alert record (something a person must look at) under ``base/alerts/``."""
    record = {
        "kind": "alert",
        "area": "backup",
        "code": code,
        "message": message,
        "time": iso(moment),
        "details": details or {},
    }
    return write_json(base / "alerts" / f"backup-{code.replace('.', '-')}-{stamp(moment)}.json", record)
