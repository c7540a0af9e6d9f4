"""Assemble a report from the inventory, its git history, the proxy logs and the evidence records.

Every figure comes from one of those sources; a section whose source has nothing for the period says
so (``no data for the period``) instead of showing zeros.
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml

from akm.errors import Error
from akm.i18n import _, format_date, format_number
from akm.report import charts, digitised, drift, equipment, evidence, squidlog
from akm.report.model import Chart, Report, Section, Signature, Table
from akm.report.periods import Period

MIB = 2**20
PAPER_ROWS = 30
PAPER_DAYS = 31
KIND_NAMES = {
    "workstation": "workstation",
    "laptop": "laptop",
    "server": "server",
    "printer": "printer",
    "mfp": "multifunction printer",
    "scanner": "scanner",
    "router": "router",
    "switch": "switch",
    "access_point": "Wi-Fi access point",
    "ups": "UPS",
    "projector": "projector",
}
"""English names of the inventory's kinds; translated at use through the catalog."""
WARRANTY_DAYS = 90


class ReportError(Error):
    """A report cannot be made from the inputs given."""


@dataclass
class Sources:
    """Where the report's figures come from; every path but the inventory is optional."""

    inventory: object
    access_logs: list[Path] = field(default_factory=list)
    evidence_dir: Path | None = None
    policy_view: Path | None = None
    register: Path | None = None
    plan: Path | None = None
    rules_dir: Path | None = None
    access_policy: Path | None = None
    """the access policy directory (policies/access/NAME); takes the place of ``policy_view``"""
    director: bool = False
    """include per-person figures (personal data): only in the copy meant for the director"""


def load_policy_view(path: Path, timezone: str) -> tuple[list, list, list | None]:
    """Read the categories and grants the users' history checks against, from a small YAML file::

        categories: {social: [facebook.com, vk.com], video: [youtube.com]}
        restricted_for: [segment:readers, segment:children]   # optional; absent = everyone
        grants:
          - {person: n.toshmatova, category: social, from: 2026-11-01, until: 2026-12-01, ref: "No 12"}

    A grant names one of ``person``, ``host`` or ``department``; ``from`` and ``until`` are dates
    (midnight in the centre's time zone; ``until`` is the first day it no longer holds). The access
    policy (``akm.policy``) can write this file from the approved policy.
    """
    zone = ZoneInfo(timezone)
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        rules = [
            squidlog.CategoryRule(str(domain), str(category))
            for category, domains in (data.get("categories") or {}).items()
            for domain in domains
        ]
        grants = []
        for item in data.get("grants") or []:
            kind = next(k for k in ("person", "host", "department") if k in item)
            start = datetime.combine(date.fromisoformat(str(item["from"])), time(), zone)
            until = datetime.combine(date.fromisoformat(str(item["until"])), time(), zone)
            grants.append(
                squidlog.Grant(kind, str(item[kind]), str(item["category"]), start, until, str(item.get("ref", "")))
            )
        restricted_for = None
        if "restricted_for" in data:
            restricted_for = []
            for text in data["restricted_for"] or []:
                kind, name = str(text).split(":", 1)
                if kind not in ("person", "host", "department", "segment") or not name:
                    raise ValueError(text)
                restricted_for.append((kind, name))
    except (OSError, yaml.YAMLError, KeyError, StopIteration, ValueError, TypeError, AttributeError) as exc:
        raise ReportError.one(
            "report.policy-view",
            _("the categories and grants file cannot be read ({error})").format(error=type(exc).__name__),
            _("see docs/reports.md for its format"),
            file=str(path),
        ) from exc
    return rules, grants, restricted_for


def _no_data(section: Section) -> Section:
    section.no_data = True
    section.paragraphs.append(_("No data for the period."))
    return section


def _department_name(inventory, key: str) -> str:
    department = inventory.departments.get(key)
    if department is None:
        return key or _("unknown")
    return department.name if _lang_is_uz() else department.name_en


def _segment_name(inventory, key: str) -> str:
    """A network segment as a reader knows it: its name in Uzbek, its id (English words) in English."""
    segment = inventory.segments.get(key)
    if segment is None:
        return key or _("no segment")
    return segment.name if _lang_is_uz() else segment.id


def _lang_is_uz() -> bool:
    from akm.i18n import language

    return language() == "uz"


