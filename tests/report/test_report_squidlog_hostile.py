"""Hostile access logs: generated lines, valid and broken in every way we know, mixed; the report's
figures must equal those of an independent reference parser written here in plain Python from the rules
in docs/reports.md (never from the scanner's code), and no line may stop the report.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from docx import Document
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook

from akm import i18n
from akm.i18n import _
from akm.report import periods, render
from akm.report.build import MIB, OUTCOME_NAMES, Sources, build, log_appendix, read_logs, users_section
from akm.report.squidlog import REASONS, TOP_SITES

HERE = Path(__file__).parent
WEEK = periods.parse("weekly", "2026-W47", date(2026, 11, 30))
TIMEZONE = "Asia/Tashkent"
"""The lab inventory's time zone (checked in the test): the policy view's dates are midnights there."""
ZONE = ZoneInfo(TIMEZONE)
MAX_TIME = 253402300800
"""10000-01-01T00:00:00Z"""

POLICY_VIEW = {
    "categories": {"social": ["social.example"], "video": ["video.example"]},
    "grants": [
        {"person": "n.toshmatova", "category": "social", "from": date(2026, 11, 17), "until": date(2026, 11, 19)},
        {"host": "oqish-01", "category": "video", "from": date(2026, 11, 18), "until": date(2026, 11, 20)},
        {
            "department": "raqamlashtirish",
            "category": "social",
            "from": date(2026, 11, 20),
            "until": date(2026, 11, 21),
        },
    ],
}


@pytest.fixture(autouse=True)
def english():
    i18n.setup("en")
    yield
    i18n.setup("en")


def _midnight(day: date) -> int:
    return int(datetime.combine(day, time(), ZONE).timestamp())


START, END = (int(t.timestamp()) for t in WEEK.bounds(TIMEZONE))
BOUNDARIES = sorted({_midnight(g[k]) for g in POLICY_VIEW["grants"] for k in ("from", "until")})


# --- the reference parser -------------------------------------------------------------------------------


@dataclass
class Reference:
    """What the report must show, computed line by line."""

    lines: int = 0
    outside: int = 0
    requests: int = 0
    reasons: Counter = field(default_factory=Counter)
    first_lines: dict = field(default_factory=lambda: defaultdict(list))
    hosts: dict = field(default_factory=lambda: defaultdict(lambda: [0, 0, 0]))
    sites: dict = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    logins: dict = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    outcomes: Counter = field(default_factory=Counter)
    days: dict = field(default_factory=lambda: {WEEK.start + timedelta(days=n): [0, 0, 0] for n in range(7)})
    denied_categories: Counter = field(default_factory=Counter)


IPV4 = re.compile(rb"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}")


def _is_address(text: bytes) -> bool:
    if IPV4.fullmatch(text):
        return True
    if b":" not in text or b"%" in text:
        return False
    try:
        ipaddress.IPv6Address(text.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        return False
    return True


def _text(raw: bytes) -> str:
    """A field as the report shows it: invalid UTF-8, U+FFFE and U+FFFF replaced by U+FFFD."""
    return raw.decode("utf-8", "replace").replace("\ufffe", "\ufffd").replace("\uffff", "\ufffd")


ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _judge(line: bytes):
    """(reason, None) for a rejected line, (None, (time, address, login, site, bytes, denied)) otherwise."""
    if len(line) > 65536:
        return "too-long", None
    if any(byte < 0x20 or byte == 0x7F for byte in line):
        return "control-character", None
    columns = line.split(b" ")
    pad = next((k for k in range(1, 6) if k < len(columns) and columns[k]), 6)
    fields = columns[pad:]
    if len(fields) < 8:
        return "too-few-fields", None
    if any(fields[9:]):
        return "too-many-fields", None
    elapsed, address, status, size, method, url, user = fields[:7]
    stamp = re.fullmatch(rb"([0-9]{1,12})\.[0-9]{3}", columns[0])
    if not stamp or int(stamp[1]) >= MAX_TIME:
        return "bad-time", None
    if not re.fullmatch(rb"-?[0-9]{1,18}", elapsed):
        return "bad-elapsed", None
    if not _is_address(address):
        return "bad-address", None
    if not re.fullmatch(rb"[A-Z][A-Z0-9_]*/[0-9]{3}", status):
        return "bad-status", None
    if not re.fullmatch(rb"[0-9]+", size):
        return "bad-size", None
    if int(size) > 2**63 - 1:
        return "size-too-large", None
    target = url if method == b"CONNECT" else url.split(b"/")[2] if b"://" in url else b""
    host = target.rsplit(b"@", 1)[-1]
    if host.startswith(b"["):
        close = host.find(b"]")
        site = host[: close + 1] if close > 1 else b""
    else:
        site = host.split(b":")[0]
    if not site:
        return "bad-url", None
    login = None if user in (b"", b"-") else _text(user)
    record = (int(stamp[1]), address.decode(), login, _text(site).translate(ASCII_LOWER), int(size))
    return None, (*record, b"DENIED" in status)


def _category(site: str) -> str | None:
    found = [
        (len(suffix), category)
        for category, suffixes in POLICY_VIEW["categories"].items()
        for suffix in suffixes
        if site == suffix or site.endswith("." + suffix)
    ]
    return max(found)[1] if found else None


def _who(inventory) -> tuple[dict, dict]:
    hosts = {str(i.ip): (a.hostname, a.department) for a in inventory.assets for i in a.interfaces if i.ip}
    people = {p.id: p.department for p in inventory.people.values()}
    return hosts, people


def _granted(stamp: int, login, address: str, category: str, who: tuple[dict, dict]) -> bool:
    hosts, people = who
    host, host_department = hosts.get(address, (None, None))
    person_department = people.get(login)
    department = host_department or person_department
    for grant in POLICY_VIEW["grants"]:
        kind = next(k for k in ("person", "host", "department") if k in grant)
        subject = {"person": [login], "host": [host], "department": [department, person_department]}[kind]
        if (
            grant["category"] == category
            and grant[kind] in subject
            and _midnight(grant["from"]) <= stamp < _midnight(grant["until"])
        ):
            return True
    return False


def reference(data: bytes, inventory) -> Reference:
    """Read *data* by the documented rules, independently of the scanner."""
    found = Reference()
    who = _who(inventory)
    pieces = data.split(b"\n")
    for number, line in enumerate(pieces, 1):
        if line.endswith(b"\r"):
            line = line[:-1]
        if not line:
            continue
        found.lines += 1
        reason, record = _judge(line)
        if reason:
            found.reasons[reason] += 1
            if len(found.first_lines[reason]) < 3:
                found.first_lines[reason].append((number, line))
            continue
        stamp, address, login, site, size, denied = record
        if not START <= stamp < END:
            found.outside += 1
            continue
        found.requests += 1
        for totals in (found.hosts[address], found.sites[site]) + ((found.logins[login],) if login else ()):
            totals[0] += 1
            totals[1] += size
        found.hosts[address][2] += denied
        day = found.days[datetime.fromtimestamp(stamp, ZONE).date()]
        day[0] += 1
        day[1] += size
        day[2] += denied
        category = _category(site)
        if denied:
            found.denied_categories[category or ""] += 1
        if category:
            granted = _granted(stamp, login, address, category, who)
            outcome = {
                (True, False): "allowed_by_grant",
                (False, True): "denied_as_intended",
                (False, False): "anomaly",
                (True, True): "denied_despite_grant",
            }[(granted, denied)]
            found.outcomes[outcome] += 1
    return found


# --- generated lines ----------------------------------------------------------------------------------


def _addresses(inventory) -> list[str]:
    known = [inventory.asset(h).ip_on(s) for h, s in (("xodim-01", "staff"), ("oqish-01", "readers"))]
    digit = inventory.asset("raqam-01").ip_on("digitization")
    stranger = inventory.segments["readers"].subnet.broadcast_address - 5
    mapped = ipaddress.IPv6Address(f"::ffff:{known[1]}")
    return [*map(str, known), str(digit), str(stranger), str(mapped), str(ipaddress.IPv6Address("2001:db8::7"))]


BAD_ADDRESSES = [
    "999.18.30.11",
    "198.18.30",
    "198.018.30.11",
    "::g",
    "fe80::1%eth0",
    "1:2:3:4:5:6:7:8:9",
    "not-an-ip",
    "١٩٨.١٨.٣٠.١١",
    "2001:db8::1::2",
]

times = st.one_of(
    st.integers(START - 2 * 86400, END + 2 * 86400),
    st.integers(BOUNDARIES[0], BOUNDARIES[-1]),
    st.sampled_from([START - 1, START, END - 1, END, *BOUNDARIES, *(b - 1 for b in BOUNDARIES)]),
).map(lambda s: b"%d.%03d" % (s, s % 1000))
bad_times = st.sampled_from(
    [
        *(b"", b"yesterday", b"1794808800", b"1794808800.1", b"-1794808800.000", b"+1794808800.000"),
        *(b"253402300800.000", b"99999999999999.000", b"1794808800,000", b"1794808800.0000", b"\xd9\xa1.000"),
    ]
)
elapsed = st.integers(-1, 10**7).map(lambda n: str(n).rjust(6).encode())
bad_elapsed = st.sampled_from([b"  fast", b"   1.5", b"   --5", b"      ", b"1" * 19, b"   1e3"])
statuses = st.sampled_from([b"TCP_MISS/200", b"TCP_DENIED/403", b"TCP_TUNNEL/200", b"NONE_NONE/000", b"TAG_NONE/400"])
bad_statuses = st.sampled_from(
    [b"tcp_miss/200", b"TCP_MISS/20", b"/200", b"TCP_MISS", b"TCP-MISS/200", b"TCP_MISS/2000", b"TCP_DENIED/4x3"]
)
sizes = st.one_of(
    st.integers(0, 10**6),
    st.just(2**63 - 1),
    st.integers(2**62, 2**63 - 1),
).map(lambda n: str(n).encode())
bad_sizes = st.one_of(
    st.sampled_from([b"-5", b"1k", b"", b"0x10", b"+5", b"1.5"]),
    st.integers(2**63, 10**30).map(lambda n: str(n).encode()),
)
hosts = st.sampled_from(
    [
        *(b"social.example", b"WWW.Social.Example", b"video.example", b"kitob.example.uz", b"notsocial.example"),
        *(b"[2001:DB8::1]", b"kitob\xff.example.uz", b"\xef\xbf\xbf.example", "китоб.uz".encode()),
    ]
)
bad_hosts = st.sampled_from([b"[2001:db8::1", b"[]", b"", b"user@"])
logins = st.sampled_from(
    [b"-", b"n.toshmatova", b"j.qodirov", b"n.tosh\xe2\x82matova", "😀".encode(), b"x\xed\xa0\x80"]
)


@st.composite
def urls(draw, names):
    """(method, URL) for a host drawn from *names*: CONNECT host:port, or scheme://[user@]host[:port]/path."""
    host = draw(names)
    if draw(st.booleans()):
        return b"CONNECT", host + draw(st.sampled_from([b":443", b"", b":8443"]))
    user = draw(st.sampled_from([b"", b"me@", b"me:pw@"]))
    port = draw(st.sampled_from([b"", b":8080"]))
    path = draw(st.sampled_from([b"/", b"/a/b?c=d", b"", b"/\xff\xfe"]))
    return draw(st.sampled_from([b"GET", b"POST", b"HEAD"])), b"http://" + user + host + port + path


