"""The address filters roles use, on the lab inventory as the inventory plugin exposes it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from akm.inventory import load_inventory
from akm.inventory.ansible import build

REPO = Path(__file__).resolve().parents[2]


def _filters():
    spec = importlib.util.spec_from_file_location("akm_filters", REPO / "plugins" / "filter" / "akm.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def lab():
    data = build(load_inventory(REPO / "inventory" / "lab"))["vars"]
    return data["akm_hosts"], data["akm_segments"]


def test_a_shared_lan_segment_wins(lab):
    hosts, segments = lab
    assert _filters().akm_address("printer-akt", "xodim-01", hosts, segments) == "198.18.20.50"


def test_the_management_segment_is_used_when_no_lan_segment_is_shared(lab):
    hosts, segments = lab
    assert _filters().akm_address("srv", "xodim-01", hosts, segments) == "198.19.255.10"


def test_without_a_shared_segment_the_peers_lan_address_is_routed(lab):
    hosts, segments = lab
    assert _filters().akm_address("xodim-01", "printer-akt", hosts, segments) == "198.18.20.11"
    assert _filters().akm_address("srv", "printer-akt", hosts, segments) == "198.18.10.10"


def test_the_gateway_is_the_own_lan_segments(lab):
    hosts, segments = lab
    f = _filters()
    assert f.akm_gateway("oqish-01", hosts, segments) == "198.18.30.1"
    assert f.akm_gateway("srv", hosts, segments) == "198.18.10.1"


def test_hosts_are_selected_by_profile_kind_and_department(lab):
    hosts, _ = lab
    f = _filters()
    assert f.akm_hosts_where(hosts, profile="package_cache") == ["srv"]
    assert f.akm_hosts_where(hosts, kind=["printer", "mfp"], department="akt") == ["printer-akt"]
    assert f.akm_hosts_where(hosts, profile="reader") == ["oqish-01", "oqish-02"]


def test_an_unknown_host_is_named_in_the_error(lab):
    from ansible.errors import AnsibleFilterError

    hosts, segments = lab
    with pytest.raises(AnsibleFilterError, match="nosuch"):
        _filters().akm_address("nosuch", "srv", hosts, segments)
