"""Scheduled duties: one list (``policies/duties.yml``) of what the centre does by itself.

Each duty says on which kind of host it runs (an inventory profile, or every Debian host, or every host
with data, or every host placing a data class under fixity), when (systemd OnCalendar), through which
systemd units, what evidence it writes, which report section reads it, who is told when it fails and
what they do then. Timers, ``docs/operations.md`` and the tests are generated from this list or checked
against it; the hosts come from the inventory only (:func:`assignments`).

:func:`load` reads the list into validated :class:`Duty` records and checks it against the repository:
calendars through ``systemd-analyze calendar`` (systemd's own parser), evidence kinds against the
evidence schema, and for each duty that exists today the role default that sets its timer.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field

from akm import evidence
from akm.errors import Error, Problem
from akm.i18n import _
from akm.inventory.model import Duty as PersonDuty
from akm.inventory.model import Profile
from akm.listfile import Item, load_list

DEFAULT_FILE = Path("policies/duties.yml")
INSTANCE = "{data_class}"
REPORT_SECTIONS = ("equipment", "drift", "access", "users", "backups", "network", "digitised", "rules")
"""The sections of a report (:func:`akm.report.build.build`), by key."""

DutyId = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,62}$")]
Text = Annotated[str, Field(min_length=1)]
UnitName = Annotated[str, Field(pattern=r"^[a-z0-9][a-zA-Z0-9@._{}-]*\.(service|timer)$")]
RunsOn = Literal[(*get_args(Profile), "linux", "data", "fixity")]  # type: ignore[valid-type]


class DutiesError(Error):
    """The list of duties has problems; each names the file, line and field."""


class Duty(BaseModel):
    """One scheduled duty (see the head of ``policies/duties.yml``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: DutyId
    name: Text
    name_en: Text
    runs_on: RunsOn
    per: Literal["host", "data_class"] = "host"
    calendar: Text
    variable: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)?$")] | None = None
    role: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    service: UnitName
    timer: UnitName
    status: Literal["built", "to_build"]
    stock: bool = False
    evidence: list[Annotated[str, Field(pattern=r"^[a-z]+\.[a-z-]+$")]]
    report: Literal[(*REPORT_SECTIONS, "none")]  # type: ignore[valid-type]
    alert: list[PersonDuty]
    remedy: Text
    remedy_en: Text

    def unit(self, name: str, data_class: str = "") -> str:
        """The unit *name* (``service`` or ``timer``) of the instance for *data_class*."""
        return getattr(self, name).replace(INSTANCE, data_class)


@dataclass(frozen=True)
class Assignment:
    """One unit of a duty on one host of an inventory."""

    host: str
    duty: Duty
    data_class: str = ""

    @property
    def service(self) -> str:
        return self.duty.unit("service", self.data_class)

    @property
    def timer(self) -> str:
        return self.duty.unit("timer", self.data_class)


def _problem(item: Item, field: str, code: str, message: str, hint: str) -> Problem:
    return item.problem("duties", field, code, message, hint)


def load(path: Path = DEFAULT_FILE, roles: Path | None = None) -> list[Duty]:
    """Read and check the list at *path* (roles under *roles*, default: ``roles/`` beside its parent);
    raise :class:`DutiesError` with every problem found."""
    path = Path(path)
    items, problems = load_list(path, "duties", Duty)
    if not problems:
        problems.extend(_check(items, Path(roles) if roles else path.resolve().parent.parent / "roles"))
    if problems:
        raise DutiesError(problems)
    return [item.record for item in items]


def _check(located: list[Item], roles: Path) -> list[Problem]:
    problems: list[Problem] = []
    bad = invalid_calendars([item.record.calendar for item in located])
    seen: dict[str, Item] = {}
    for item in located:
        duty = item.record
        for key in (duty.id, duty.service):
            if key in seen:
                problems.append(
                    _problem(
                        item,
                        "id" if key == duty.id else "service",
                        "duties.duplicate",
                        _("{value!r} is written twice (first on line {first})").format(value=key, first=seen[key].line),
                        _("give each duty its own id and its own service"),
                    )
                )
            seen[key] = item
        problems.extend(_check_units(item))
        known = evidence.kinds()
        for kind in duty.evidence:
            if kind not in known and duty.status == "built":
                problems.append(
                    _problem(
                        item,
                        "evidence",
                        "duties.unknown-kind",
                        _("the evidence kind {kind!r} is not in the evidence schema").format(kind=kind),
                        _("use a kind of scripts/akm/evidence/schema.json, or describe the new kind there"),
                    )
                )
        if not (roles / duty.role).is_dir():
            problems.append(
                _problem(
                    item,
                    "role",
                    "duties.unknown-role",
                    _("there is no role {role!r}").format(role=duty.role),
                    _("name a directory of roles/"),
                )
            )
        elif duty.status == "built" and not duty.stock and duty.calendar not in bad:
            problems.extend(_check_variable(item, roles))
        if duty.calendar in bad:
            problems.append(
                _problem(
                    item,
                    "calendar",
                    "duties.calendar",
                    _("{calendar!r} is not a systemd calendar expression").format(calendar=item.record.calendar),
                    _("write it as systemd.time(7) says, e.g. '*-*-* 01:30:00'; test it with systemd-analyze calendar"),
                )
            )
    return problems


