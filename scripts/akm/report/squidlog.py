"""Users' history (Nizom F4): a Squid access log turned into per-host, per-department and per-person
figures, with every request to a restricted category checked against the grants in force at that moment.

The log is read once, by a small C scanner (:mod:`akm.report._squidscan`, built at ``pip install``): it
is the one implementation that decides what a valid line is. It checks every line, counts each rejected
line under its reason (:data:`REASONS`) and keeps the first lines of each as samples, and sums requests,
bytes, denied requests and their bytes, and the first and last time per (client address, login, domain,
period bucket) — never the whole log in Python objects. The scanner maps the log a 64 MiB window at a
time and flushes its table of groups to a CSV file whenever it reaches a budget derived from
``memory_limit``, so memory stays bounded; DuckDB reads those groups (within the same ``memory_limit``,
spilling to a temporary directory beyond it) and every figure is SQL over them. Nothing reads the log
a second time. Empty lines are skipped and not counted; every other line is either counted or rejected.

What a valid line is (checked in this order; the first failing check is the line's reason)
    A line ends at a newline; one carriage return before it is dropped (CRLF files). It is rejected if it
    is longer than 64 KiB (``too-long``) or holds a control character — a carriage return, tab, NUL or
    any other byte below 0x20, or 0x7F (``control-character``: Squid escapes them, so the line is not
    what Squid wrote). Fields are separated by single spaces; Squid pads the elapsed time to six
    columns, so the elapsed time is the first non-empty field among columns 1–5 (else column 6) and
    the other fields follow it. Then: no hierarchy field (``too-few-fields``); anything but spaces
    after the content type (``too-many-fields``); the time is not ``seconds.milliseconds`` (1–12 digits,
    a dot, three digits) before the year 10000 (``bad-time``); the elapsed time is not a whole number
    of milliseconds (``bad-elapsed``); the client address is neither a dotted quad of 0–255 without
    leading zeros nor an IPv6 address (``bad-address``); the status is not ``ACTION/NNN`` with ACTION
    in upper-case letters, digits and ``_`` (``bad-status``); the size is not digits
    (``bad-size``) or is more than 2⁶³−1, more than Squid can write (``size-too-large``); the URL gives
    no host (``bad-url``: ``CONNECT`` takes the URL as ``host:port``, other methods need
    ``scheme://host``).

    The site (domain) is the host without ``user@`` and ``:port`` — an IPv6 literal keeps its brackets
    (``[2001:db8::1]``) — with ASCII letters in lower case (as DNS compares names). Bytes that are not
    UTF-8 in the URL or the user name do not cost the request: each invalid sequence (as Python's
    ``"replace"`` error handler cuts them), and U+FFFE and U+FFFF that no document can hold, become
    U+FFFD. Byte sums cannot overflow: each line is at most 2⁶³−1 bytes, the scanner sums in unsigned
    64 bits and writes a group out before its sum would wrap, and DuckDB sums in 128 bits.

Log format
    Squid's ``native`` format, which already carries the client address and the user name::

        logformat akm %ts.%03tu %6tr %>a %Ss/%03>Hs %<st %rm %ru %[un %Sh/%<a %mt
        access_log daemon:/var/log/squid/access.log akm

    (the ``akm`` logformat is exactly ``squid``'s built-in one, written out so that a Squid upgrade
    cannot change it under us). Fields: time.millis, elapsed ms (right-aligned in 6 columns), client
    address, action/status, reply bytes, method, URL (``host:port`` for CONNECT), user (``-`` if none),
    hierarchy/peer, content type.

Attribution through the inventory
    client address → the asset with that address on any interface → its department;
    user name → the person whose ``id`` (their login) is that name → their department.
    Addresses and users the inventory does not know are kept and shown as such.

Categories and grants (the interface to the access policy)
    ``categories``: a list of :class:`CategoryRule` — a domain suffix and the restricted category it
    belongs to (``"facebook.com" → "social"`` matches ``facebook.com`` and ``www.facebook.com``; the
    longest suffix wins). Every category given is restricted for whoever has no grant — or, with
    ``restricted_for``, only for the persons, hosts, departments and segments it lists.
    ``grants``: a list of :class:`Grant` — who (``person``/``host``/``department`` and the inventory
    name), which category, and the interval ``[valid_from, valid_until)`` in which it is in force.
    A request to a restricted site is then:
    ``allowed_by_grant`` (let through, a grant covered it), ``denied_as_intended`` (denied, no grant),
    ``anomaly`` (let through with no grant in force: the proxy did not enforce the policy) or
    ``denied_despite_grant`` (denied although a grant was in force: the grant did not reach the proxy).
    The scanner is given the starts and ends of the grants inside the period and keeps the requests
    between two of them in groups of their own (the bucket), so a grant covers a whole group or none
    of it and every request is classified by the grants in force at its own time.

Rejected lines are counted by reason (:data:`REASONS`) with their first few lines (:class:`Sample`);
they never stop the run.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import duckdb

from akm.errors import Error
from akm.i18n import _
from akm.report import _squidscan

TOP_SITES = 10
TOP_SCOPES = {"all": "'all'", "host": "ip", "department": "coalesce(dept, '')", "person": "login"}
"""The scopes of the top sites: all requests, or per address, department or login (SQL of the key)."""
SCAN_THREADS = 1

REASONS = {
    "too-long": "the line is longer than 64 KiB",
    "control-character": "the line holds a control character (carriage return, tab, NUL…)",
    "too-few-fields": "fewer fields than the native format has",
    "too-many-fields": "more fields than the native format has",
    "bad-time": "the time is not seconds.milliseconds before the year 10000",
    "bad-elapsed": "the elapsed time is not a whole number of milliseconds",
    "bad-address": "the client address is not an IPv4 or IPv6 address",
    "bad-status": "the action/status field is not ACTION/NNN",
    "bad-size": "the size field is not a whole number of bytes",
    "size-too-large": "the size is larger than Squid can write (2^63−1 bytes)",
    "bad-url": "no host name in the URL",
}
"""Why a line is rejected, in the order the scanner checks (English; translated where shown)."""

_ESCAPES = {
    **{code: f"\\x{code:02x}" for code in (*range(0x20), 0x7F)},
    **{code: f"\\u{code:04x}" for code in (*range(0x80, 0xA0), 0xFFFE, 0xFFFF)},
    **{0xDC00 + byte: f"\\x{byte:02x}" for byte in range(0x80, 0x100)},
    ord("\t"): "\\t",
    ord("\n"): "\\n",
    ord("\r"): "\\r",
    ord("\\"): "\\\\",
}
"""Control characters, invalid bytes (decoded as lone surrogates) and backslashes as escapes."""


def escaped(raw: bytes) -> str:
    """*raw* as text a document can hold and a reader can copy back: UTF-8 as it is; control characters,
    U+FFFE, U+FFFF and bytes that are not UTF-8 as ``\\r``, ``\\x00``, ``\\uffff``, ``\\xff``;
    a backslash doubled."""
    return raw.decode("utf-8", "surrogateescape").translate(_ESCAPES)


@dataclass(frozen=True)
class Sample:
    """One rejected line: its number in the file (from 1, empty lines included), its first bytes as the
    scanner kept them, its whole length, and where its user field is in them (``None``: not found)."""

    line: int
    raw: bytes
    length: int
    user: tuple[int, int] | None

    def text(self, hide_user: bool = False) -> str:
        """The line escaped (:func:`escaped`), ``…`` if it was longer than what was kept; with
        *hide_user* the user field (personal data) becomes ``***``."""
        raw = self.raw
        if hide_user and self.user and raw[self.user[0] : self.user[0] + self.user[1]] not in (b"", b"-"):
            raw = raw[: self.user[0]] + b"***" + raw[self.user[0] + self.user[1] :]
        return escaped(raw) + ("…" if self.length > len(self.raw) else "")


OUTCOMES = ("allowed_by_grant", "denied_as_intended", "anomaly", "denied_despite_grant")


class SquidLogError(Error):
    """The access log cannot be read at all (missing, not a file)."""


@dataclass(frozen=True)
class CategoryRule:
    """A domain suffix and the restricted category it belongs to."""

    suffix: str
    category: str


@dataclass(frozen=True)
class Grant:
    """An approved exception: *subject_kind* ``person``/``host``/``department`` named *subject* may reach
    *category* from *valid_from* (inclusive) until *valid_until* (exclusive). Times must be aware."""

    subject_kind: str
    subject: str
    category: str
    valid_from: datetime
    valid_until: datetime
    reference: str = ""


@dataclass
class Attribution:
    """Who is behind an address and a user name: built from the inventory by :func:`attribution_from`."""

    hosts: dict[str, tuple[str, str]] = field(default_factory=dict)
    """address → (hostname, department id)"""
    people: dict[str, tuple[str, str]] = field(default_factory=dict)
    """login → (person's name, department id)"""
    segments: dict[str, str] = field(default_factory=dict)
    """address → network segment id"""


@dataclass
class Usage:
    """The users' history of one log over one period. Row lists are sorted, largest first."""

    lines: int
    requests: int
    outside: int
    """lines of the log that are well formed but fall outside the period"""
    malformed: dict[str, int]
    """rejected lines by reason (:data:`REASONS`)"""
    samples: dict[str, list[Sample]]
    """the first rejected lines of each reason"""
    first_time: datetime | None
    last_time: datetime | None
    by_host: list[dict]
    by_department: list[dict]
    by_person: list[dict]
    top_sites: dict[tuple[str, str], list[dict]]
    """(scope of :data:`TOP_SCOPES`, key) → up to TOP_SITES rows (domain, requests, bytes), for the scopes
    asked for"""
    restricted: dict[str, int]
    restricted_rows: list[dict]
    """restricted requests grouped by who, category, domain and outcome"""
    by_segment: list[dict] = field(default_factory=list)
    """requests, bytes and denied requests per network segment id (``""``: an address of no segment)"""
    by_day: list[dict] = field(default_factory=list)
    """requests, bytes and denied requests per day (a ``date`` in the time zone of ``since``), one row
    for every day of ``[since, until)``; empty when the period is not given"""
    denied_by_category: list[dict] = field(default_factory=list)
    """denied requests per category of the rules (``""``: a site of no category)"""

    @property
    def skipped(self) -> int:
        """How many lines were rejected."""
        return sum(self.malformed.values())


def attribution_from(inventory) -> Attribution:
    """Map every address of every asset to its host and department, and every login to its person."""
    result = Attribution()
    for asset in inventory.assets:
        for interface in asset.interfaces:
            if interface.ip is not None:
                result.hosts[str(interface.ip)] = (asset.hostname, asset.department)
                result.segments[str(interface.ip)] = interface.segment
    for person in inventory.people.values():
        result.people[person.id] = (person.name, person.department)
    return result


_GROUP_COLUMNS = (
    "{'ip': 'VARCHAR', 'login': 'VARCHAR', 'dom': 'VARCHAR', 'bucket': 'UINTEGER', 'n': 'BIGINT', "
    "'bytes': 'UBIGINT', 'dn': 'BIGINT', 'dbytes': 'UBIGINT', 't0': 'BIGINT', 't1': 'BIGINT'}"
)


def _memory_bytes(limit: str) -> int:
    """Bytes of a DuckDB-style memory limit such as ``512MB`` or ``1GB`` (512 MiB if unreadable)."""
    units = {"KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}
    text = limit.strip().upper().replace(" ", "")
    for unit, factor in units.items():
        if text.endswith(unit) and text[: -len(unit)].isdigit():
            return int(text[: -len(unit)]) * factor
    return 512 * 2**20


def _aggregate(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    scratch: Path,
    since: int | None,
    until: int | None,
    boundaries: list[int],
    days: list[int],
    memory_limit: str,
    threads: int,
) -> dict:
    """One pass over the log into ``g``: requests, bytes, denied requests (``dn``) and their bytes
    (``dbytes``), first and last time per (address, login, domain, bucket between two *boundaries*),
    for the valid lines inside the period; and the same sums per day (between the midnights *days*).

    The pass is :mod:`akm.report._squidscan` (C): it splits and checks every line, counts the
    rejected ones by reason and the ones outside the period, and writes the groups as CSV; DuckDB sums
    them here (a group can be written more than once: by each of the scanner's threads, whenever its
    table reaches the memory budget, and before a byte sum would pass 2⁶⁴). Returns the scanner's counts.
    """
    budget = max(100_000, _memory_bytes(memory_limit) // 4 // (192 * max(threads, 1)))
    stats = _squidscan.scan(
        str(path),
        str(scratch / "groups"),
        since=since,
        until=until,
        flush_groups=budget,
        threads=threads,
        boundaries=boundaries,
        days=days,
    )
    files = ", ".join("'{}'".format(name.replace("'", "''")) for name in stats["files"])
    source = f"""read_csv([{files}], columns={_GROUP_COLUMNS}, delim=',', quote='"', escape='"', header=false,
                      auto_detect=false, allow_quoted_nulls=false, max_line_size=1048576)"""
    if stats["unique"]:
        con.execute(f"CREATE VIEW g AS SELECT * FROM {source}")
    else:
        con.execute(
            f"""
            CREATE VIEW g AS
            SELECT ip, login, dom, bucket, sum(n) AS n, sum(bytes) AS bytes, sum(dn) AS dn,
                   sum(dbytes) AS dbytes, min(t0) AS t0, max(t1) AS t1
            FROM {source} GROUP BY ALL
            """
        )
    return stats


def _midnights(since: datetime | None, until: datetime | None) -> list[datetime]:
    """The start of every day of ``[since, until)`` in the time zone of *since* (none without both)."""
    if since is None or until is None:
        return []
    zone = since.tzinfo
    day = since.astimezone(zone).date()
    found = []
    while (midnight := datetime.combine(day, time(), zone)) < until:
        found.append(midnight)
        day += timedelta(days=1)
    return found


def _boundaries(grants: Sequence[Grant], since: int | None, until: int | None) -> list[int]:
    """The starts and ends of the grants inside the period, in order: where a group must be cut so
    that each grant covers all of it or none of it."""
    low = -(2**63) if since is None else since
    high = 2**63 - 1 if until is None else until
    times = {_epoch(t) for g in grants for t in (g.valid_from, g.valid_until)}
    return sorted(t for t in times if low < t < high)


def _by_day(days: list[datetime], tallies: list[tuple[int, int, int, int]]) -> list[dict]:
    """Requests, bytes and denied requests of each day of *days* from the scanner's tallies (the first
    tally is the part of the period before the second day's midnight: the first day)."""
    return [
        {"day": day.date(), "requests": requests, "bytes": low + (high << 64), "denied": denied}
        for day, (requests, low, high, denied) in zip(days, tallies, strict=True)
    ]


def _samples(found: dict[str, list[tuple]]) -> dict[str, list[Sample]]:
    return {
        reason: [
            Sample(line, raw, length, None if user_at < 0 else (user_at, user_len))
            for line, raw, length, user_at, user_len in items
        ]
        for reason, items in sorted(found.items())
    }


def _domain_categories(domains: Iterable[str], rules: Sequence[CategoryRule]) -> list[tuple[str, str]]:
    """Return (domain, category) for every domain under a rule's suffix; the longest suffix wins."""
    by_suffix = {rule.suffix.lower().strip("."): rule.category for rule in rules}
    found = []
    for domain in domains:
        labels = domain.split(".")
        for start in range(len(labels)):
            category = by_suffix.get(".".join(labels[start:]))
            if category is not None:
                found.append((domain, category))
                break
    return found


def _insert(con: duckdb.DuckDBPyConnection, table: str, rows: list[tuple]) -> None:
    if rows:
        marks = ", ".join("?" * len(rows[0]))
        con.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence | None = None) -> list[dict]:
    cursor = con.execute(sql, params or [])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def analyse(
    log: Path | str,
    attribution: Attribution,
    categories: Sequence[CategoryRule] = (),
    grants: Sequence[Grant] = (),
    since: datetime | None = None,
    until: datetime | None = None,
    memory_limit: str = "512MB",
    threads: int | None = None,
    top: int = TOP_SITES,
    restricted_for: Sequence[tuple[str, str]] | None = None,
    top_scopes: Sequence[str] = ("all",),
) -> Usage:
    """Read the Squid access log *log* and return the users' history for ``[since, until)``.

    With both *since* and *until*, the figures per day (``Usage.by_day``) are in the time zone of
    *since* (the report gives midnights in the centre's time zone): the scanner tallies the counted
    lines between the midnights inside the period.

    ``restricted_for`` limits whom the categories restrict: (``person``/``host``/``department``/
    ``segment``, inventory name) pairs; ``None`` means everyone. ``top_scopes``: the scopes of
    :data:`TOP_SCOPES` whose top sites are wanted (each costs a pass over the groups; the report uses
    ``all``). Lines outside the period are read (and checked) but not counted. Raises :class:`SquidLogError`
    only when the file cannot be opened at all; a bad line is counted in ``Usage.malformed``.
    """
    log = Path(log)
    if not log.is_file():
        raise SquidLogError.one(
            "report.log-missing",
            _("the access log does not exist"),
            _("give the path of Squid's access.log"),
            file=str(log),
        )
    with tempfile.TemporaryDirectory(prefix="akm-squidlog-") as scratch:
        con = duckdb.connect(config={"memory_limit": memory_limit, "temp_directory": scratch})
        try:
            if threads:
                con.execute(f"SET threads = {int(threads)}")
            days = _midnights(since, until)
            try:
                stats = _aggregate(
                    con,
                    log,
                    Path(scratch),
                    _epoch(since),
                    _epoch(until),
                    _boundaries(grants, _epoch(since), _epoch(until)),
                    [_epoch(d) for d in days[1:]],
                    memory_limit,
                    threads or SCAN_THREADS,
                )
            except (OSError, duckdb.Error) as exc:
                raise SquidLogError.one(
                    "report.log-unreadable",
                    _("the access log cannot be read: {error}").format(error=str(exc).splitlines()[0]),
                    _("check that the file is a Squid access log in the native format"),
                    file=str(log),
                ) from exc
            usage = _analyse(con, stats, attribution, categories, grants, top, restricted_for, top_scopes)
            usage.by_day = _by_day(days, stats["days"]) if days else []
            return usage
        finally:
            con.close()


def _epoch(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp())


def _analyse(con, stats, attribution, categories, grants, top, restricted_for, top_scopes) -> Usage:
    con.execute("CREATE TABLE hosts (ip VARCHAR PRIMARY KEY, host VARCHAR, dept VARCHAR, seg VARCHAR)")
    _insert(con, "hosts", [(ip, h, d, attribution.segments.get(ip)) for ip, (h, d) in attribution.hosts.items()])
    con.execute("CREATE TABLE people (login VARCHAR PRIMARY KEY, name VARCHAR, dept VARCHAR)")
    _insert(con, "people", [(k, n, d) for k, (n, d) in attribution.people.items()])

    lines = int(stats["lines"])
    outside = int(stats["outside"])
    malformed = {reason: int(count) for reason, count in sorted(stats["malformed"].items())}
    requests = lines - outside - sum(malformed.values())

    con.execute(
        """CREATE TABLE v AS
           SELECT g.*, h.host, h.seg, p.name AS person, coalesce(h.dept, p.dept) AS dept, p.dept AS person_dept
           FROM g LEFT JOIN hosts h ON h.ip = g.ip LEFT JOIN people p ON p.login = g.login"""
    )
    first, last = con.execute("SELECT min(t0), max(t1) FROM v").fetchone()

    measures = "sum(n) AS requests, sum(bytes) AS bytes, sum(dn) AS denied"
    by_host = _rows(
        con,
        f"""SELECT ip, any_value(host) AS host, any_value(dept) AS department, {measures}
            FROM v GROUP BY ip ORDER BY bytes DESC, ip""",
    )
    by_department = _rows(
        con,
        f"""SELECT coalesce(dept, '') AS department, {measures}
            FROM v GROUP BY ALL ORDER BY bytes DESC, department""",
    )
    by_person = _rows(
        con,
        f"""SELECT login, any_value(person) AS person, any_value(person_dept) AS department,
                   list_sort(list_distinct(list(coalesce(host, ip)))) AS computers, {measures}
            FROM v WHERE login IS NOT NULL GROUP BY login ORDER BY bytes DESC, login""",
    )
    by_segment = _rows(
        con,
        f"""SELECT coalesce(seg, '') AS segment, {measures}
            FROM v GROUP BY ALL ORDER BY bytes DESC, segment""",
    )

    # Largest bytes first, ties by domain name: a top-N aggregate on (bytes, reversed name rank) instead
    # of sorting every (key, domain) pair as a window would. Byte sums can pass 2^64: compared as a
    # struct, not packed into one integer.
    con.execute(
        "CREATE TABLE dom_rank AS "
        "SELECT dom, row_number() OVER (ORDER BY dom) AS rank FROM (SELECT DISTINCT dom FROM v)"
    )
    top_sites: dict[tuple[str, str], list[dict]] = {}
    for scope in top_scopes:
        key = TOP_SCOPES[scope]
        found = con.execute(
            f"""
            SELECT k, max_by({{'domain': dom, 'requests': requests, 'bytes': bytes}},
                             {{'bytes': bytes, 'rank': -rank}}, ?) AS top
            FROM (SELECT {key} AS k, dom, sum(n) AS requests, sum(bytes) AS bytes
                  FROM v WHERE {key} IS NOT NULL GROUP BY 1, 2) JOIN dom_rank USING (dom)
            GROUP BY k ORDER BY k""",
            [top],
        ).fetchall()
        for key_value, rows in found:
            top_sites[(scope, key_value)] = rows

    restricted, restricted_rows = _restricted(con, categories, grants, restricted_for)
    denied_by_category = _rows(
        con,
        """SELECT coalesce(c.category, '') AS category, sum(dn) AS denied
           FROM v LEFT JOIN cat c ON c.dom = v.dom WHERE dn > 0
           GROUP BY ALL ORDER BY denied DESC, category""",
    )
    return Usage(
        lines=lines,
        requests=requests,
        outside=outside,
        malformed=malformed,
        samples=_samples(stats["samples"]),
        first_time=_epoch_to_utc(first),
        last_time=_epoch_to_utc(last),
        by_host=by_host,
        by_department=by_department,
        by_person=by_person,
        top_sites=top_sites,
        restricted=restricted,
        restricted_rows=restricted_rows,
        by_segment=by_segment,
        denied_by_category=denied_by_category,
    )


def _epoch_to_utc(value: int | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


_GRANT_MATCH = """g.category = c.category
    AND ((g.kind = 'person' AND g.subject = v.login) OR (g.kind = 'host' AND g.subject = v.host)
         OR (g.kind = 'department' AND g.subject IN (v.dept, v.person_dept)))"""


def _restricted(con, categories, grants, restricted_for=None):
    """Classify requests to restricted categories against the grants in force when each was made.

    Each group (address, login, domain, bucket) is split into its denied and its let-through requests.
    No grant starts or ends inside a bucket, so the grants in force at a group's first request are in
    force at all of its requests.
    """
    domains = [row[0] for row in con.execute("SELECT DISTINCT dom FROM v").fetchall()]
    con.execute("CREATE TABLE cat (dom VARCHAR, category VARCHAR)")
    _insert(con, "cat", _domain_categories(domains, categories))
    con.execute("CREATE TABLE grants (kind VARCHAR, subject VARCHAR, category VARCHAR, t0 BIGINT, t1 BIGINT)")
    _insert(
        con,
        "grants",
        [(g.subject_kind, g.subject, g.category, _epoch(g.valid_from), _epoch(g.valid_until)) for g in grants],
    )
    restricted_where = "true"
    if restricted_for is not None:
        con.execute("CREATE TABLE rfor (kind VARCHAR, subject VARCHAR)")
        _insert(con, "rfor", [(str(kind), str(subject)) for kind, subject in restricted_for])
        restricted_where = """EXISTS (SELECT 1 FROM rfor r WHERE (r.kind = 'person' AND r.subject = v.login)
            OR (r.kind = 'host' AND r.subject = v.host) OR (r.kind = 'segment' AND r.subject = v.seg)
            OR (r.kind = 'department' AND r.subject IN (v.dept, v.person_dept)))"""
    con.execute(
        """CREATE TEMP VIEW vd AS
           SELECT * EXCLUDE (n, bytes, dn, dbytes), true AS denied, dn AS n, dbytes AS bytes FROM v WHERE dn > 0
           UNION ALL
           SELECT * EXCLUDE (n, bytes, dn, dbytes), false, n - dn, bytes - dbytes FROM v WHERE n > dn"""
    )
    con.execute(
        f"""
        CREATE TABLE hits AS
        SELECT v.*, c.category,
               EXISTS (SELECT 1 FROM grants g
                       WHERE {_GRANT_MATCH} AND v.t0 >= g.t0 AND v.t0 < g.t1) AS granted
        FROM vd v JOIN cat c ON c.dom = v.dom
        WHERE {restricted_where}
        """
    )
    rows = _rows(
        con,
        """
        SELECT coalesce(host, ip) AS host, login, coalesce(dept, '') AS department, category, dom AS domain,
               CASE WHEN granted AND NOT denied THEN 'allowed_by_grant'
                    WHEN NOT granted AND denied THEN 'denied_as_intended'
                    WHEN NOT granted AND NOT denied THEN 'anomaly'
                    ELSE 'denied_despite_grant' END AS outcome,
               sum(n) AS requests, sum(bytes) AS bytes, min(t0) AS first_ts, max(t1) AS last_ts
        FROM hits GROUP BY ALL
        ORDER BY outcome, host, login NULLS FIRST, category, domain""",
    )
    summary = dict.fromkeys(OUTCOMES, 0)
    for row in rows:
        summary[row["outcome"]] += int(row["requests"])
        row["first_time"] = _epoch_to_utc(row.pop("first_ts"))
        row["last_time"] = _epoch_to_utc(row.pop("last_ts"))
    return summary, rows


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m akm.report.squidlog LOG``: per-host totals as JSON (used by the benchmark)."""
    import argparse
    import json
    import sys

    parser = argparse.ArgumentParser(prog="python -m akm.report.squidlog")
    parser.add_argument("log", type=Path)
    parser.add_argument("--memory-limit", default="512MB")
    parser.add_argument("--threads", type=int)
    args = parser.parse_args(argv)
    usage = analyse(args.log, Attribution(), memory_limit=args.memory_limit, threads=args.threads)
    json.dump(
        {
            "lines": usage.lines,
            "requests": usage.requests,
            "malformed": usage.malformed,
            "by_host": {row["ip"]: [int(row["requests"]), int(row["bytes"])] for row in usage.by_host},
        },
        sys.stdout,
        sort_keys=True,
    )
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
