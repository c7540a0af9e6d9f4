"""Users' history (Nizom F4): a Squid access log turned into per-host, per-department and per-person
figures, with every request to a restricted category checked against the grants in force at that moment.

The log is read in one streaming pass by a small C scanner (:mod:`akm.report._squidscan`, built at
``pip install``) that checks every line and sums requests, bytes, denied requests and their bytes, and the
first and last time per (client address, login, domain) — never the whole log in Python objects. The
scanner maps the log a 64 MiB window at a time and flushes its table of groups to a CSV file whenever it
reaches a budget derived from ``memory_limit``, so memory stays bounded; DuckDB reads those groups
(within the same ``memory_limit``, spilling to a temporary directory beyond it) and every figure is SQL
over them. Only requests that straddle a grant's start or end are read a second time, by DuckDB's CSV
reader (see :func:`_restricted`). Empty lines are skipped and not counted.

Line rules (the scanner's; the SQL of the exact second pass, :func:`_parsed`, picks fields the same way)
    Fields are separated by single spaces; the elapsed time is right-aligned in six columns, so the
    client address is the first non-empty field among columns 1–5 (else column 6) and the other
    fields follow it. A line is malformed, checked in this order, if it is longer than 64 KiB or not
    UTF-8 or holds a NUL byte (``unreadable``), has more than 20 columns or a non-empty field after the
    content type (``too-many-fields``), has no hierarchy field (``too-few-fields``), its time is not
    digits before the dot (``bad-time``), the status is not ``ACTION/NNN`` (``bad-status``), the size
    is not a non-negative integer (``bad-size``), the address is neither a dotted quad nor IPv6-like
    (``bad-address``), or the URL gives no host (``bad-url``: ``CONNECT`` takes the URL as
    ``host:port``, others need ``scheme://host``; the domain is the host without ``user@`` and
    ``:port``, in lower case).

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

Malformed lines are counted by reason (:data:`REASONS`) with a few samples; they never stop the run.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from akm.errors import Error
from akm.i18n import _
from akm.report import _squidscan

MAX_COLUMNS = 20
MAX_PADDING = 5
TOP_SITES = 10
SCAN_THREADS = 1

REASONS = {
    "too-few-fields": "fewer fields than the native format has",
    "too-many-fields": "more fields than the native format has",
    "bad-time": "the time field is not seconds.milliseconds",
    "bad-address": "the client address is not an IP address",
    "bad-status": "the action/status field is not ACTION/NNN",
    "bad-size": "the size field is not a number",
    "bad-url": "no host name in the URL",
    "unreadable": "the line could not be read (encoding or length)",
}

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
    malformed_samples: list[tuple[str, str]]
    first_time: datetime | None
    last_time: datetime | None
    by_host: list[dict]
    by_department: list[dict]
    by_person: list[dict]
    top_sites: dict[tuple[str, str], list[dict]]
    """(``host``/``department``/``person``/``all``, key) → up to TOP_SITES rows (domain, requests, bytes)"""
    restricted: dict[str, int]
    restricted_rows: list[dict]
    """restricted requests grouped by who, category, domain and outcome"""

    @property
    def skipped(self) -> int:
        """How many lines were not counted."""
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


def _pick(offset: int) -> str:
    """SQL for the field *offset* places after the elapsed time, whatever its left padding was."""
    cases = " ".join(f"WHEN c{pad + 1} <> '' THEN c{pad + 1 + offset}" for pad in range(MAX_PADDING))
    return f"CASE {cases} ELSE c{MAX_PADDING + 1 + offset} END"


def _source(path: Path) -> str:
    columns = ", ".join(f"'c{i}': 'VARCHAR'" for i in range(MAX_COLUMNS))
    quoted = str(path).replace("'", "''")
    return (
        f"read_csv('{quoted}', columns={{{columns}}}, delim=' ', quote='', escape='', header=false, "
        "auto_detect=false, null_padding=true, strict_mode=false, ignore_errors=true, store_rejects=true, "
        "max_line_size=65536)"
    )


_FIELDS = {"ip": 1, "st": 2, "b": 3, "m": 4, "url": 5, "u": 6, "hier": 7, "extra": 9}


def _parsed(path: Path) -> str:
    """SQL of the log's lines as typed fields, with the reason a line is malformed (NULL if it is not).

    Used only by the exact second pass of :func:`_restricted`, over lines of groups the scanner has
    already found well formed; the URL is cut to ``host[:port]`` (``target``) and normalised to a
    domain by :data:`_DOMAIN`.
    """
    picked = ", ".join(f"{_pick(offset)} AS {name}" for name, offset in _FIELDS.items())
    return f"""
        SELECT
            CASE
                WHEN hier IS NULL THEN 'too-few-fields'
                WHEN extra IS NOT NULL AND extra <> '' THEN 'too-many-fields'
                WHEN ts IS NULL THEN 'bad-time'
                WHEN NOT contains(st, '/') OR try_cast(right(st, 3) AS SMALLINT) IS NULL THEN 'bad-status'
                WHEN bytes IS NULL OR bytes < 0 THEN 'bad-size'
            END AS reason,
            ts, ip, st, contains(st, 'DENIED') AS denied, bytes, u AS login,
            CASE WHEN m = 'CONNECT' THEN url WHEN contains(url, '://') THEN split_part(url, '/', 3) END AS target,
            c0, url
        FROM (SELECT c0, {picked}, try_cast(split_part(c0, '.', 1) AS BIGINT) AS ts,
                     try_cast(b AS BIGINT) AS bytes
              FROM {_source(path)})
    """


_DOMAIN = "lower(split_part(split_part(target, '@', -1), ':', 1))"


_GROUP_COLUMNS = (
    "{'ip': 'VARCHAR', 'login': 'VARCHAR', 'dom': 'VARCHAR', 'n': 'BIGINT', 'bytes': 'BIGINT', "
    "'dn': 'BIGINT', 'dbytes': 'BIGINT', 't0': 'BIGINT', 't1': 'BIGINT'}"
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
    memory_limit: str,
    threads: int,
) -> dict:
    """One pass over the log into ``g``: requests, bytes, denied requests (``dn``) and their bytes
    (``dbytes``), first and last time per (address, login, domain), for the well-formed lines inside
    the period.

    The pass is :mod:`akm.report._squidscan` (C): it splits and checks every line, counts the
    malformed ones by reason and the ones outside the period, and writes the groups as CSV; DuckDB sums
    them here (a group can be written more than once: by each of the scanner's threads, and whenever
    its table reaches the memory budget). Returns the scanner's counts.
    """
    budget = max(100_000, _memory_bytes(memory_limit) // 4 // (192 * max(threads, 1)))
    stats = _squidscan.scan(
        str(path), str(scratch / "groups"), since=since, until=until, flush_groups=budget, threads=threads
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
            SELECT ip, login, lower(dom) AS dom, sum(n) AS n, sum(bytes) AS bytes, sum(dn) AS dn,
                   sum(dbytes) AS dbytes, min(t0) AS t0, max(t1) AS t1
            FROM {source} GROUP BY ALL
            """
        )
    return stats


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
) -> Usage:
    """Read the Squid access log *log* and return the users' history for ``[since, until)``.

    ``restricted_for`` limits whom the categories restrict: (``person``/``host``/``department``/
    ``segment``, inventory name) pairs; ``None`` means everyone. Lines outside the period are read
    (and checked) but not counted. Raises :class:`SquidLogError`
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
            try:
                stats = _aggregate(
                    con, log, Path(scratch), _epoch(since), _epoch(until), memory_limit, threads or SCAN_THREADS
                )
            except (OSError, duckdb.Error) as exc:
                raise SquidLogError.one(
                    "report.log-unreadable",
                    _("the access log cannot be read: {error}").format(error=str(exc).splitlines()[0]),
                    _("check that the file is a Squid access log in the native format"),
                    file=str(log),
                ) from exc
            return _analyse(con, log, stats, attribution, categories, grants, since, until, top, restricted_for)
        finally:
            con.close()


def _epoch(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp())


def _analyse(con, log, stats, attribution, categories, grants, since, until, top, restricted_for) -> Usage:
    con.execute("CREATE TABLE hosts (ip VARCHAR PRIMARY KEY, host VARCHAR, dept VARCHAR, seg VARCHAR)")
    _insert(con, "hosts", [(ip, h, d, attribution.segments.get(ip)) for ip, (h, d) in attribution.hosts.items()])
    con.execute("CREATE TABLE people (login VARCHAR PRIMARY KEY, name VARCHAR, dept VARCHAR)")
    _insert(con, "people", [(k, n, d) for k, (n, d) in attribution.people.items()])

    lines = int(stats["lines"])
    outside = int(stats["outside"])
    malformed = {reason: int(count) for reason, count in sorted(stats["malformed"].items())}
    requests = lines - outside - sum(malformed.values())
    samples = sorted(stats["samples"].items())

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
        f"""SELECT login, any_value(person) AS person, any_value(person_dept) AS department, {measures}
            FROM v WHERE login IS NOT NULL GROUP BY login ORDER BY bytes DESC, login""",
    )

    # Largest bytes first, ties by domain name: a top-N aggregate on (bytes, reversed name rank) instead
    # of sorting every (key, domain) pair as a window would.
    con.execute(
        "CREATE TABLE dom_rank AS "
        "SELECT dom, row_number() OVER (ORDER BY dom) AS rank FROM (SELECT DISTINCT dom FROM v)"
    )
    top_sites: dict[tuple[str, str], list[dict]] = {}
    scopes = (("all", "'all'"), ("host", "ip"), ("department", "coalesce(dept, '')"), ("person", "login"))
    for scope, key in scopes:
        found = con.execute(
            f"""
            SELECT k, max_by({{'domain': dom, 'requests': requests, 'bytes': bytes}},
                             (bytes::HUGEINT << 64) - rank, ?) AS top
            FROM (SELECT {key} AS k, dom, sum(n) AS requests, sum(bytes) AS bytes
                  FROM v WHERE {key} IS NOT NULL GROUP BY 1, 2) JOIN dom_rank USING (dom)
            GROUP BY k ORDER BY k""",
            [top],
        ).fetchall()
        for key_value, rows in found:
            top_sites[(scope, key_value)] = rows

    restricted, restricted_rows = _restricted(con, log, categories, grants, since, until, restricted_for)
    return Usage(
        lines=lines,
        requests=requests,
        outside=outside,
        malformed=malformed,
        malformed_samples=samples,
        first_time=_epoch_to_utc(first),
        last_time=_epoch_to_utc(last),
        by_host=by_host,
        by_department=by_department,
        by_person=by_person,
        top_sites=top_sites,
        restricted=restricted,
        restricted_rows=restricted_rows,
    )


def _epoch_to_utc(value: int | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


_GRANT_MATCH = """g.category = c.category
    AND ((g.kind = 'person' AND g.subject = v.login) OR (g.kind = 'host' AND g.subject = v.host)
         OR (g.kind = 'department' AND g.subject IN (v.dept, v.person_dept)))"""


def _restricted(con, log: Path, categories, grants, since, until, restricted_for=None):
    """Classify requests to restricted categories against the grants in force when each was made.

    Each group (address, login, domain) is split into its denied and its let-through requests; a part
    whose group's first and last request fall on the same side of every boundary of its matching
    grants is classified as a whole. The rare group that straddles a
    grant's start or end is resolved exactly by a second, filtered pass over the log for just those
    groups' requests.
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
                       WHERE {_GRANT_MATCH} AND v.t0 >= g.t0 AND v.t1 < g.t1) AS granted,
               EXISTS (SELECT 1 FROM grants g WHERE {_GRANT_MATCH}
                       AND ((g.t0 > v.t0 AND g.t0 <= v.t1) OR (g.t1 > v.t0 AND g.t1 <= v.t1))) AS straddles
        FROM vd v JOIN cat c ON c.dom = v.dom
        WHERE {restricted_where}
        """
    )
    straddling = con.execute("SELECT count(*) FROM hits WHERE straddles").fetchone()[0]
    if straddling:
        con.execute(
            f"""
            CREATE TABLE exact AS
            SELECT h.* EXCLUDE (n, bytes, t0, t1, granted, straddles),
                   1 AS n, p.bytes, p.ts AS t0, p.ts AS t1,
                   EXISTS (SELECT 1 FROM grants g,
                                  (SELECT h.category, h.login, h.host, h.dept, h.person_dept) v
                           WHERE {_GRANT_MATCH.replace("c.category", "v.category")}
                             AND p.ts >= g.t0 AND p.ts < g.t1) AS granted,
                   false AS straddles
            FROM ({_parsed(log)}) p
            JOIN hits h ON h.straddles AND p.reason IS NULL AND h.ip = p.ip
                 AND coalesce(h.login, '-') = CASE WHEN p.login IN ('-', '') THEN '-' ELSE p.login END
                 AND h.dom = {_DOMAIN.replace("target", "p.target")} AND h.denied = p.denied
                 AND p.ts >= {_epoch(since) if since else -(2**62)}
                 AND p.ts < {_epoch(until) if until else 2**62}
            """
        )
        con.execute("DELETE FROM hits WHERE straddles")
        con.execute("INSERT INTO hits BY NAME SELECT * FROM exact")
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