HOSTILE = ("time", "elapsed", "address", "status", "size", "url", "fields", "control", "long", "garbage", "spaces")


@st.composite
def lines(draw, addresses):
    """One log line: valid (half of them: a fifth of those to a site a grant covers, in its time, and a
    tenth the largest size Squid writes, all in one group), or broken in one of the ways of HOSTILE.
    *addresses*: those of xodim-01, oqish-01 and raqam-01 first."""
    kind = draw(st.sampled_from(["valid"] * (len(HOSTILE) - 3) + ["granted"] * 2 + ["huge"] + list(HOSTILE)))
    if kind == "huge":
        # the same group each time: three of them pass 2^64 bytes
        huge = (START + 3600, addresses[0].encode(), 2**63 - 1)
        return b"%d.000      1 %s TCP_MISS/200 %d GET http://kitob.example.uz/ - HIER_NONE/- -" % huge
    stamp = draw(bad_times if kind == "time" else times)
    took = draw(bad_elapsed if kind == "elapsed" else elapsed)
    address = draw(st.sampled_from(BAD_ADDRESSES if kind == "address" else addresses)).encode()
    status = draw(bad_statuses if kind == "status" else statuses)
    size = draw(bad_sizes if kind == "size" else sizes)
    user = draw(logins)
    names = hosts
    if kind == "granted":
        grant = draw(st.sampled_from(POLICY_VIEW["grants"]))
        start, end = _midnight(grant["from"]), _midnight(grant["until"])
        second = draw(st.one_of(st.integers(start, end - 1), st.sampled_from([start, end - 1, end])))
        stamp = b"%d.%03d" % (second, draw(st.integers(0, 999)))
        names = st.sampled_from(
            [b"social.example", b"www.SOCIAL.example"] if grant["category"] == "social" else [b"video.example"]
        )
        if "person" in grant:
            user = grant["person"].encode()
        elif "host" in grant:
            address = addresses[1].encode()
        elif draw(st.booleans()):
            address = addresses[2].encode()
        else:
            user = b"j.qodirov"
    if kind == "url":
        method, url = draw(st.one_of(urls(bad_hosts), st.just((b"GET", b"/relative")), st.just((b"GET", b""))))
    else:
        method, url = draw(urls(names))
    if kind == "long":
        url += b"/" + b"x" * draw(st.sampled_from([65000, 65536, 66000]))
    tail = draw(st.sampled_from([[b"HIER_DIRECT/198.18.0.1", b"text/html"], [b"HIER_NONE/-", b"-"], [b"HIER_NONE/-"]]))
    if kind == "fields":
        tail = draw(st.sampled_from([[], [b"HIER_NONE/-", b"text/html", b"extra"], [*tail, b"", b"x"]]))
    line = b" ".join([stamp, took, address, status, size, method, url, user, *tail])
    if kind == "control":
        at = draw(st.integers(0, len(line)))
        line = line[:at] + draw(st.sampled_from([b"\r", b"\x00", b"\t", b"\x1b", b"\x7f", b"\x01"])) + line[at:]
    elif kind == "garbage":
        line = draw(st.binary(max_size=80).filter(lambda b: b"\n" not in b))
    elif kind == "spaces":
        line += b"   "
    return line