def equipment_section(sources: Sources, period: Period, start: datetime, end: datetime) -> Section:
    inv = sources.inventory
    section = Section("equipment", _("Equipment register"))
    section.paragraphs.append(_("{count} items in the register.").format(count=format_number(len(inv.assets))))
    status_names = {
        "in_use": _("in use"),
        "in_repair": _("in repair"),
        "in_store": _("in store"),
        "written_off": _("written off"),
    }
    departments = Table(
        "equipment_departments",
        _("Items by department"),
        [_("Department"), _("Items")],
        [[_department_name(inv, k), n] for k, n in equipment.counts(inv, "department")],
    )
    section.tables.append(departments)
    section.tables.append(
        Table(
            "equipment_kinds",
            _("Items by kind"),
            [_("Kind"), _("Items")],
            [[_(KIND_NAMES.get(k, k)), n] for k, n in equipment.counts(inv, "kind")],
        )
    )
    by_status = equipment.counts(inv, "status")
    section.tables.append(
        Table(
            "equipment_status",
            _("Items by status"),
            [_("Status"), _("Items")],
            [[status_names.get(k, k), n] for k, n in by_status],
        )
    )
    ages = _age_table(inv, period.end - timedelta(days=1), [k for k, _n in by_status], status_names)
    section.tables.append(ages)
    _add_chart(section, _("Items by department"), departments, (1,))
    _add_chart(section, _("Items by age and status"), ages, tuple(range(1, len(ages.columns))), "stacked")
    change_names = {
        "added": _("added"),
        "moved": _("moved"),
        "to_repair": _("sent to repair"),
        "repaired": _("back from repair"),
        "written_off": _("written off"),
        "removed": _("removed"),
    }
    try:
        changes, notes = equipment.history(inv.root, start, end)
    except LookupError:
        section.paragraphs.append(_("The inventory is not in a git repository: changes cannot be shown."))
        changes, notes = [], []
    if changes:
        totals = Counter(c.change for c in changes)
        section.paragraphs.append(
            _("Changes in the period: {summary}.").format(
                summary=", ".join(f"{change_names[k]} {format_number(v)}" for k, v in sorted(totals.items()))
            )
        )
        section.tables.append(
            Table(
                "equipment_changes",
                _("Changes in the period"),
                [_("Date"), _("Inventory no."), _("Computer"), _("Change"), _("Detail"), _("Commit")],
                [[c.day, c.inventory_no, c.hostname, change_names[c.change], c.detail, c.commit] for c in changes],
                paper_rows=PAPER_ROWS * 2,
            )
        )
    else:
        section.paragraphs.append(_("No changes of the register were committed in the period."))
    for note in notes:
        section.paragraphs.append(_("The inventory at commit {commit} does not validate; skipped.").format(commit=note))
    ending = equipment.warranties_ending(inv, period.end, period.end + timedelta(days=WARRANTY_DAYS))
    section.tables.append(
        Table(
            "warranties",
            _("Warranties ending in the next {days} days").format(days=WARRANTY_DAYS),
            [_("Inventory no."), _("Computer"), _("Model"), _("Warranty until")],
            [[a.inventory_no, a.hostname, a.model, a.warranty_until] for a in ending],
        )
    )
    if period.kind == "annual":
        section.tables.append(
            Table(
                "register",
                _("Full register for the stock-taking"),
                [
                    _("Inventory no."),
                    _("Computer"),
                    _("Kind"),
                    _("Model"),
                    _("Serial"),
                    _("Department"),
                    _("Room"),
                    _("Responsible"),
                    _("Purchased"),
                    _("Warranty until"),
                    _("Status"),
                ],
                [
                    [
                        a.inventory_no,
                        a.hostname,
                        _(KIND_NAMES.get(a.kind, a.kind)),
                        a.model,
                        a.serial,
                        _department_name(inv, a.department),
                        a.room,
                        inv.people[a.responsible].name if a.responsible in inv.people else a.responsible,
                        a.purchased,
                        a.warranty_until or "",
                        status_names.get(a.status, a.status),
                    ]
                    for a in inv.assets
                ],
                xlsx_only=True,
            )
        )
    return section


def _age_table(inventory, on: date, statuses: list[str], status_names: dict[str, str]) -> Table:
    """Items per age band (rows) and status (columns) on *on*, the last day of the period."""
    counts = equipment.by_age(inventory, on)
    bands = (0, *equipment.AGE_BANDS)
    names = [f"{low}–{high}" for low, high in itertools.pairwise(bands)] + [f"{bands[-1]}+"]
    return Table(
        "equipment_age",
        _("Items by age and status"),
        [_("Age, years"), *(status_names.get(k, k) for k in statuses)],
        [[name, *(counts[(band, k)] for k in statuses)] for band, name in enumerate(names)],
    )


