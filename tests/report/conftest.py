"""Shared fixtures of the report tests: the lab inventory and a small access log whose every figure is
known, built from the inventory's own addresses (no address is typed here)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from akm.inventory import load_inventory
from akm.report.squidgen import BAD_LINES

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 11, 16, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def inventory():
    return load_inventory(ROOT / "inventory" / "lab")


def _line(when: datetime, ip, status: str, size: int, method: str, url: str, user: str = "-") -> str:
    hier = "HIER_NONE/-" if "DENIED" in status else "HIER_DIRECT/198.18.0.1"
    return f"{when.timestamp():.3f} {123:6d} {ip} {status} {size} {method} {url} {user} {hier} text/html"


@pytest.fixture(scope="session")
def small_log(tmp_path_factory, inventory) -> Path:
    """Eight good lines (one outside the period), at least one line per reason a line is rejected (the
    last with a login, to be hidden in the appendix), one unknown host."""
    staff = inventory.asset("xodim-01").ip_on("staff")
    reader1 = inventory.asset("oqish-01").ip_on("readers")
    reader2 = inventory.asset("oqish-02").ip_on("readers")
    digit = inventory.asset("raqam-01").ip_on("digitization")
    stranger = inventory.segments["readers"].subnet.broadcast_address - 5
    lines = [
        _line(T0, staff, "TCP_MISS/200", 1000, "GET", "http://kitob.example.uz/a", "n.toshmatova"),
        _line(
            T0 + timedelta(seconds=100),
            staff,
            "TCP_TUNNEL/200",
            2000,
            "CONNECT",
            "www.social.example:443",
            "n.toshmatova",
        ),
        _line(T0 + timedelta(seconds=10), reader1, "TCP_DENIED/403", 3900, "CONNECT", "social.example:443"),
        _line(T0 + timedelta(seconds=20), reader2, "TCP_MISS/200", 5000, "GET", "http://VIDEO.example/v"),
        _line(
            T0 + timedelta(hours=2),
            staff,
            "TCP_DENIED/403",
            3900,
            "CONNECT",
            "www.social.example:443",
            "n.toshmatova",
        ),
        _line(
            T0 + timedelta(seconds=50),
            digit,
            "TCP_DENIED/403",
            3900,
            "CONNECT",
            "social.example:443",
            "j.qodirov",
        ),
        _line(T0 + timedelta(seconds=60), stranger, "TCP_MISS/200", 700, "GET", "http://kitob.example.uz/b"),
        _line(
            T0 - timedelta(days=30),
            staff,
            "TCP_MISS/200",
            99999,
            "GET",
            "http://old.example/",
            "n.toshmatova",
        ),
        *BAD_LINES,
        _line(T0, staff, "TCP_MISS/200", 1, "GET", "http://a.example/", "n.toshmatova") + " extra1 extra2",
    ]
    path = tmp_path_factory.mktemp("squid") / "access.log"
    path.write_text("\n".join(lines) + "\n")
    return path
