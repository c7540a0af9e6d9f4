"""What a gateway serves the segments it faces, read from the inventory: the generators of its DHCP
(:mod:`~akm.policy.generators.kea`), DNS (:mod:`~akm.policy.generators.unbound`) and firewall
(:mod:`~akm.policy.generators.nftables`) read the same legs, registered devices and names from here.

A *leg* is one of the gateway's interfaces on a segment that is neither the wan nor a management segment
(those are configured by hand and never lend addresses). A device is *registered* on a segment when the
inventory gives one of its interfaces there an address, and it is not written off (rule AX-2.1); only one
with a MAC has a DHCP reservation and is known by its (MAC, address) pair, one without by its address.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Any

UNSERVED = frozenset({"wan", "management"})


@dataclass(frozen=True)
class Leg:
    """The gateway's interface *interface* at *address* on *segment* (an inventory Segment)."""

    segment: Any
    interface: str
    address: IPv4Address


@dataclass(frozen=True)
class Device:
    """An interface of the register: its host, MAC and address."""

    hostname: str
    interface: str
    mac: str | None
    ip: IPv4Address


def legs(inventory: Any, gateway: Any) -> list[Leg]:
    """The gateway's legs, in the order of its interfaces."""
    found = []
    for interface in gateway.interfaces:
        segment = inventory.segments.get(interface.segment)
        if segment is None or interface.ip is None or segment.purpose in UNSERVED:
            continue
        found.append(Leg(segment, interface.name, interface.ip))
    return found


def registered(inventory: Any, segment: str, *, without: str = "") -> list[Device]:
    """Every registered device on *segment* but the host *without*, sorted by address."""
    found = []
    for asset in inventory.assets:
        if asset.status == "written_off" or asset.hostname == without:
            continue
        for interface in asset.interfaces:
            if interface.segment == segment and interface.ip is not None:
                found.append(Device(asset.hostname, interface.name, interface.mac, interface.ip))
    return sorted(found, key=lambda d: d.ip)


def names(inventory: Any) -> Iterator[tuple[str, IPv4Address, bool]]:
    """``(name, address, reverse)`` for every address of every host that is not written off; *reverse*
    marks the name the address's reverse lookup gives.

    A host's own name ``<host>.<domain>`` is its address on the first segment that is neither wan nor
    management (the one its users reach it at), else its first address; every address also has the name
    ``<host>.<segment>.<domain>``. The reverse name of an address is its primary name when it has one.
    """
    domain = inventory.centre.domain
    for asset in sorted(inventory.assets, key=lambda a: a.hostname):
        if asset.status == "written_off":
            continue
        addressed = [i for i in asset.interfaces if i.ip is not None and i.segment in inventory.segments]
        if not addressed:
            continue
        lan = [i for i in addressed if inventory.segments[i.segment].purpose not in UNSERVED]
        primary = (lan or addressed)[0]
        yield f"{asset.hostname}.{domain}", primary.ip, True
        for interface in addressed:
            yield f"{asset.hostname}.{interface.segment}.{domain}", interface.ip, interface is not primary