def _add_chart(section: Section, title: str, table: Table, series: tuple[int, ...], kind="bars", colours=()) -> None:
    """Chart *series* of *table* in *section*, unless every figure of them is zero (the table says so)."""
    if any(row[i] for row in table.rows for i in series):
        section.charts.append(Chart(title, table, series, kind, colours=colours))


def _days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=n) for n in range((end - start).days)]


def _day_table(key: str, title: str, columns: list[str], rows: list[list]) -> Table:
    """A table with a row per day: on paper for a week or a month, in the XLSX only for longer periods
    (the chart still shows every day)."""
    return Table(key, title, columns, rows, xlsx_only=len(rows) > PAPER_DAYS)


OUTCOME_NAMES = {
    "allowed_by_grant": "allowed by grant",
    "denied_as_intended": "denied as intended",
    "anomaly": "anomaly: let through without a grant",
    "denied_despite_grant": "denied although a grant was in force",
}


def read_logs(sources: Sources, start: datetime, end: datetime) -> list[tuple[Path, squidlog.Usage]]:
    """Each access log that exists, with its users' history over ``[start, end)``."""
    logs = [Path(p) for p in sources.access_logs if Path(p).is_file()]
    if not logs:
        return []
    inv = sources.inventory
    rules, grants, restricted_for = ([], [], None)
    if sources.access_policy:
        from akm.report.policyview import from_access_policy

        rules, grants, restricted_for = from_access_policy(sources.access_policy, inv, end)
    elif sources.policy_view:
        rules, grants, restricted_for = load_policy_view(sources.policy_view, inv.centre.timezone)
    attribution = squidlog.attribution_from(inv)
    return [
        (log, squidlog.analyse(log, attribution, rules, grants, since=start, until=end, restricted_for=restricted_for))
        for log in logs
    ]


def _log_appendix_title() -> str:
    return _("Appendix: access log lines not counted")


