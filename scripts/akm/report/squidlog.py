"""Users' history (Nizom F4): a Squid access log turned into per-host, per-department and per-person
figures, with every request to a restricted category checked against the grants in force at that moment.

The log is read by DuckDB's CSV reader in one streaming pass into a compact columnar table (memory
bounded by ``memory_limit``; DuckDB spills to ``temp_dir`` beyond it), never into Python objects. All
figures are SQL over that table.

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
    longest suffix wins). Every category given is restricted for whoever has no grant.
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
from datetime import datetime
from pathlib import Path

import duckdb

from akm.errors import Error, Problem
from akm.i18n import _

MAX_COLUMNS = 20
MAX_PADDING = 5
TOP_SITES = 10

REASONS = {
    "empty": "empty line",
    "too-few-fields": "fewer fields than the native format has",
    "too-many-fields": "more fields than the native format has",
    "bad-time": "the time field is not seconds.milliseconds",
    "bad-elapsed": "the elapsed time is not a number",
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


@dataclass
class Usage:
    """The users' history of one log over one period. Row lists are sorted, largest first."""

    lines: int
    requests: int
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


_URL_HOST = (
    "lower(CASE WHEN m = 'CONNECT' THEN split_part(url, ':', 1) "
    "WHEN contains(url, '://') THEN split_part(split_part(split_part(url, '/', 3), ':', 1), '@', -1) "
    "ELSE NULL END)"
)


_ADDRESS = r"[0-9]{1,3}(\.[0-9]{1,3}){3}|[0-9a-fA-F:]*:[0-9a-fA-F:.]*"


def _load(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    fields = {
        "elapsed": _pick(0),
        "ip": _pick(1),
        "st": _pick(2),
        "b": _pick(3),
        "m": _pick(4),
        "url": _pick(5),
        "u": _pick(6),
        "hier": _pick(7),
        "extra": _pick(9),
    }
    picked = ", ".join(f"{sql} AS {name}" for name, sql in fields.items())
    con.execute(
        f"""
        CREATE TABLE req AS
        WITH raw AS (SELECT c0, c1, {picked} FROM {_source(path)}),
        typed AS (
            SELECT *, try_cast(c0 AS DECIMAL(18, 3)) AS t, try_cast(b AS BIGINT) AS bytes,
                   try_cast(split_part(st, '/', 2) AS SMALLINT) AS code, {_URL_HOST} AS dom
            FROM raw)
        SELECT
            CASE
                WHEN c0 IS NULL OR c0 = '' AND c1 IS NULL THEN 'empty'
                WHEN hier IS NULL THEN 'too-few-fields'
                WHEN extra IS NOT NULL AND extra <> '' THEN 'too-many-fields'
                WHEN t IS NULL THEN 'bad-time'
                WHEN try_cast(elapsed AS BIGINT) IS NULL THEN 'bad-elapsed'
                WHEN NOT regexp_full_match(ip, '{_ADDRESS}') THEN 'bad-address'
                WHEN code IS NULL OR NOT contains(st, '/') THEN 'bad-status'
                WHEN bytes IS NULL OR bytes < 0 THEN 'bad-size'
                WHEN dom IS NULL OR dom = '' THEN 'bad-url'
            END AS reason,
            CAST(floor(t) AS BIGINT) AS ts, ip, split_part(st, '/', 1) AS action, code, bytes, m AS method,
            dom, u AS login,
            CASE WHEN reason IS NOT NULL THEN concat_ws(' ', c0, elapsed, ip, st, b, m, url, u) END AS sample
        FROM typed
        """
    )
    rejected = con.execute("SELECT count(*) FROM reject_errors").fetchone()[0]
    if rejected:
        con.execute(
            """INSERT INTO req (reason, sample)
               SELECT CASE WHEN error_type = 'TOO MANY COLUMNS' THEN 'too-many-fields' ELSE 'unreadable' END,
                      left(csv_line, 200)
               FROM reject_errors"""
        )


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
) -> Usage:
    """Read the Squid access log *log* and return the users' history for ``[since, until)``.

    Lines outside the period are read (and checked) but not counted. Raises :class:`SquidLogError`
    only when the file cannot be opened at all; a bad line is counted in ``Usage.malformed``.
    """
    log = Path(log)
    if not log.is_file():
        raise SquidLogError(
            [
                Problem(
                    str(log),
                    None,
                    "",
                    "report.log-missing",
                    _("the access log does not exist"),
                    _("give the path of Squid's access.log"),
                )
            ]
        )
    with tempfile.TemporaryDirectory(prefix="akm-squidlog-") as scratch:
        con = duckdb.connect(config={"memory_limit": memory_limit, "temp_directory": scratch})
        try:
            if threads:
                con.execute(f"SET threads = {int(threads)}")
            return _analyse(con, log, attribution, categories, grants, since, until, top)
        finally:
            con.close()


