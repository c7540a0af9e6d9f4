"""The users' history engine on a log whose every figure is known."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from akm.report.squidgen import generate
from akm.report.squidlog import TOP_SCOPES, CategoryRule, Grant, SquidLogError, analyse, attribution_from

T0 = datetime(2026, 11, 16, 10, 0, tzinfo=UTC)
"""The fixture log's reference time (same as conftest.T0)."""

CATEGORIES = [CategoryRule("social.example", "social"), CategoryRule("video.example", "video")]
GRANTS = [
    Grant("person", "n.toshmatova", "social", T0, T0 + timedelta(hours=1), "ticket-1"),
    Grant("department", "raqamlashtirish", "social", T0, T0 + timedelta(days=1), "ticket-2"),
]


@pytest.fixture(scope="module")
def usage(small_log, inventory):
    return analyse(
        small_log,
        attribution_from(inventory),
        CATEGORIES,
        GRANTS,
        since=T0 - timedelta(days=1),
        until=T0 + timedelta(days=1),
        threads=1,
        top_scopes=TOP_SCOPES,
    )


def test_every_line_is_counted_or_explained(usage):
    assert usage.lines == 23
    assert usage.requests == 7
    assert usage.malformed == {
        "too-long": 1,
        "control-character": 1,
        "too-few-fields": 2,
        "too-many-fields": 2,
        "bad-time": 2,
        "bad-elapsed": 1,
        "bad-address": 2,
        "bad-status": 1,
        "bad-size": 1,
        "size-too-large": 1,
        "bad-url": 1,
    }
    assert usage.skipped == 15
    assert usage.lines == usage.requests + usage.outside + usage.skipped
    first, second = usage.samples["bad-address"]
    assert (first.line, second.line) == (12, 20)
    assert first.text().split()[2] == "not-an-ip"


def test_per_host_totals(usage):
    hosts = {row["host"] or row["ip"]: row for row in usage.by_host}
    assert {k: (v["requests"], v["bytes"], v["denied"]) for k, v in hosts.items()} == {
        "xodim-01": (3, 6900, 1),
        "oqish-01": (1, 3900, 1),
        "oqish-02": (1, 5000, 0),
        "raqam-01": (1, 3900, 1),
        str(usage.by_host[-1]["ip"]): (1, 700, 0),
    }
    assert hosts["xodim-01"]["department"] == "akt"
    assert usage.by_host[-1]["host"] is None


def test_per_department_and_person(usage):
    departments = {row["department"]: (row["requests"], row["bytes"]) for row in usage.by_department}
    assert departments == {
        "akt": (3, 6900),
        "oqish_zali": (2, 8900),
        "raqamlashtirish": (1, 3900),
        "": (1, 700),
    }
    people = {row["login"]: (row["person"], row["requests"], row["denied"]) for row in usage.by_person}
    assert people == {"n.toshmatova": ("Nodira Toshmatova", 3, 1), "j.qodirov": ("Jasur Qodirov", 1, 1)}
    assert {row["login"]: row["computers"] for row in usage.by_person} == {
        "n.toshmatova": ["xodim-01"],
        "j.qodirov": ["raqam-01"],
    }


def test_top_sites_per_scope(usage, inventory):
    staff = str(inventory.asset("xodim-01").ip_on("staff"))
    host = [(row["domain"], row["requests"], row["bytes"]) for row in usage.top_sites[("host", staff)]]
    assert host == [("www.social.example", 2, 5900), ("kitob.example.uz", 1, 1000)]
    person = [row["domain"] for row in usage.top_sites[("person", "n.toshmatova")]]
    assert person == ["www.social.example", "kitob.example.uz"]
    assert [row["domain"] for row in usage.top_sites[("department", "oqish_zali")]] == [
        "video.example",
        "social.example",
    ]
    assert {scope for scope, _key in usage.top_sites} == set(TOP_SCOPES)


def test_top_sites_are_domains_in_lower_case(usage):
    top = {row["domain"]: (row["requests"], row["bytes"]) for row in usage.top_sites[("all", "all")]}
    assert top == {
        "kitob.example.uz": (2, 1700),
        "www.social.example": (2, 5900),
        "social.example": (2, 7800),
        "video.example": (1, 5000),
    }