def users_section(sources: Sources, usages: list[tuple[Path, squidlog.Usage]]) -> Section:
    inv = sources.inventory
    section = Section("users", _("Users' history (internet access)"))
    if not usages:
        return _no_data(section)
    results = [usage for _log, usage in usages]
    requests = sum(r.requests for r in results)
    rejected = sum(r.skipped for r in results)
    if rejected:
        section.paragraphs.append(
            _("{count} log lines were rejected and not counted; see «{appendix}».").format(
                count=format_number(rejected), appendix=_log_appendix_title()
            )
        )
    if not requests:
        return _no_data(section)
    merged = _merge(results)
    section.paragraphs.append(
        _("{requests} requests, {volume} MiB, {denied} denied.").format(
            requests=format_number(requests),
            volume=format_number(round(merged["bytes"] / MIB, 1)),
            denied=format_number(merged["denied"]),
        )
    )
    measures = [_("Requests"), _("Volume, MiB"), _("Denied")]
    days = _day_table(
        "users_days",
        _("By day"),
        [_("Date"), *measures],
        [[day, n, round(b / MIB, 1), d] for day, (n, b, d) in sorted(merged["day"].items())],
    )
    section.tables.append(days)
    _add_chart(section, _("Internet use by day, MiB"), days, (2,), "columns")
    for key, title, column, chart, name in (
        (
            "segment",
            _("By network segment"),
            _("Network segment"),
            _("Internet use by network segment, MiB"),
            _segment_name,
        ),
        ("department", _("By department"), _("Department"), _("Internet use by department, MiB"), _department_name),
    ):
        table = Table(
            f"users_{key}s",
            title,
            [column, *measures],
            [
                [name(inv, k), n, round(b / MIB, 1), d]
                for k, (n, b, d) in sorted(merged[key].items(), key=lambda kv: (-kv[1][1], kv[0]))
            ],
        )
        section.tables.append(table)
        _add_chart(section, chart, table, (2,))
    hosts = sorted(merged["host"].items(), key=lambda kv: (-kv[1][1], kv[0]))
    section.tables.append(
        Table(
            "users_hosts",
            _("By computer"),
            [_("Computer"), _("Department"), _("Requests"), _("Volume, MiB"), _("Denied")],
            [[h, _department_name(inv, dept), n, round(b / MIB, 1), d] for h, (n, b, d, dept) in hosts],
            paper_rows=PAPER_ROWS,
        )
    )
    top = Counter()
    top_requests = Counter()
    for result in results:
        for row in result.top_sites.get(("all", "all"), []):
            top[row["domain"]] += int(row["bytes"])
            top_requests[row["domain"]] += int(row["requests"])
    section.tables.append(
        Table(
            "users_sites",
            _("Top sites"),
            [_("Site"), _("Requests"), _("Volume, MiB")],
            [[d, top_requests[d], round(b / MIB, 1)] for d, b in top.most_common(10)],
        )
    )
    outcomes = Counter()
    restricted_rows = []
    for result in results:
        outcomes.update(result.restricted)
        restricted_rows.extend(result.restricted_rows)
    section.tables.append(
        Table(
            "users_restricted",
            _("Requests to restricted categories"),
            [_("Outcome"), _("Requests")],
            [[_(OUTCOME_NAMES[k]), outcomes.get(k, 0)] for k in squidlog.OUTCOMES],
        )
    )
    denied = Table(
        "users_denied",
        _("Denied requests by category"),
        [_("Category"), _("Denied")],
        [
            [category or _("no category"), n]
            for category, n in sorted(merged["denied_category"].items(), key=lambda kv: (-kv[1], kv[0]))
        ],
    )
    section.tables.append(denied)
    _add_chart(section, _("Denied requests by category"), denied, (1,))
    anomalies = [r for r in restricted_rows if r["outcome"] in ("anomaly", "denied_despite_grant")]
    if anomalies:
        section.tables.append(
            Table(
                "users_anomalies",
                _("Anomalies to investigate"),
                [_("Computer"), _("Category"), _("Site"), _("Outcome"), _("Requests")],
                [
                    [r["host"], r["category"], r["domain"], _(OUTCOME_NAMES[r["outcome"]]), r["requests"]]
                    for r in anomalies
                ],
                paper_rows=PAPER_ROWS,
            )
        )
    if sources.director:
        people = sorted(merged["person"].items(), key=lambda kv: (-kv[1][1], kv[0]))
        section.tables.append(
            Table(
                "users_people",
                _("By person (for the director only)"),
                [_("Person"), _("Requests"), _("Volume, MiB"), _("Denied")],
                [[inv.people[k].name if k in inv.people else k, n, round(b / MIB, 1), d] for k, (n, b, d) in people],
            )
        )
    return section


def _merge(results: list[squidlog.Usage]) -> dict:
    """The figures of every log added up: per host, department, person, segment and day (requests,
    bytes, denied) and denied requests per category."""
    host: dict = {}
    department: dict = defaultdict(lambda: [0, 0, 0])
    person: dict = defaultdict(lambda: [0, 0, 0])
    segment: dict = defaultdict(lambda: [0, 0, 0])
    day: dict = defaultdict(lambda: [0, 0, 0])
    denied_category: Counter = Counter()
    total_bytes = total_denied = 0
    for result in results:
        for row in result.by_host:
            key = row["host"] or row["ip"]
            n, b, d, dept = host.get(key, (0, 0, 0, row["department"] or ""))
            host[key] = (n + int(row["requests"]), b + int(row["bytes"]), d + int(row["denied"]), dept)
            total_bytes += int(row["bytes"])
            total_denied += int(row["denied"])
        for rows, key, into in (
            (result.by_department, "department", department),
            (result.by_person, "login", person),
            (result.by_segment, "segment", segment),
            (result.by_day, "day", day),
        ):
            for row in rows:
                values = into[row[key]]
                for i, name in enumerate(("requests", "bytes", "denied")):
                    values[i] += int(row[name])
        for row in result.denied_by_category:
            denied_category[row["category"]] += int(row["denied"])
    return {
        "host": host,
        "department": {k: tuple(v) for k, v in department.items()},
        "person": {k: tuple(v) for k, v in person.items()},
        "segment": {k: tuple(v) for k, v in segment.items()},
        "day": {k: tuple(v) for k, v in day.items()},
        "denied_category": denied_category,
        "bytes": total_bytes,
        "denied": total_denied,
    }