def _analyse(con, log, attribution, categories, grants, since, until, top) -> Usage:
    try:
        _load(con, log)
    except duckdb.Error as exc:
        raise SquidLogError(
            [
                Problem(
                    str(log),
                    None,
                    "",
                    "report.log-unreadable",
                    _("the access log cannot be read: {error}").format(error=str(exc).splitlines()[0]),
                    _("check that the file is a Squid access log in the native format"),
                )
            ]
        ) from exc

    con.execute("CREATE TABLE hosts (ip VARCHAR PRIMARY KEY, host VARCHAR, dept VARCHAR)")
    _insert(con, "hosts", [(ip, h, d) for ip, (h, d) in attribution.hosts.items()])
    con.execute("CREATE TABLE people (login VARCHAR PRIMARY KEY, name VARCHAR, dept VARCHAR)")
    _insert(con, "people", [(k, n, d) for k, (n, d) in attribution.people.items()])

    lines = con.execute("SELECT count(*) FROM req").fetchone()[0]
    malformed = dict(
        con.execute(
            "SELECT reason, count(*) FROM req WHERE reason IS NOT NULL GROUP BY reason ORDER BY reason"
        ).fetchall()
    )
    samples = con.execute(
        "SELECT reason, any_value(sample) FROM req WHERE reason IS NOT NULL GROUP BY reason ORDER BY reason"
    ).fetchall()

    window = "reason IS NULL"
    params: list = []
    if since is not None:
        window += " AND ts >= ?"
        params.append(int(since.timestamp()))
    if until is not None:
        window += " AND ts < ?"
        params.append(int(until.timestamp()))
    con.execute(
        f"""CREATE TABLE v AS
            SELECT r.ts, r.ip, r.action, r.code, r.bytes, r.dom,
                   CASE WHEN r.login IN ('-', '') THEN NULL ELSE r.login END AS login,
                   h.host, p.name AS person, coalesce(h.dept, p.dept) AS dept,
                   p.dept AS person_dept, contains(r.action, 'DENIED') AS denied
            FROM req r LEFT JOIN hosts h ON h.ip = r.ip LEFT JOIN people p ON p.login = r.login
            WHERE {window}""",
        params,
    )
    requests, first, last = con.execute("SELECT count(*), min(ts), max(ts) FROM v").fetchone()

    measures = "count(*) AS requests, sum(bytes) AS bytes, count(*) FILTER (WHERE denied) AS denied"
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
                               {measures} FROM v WHERE login IS NOT NULL GROUP BY login
                               ORDER BY bytes DESC, login""",
    )

    top_sites: dict[tuple[str, str], list[dict]] = {}
    for scope, key in (
        ("all", "'all'"),
        ("host", "ip"),
        ("department", "coalesce(dept, '')"),
        ("person", "login"),
    ):
        rows = _rows(
            con,
            f"""
            SELECT k, dom AS domain, requests, bytes FROM (
                SELECT {key} AS k, dom, count(*) AS requests, sum(bytes) AS bytes,
                       row_number() OVER (PARTITION BY {key} ORDER BY sum(bytes) DESC, dom) AS rank
                FROM v WHERE {key} IS NOT NULL GROUP BY 1, 2)
            WHERE rank <= ? ORDER BY k, rank""",
            [top],
        )
        for row in rows:
            top_sites.setdefault((scope, row.pop("k")), []).append(row)

    restricted, restricted_rows = _restricted(con, categories, grants)
    to_time = _epoch_to_utc
    return Usage(
        lines=lines,
        requests=requests,
        malformed=malformed,
        malformed_samples=samples,
        first_time=to_time(first),
        last_time=to_time(last),
        by_host=by_host,
        by_department=by_department,
        by_person=by_person,
        top_sites=top_sites,
        restricted=restricted,
        restricted_rows=restricted_rows,
    )


def _epoch_to_utc(value: int | None) -> datetime | None:
    from datetime import UTC

    return None if value is None else datetime.fromtimestamp(value, UTC)


def _restricted(con, categories: Sequence[CategoryRule], grants: Sequence[Grant]):
    domains = [row[0] for row in con.execute("SELECT DISTINCT dom FROM v").fetchall()]
    con.execute("CREATE TABLE cat (dom VARCHAR, category VARCHAR)")
    _insert(con, "cat", _domain_categories(domains, categories))
    con.execute("""CREATE TABLE grants (kind VARCHAR, subject VARCHAR, category VARCHAR,
                   t0 BIGINT, t1 BIGINT)""")
    _insert(
        con,
        "grants",
        [
            (
                g.subject_kind,
                g.subject,
                g.category,
                int(g.valid_from.timestamp()),
                int(g.valid_until.timestamp()),
            )
            for g in grants
        ],
    )
    rows = _rows(
        con,
        """
        WITH hits AS (
            SELECT v.*, c.category,
                   EXISTS (SELECT 1 FROM grants g
                           WHERE g.category = c.category AND v.ts >= g.t0 AND v.ts < g.t1
                             AND ((g.kind = 'person' AND g.subject = v.login)
                                  OR (g.kind = 'host' AND g.subject = v.host)
                                  OR (g.kind = 'department' AND g.subject IN (v.dept, v.person_dept))))
                       AS granted
            FROM v JOIN cat c ON c.dom = v.dom)
        SELECT coalesce(host, ip) AS host, login, coalesce(dept, '') AS department, category, dom AS domain,
               CASE WHEN granted AND NOT denied THEN 'allowed_by_grant'
                    WHEN NOT granted AND denied THEN 'denied_as_intended'
                    WHEN NOT granted AND NOT denied THEN 'anomaly'
                    ELSE 'denied_despite_grant' END AS outcome,
               count(*) AS requests, sum(bytes) AS bytes, min(ts) AS first_ts, max(ts) AS last_ts
        FROM hits GROUP BY ALL
        ORDER BY outcome, host, login NULLS FIRST, category, domain""",
    )
    summary = dict.fromkeys(OUTCOMES, 0)
    for row in rows:
        summary[row["outcome"]] += row["requests"]
        row["first_time"] = _epoch_to_utc(row.pop("first_ts"))
        row["last_time"] = _epoch_to_utc(row.pop("last_ts"))
    return summary, rows
