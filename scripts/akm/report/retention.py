"""Retention of the proxy logs collected onto the management host (``akm report retention``).

The gateway rotates its own Squid log and keeps it ``settings.log_retention_days`` days (the logrotate
file the access policy builds). The copies collected onto the management host for the reports are kept
exactly as long: :func:`apply` removes every file under the collected logs' folder that was last
written more than that many days ago (its modification time, as logrotate's ``maxage`` judges) and
returns ONE evidence record (``kind: proxylog.retention``) of what it removed and kept. The number of
days is read from the policy when the duty runs (:func:`retention_days`), so the policy stays the one
place it is written.

Names beginning with a dot (a collector's file or folder still being written) are left alone, and so
are folders: a collector's folder per gateway stays even when it is empty.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

from akm import evidence
from akm.errors import Error
from akm.i18n import _

KIND = "proxylog.retention"


class RetentionError(Error):
    """The collected logs' folder, or the retention the policy sets, cannot be read."""


def retention_days(policy_dir: Path) -> int:
    """``settings.log_retention_days`` of the access policy at *policy_dir*. A settings block with a
    problem raises :class:`RetentionError` rather than falling back to the default: logs must not be
    removed by a number the policy does not say."""
    from akm.policy.load import load_policy

    raw = load_policy(policy_dir)
    wrong = [p for p in raw.problems if p.field.split(".", 1)[0] == "settings"]
    if wrong:
        raise RetentionError(wrong)
    return raw.settings.record.log_retention_days


def apply(folder: Path, days: int, now: datetime | None = None) -> dict:
    """Remove the files under *folder* last written more than *days* days before *now* (default: now);
    return the evidence record. A file that cannot be removed is listed under ``errors`` and makes the
    record's result ``failed``; the others are still removed."""
    folder = Path(folder)
    if not folder.is_dir():
        raise RetentionError.one(
            "report.retention-no-folder",
            _("the folder of the collected proxy logs does not exist"),
            _("check management_proxy_log_dir: the management role creates that folder"),
            file=str(folder),
        )
    moment = now or evidence.now()
    limit = (moment - timedelta(days=days)).timestamp()
    removed: list[str] = []
    errors: list[dict] = []
    kept = removed_bytes = 0
    for root, folders, names in os.walk(folder):
        folders[:] = sorted(name for name in folders if not name.startswith("."))
        for name in sorted(names):
            path = Path(root) / name
            if name.startswith(".") or path.is_symlink() or not path.is_file():
                continue
            relative = path.relative_to(folder).as_posix()
            info = path.stat()
            if info.st_mtime >= limit:
                kept += 1
                continue
            try:
                path.unlink()
            except OSError as exc:
                errors.append(
                    {
                        "code": "report.retention-unlink",
                        "message": str(exc.strerror or exc),
                        "paths": [relative],
                    }
                )
                continue
            removed.append(relative)
            removed_bytes += info.st_size
    return evidence.record(
        KIND,
        "failed" if errors else "ok",
        time=moment,
        summary=_("{removed} files older than {days} days removed, {kept} kept").format(
            removed=len(removed), days=days, kept=kept
        ),
        folder=str(folder.resolve()),
        days=days,
        removed=removed,
        kept=kept,
        bytes=removed_bytes,
        errors=errors,
    )


def write_record(record: dict, evidence_dir: Path) -> Path:
    """Write *record* as ``<evidence>/proxylog/retention-<UTC time>.json``."""
    moment = datetime.fromisoformat(record["time"])
    return evidence.write(Path(evidence_dir) / "proxylog", f"retention-{evidence.stamp(moment)}", record)
