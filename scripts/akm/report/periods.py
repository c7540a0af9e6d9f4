"""Report periods: a week, a month, a quarter or a year, written the way ``--period`` takes them.

``2026-W47`` (ISO week), ``2026-11``, ``2026-Q4``, ``2026``. Without ``--period`` the last complete
period before *today* is taken. A period is ``[start, end)`` in the centre's time zone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from akm.errors import Error
from akm.i18n import _, babel_locale, format_date

KINDS = ("weekly", "monthly", "quarterly", "annual")


class PeriodError(Error):
    """``--period`` does not name a period of the report's kind."""


@dataclass(frozen=True)
class Period:
    """``[start, end)`` as dates; ``label`` is the ``--period`` spelling."""

    kind: str
    start: date
    end: date
    label: str

    def bounds(self, timezone: str) -> tuple[datetime, datetime]:
        """The period as aware datetimes at midnight in *timezone*."""
        zone = ZoneInfo(timezone)
        return datetime.combine(self.start, time(), zone), datetime.combine(self.end, time(), zone)

    def contains(self, day: date) -> bool:
        return self.start <= day < self.end

    def title(self) -> str:
        """The period in words, in the selected language."""
        from babel.dates import format_skeleton

        last = self.end - timedelta(days=1)
        if self.kind == "monthly":
            return format_skeleton("yMMMM", self.start, locale=babel_locale())
        if self.kind == "quarterly":
            return _("quarter {quarter} of {year}").format(
                quarter=(self.start.month - 1) // 3 + 1, year=self.start.year
            )
        if self.kind == "annual":
            return _("year {year}").format(year=self.start.year)
        return _("{start} – {end}").format(start=format_date(self.start), end=format_date(last))


def _problem(kind: str, text: str) -> PeriodError:
    examples = {"weekly": "2026-W47", "monthly": "2026-11", "quarterly": "2026-Q4", "annual": "2026"}
    return PeriodError.one(
        "report.bad-period",
        _("{text!r} is not a {kind} period").format(text=text, kind=kind),
        _("write it like {example}").format(example=examples[kind]),
        file="--period",
    )


def parse(kind: str, text: str | None, today: date) -> Period:
    """Return the period of *kind* named by *text*, or the last complete one before *today*."""
    if text is None:
        return previous(kind, today)
    patterns = {
        "weekly": r"(\d{4})-W(\d{2})",
        "monthly": r"(\d{4})-(\d{2})",
        "quarterly": r"(\d{4})-Q([1-4])",
        "annual": r"(\d{4})",
    }
    match = re.fullmatch(patterns[kind], text)
    if not match:
        raise _problem(kind, text)
    year = int(match.group(1))
    try:
        if kind == "weekly":
            start = date.fromisocalendar(year, int(match.group(2)), 1)
            return Period(kind, start, start + timedelta(days=7), text)
        if kind == "monthly":
            start = date(year, int(match.group(2)), 1)
        elif kind == "quarterly":
            start = date(year, 3 * int(match.group(2)) - 2, 1)
        else:
            start = date(year, 1, 1)
    except ValueError:
        raise _problem(kind, text) from None
    return Period(kind, start, _advance(kind, start), text)


def _advance(kind: str, start: date) -> date:
    months = {"monthly": 1, "quarterly": 3, "annual": 12}[kind]
    month = start.month - 1 + months
    return date(start.year + month // 12, month % 12 + 1, 1)


def previous(kind: str, today: date) -> Period:
    """The last complete period of *kind* that ended on or before *today*."""
    if kind == "weekly":
        start = today - timedelta(days=today.weekday() + 7)
        iso = start.isocalendar()
        return Period(kind, start, start + timedelta(days=7), f"{iso.year}-W{iso.week:02d}")
    if kind == "monthly":
        end = today.replace(day=1)
        start = (end - timedelta(days=1)).replace(day=1)
        return Period(kind, start, end, f"{start.year}-{start.month:02d}")
    if kind == "quarterly":
        end = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
        start = _back(end, 3)
        return Period(kind, start, end, f"{start.year}-Q{(start.month - 1) // 3 + 1}")
    start = date(today.year - 1, 1, 1)
    return Period(kind, start, date(today.year, 1, 1), str(start.year))


def _back(day: date, months: int) -> date:
    month = day.month - 1 - months
    return date(day.year + month // 12, month % 12 + 1, 1)
