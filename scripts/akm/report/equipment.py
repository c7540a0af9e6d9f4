"""The equipment register (Nizom T6) from the inventory, and its changes from the inventory's git history.

Counts come from the inventory as it is. What was added, moved, sent to repair or written off in a
period comes from git: the inventory is loaded as it was at the last commit before the period and after
every commit inside it, and consecutive states are compared asset by asset (by inventory number).
"""

from __future__ import annotations

import subprocess
import tarfile
import tempfile
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime
from io import BytesIO
from pathlib import Path

from akm.archive import extract_files
from akm.inventory import InventoryError, load_inventory


@dataclass(frozen=True)
class Change:
    """One change of one asset: ``added``, ``moved``, ``to_repair``, ``repaired``, ``written_off``,
    ``removed``; ``detail`` says from where to where."""

    day: date
    commit: str
    inventory_no: str
    hostname: str
    change: str
    detail: str


def counts(inventory, attribute: str) -> list[tuple[str, int]]:
    """Number of assets per value of *attribute* (``department``, ``kind``, ``status``), sorted."""
    return sorted(Counter(getattr(asset, attribute) for asset in inventory.assets).items())


AGE_BANDS = (1, 3, 5, 8)
"""Upper ends (whole years, exclusive) of the age bands of the register; a last band holds the rest."""


def age_band(purchased: date, on: date) -> int:
    """The index of the band of :data:`AGE_BANDS` an item bought on *purchased* is in on *on* (its age in
    whole years; an item bought later than *on* counts as new)."""
    years = on.year - purchased.year - ((on.month, on.day) < (purchased.month, purchased.day))
    return next((index for index, upper in enumerate(AGE_BANDS) if years < upper), len(AGE_BANDS))


def by_age(inventory, on: date) -> Counter:
    """Number of assets per (age band, status) on *on*."""
    return Counter((age_band(asset.purchased, on), asset.status) for asset in inventory.assets)


def warranties_ending(inventory, start: date, end: date) -> list:
    """Assets in use whose warranty ends in ``[start, end)``, soonest first."""
    return sorted(
        (
            a
            for a in inventory.assets
            if a.warranty_until and start <= a.warranty_until < end and a.status != "written_off"
        ),
        key=lambda a: (a.warranty_until, a.inventory_no),
    )


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True, text=True).stdout


def _load_at(top: Path, commit: str, relative: str):
    archive = subprocess.run(
        ["git", "-C", str(top), "archive", "--format=tar", commit, relative], check=True, capture_output=True
    ).stdout
    with tempfile.TemporaryDirectory(prefix="akm-inventory-") as scratch:
        with tarfile.open(fileobj=BytesIO(archive)) as tar:
            extract_files(tar, Path(scratch))
        return load_inventory(Path(scratch) / relative)


def _compare(before, after, day: date, commit: str) -> list[Change]:
    old = {a.inventory_no: a for a in (before.assets if before else [])}
    new = {a.inventory_no: a for a in after.assets}
    changes = []
    for number, asset in sorted(new.items()):
        previous = old.get(number)
        if previous is None:
            changes.append(Change(day, commit, number, asset.hostname, "added", f"{asset.department}/{asset.room}"))
            continue
        if (previous.department, previous.room) != (asset.department, asset.room):
            changes.append(
                Change(
                    day,
                    commit,
                    number,
                    asset.hostname,
                    "moved",
                    f"{previous.department}/{previous.room} → {asset.department}/{asset.room}",
                )
            )
        if previous.status != asset.status:
            kind = {"in_repair": "to_repair", "written_off": "written_off"}.get(asset.status, "")
            if not kind and previous.status == "in_repair":
                kind = "repaired"
            if kind:
                changes.append(Change(day, commit, number, asset.hostname, kind, f"{previous.status} → {asset.status}"))
    for number in sorted(set(old) - set(new)):
        changes.append(Change(day, commit, number, old[number].hostname, "removed", ""))
    return changes


def history(inventory_root: Path, start: datetime, end: datetime) -> tuple[list[Change], list[str]]:
    """Changes of the register committed in ``[start, end)``; and notes about what could not be read.

    Raises ``LookupError`` when the inventory is not in a git repository (no history to read).
    """
    root = Path(inventory_root).resolve()
    try:
        top = Path(_git(root, "rev-parse", "--show-toplevel").strip())
    except (subprocess.CalledProcessError, FileNotFoundError) as exc:
        raise LookupError(str(root)) from exc
    relative = root.relative_to(top).as_posix()
    notes: list[str] = []
    base = _git(top, "rev-list", "-1", f"--before={start.isoformat()}", "HEAD", "--", relative).strip()
    commits = _git(
        top,
        "log",
        "--reverse",
        "--format=%H %cI",
        f"--since={start.isoformat()}",
        f"--until={end.isoformat()}",
        "--",
        relative,
    ).split("\n")
    state = None
    if base:
        try:
            state = _load_at(top, base, relative)
        except InventoryError:
            notes.append(base[:10])
    changes: list[Change] = []
    for line in filter(None, commits):
        commit, when = line.split(" ", 1)
        stamp = datetime.fromisoformat(when)
        if not (start <= stamp < end):
            continue
        try:
            current = _load_at(top, commit, relative)
        except InventoryError:
            notes.append(commit[:10])
            continue
        changes.extend(_compare(state, current, stamp.date(), commit[:10]))
        state = current
    return changes, notes