def log_appendix(sources: Sources, usages: list[tuple[Path, squidlog.Usage]]) -> Section | None:
    """Every line of the access logs that was not counted, by reason, with the first lines of each
    reason as they are in the log (escaped; the user field hidden except in the director's copy).
    ``None`` when no access log was read."""
    if not usages:
        return None
    section = Section("log_rejects", _log_appendix_title())
    lines = sum(usage.lines for _log, usage in usages)
    counts: Counter = Counter()
    for _log, usage in usages:
        counts.update(usage.malformed)
    if not counts:
        section.paragraphs.append(
            _("Every line of the access logs was counted (lines read: {lines}).").format(lines=format_number(lines))
        )
        return section
    section.paragraphs.append(
        _(
            "{rejected} of {lines} lines of the access logs were rejected and not counted. The first lines of "
            "each reason are shown as they are in the log, with control characters and bytes that are not "
            "UTF-8 written as escapes (\\r, \\x00, \\xff)."
        ).format(rejected=format_number(sum(counts.values())), lines=format_number(lines))
    )
    if not sources.director:
        section.paragraphs.append(_("User names are hidden (***) except in the director's copy."))
    section.tables.append(
        Table(
            "log_rejects",
            _("Rejected lines by reason"),
            [_("Reason"), _("Code"), _("Lines")],
            [[_(message), code, counts[code]] for code, message in squidlog.REASONS.items() if counts[code]],
        )
    )
    section.tables.append(
        Table(
            "log_reject_lines",
            _("First rejected lines of each reason"),
            [_("Code"), _("Log"), _("Line no."), _("Line")],
            [
                [code, log.name, sample.line, sample.text(hide_user=not sources.director)]
                for log, usage in usages
                for code in squidlog.REASONS
                for sample in usage.samples.get(code, [])
            ],
            paper_rows=PAPER_ROWS,
        )
    )
    return section


RESULT_NAMES = {"ok": "succeeded", "warning": "warning", "soft_failure": "soft failure", "failed": "failed"}


def _records_table(key: str, title: str, records: list[evidence.Record], zone: ZoneInfo) -> Table:
    return Table(
        key,
        title,
        [_("Time"), _("Event"), _("Host or subject"), _("Result"), _("Summary")],
        [
            [
                r.time.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
                r.kind,
                r.host or r.subject,
                _(RESULT_NAMES[r.result]),
                r.summary,
            ]
            for r in records
        ],
    )


def _result_summary(records: list[evidence.Record]) -> str:
    counts = Counter(r.result for r in records)
    return ", ".join(f"{_(RESULT_NAMES[k])}: {format_number(counts[k])}" for k in evidence.RESULTS if counts[k])


def _last_backups(records: list[evidence.Record]) -> dict[tuple[str, str], tuple[datetime, int, int]]:
    """``{(data class, host): (time, bytes added, files)}`` of the last successful backup of each data
    class on each host. A run lists its data classes (``classes``), each with its own result."""
    last: dict[tuple[str, str], tuple[datetime, int, int]] = {}
    for record in records:
        if record.kind != "backup.run":
            continue
        for entry in record.extra["classes"]:
            if entry["result"] == "ok":
                key = (entry["data_class"], record.host)
                last[key] = (record.time, entry.get("bytes_added", 0), entry.get("files", 0))
    return last


BACKUP_RESULTS = {"ok": 1, "warning": 2, "soft_failure": 2, "failed": 3}
"""The column of a backup run's result in the table of days: succeeded, with warnings, failed."""


def _backup_days(section: Section, records: list[evidence.Record], start, end, zone: ZoneInfo) -> None:
    """Backup runs per day by result, and the size of what they read and added, with their charts."""
    runs = [r for r in records if r.kind == "backup.run"]
    if not runs:
        return
    days = {day: [day, 0, 0, 0, 0, 0] for day in _days(start.date(), end.date())}
    for run in runs:
        row = days[run.time.astimezone(zone).date()]
        row[BACKUP_RESULTS[run.result]] += 1
        for entry in run.extra["classes"]:
            row[4] += entry.get("bytes_processed", 0)
            row[5] += entry.get("bytes_added", 0)
    table = _day_table(
        "backups_days",
        _("Backup runs by day"),
        [_("Date"), _("Succeeded"), _("With warnings"), _("Failed"), _("Backed up, MiB"), _("Added, MiB")],
        [[*row[:4], round(row[4] / MIB, 1), round(row[5] / MIB, 1)] for row in days.values()],
    )
    section.tables.append(table)
    _add_chart(section, _("Backup runs by day and result"), table, (1, 2, 3), "stacked", charts.RESULT_COLOURS)
    _add_chart(section, _("Size of the backups by day, MiB"), table, (4, 5), "columns")


