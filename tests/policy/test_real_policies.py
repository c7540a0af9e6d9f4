"""The centre's real policies (production and lab) pass the check and give configurations the real
Squid accepts; the lab policy answers the questions the lab tests will ask."""

from __future__ import annotations

import subprocess

import pytest

from akm.policy.build import render, write_tree
from akm.policy.compile import compile_policy
from akm.policy.evaluate import decide
from akm.policy.generators import Options
from akm.policy.load import load_policy

from .conftest import AT, ROOT


@pytest.fixture(scope="module", params=["production", "lab"])
def real(request):
    from akm.inventory import load_inventory

    inventory = load_inventory(ROOT / "inventory" / request.param, today=AT.date())
    return compile_policy(load_policy(ROOT / "policies" / "access" / request.param), inventory, AT)


def test_real_policy_has_no_errors_and_no_warnings(real):
    assert real.problems == []


@pytest.mark.needs("squid")
def test_real_policy_squid_configuration_parses(real, tmp_path):
    out = tmp_path / "build"
    write_tree(render(real, ["squid"], Options(squid_dir=out / "squid")), out)
    result = subprocess.run(
        ["squid", "-k", "parse", "-f", str(out / "squid" / "squid.conf")], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "WARNING" not in result.stderr


def _unit(policy, hostname):
    from ipaddress import IPv4Network

    asset = policy.inventory.asset(hostname)
    segment = "staff" if hostname.startswith("xodim") else "readers"
    return (IPv4Network(asset.ip_on(segment)),)


def test_lab_policy_answers_what_the_lab_tests_check():
    from datetime import timedelta

    from akm.inventory import load_inventory

    inventory = load_inventory(ROOT / "inventory" / "lab", today=AT.date())
    raw = load_policy(ROOT / "policies" / "access" / "lab")
    now = compile_policy(raw, inventory, AT)
    sites = {site.category: site.domain for site in inventory.lab.internet.sites}
    reader = _unit(now, "oqish-01")
    staff = _unit(now, "xodim-01")
    assert decide(now, reader, f"site:{sites['social']}", AT).action == "deny"
    assert decide(now, reader, f"site:{sites['news']}", AT).action == "allow"
    assert decide(now, reader, f"site:{sites['piracy']}", AT).action == "deny"
    assert decide(now, staff, f"site:{sites['social']}", AT).decision.id == "G-LAB-001"
    expiry = now.grant_expiry(next(g.record for g in now.active_grants if g.record.id == "G-LAB-001"))
    later = compile_policy(raw, inventory, expiry + timedelta(minutes=1))
    assert decide(later, staff, f"site:{sites['social']}", later.at).decision.id == "staff-no-social"