def _check_units(item: Item) -> list[Problem]:
    duty = item.record
    problems = []
    for field in ("service", "timer"):
        name = getattr(duty, field)
        if not duty.stock and not name.startswith("akm-"):
            problems.append(
                _problem(
                    item,
                    field,
                    "duties.unit-name",
                    _("the project's own units are named akm-*, not {name!r}").format(name=name),
                    _("rename the unit, or mark a Debian unit with stock: true"),
                )
            )
        if (INSTANCE in name) != (duty.per == "data_class"):
            problems.append(
                _problem(
                    item,
                    field,
                    "duties.instance",
                    _("a duty per data class names its units with {instance}, a duty per host does not").format(
                        instance=INSTANCE
                    ),
                    _("write e.g. akm-backup-drill@{instance}.service with per: data_class").format(instance=INSTANCE),
                )
            )
    return problems


def _check_variable(item: Item, roles: Path) -> list[Problem]:
    duty = item.record
    if duty.variable is None:
        return [
            _problem(
                item,
                "variable",
                "duties.no-variable",
                _("a duty built by a role names the role default that sets its calendar"),
                _("add variable: <role>_..._on_calendar"),
            )
        ]
    defaults_file = roles / duty.role / "defaults" / "main.yml"
    defaults = yaml.safe_load(defaults_file.read_text(encoding="utf-8")) if defaults_file.is_file() else {}
    value: object = defaults or {}
    for part in duty.variable.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if value is None:
        return [
            _problem(
                item,
                "variable",
                "duties.unknown-variable",
                _("{file} has no default {variable}").format(file=defaults_file, variable=duty.variable),
                _("name the role default that sets the timer's OnCalendar"),
            )
        ]
    if value != duty.calendar:
        return [
            _problem(
                item,
                "calendar",
                "duties.calendar-differs",
                _("the role sets {variable} to {value!r}, the list says {calendar!r}").format(
                    variable=duty.variable, value=value, calendar=duty.calendar
                ),
                _("make the list and the role default say the same"),
            )
        ]
    return []


def invalid_calendars(calendars: list[str]) -> set[str]:
    """The calendar expressions among *calendars* that ``systemd-analyze calendar`` refuses."""
    tool = shutil.which("systemd-analyze")
    if tool is None:
        raise DutiesError.one(
            "duties.no-systemd-analyze",
            _("systemd-analyze is not installed, so the calendars cannot be checked"),
            _("install the Debian package systemd (make deps)"),
        )
    unique = sorted(set(calendars))
    if not unique or subprocess.run([tool, "calendar", *unique], capture_output=True).returncode == 0:
        return set()
    return {c for c in unique if subprocess.run([tool, "calendar", c], capture_output=True).returncode != 0}


_TIME = re.compile(r"(?:^|\s)([0-9*]{1,2}):([0-9*]{2})(?::[0-9*]{2})?$")


def time_of_day(calendar: str) -> str:
    """The ``HH:MM`` of *calendar* (``daily`` is 00:00, ``*`` stays: ``**:40`` is every hour)."""
    match = _TIME.search(calendar)
    if match is None:
        return "00:00"
    hour, minute = match.groups()
    return f"{'**' if hour == '*' else hour.zfill(2)}:{minute}"


def day_order(duty: Duty) -> tuple[str, str]:
    """The place of *duty* in a day: by time of day, the hourly ones last, then by id."""
    return time_of_day(duty.calendar).replace("*", "~"), duty.id


def assignments(duties: list[Duty], inventory) -> list[Assignment]:
    """Every unit of every duty on every host of *inventory* (a loaded :class:`Inventory`), sorted by
    host and time of day: the hosts are Ansible's (:mod:`akm.inventory.ansible`)."""
    from akm.inventory.ansible import build

    built = build(inventory)
    groups, hostvars = built["groups"], built["hostvars"]
    linux = groups.get("linux", [])
    backup_servers = set(groups.get("profile_backup_server", []))
    fixity = {c.id for c in inventory.data_classes.values() if c.fixity}
    found = []
    for duty in duties:
        if duty.runs_on == "linux":
            hosts = linux
        elif duty.runs_on in ("data", "fixity"):
            hosts = [h for h in linux if hostvars[h]["akm_data"] and h not in backup_servers]
        else:
            hosts = [h for h in groups.get(f"profile_{duty.runs_on}", []) if h in linux]
        for host in hosts:
            classes = sorted({d["data_class"] for d in hostvars[host]["akm_data"]})
            if duty.runs_on == "fixity":
                classes = [c for c in classes if c in fixity]
                if not classes:
                    continue
            if duty.per == "host":
                found.append(Assignment(host, duty))
            else:
                found.extend(Assignment(host, duty, data_class) for data_class in classes)
    return sorted(found, key=lambda a: (a.host, *day_order(a.duty), a.data_class))
