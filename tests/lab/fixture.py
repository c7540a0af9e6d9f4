"""A small inventory built in code, following the contract of :mod:`akm.inventory`.

Unit tests of the lab's planning use it so they need neither root nor the YAML inventory; ``make_inventory``
takes overrides to build bad cases.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path


@dataclass(frozen=True)
class Segment:
    id: str
    name: str
    purpose: str
    subnet: IPv4Network
    vlan: int | None = None
    gateway: IPv4Address | None = None


@dataclass(frozen=True)
class Interface:
    name: str
    segment: str
    ip: IPv4Address | None
    mac: str | None = None
    dhcp: bool = False


@dataclass
class Asset:
    hostname: str
    interfaces: list[Interface]
    profiles: list[str] = field(default_factory=list)
    os: str = "debian12"
    status: str = "in_use"
    net: object | None = None
    inventory_no: str = "AKM-0000"

    def ip_on(self, segment: str) -> IPv4Address | None:
        return next((i.ip for i in self.interfaces if i.segment == segment), None)


@dataclass(frozen=True)
class Site:
    domain: str
    category: str
    https: bool = True


@dataclass
class LabInternet:
    hostname: str
    interfaces: list[Interface]
    sites: list[Site]

    @property
    def segment(self) -> str:
        return self.interfaces[0].segment

    @property
    def ip(self) -> IPv4Address | None:
        return self.interfaces[0].ip


@dataclass
class LabControl:
    segment: str
    ip: IPv4Address


@dataclass
class Lab:
    state_dir: Path
    control: LabControl
    internet: LabInternet


@dataclass
class Inventory:
    root: Path
    segments: dict[str, Segment]
    assets: list[Asset]
    lab: Lab | None


def _i(name: str, segment: str, ip: str) -> Interface:
    return Interface(name, segment, IPv4Address(ip))


def make_inventory(state_dir: Path = Path("/var/lib/akm-lab"), **changes) -> Inventory:
    """The lab of the brief in miniature: gateway, a server, a reader, the internet machine."""
    seg = {
        "wan": Segment("wan", "Internet", "wan", IPv4Network("198.18.0.0/24"), gateway=IPv4Address("198.18.0.1")),
        "servers": Segment(
            "servers", "Servers", "servers", IPv4Network("198.18.10.0/24"), 10, IPv4Address("198.18.10.1")
        ),
        "readers": Segment(
            "readers", "Readers", "readers", IPv4Network("198.18.30.0/24"), 30, IPv4Address("198.18.30.1")
        ),
        "management": Segment("management", "Management", "management", IPv4Network("198.19.255.0/24"), 99),
    }
    seg.update(changes.pop("segments", {}))
    assets = changes.pop("assets", None) or [
        Asset(
            "gw",
            [
                _i("wan", "wan", "198.18.0.2"),
                _i("servers", "servers", "198.18.10.1"),
                _i("readers", "readers", "198.18.30.1"),
                _i("mgmt", "management", "198.19.255.2"),
            ],
            ["gateway"],
            inventory_no="AKM-9001",
        ),
        Asset(
            "srv",
            [_i("eth0", "servers", "198.18.10.10"), _i("mgmt", "management", "198.19.255.10")],
            ["file_server"],
            inventory_no="AKM-9002",
        ),
        Asset(
            "oquvchi-01",
            [_i("eth0", "readers", "198.18.30.11"), _i("mgmt", "management", "198.19.255.41")],
            ["reader"],
            inventory_no="AKM-9020",
        ),
        Asset(
            "mikrotik",
            [_i("ether1", "management", "198.19.255.3")],
            os="routeros7",
            net=object(),
            inventory_no="AKM-9050",
        ),
    ]
    internet = LabInternet(
        "internet",
        [_i("wan", "wan", "198.18.0.1"), _i("mgmt", "management", "198.19.255.250")],
        [Site("kun.uz", "news"), Site("rutracker.org", "piracy", https=False)],
    )
    lab = Lab(state_dir, LabControl("management", IPv4Address("198.19.255.1")), internet)
    inv = Inventory(Path("inventory/lab"), seg, assets, lab)
    for key, value in changes.items():
        setattr(inv, key, value)
    return inv