def test_restricted_requests_checked_against_grants_at_that_moment(usage):
    assert usage.restricted == {
        "allowed_by_grant": 1,
        "denied_as_intended": 2,
        "anomaly": 1,
        "denied_despite_grant": 1,
    }
    outcome = {(row["host"], row["outcome"]) for row in usage.restricted_rows}
    assert outcome == {
        ("xodim-01", "allowed_by_grant"),
        ("xodim-01", "denied_as_intended"),
        ("oqish-01", "denied_as_intended"),
        ("oqish-02", "anomaly"),
        ("raqam-01", "denied_despite_grant"),
    }


def test_period_without_traffic_is_empty(small_log, inventory):
    empty = analyse(
        small_log,
        attribution_from(inventory),
        since=T0 + timedelta(days=100),
        until=T0 + timedelta(days=101),
        threads=1,
    )
    assert empty.requests == 0
    assert empty.by_host == [] and empty.top_sites == {}
    assert empty.malformed["bad-time"] == 2


def test_missing_log_is_a_problem_not_a_traceback(tmp_path, inventory):
    with pytest.raises(SquidLogError) as caught:
        analyse(tmp_path / "nope.log", attribution_from(inventory))
    assert caught.value.problems[0].code == "report.log-missing"


def test_binary_garbage_never_crashes(tmp_path, inventory):
    path = tmp_path / "garbage.log"
    path.write_bytes(
        b"\xff\xfe\x00garbage\n" * 3 + b"1764028800.000 1 198.18.30.11 TCP_MISS/200 5 GET http://a.b/ - H/- -\n"
    )
    usage = analyse(path, attribution_from(inventory), threads=1)
    assert usage.requests == 1
    assert usage.skipped == 3


def test_generated_log_totals(tmp_path, inventory):
    clients = [
        (str(inventory.asset("oqish-01").ip_on("readers")), "-"),
        (str(inventory.asset("xodim-01").ip_on("staff")), "n.toshmatova"),
    ]
    path = generate(tmp_path / "gen.log", 5000, clients, ["a.example", "b.example"], T0, 3600, bad_every=100)
    usage = analyse(path, attribution_from(inventory), threads=1)
    assert usage.lines == 5000
    assert usage.skipped == 50
    assert usage.requests == 4950
    assert sum(row["requests"] for row in usage.by_host) == 4950


def test_group_straddling_a_grant_end_is_resolved_per_request(tmp_path, inventory):
    """The same host and site before and after the grant ended: one allowed by grant, one anomaly."""
    ip = inventory.asset("xodim-01").ip_on("staff")
    lines = [
        f"{(T0 + timedelta(seconds=s)).timestamp():.3f}    100 {ip} TCP_TUNNEL/200 10 CONNECT "
        f"www.social.example:443 n.toshmatova HIER_DIRECT/198.18.0.1 -"
        for s in (10, 7200)
    ]
    path = tmp_path / "straddle.log"
    path.write_text("\n".join(lines) + "\n")
    usage = analyse(path, attribution_from(inventory), CATEGORIES, GRANTS, threads=1)
    assert usage.restricted == {
        "allowed_by_grant": 1,
        "denied_as_intended": 0,
        "anomaly": 1,
        "denied_despite_grant": 0,
    }


def test_days_are_cut_at_midnight_in_the_zone_of_the_period(tmp_path, inventory):
    """One computer asks one site a second before and a second after midnight in the centre's time zone
    (a grant starts in between too): two days of one request each, every day of the period listed, and
    the grant still judges each request by its own time."""
    zone = ZoneInfo(inventory.centre.timezone)
    midnight = datetime(2026, 11, 18, tzinfo=zone)
    ip = inventory.asset("xodim-01").ip_on("staff")
    lines = [
        f"{(midnight + timedelta(seconds=s)).timestamp():.3f}    100 {ip} TCP_TUNNEL/200 {size} CONNECT "
        f"www.social.example:443 n.toshmatova HIER_DIRECT/198.18.0.1 -"
        for s, size in ((-1, 100), (1, 200))
    ]
    path = tmp_path / "midnight.log"
    path.write_text("\n".join(lines) + "\n")
    grant = Grant("person", "n.toshmatova", "social", midnight + timedelta(seconds=1), midnight + timedelta(days=1))
    since = datetime(2026, 11, 16, tzinfo=zone)
    usage = analyse(
        path, attribution_from(inventory), CATEGORIES, [grant], since=since, until=since + timedelta(days=7)
    )
    days = {row["day"]: (row["requests"], row["bytes"]) for row in usage.by_day}
    assert list(days) == [date(2026, 11, 16) + timedelta(days=n) for n in range(7)]
    assert days[date(2026, 11, 17)] == (1, 100) and days[date(2026, 11, 18)] == (1, 200)
    assert sum(n for n, _b in days.values()) == 2
    assert usage.restricted["allowed_by_grant"] == 1 and usage.restricted["anomaly"] == 1
    assert usage.by_segment == [{"segment": "staff", "requests": 2, "bytes": 300, "denied": 0}]
    assert usage.denied_by_category == []