@st.composite
def logs(draw, addresses):
    """A whole log: lines joined by LF or CRLF, empty lines among them, with or without a final newline."""
    found = draw(st.lists(st.one_of(lines(addresses), st.just(b"")), min_size=10, max_size=60))
    ending = draw(st.sampled_from([b"\n", b"\r\n"]))
    return ending.join(found) + draw(st.sampled_from([ending, b""]))


# --- the properties ------------------------------------------------------------------------------------


def _rows(section, key) -> list[list]:
    return next((t.rows for t in section.tables if t.key == key), [])


@pytest.fixture(scope="module")
def view(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("view") / "policy-view.yml"
    path.write_text(yaml.safe_dump(POLICY_VIEW))
    return path


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("hostile")


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_report_totals_equal_the_reference_parsers(data, inventory, view, scratch):
    """Lines, requests, rejected lines by reason and their first line numbers, per-host requests, bytes
    and denied requests, top sites, per-login totals and restricted outcomes: the engine's exact figures
    and the report's tables, against the reference parser's."""
    assert inventory.centre.timezone == TIMEZONE
    log = scratch / "access.log"
    content = data.draw(logs(_addresses(inventory)))
    log.write_bytes(content)
    sources = Sources(inventory, access_logs=[log], policy_view=view, director=True)
    usages = read_logs(sources, *WEEK.bounds(TIMEZONE))
    ((_log, usage),) = usages
    expected = reference(content, inventory)

    assert (usage.lines, usage.requests, usage.outside) == (expected.lines, expected.requests, expected.outside)
    assert usage.malformed == dict(expected.reasons)
    assert {r: [(s.line, s.raw, s.length) for s in found] for r, found in usage.samples.items()} == {
        r: [(number, line[:240], len(line)) for number, line in found] for r, found in expected.first_lines.items()
    }
    assert {row["ip"]: [row["requests"], row["bytes"], row["denied"]] for row in usage.by_host} == expected.hosts
    top = sorted(expected.sites.items(), key=lambda kv: (-kv[1][1], kv[0]))[:TOP_SITES]
    assert [(r["domain"], r["requests"], r["bytes"]) for r in usage.top_sites.get(("all", "all"), [])] == [
        (site, n, b) for site, (n, b) in top
    ]
    assert {row["login"]: [row["requests"], row["bytes"]] for row in usage.by_person} == expected.logins
    assert {k: v for k, v in usage.restricted.items() if v} == dict(expected.outcomes)
    assert {row["day"]: [row["requests"], row["bytes"], row["denied"]] for row in usage.by_day} == expected.days
    assert {row["category"]: row["denied"] for row in usage.denied_by_category} == dict(expected.denied_categories)

    # The report's own tables, as DOCX, XLSX and HTML show them.
    users = users_section(sources, usages)
    hosts, _people = _who(inventory)
    if expected.requests:
        shown = {row[0]: (row[2], row[3], row[4]) for row in _rows(users, "users_hosts")}
        assert shown == {hosts.get(ip, (ip,))[0]: (n, round(b / MIB, 1), d) for ip, (n, b, d) in expected.hosts.items()}
        outcomes = dict(map(tuple, _rows(users, "users_restricted")))
        assert outcomes == {_(name): expected.outcomes[key] for key, name in OUTCOME_NAMES.items()}
    else:
        assert users.no_data
    appendix = log_appendix(sources, usages)
    assert {code: n for _message, code, n in _rows(appendix, "log_rejects")} == dict(expected.reasons)
    assert [(code, line) for code, _log, line, _text in _rows(appendix, "log_reject_lines")] == [
        (code, number) for code in REASONS for number, _line in expected.first_lines.get(code, [])
    ]


def test_every_reason_has_an_uzbek_message():
    i18n.setup("uz")
    assert all(_(message) != message for message in REASONS.values())


def test_the_whole_hostile_corpus_gives_a_report_in_every_format(inventory, tmp_path):
    """Every bad log of the corpus in one file: the report is written in DOCX, XLSX and HTML, and its
    appendix counts exactly the lines the corpus cases expect to be rejected."""
    log = tmp_path / "access.log"
    cases = sorted(p.parent for p in (HERE / "bad").glob("*/access.log"))
    log.write_bytes(b"".join(case.joinpath("access.log").read_bytes() for case in cases))
    expected = Counter()
    for case in cases:
        expected.update(yaml.safe_load((case / "expected.yml").read_text())["malformed"])
    report = build(Sources(inventory, access_logs=[log]), WEEK)
    appendix = report.sections[-1]
    assert {code: n for _message, code, n in _rows(appendix, "log_rejects")} == dict(expected)
    docx = render.write_docx(report, tmp_path / "r.docx")
    text = "\n".join(p.text for p in Document(str(docx)).paragraphs)
    assert "Appendix: access log lines not counted" in text
    book = load_workbook(render.write_xlsx(report, tmp_path / "r.xlsx"))
    assert book["log_rejects"].max_row == 2 + len(expected)
    html = render.write_html(report, tmp_path / "r.html").read_text()
    assert 'id="log_rejects"' in html and "\\r" in html