def evidence_section(key: str, title: str, prefixes: tuple[str, ...], records, start, end, zone) -> Section:
    section = Section(key, title)
    chosen = evidence.in_period(records, start, end, *prefixes)
    if not chosen:
        return _no_data(section)
    section.paragraphs.append(
        _("{count} records: {summary}.").format(count=format_number(len(chosen)), summary=_result_summary(chosen))
    )
    if key == "backups":
        _backup_days(section, chosen, start, end, zone)
        section.tables.append(
            Table(
                "backups_last",
                _("Last successful backup per data class"),
                [_("Data class"), _("Computer"), _("Time"), _("Added, MiB"), _("Files")],
                [
                    [data_class, host, when.astimezone(zone).strftime("%Y-%m-%d %H:%M"), round(added / MIB, 1), files]
                    for (data_class, host), (when, added, files) in sorted(_last_backups(chosen).items())
                ],
            )
        )
    if key == "access":
        section.tables.append(
            Table(
                "access_pushes",
                _("Policy pushes"),
                [_("Time"), _("Who"), _("Revision"), _("Approved by"), _("Result"), _("Changes")],
                [
                    [
                        r.time.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
                        r.who,
                        r.revision[:10],
                        r.approved_by,
                        _(RESULT_NAMES[r.result]),
                        "; ".join(r.changes),
                    ]
                    for r in chosen
                    if r.kind == "policy.push"
                ],
            )
        )
    section.tables.append(_records_table(f"{key}_records", _("Records of the period"), chosen, zone))
    failures = [r for r in chosen if r.result == "failed"]
    if failures:
        section.paragraphs.append(_("Failures to look at: {count}.").format(count=format_number(len(failures))))
    return section


DRIFT_FIELDS = {"hostname": "host name", "serial": "serial", "os": "OS release", "ram_mib": "RAM, MiB"}
"""English names of the compared facts; ``mac <if>`` and ``disk <dev>`` keep the interface or disk name."""


def _drift_field(name: str) -> str:
    kind, _sep, detail = name.partition(" ")
    if kind == "mac":
        return _("MAC {interface}").format(interface=detail)
    if kind == "disk":
        return _("disk {disk}, bytes").format(disk=detail)
    return _(DRIFT_FIELDS.get(name, name))


def _disks(facts: dict) -> dict:
    return facts.get("disks") if isinstance(facts.get("disks"), dict) else {}


def drift_section(sources: Sources, records, start, end, zone) -> Section:
    """The newest ``drift.facts`` record of the period against the inventory (:mod:`akm.report.drift`)."""
    inv = sources.inventory
    section = Section("drift", _("Drift: hosts against the inventory"))
    runs = [r for r in evidence.in_period(records, start, end, "drift.") if r.kind == "drift.facts"]
    if not runs:
        return _no_data(section)
    record = runs[-1]
    earlier = [r for r in records if r.kind == "drift.facts" and r.time < record.time]
    differences, not_collected = drift.compare(inv, record, earlier)
    hosts = drift.host_facts(record)
    unreachable = drift.unreachable_hosts(record)
    section.paragraphs.append(
        _(
            "Facts collected {time} ({runs} collections in the period): {reached} hosts answered, "
            "{unreachable} unreachable; {differences} differences."
        ).format(
            time=record.time.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
            runs=format_number(len(runs)),
            reached=format_number(len(hosts)),
            unreachable=format_number(len(unreachable)),
            differences=format_number(len(differences)),
        )
    )
    if differences:
        section.tables.append(
            Table(
                "drift_differences",
                _("Differences"),
                [_("Computer"), _("Field"), _("Inventory or previous collection"), _("Live"), _("Compared with")],
                [
                    [
                        d.host,
                        _drift_field(d.field),
                        d.expected,
                        d.live,
                        _("inventory") if d.source == "inventory" else _("previous collection"),
                    ]
                    for d in differences
                ],
                paper_rows=PAPER_ROWS * 2,
            )
        )
    else:
        section.paragraphs.append(_("No differences: every host that answered matches the inventory."))
    if unreachable or not_collected:
        section.tables.append(
            Table(
                "drift_unreachable",
                _("Hosts not checked"),
                [_("Computer"), _("Address"), _("Reason")],
                [[name, item.get("address", ""), item.get("reason", "")] for name, item in sorted(unreachable.items())]
                + [
                    [name, str(inv.asset(name).address), _("not in the record (added to the inventory later)")]
                    for name in not_collected
                ],
            )
        )
    unread = [name for name, facts in sorted(hosts.items()) if not facts.get("serial")]
    if unread:
        section.paragraphs.append(
            _(
                "Serial numbers not compared on {count} hosts: containers share the host's firmware (DMI) "
                "and some firmware gives no serial ({hosts})."
            ).format(count=format_number(len(unread)), hosts=", ".join(unread))
        )
    if any(facts.get("container") for facts in hosts.values()):
        section.paragraphs.append(_("In a container, RAM and disks are those of the machine it runs on."))
    section.tables.append(
        Table(
            "drift_facts",
            _("Live facts"),
            [_("Computer"), _("OS release"), _("RAM, MiB"), _("Disks, GB"), _("Serial"), _("Container")],
            [
                [
                    name,
                    (facts.get("os") or {}).get("pretty_name", ""),
                    facts.get("memory_mib") or "",
                    ", ".join(f"{d} {format_number(round(b / 10**9, 1))}" for d, b in _disks(facts).items()),
                    facts.get("serial") or "",
                    facts.get("container") or "",
                ]
                for name, facts in sorted(hosts.items())
            ],
            paper_rows=PAPER_ROWS,
        )
    )
    return section