def test_categories_restrict_only_whom_the_policy_names(small_log, inventory):
    """Restricted for the readers' segment only: staff traffic to the same sites is not checked."""
    usage = analyse(
        small_log,
        attribution_from(inventory),
        CATEGORIES,
        GRANTS,
        since=T0 - timedelta(days=1),
        until=T0 + timedelta(days=1),
        threads=1,
        restricted_for=[("segment", "readers")],
    )
    assert usage.restricted == {
        "allowed_by_grant": 0,
        "denied_as_intended": 1,
        "anomaly": 1,
        "denied_despite_grant": 0,
    }
    assert {row["host"] for row in usage.restricted_rows} == {"oqish-01", "oqish-02"}


def _summed(paths):
    import duckdb

    from akm.report.squidlog import _GROUP_COLUMNS

    files = ", ".join(f"'{p}'" for p in paths)
    return duckdb.sql(
        f"""SELECT ip, login, dom, bucket, sum(n), sum(bytes), sum(dn), sum(dbytes), min(t0), max(t1)
            FROM read_csv([{files}], columns={_GROUP_COLUMNS},
                 delim=',', quote='"', escape='"', header=false, auto_detect=false, allow_quoted_nulls=false)
            GROUP BY ALL ORDER BY ALL"""
    ).fetchall()


def test_scanner_flushes_at_its_budget_without_changing_a_total(tmp_path):
    """A table flushed every 1,000 groups (the memory bound) sums to exactly the unflushed groups."""
    from akm.report import _squidscan

    clients = [(f"198.18.30.{k}", "-" if k % 2 else f"user{k}") for k in range(10, 14)]
    path = generate(tmp_path / "many.log", 20000, clients, [f"s{k}.example" for k in range(3000)], T0, 3600)
    whole = _squidscan.scan(str(path), str(tmp_path / "whole"))
    flushed = _squidscan.scan(str(path), str(tmp_path / "flushed"), flush_groups=1000)
    assert whole["unique"] and not flushed["unique"]
    assert whole["lines"] == flushed["lines"] == 20000
    groups = _summed(whole["files"])
    assert len(groups) > 3000
    assert groups == _summed(flushed["files"])
    assert sum(row[4] for row in groups) == 20000
    assert 0 < sum(row[6] for row in groups) < 20000


def test_domain_rules_and_rejected_lines(tmp_path, inventory):
    """user@host and :port are cut, case is folded; a NUL byte and an over-long line are rejected."""
    ip = inventory.asset("xodim-01").ip_on("staff")
    stamp = f"{T0.timestamp():.3f}"
    lines = [
        f"{stamp}     10 {ip} TCP_MISS/200 100 GET http://me@WWW.Kitob.example:8080/x - HIER_DIRECT/198.18.0.1 -",
        f"{stamp}     10 {ip} TCP_TUNNEL/200 200 CONNECT kitob.EXAMPLE:443 - HIER_DIRECT/198.18.0.1 -",
        f"{stamp}     10 {ip} TCP_MISS/200 300 GET /relative - HIER_DIRECT/198.18.0.1 -",
        f"{stamp}     10 {ip} TCP_MISS/200 400 GET http://a\0b.example/ - HIER_DIRECT/198.18.0.1 -",
        f"{stamp}     10 {ip} TCP_MISS/200 500 GET http://{'x' * 70000}.example/ - HIER_DIRECT/198.18.0.1 -",
    ]
    path = tmp_path / "rules.log"
    path.write_text("\n".join(lines) + "\n")
    usage = analyse(path, attribution_from(inventory), threads=1)
    assert usage.malformed == {"bad-url": 1, "control-character": 1, "too-long": 1}
    top = {row["domain"]: row["bytes"] for row in usage.top_sites[("all", "all")]}
    assert top == {"www.kitob.example": 100, "kitob.example": 200}
