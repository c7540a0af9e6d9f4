"""The gateway's DHCP, DNS and firewall configuration read the inventory as rule AX-2.1 and the access
policy say (the files as a whole are pinned by the golden files; the daemons' own checks run in the lab)."""

from __future__ import annotations

import json
from ipaddress import IPv4Address, IPv4Network

import pytest

from akm.inventory import load_inventory
from akm.policy.compile import compile_policy
from akm.policy.generators.kea import KeaGenerator, classless_routes
from akm.policy.generators.nftables import NftablesGenerator
from akm.policy.generators.unbound import UnboundGenerator, denied_in_dns
from akm.policy.load import load_policy

from .conftest import AT, ROOT


@pytest.mark.parametrize(
    ("routes", "router", "expected"),
    [
        # RFC 3442's own examples: a default route, and a /8 with one significant octet.
        (["0.0.0.0/0"], "10.17.0.1", "000A110001"),
        (["10.0.0.0/8"], "10.0.0.1", "080A0A000001"),
        (["198.18.0.0/15"], "198.18.20.1", "0FC612C6121401"),
        (["198.18.0.0/15", "10.77.0.0/16"], "198.18.20.1", "0FC612C6121401" + "100A4DC6121401"),
    ],
)
def test_classless_static_routes_are_encoded_as_rfc_3442_says(routes, router, expected):
    assert classless_routes([IPv4Network(r) for r in routes], IPv4Address(router)) == expected


@pytest.fixture(scope="module")
def lab():
    """The lab inventory and its policy: a guest segment, a DHCP workstation, a printer with a MAC."""
    inventory = load_inventory(ROOT / "inventory/lab", today=AT.date())
    return compile_policy(load_policy(ROOT / "policies/access/lab"), inventory, AT)


def _kea(compiled) -> dict:
    (text,) = KeaGenerator().generate(compiled).values()
    return json.loads(text)["Dhcp4"]


def test_only_the_guest_segment_lends_addresses_and_every_registered_mac_has_its_reservation(lab):
    inventory = lab.inventory
    subnets = {s["subnet"]: s for s in _kea(lab)["subnet4"]}
    served = {str(s.subnet) for s in inventory.segments.values() if s.purpose not in {"wan", "management"}}
    assert set(subnets) == served
    for segment in inventory.segments.values():
        if str(segment.subnet) not in subnets:
            continue
        subnet = subnets[str(segment.subnet)]
        pools = [p["pool"] for p in subnet.get("pools", [])]
        if segment.pool is None:
            assert pools == [], segment.id
        else:
            assert pools == [f"{segment.pool.first} - {segment.pool.last}"]
            assert subnet["valid-lifetime"] == segment.pool.lease_minutes * 60
        wanted = {
            (i.mac, str(i.ip), a.hostname)
            for a in inventory.assets
            if "gateway" not in a.profiles
            for i in a.interfaces
            if i.segment == segment.id and i.mac and i.ip is not None
        }
        got = {(r["hw-address"], r["ip-address"], r["hostname"]) for r in subnet["reservations"]}
        assert got == wanted, segment.id


def test_a_segment_with_routes_gets_classless_routes_instead_of_a_default_router(lab):
    staff = lab.inventory.segments["staff"]
    (subnet,) = [s for s in _kea(lab)["subnet4"] if s["subnet"] == str(staff.subnet)]
    options = {o.get("name", o.get("code")): o["data"] for o in subnet["option-data"]}
    assert "routers" not in options
    assert options[121] == classless_routes(staff.routes, staff.gateway)
    assert options["domain-name-servers"] == options["ntp-servers"] == str(staff.gateway)


def test_dns_refuses_for_each_client_what_the_policy_denies_at_every_hour(compiled):
    inventory = compiled.inventory
    readers, staff = inventory.segments["readers"].subnet, inventory.segments["staff"].subnet
    # Readers are denied social networks always; staff only in opening hours (a schedule DNS cannot
    # follow: left to the proxy); adult and piracy are denied to everyone.
    assert {"social", "adult", "piracy"} <= denied_in_dns(compiled, readers)
    assert denied_in_dns(compiled, staff) == {"adult", "piracy"}
    # zal-01's grant of video is limited to opening hours: its DNS does not refuse video, its segment's does.
    zal = IPv4Network(inventory.asset("zal-01").ip_on("readers"))
    assert "video" in denied_in_dns(compiled, readers) and "video" not in denied_in_dns(compiled, zal)
    (text,) = UnboundGenerator().generate(compiled).values()
    assert f'access-control-tag: {zal} "' in text
    assert 'local-zone: "rutracker.org." always_nxdomain' in text


def test_the_firewall_knows_each_registered_pair_and_lets_the_guests_be(lab):
    (text,) = NftablesGenerator().generate(lab).values()
    registered = next(block for block in text.split("\tset ") if block.startswith("registered {"))
    printer = lab.inventory.asset("printer-akt").interfaces[0]
    assert f"{printer.mac} . {printer.ip}" in registered
    guest = next(s for s in lab.inventory.segments.values() if s.pool is not None)
    gateway = next(a for a in lab.inventory.assets if "gateway" in a.profiles)
    guest_leg = next(i.name for i in gateway.interfaces if i.segment == guest.id)
    (drop,) = [line for line in text.splitlines() if "!= @registered drop" in line]
    assert f'"{guest_leg}"' not in drop and '"staff"' in drop