def digitised_section(sources: Sources, period: Period, records: list[evidence.Record], zone: ZoneInfo) -> Section:
    section = Section("digitised", _("Digitised resources"))
    items, problems = [], []
    if sources.register and Path(sources.register).is_file():
        items, problems = digitised.read_register(sources.register)
    for problem in problems:
        section.paragraphs.append(problem.render())
    registered = {i.id for i in items}
    items += [i for i in digitised.items_from_records(records, zone) if i.id not in registered]
    upto = [i for i in items if i.date < period.end]
    if not upto:
        return _no_data(section)
    plan = digitised.read_plan(sources.plan) if sources.plan and Path(sources.plan).is_file() else {}
    year_start = date(period.start.year, 1, 1)
    rows = []
    collections = sorted({i.collection for i in upto} | set(plan))
    for collection in collections:
        mine = [i for i in upto if i.collection == collection]
        added = [i for i in mine if period.contains(i.date)]
        this_year = [i for i in mine if i.date >= year_start]
        target = plan.get(collection, {}).get("items", 0)
        rows.append(
            [
                collection,
                len(mine),
                len(added),
                sum(i.pages for i in mine),
                sum(i.minutes for i in mine),
                round(sum(i.bytes for i in mine) / MIB, 1),
                target,
                round(100 * len(this_year) / target, 1) if target else "",
            ]
        )
    collections_table = Table(
        "digitised_collections",
        _("By collection"),
        [
            _("Collection"),
            _("Items"),
            _("Added in the period"),
            _("Pages"),
            _("Minutes"),
            _("Size, MiB"),
            _("Plan for the year, items"),
            _("Plan done, %"),
        ],
        rows,
    )
    section.tables.append(collections_table)
    by_type = Counter((i.type, i.format) for i in upto)
    section.tables.append(
        Table(
            "digitised_formats",
            _("By type and format"),
            [_("Type"), _("Format"), _("Items")],
            [[t, f, n] for (t, f), n in sorted(by_type.items())],
        )
    )
    _add_chart(section, _("Items added in the period by collection"), collections_table, (2,))
    return section


def _control_evidence(control, records: list[evidence.Record], start: datetime, end: datetime, repository) -> str:
    """What shows that a clause's *control* ran in ``[start, end)``: its evidence records, counted by
    result, or its register's commits; or "no evidence in the period"."""
    from akm.report.rules import register_changes

    if control.register:
        changes = register_changes(repository, control.register, start, end)
        if not changes:
            return _("no evidence in the period")
        return _("{count} changes of {path}, the last on {day}").format(
            count=format_number(len(changes)), path=control.register, day=format_date(changes[0], "short")
        )
    mine = [
        r
        for r in evidence.in_period(records, start, end, *control.evidence)
        if r.kind in control.evidence and (not control.subject or r.subject == control.subject)
    ]
    if not mine:
        return _("no evidence in the period")
    return _("{count} records ({results}), the last on {day}").format(
        count=format_number(len(mine)), results=_result_summary(mine), day=format_date(mine[-1].time, "short")
    )


