"""A deterministic generator of Squid access logs (native format) for tests and the benchmark.

Rows are computed by DuckDB from a hash of the row number, so the same arguments always give the same
file, and ten million lines take seconds rather than minutes. Each client is an (address, login) pair
that keeps its login, as a real workstation does; sites are picked with a skewed popularity so that
top-site tables look like real ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import duckdb

_GOOD = "1764028800.000      5 198.18.30.10 TCP_MISS/200 100 GET http://a.example/ - HIER_DIRECT/198.18.0.1 -"

BAD_LINES = (
    "garbage without any structure",
    "1764028800.000      5 198.18.30.10 TCP_MISS/200",
    "notatime      5 198.18.30.10 TCP_MISS/200 100 GET http://a.example/ - HIER_DIRECT/198.18.0.1 text/html",
    "1764028800.000      5 not-an-ip TCP_MISS/200 100 GET http://a.example/ - HIER_DIRECT/198.18.0.1 -",
    "1764028800.000      5 198.18.30.10 TCP_MISS/200 lots GET http://a.example/ - HIER_DIRECT/198.18.0.1 -",
    "1764028800.000      5 198.18.30.10 TCP_MISS 100 GET http://a.example/ - HIER_DIRECT/198.18.0.1 -",
    _GOOD.replace("a.example/", "a.example/" + "x" * 65536),
    _GOOD.replace("a.example/", "a.example/\r/"),
    _GOOD + " text/html extra",
    _GOOD.replace("1764028800.000", "253402300800.000"),
    _GOOD.replace("     5", "  fast"),
    _GOOD.replace("198.18.30.10", "198.18.300.10"),
    _GOOD.replace(" 100 ", " 9223372036854775808 "),
    _GOOD.replace("http://a.example/", "/no/host"),
)
"""At least one line for each reason a line is rejected (see ``akm.report.squidlog.REASONS``)."""


def generate(
    path: Path | str,
    lines: int,
    clients: Sequence[tuple[str, str]],
    domains: Sequence[str],
    start: datetime,
    seconds: int,
    denied_share: int = 5,
    bad_every: int = 0,
    threads: int | None = None,
) -> Path:
    """Write *lines* log lines to *path* and return it.

    ``clients`` are (address, login or ``-``) pairs; ``domains`` are site names, the first ones the most
    visited; lines are spread evenly over *seconds* from *start*; ``denied_share`` percent of the
    requests are TCP_DENIED/403. With ``bad_every`` > 0, every ``bad_every``-th line is replaced by one of
    :data:`BAD_LINES` in turn (the file then has the same number of lines).
    """
    path = Path(path)

    def pick(salt: int, modulo: int) -> str:
        return f"CAST(hash(i, {salt}) % {modulo} AS BIGINT)"

    con = duckdb.connect()
    try:
        if threads:
            con.execute(f"SET threads = {int(threads)}")
        con.execute("SET preserve_insertion_order = true")
        epoch = int(start.timestamp())
        quoted = str(path).replace("'", "''")
        bad = "NULL"
        if bad_every:
            bad = (
                f"CASE WHEN i % {int(bad_every)} = {int(bad_every) - 1} "
                f"THEN $bad[1 + (i // {int(bad_every)}) % {len(BAD_LINES)}] END"
            )
        con.execute(
            f"""
            COPY (
                WITH r AS (
                    SELECT i,
                           $clients[1 + {pick(1, len(clients))}] AS client,
                           $domains[1 + CAST(floor({len(domains)} * pow({pick(2, 1000003)} / 1000003.0, 3))
                                             AS BIGINT)] AS dom,
                           {pick(3, 100)} < {int(denied_share)} AS denied,
                           {pick(4, 5)} < 2 AS tls,
                           {pick(5, 3)} = 0 AS hit
                    FROM range({int(lines)}) t(i))
                SELECT coalesce({bad},
                    CAST({epoch} + i * {int(seconds)} // {max(int(lines), 1)} AS VARCHAR) || '.'
                    || lpad(CAST({pick(6, 1000)} AS VARCHAR), 3, '0') || ' '
                    || lpad(CAST({pick(7, 4000)} AS VARCHAR), 6, ' ') || ' '
                    || client[1] || ' '
                    || CASE WHEN denied THEN 'TCP_DENIED/403' WHEN hit THEN 'TCP_HIT/200'
                            ELSE 'TCP_MISS/200' END
                    || ' ' || CAST(CASE WHEN denied THEN 3900 + {pick(8, 200)} ELSE {pick(8, 250000)} END
                                   AS VARCHAR)
                    || CASE WHEN tls THEN ' CONNECT ' || dom || ':443'
                            ELSE ' GET http://' || dom || '/p/' || CAST({pick(9, 1000)} AS VARCHAR) END
                    || ' ' || client[2] || ' '
                    || CASE WHEN denied THEN 'HIER_NONE/- text/html'
                            ELSE 'HIER_DIRECT/198.18.0.1 text/html' END
                ) AS line
                FROM r ORDER BY i
            ) TO '{quoted}' (FORMAT csv, HEADER false, QUOTE '', ESCAPE '', DELIMITER '\\x01')
            """,
            {"clients": [list(c) for c in clients], "domains": list(domains), "bad": list(BAD_LINES)}
            if bad_every
            else {"clients": [list(c) for c in clients], "domains": list(domains)},
        )
    finally:
        con.close()
    return path