def rules_section(sources: Sources, records: list[evidence.Record], start: datetime, end: datetime) -> Section:
    """The rules documents; per clause its control and the evidence that the control ran in the period
    ``[start, end)``; who has not signed the current version of each document by the period's last day.
    A control that is not in the repository is an error (:class:`akm.report.rules.RulesError`)."""
    from akm.report import rules

    section = Section("rules", _("Rules and security policy"))
    documents = rules.load_all(sources.rules_dir) if sources.rules_dir and Path(sources.rules_dir).is_dir() else []
    if not documents:
        return _no_data(section)
    section.tables.append(
        Table(
            "rules",
            _("Documents in force"),
            [_("Document"), _("Clauses"), _("Version")],
            [[d.title, len(d.clauses), d.version] for d in documents],
        )
    )
    repository = Path(sources.rules_dir).resolve().parents[1]
    inventory = sources.inventory
    known, problems = rules.controls(repository, Path(inventory.root).resolve().name)
    problems += known.problems(documents)
    if problems:
        raise rules.RulesError(problems)
    rows = []
    for document in documents:
        for clause in document.clauses:
            control = known.resolve(clause)
            kinds = ", ".join(control.evidence) or control.register or "—"
            rows.append([clause.id, control.label, kinds, _control_evidence(control, records, start, end, repository)])
    section.tables.append(
        Table(
            "rules_controls",
            _("Clauses, their controls and the evidence that they ran in the period"),
            [_("Clause"), _("Control"), _("Evidence"), _("In the period")],
            rows,
        )
    )
    signed, problems = rules.load_acknowledgements(
        rules.acknowledgements_file(sources.rules_dir, inventory), documents, inventory
    )
    if problems:
        raise rules.RulesError(problems)
    until = (end - timedelta(days=1)).date()
    rows = [
        [document.title, document.version, len(inventory.people) - len(people), ", ".join(p.name for p in people)]
        for document, people in rules.not_acknowledged(documents, signed, inventory, until)
    ]
    section.tables.append(
        Table(
            "rules_acknowledgements",
            _("«Tanishdim» sheets signed for the current versions by {day} ({count} staff)").format(
                day=format_date(until), count=len(inventory.people)
            ),
            [_("Document"), _("Version"), _("Signed"), _("Not yet signed")],
            rows,
        )
    )
    return section


TITLES = {
    "weekly": "Weekly report",
    "monthly": "Monthly report",
    "quarterly": "Quarterly report",
    "annual": "Annual report",
}


def build(sources: Sources, period: Period, made_on: date | None = None) -> Report:
    """Make the report of *period* from *sources*; *made_on* is the date on its title page (the day
    after the period if not given)."""
    inv = sources.inventory
    zone = ZoneInfo(inv.centre.timezone)
    start, end = period.bounds(inv.centre.timezone)
    records, problems = evidence.read(sources.evidence_dir)
    usages = read_logs(sources, start, end)
    sections = [
        equipment_section(sources, period, start, end),
        drift_section(sources, records, start, end, zone),
        evidence_section("access", _("Access policy"), ("policy.",), records, start, end, zone),
        users_section(sources, usages),
        evidence_section(
            "backups",
            _("Backups and integrity"),
            ("backup.", "fixity.", "restore."),
            records,
            start,
            end,
            zone,
        ),
        evidence_section("network", _("Network devices"), ("network.",), records, start, end, zone),
        digitised_section(sources, period, records, zone),
        rules_section(sources, records, start, end),
    ]
    appendix = log_appendix(sources, usages)
    if appendix:
        sections.append(appendix)
    director = inv.director
    it_heads = [p for p in inv.people_with("it_staff") if "head_of_department" in p.duties] or inv.people_with(
        "it_staff"
    )
    signatures = [Signature(_("Prepared by"), p.position, p.name) for p in it_heads[:1]]
    signatures.append(Signature(_("Approved by"), director.position, director.name))
    header = [inv.centre.name if _lang_is_uz() else inv.centre.name_en, inv.centre.city]
    header += [_department_name(inv, p.department) for p in it_heads[:1]]
    return Report(
        kind=period.kind,
        period_label=period.label,
        title=_(TITLES[period.kind]),
        header=header,
        period_words=_("Period: {period}").format(period=period.title()),
        made_on=made_on or period.end,
        sections=sections,
        signatures=signatures,
        problems=[p.render() for p in problems],
    )
