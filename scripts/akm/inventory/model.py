"""The validated model of the inventory: the centre's departments, rooms, network segments, people,
data classes and every asset.

The schema lives here and only here. Field vocabularies (kinds, statuses, profiles, purposes) are
``Literal`` types, so an unknown value is reported with the list of allowed ones. Cross-record rules
(uniqueness, references, addresses inside their subnet) are in :mod:`akm.inventory.checks`.
"""

from __future__ import annotations

import re
from datetime import date
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from socket import inet_aton
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from akm.names import MAX_NAME, long_label


def _unicast(mac: str) -> str:
    """A network card's own address: not the broadcast address, not a multicast group (first byte odd)."""
    mac = mac.lower()
    if int(mac[:2], 16) & 1:
        kind = "mac_broadcast" if mac == "ff:ff:ff:ff:ff:ff" else "mac_multicast"
        raise PydanticCustomError(kind, "not the address of one network card", {"first": mac[:2]})
    return mac


_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_DOTTED = re.compile(rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}")


def _written_as_text(value: Any) -> Any:
    """An address must be written as text: YAML reads ``ip: 3323068417`` as a number, and the number
    would silently become 198.18.0.1.

    An address written the usual way (four numbers from 0 to 255, no leading zero) is made here from its
    bytes, ten times faster than :mod:`ipaddress` parses it; anything else is left to pydantic, which
    then says what is wrong with it."""
    if isinstance(value, int | float):
        raise PydanticCustomError("address_type", "an address must be written with its dots")
    if type(value) is str and _DOTTED.fullmatch(value):
        return IPv4Address(int.from_bytes(inet_aton(value)))
    return value


def _dns_name(name: str) -> str:
    if long_label(name) is not None or len(name) > MAX_NAME:
        raise PydanticCustomError("dns_name_too_long", "a DNS name too long")
    return name


def _time_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise PydanticCustomError("time_zone", "not a time zone") from exc
    return name


Address = Annotated[IPv4Address, BeforeValidator(_written_as_text)]
Network = Annotated[IPv4Network, BeforeValidator(_written_as_text)]
DnsName = Annotated[str, Field(pattern=r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$"), AfterValidator(_dns_name)]
Identifier = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,39}$")]
Login = Annotated[str, Field(pattern=r"^[a-z][a-z0-9._-]{0,31}$")]
Hostname = Annotated[str, Field(pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")]
InventoryNumber = Annotated[str, Field(pattern=r"^[A-Z]{2,6}-[0-9]{3,6}$")]
Mac = Annotated[str, Field(pattern=r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$"), AfterValidator(_unicast)]
VarName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
Text = Annotated[str, Field(min_length=1)]

Kind = Literal[
    "workstation",
    "laptop",
    "server",
    "printer",
    "mfp",
    "scanner",
    "router",
    "switch",
    "access_point",
    "ups",
    "projector",
]
Status = Literal["in_use", "in_repair", "in_store", "written_off"]
OperatingSystem = Literal["debian13", "debian12", "windows10", "windows11", "routeros7", "ios", "firmware", "none"]
DEBIAN_RELEASES: dict[str, tuple[str, str]] = {"debian13": ("trixie", "13"), "debian12": ("bookworm", "12")}
"""The Debian releases the roles manage: inventory ``os`` -> (codename, ``VERSION_ID``). Debian 13 first:
it is the current stable release and what a new host gets; Debian 12 stays supported."""


def is_debian(os: str | None) -> bool:
    """True for an ``os`` the roles manage (a Debian release of :data:`DEBIAN_RELEASES`)."""
    return os in DEBIAN_RELEASES


Profile = Literal[
    "staff",
    "reader",
    "digitization",
    "file_server",
    "backup_server",
    "gateway",
    "package_cache",
    "management",
]
Purpose = Literal["wan", "servers", "staff", "readers", "children", "digitization", "management", "wifi"]
Duty = Literal["director", "deputy_director", "head_of_department", "it_staff"]
Platform = Literal["mikrotik_routeros", "cisco_ios", "huawei", "tplink_jetstream"]

# Routers and switches are managed over SSH and must name their platform; access points are often
# managed by their own controller, so the net: block is optional for them.
NETWORK_KINDS = frozenset({"router", "switch"})


class Record(BaseModel):
    """Base of every record. Empty lists and mappings are made by a factory, not copied from a shared
    default, which pydantic would deep-copy for each of 50,000 assets."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class MailRelay(Record):
    """The SMTP relay the management host submits its alert e-mails to (submission: port 587)."""

    host: DnsName
    port: Annotated[int, Field(ge=1, le=65535)] = 587


class Upstream(Record):
    """What the centre asks outside itself: resolvers the gateway forwards DNS to (none: the gateway
    resolves from the root servers itself), whether their answers are DNSSEC-validated, the time servers
    the gateway's clock follows, and where the management host's alerts go: the Telegram Bot API's name
    (HTTPS) and the mail relay. The management role sends to these, and the access policy lets the
    management host out to them through the gateway (:func:`akm.policy.compile.alert_egress`); none
    given: no alert by that channel, and no opening for it."""

    dns: list[Address] = Field(default_factory=list)
    dnssec: bool = True
    ntp: list[DnsName] = Field(default_factory=list)
    telegram: DnsName | None = None
    mail_relay: MailRelay | None = None


class Centre(Record):
    """The centre itself: names used in report headers, its time zone and internal DNS domain."""

    name: Text
    name_en: Text
    short_name: Text
    city: Text
    timezone: Annotated[str, AfterValidator(_time_zone)] = "Asia/Tashkent"
    domain: DnsName
    address: str = ""
    upstream: Upstream = Field(default_factory=Upstream)


class Department(Record):
    """A structural unit of the centre (direksiya, readers' hall, digitization ...)."""

    id: Identifier
    name: Text
    name_en: Text


class Room(Record):
    """A room where equipment stands; belongs to one department."""

    id: Identifier
    name: Text
    department: Identifier
    floor: int = 1


class Pool(Record):
    """Addresses a segment lends for a short time to devices that are not in the register. Rule AX-2.1
    allows that only on the guest Wi-Fi segment (``purpose: wifi``); everywhere else an unknown device gets
    no address."""

    first: Address
    last: Address
    lease_minutes: Annotated[int, Field(ge=5, le=1440)] = 60


class Segment(Record):
    """A network segment: one subnet, optionally one VLAN, with its gateway address.

    ``routes`` are the networks the segment's DHCP clients reach through the gateway (classless static
    routes); none means a default route. ``pool`` is the guest segment's pool for unregistered devices.
    """

    id: Identifier
    name: Text
    purpose: Purpose
    subnet: Network
    vlan: Annotated[int, Field(ge=1, le=4094)] | None = None
    gateway: Address | None = None
    routes: list[Network] = Field(default_factory=list)
    pool: Pool | None = None


class Person(Record):
    """A member of staff. ``id`` is the person's login; duties mark the director and IT staff.

    ``signing_key`` is the ed25519 public key with which the director or a deputy signs the approval of
    an access grant (``akm policy approve``, docs/access-policy.md); the checks read the key itself.
    ``email`` and ``telegram`` (the chat id the centre's bot writes to) are where alerts reach the person.
    """

    id: Login
    name: Text
    position: Text
    department: Identifier
    duties: list[Duty] = Field(default_factory=list)
    ssh_keys: list[
        Annotated[str, Field(pattern=r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp256) [A-Za-z0-9+/=]+( .*)?$")]
    ] = Field(default_factory=list)
    signing_key: Annotated[str, Field(pattern=r"^ssh-ed25519 [A-Za-z0-9+/]+=*( .*)?$")] | None = None
    email: Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")] | None = None
    telegram: int | None = None


class Retention(Record):
    """How many snapshots of a data class are kept; ``keep_all`` keeps every snapshot."""

    keep_all: bool = False
    daily: Annotated[int, Field(ge=0)] | None = None
    weekly: Annotated[int, Field(ge=0)] | None = None
    monthly: Annotated[int, Field(ge=0)] | None = None
    yearly: Annotated[int, Field(ge=0)] | None = None


class DataClass(Record):
    """A class of data that is backed up with one retention rule (archive masters, shares, configs)."""

    id: Identifier
    name: Text
    name_en: Text
    retention: Retention
    fixity: bool = False


class Interface(Record):
    """A network connection of an asset: which segment, which address, which hardware address.

    Every interface with a MAC and an address has a DHCP reservation on its segment; ``dhcp: true`` says
    the device takes its address that way rather than having it written into its own configuration.
    """

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9/._-]{1,32}$")] = "eth0"
    segment: Identifier
    ip: Address | None = None
    mac: Mac | None = None
    dhcp: bool = False


class NetDevice(Record):
    """How a network device is managed: its netmiko platform and the vault variable of its login."""

    platform: Platform
    host: str | None = None
    port: Annotated[int, Field(ge=1, le=65535)] = 22
    credentials: VarName


ShareName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_. -]{0,78}[$]?$")]
"""A Windows share name: letters, digits, ``_ . -`` and spaces, at most 80, a hidden share ending in ``$``."""


class SmbShare(Record):
    """The SMB share of a Windows PC that holds a data placement: the backup machine pulls it
    (docs/windows.md). ``server`` is for the lab only: the lab machine whose Samba stands in for the PC."""

    share: ShareName
    server: Hostname | None = None


class DataPlacement(Record):
    """Where on a host the data of one data class lives: a path of the host, or with ``smb`` a folder
    inside one of a Windows PC's shares (``/`` for the whole share)."""

    data_class: Identifier
    path: Annotated[str, Field(pattern=r"^/")]
    smb: SmbShare | None = None


class Asset(Record):
    """One piece of equipment of the register (T6), networked or not."""

    inventory_no: InventoryNumber
    hostname: Hostname
    kind: Kind
    model: Text
    serial: Text
    interfaces: list[Interface] = Field(default_factory=list)
    department: Identifier
    room: Identifier
    responsible: Login
    purchased: date
    warranty_until: date | None = None
    status: Status
    os: OperatingSystem
    profiles: list[Profile] = Field(default_factory=list)
    net: NetDevice | None = None
    data: list[DataPlacement] = Field(default_factory=list)
    vars: dict[VarName, object] = Field(default_factory=dict)
    # The managed address is kept in a slot, not a pydantic private attribute: that would give each of
    # 100,000 assets a dictionary of its own and cost a call of pydantic's for each.
    __slots__ = ("_managed_address",)

    @property
    def address(self) -> IPv4Address | None:
        """The address the asset is managed at: on a management segment if it has one, else its first."""
        return getattr(self, "_managed_address", None)

    def set_address(self, segments: dict[str, Segment]) -> None:
        """Work out :attr:`address` from the purposes of the asset's segments (done once by the loader)."""
        with_ip = [n for n in self.interfaces if n.ip is not None]
        managed = [n for n in with_ip if n.segment in segments and segments[n.segment].purpose == "management"]
        chosen = (managed or with_ip or [None])[0]
        object.__setattr__(self, "_managed_address", chosen.ip if chosen else None)

    @property
    def over_ssh(self) -> bool:
        """True if the project reaches the asset over SSH: a Debian host (Ansible, pyinfra) or a device
        with a ``net:`` block (netmiko). Only such an asset has SSH host keys to pin."""
        return is_debian(self.os) or self.net is not None

    @property
    def ssh_endpoint(self) -> tuple[str, int] | None:
        """The address and port the project's SSH clients reach the asset at, as Ansible is told them
        (``ansible_host``, ``ansible_port``): ``net.host`` and ``net.port`` for a device, else the managed
        :attr:`address` and ``vars.ansible_port`` (22 unless said); ``None`` without an address."""
        address = self.net.host if self.net and self.net.host else self.address
        if address is None:
            return None
        port = self.net.port if self.net else self.vars.get("ansible_port", 22)
        return str(address), int(port)  # type: ignore[call-overload]

    def ip_on(self, segment: str) -> IPv4Address | None:
        """Return the asset's address on *segment*, or ``None``."""
        for interface in self.interfaces:
            if interface.segment == segment:
                return interface.ip
        return None


class HostKeys(Record):
    """The SSH host keys of one host: the public key lines (``TYPE BASE64``, as in ``known_hosts``) its
    SSH server must present. Recorded by ``akm inventory hostkeys --write`` on first contact and reviewed
    in git; every SSH client of the project trusts these and nothing else (docs/inventory.md)."""

    host: Hostname
    keys: Annotated[list[Text], Field(min_length=1)]


class LabControl(Record):
    """The control node's (the host's) own leg in the lab's management segment."""

    segment: Identifier
    ip: Address


class Site(Record):
    """A test site the lab's fake internet serves."""

    domain: DnsName
    category: Identifier
    https: bool = True


class LabInternet(Record):
    """The lab machine that plays the internet: web sites and the only DNS that knows them."""

    hostname: Hostname
    interfaces: list[Interface]
    sites: list[Site]
    # The Telegram Bot API stand-in's own address on the first interface's segment: the sites hold
    # port 443 of the first address, and the stand-in answers HTTPS for centre.upstream.telegram.
    telegram_ip: Address | None = None

    @property
    def segment(self) -> str:
        """The segment of the first interface: the lab's wan, where the sites are served."""
        return self.interfaces[0].segment

    @property
    def ip(self) -> IPv4Address | None:
        """The address of the first interface, where the sites and the DNS answer."""
        return self.interfaces[0].ip


class Lab(Record):
    """Settings of the virtual library; present only in the lab inventory."""

    state_dir: Path = Path("/var/lib/akm-lab")
    control: LabControl
    internet: LabInternet


SECTIONS: dict[str, type[Record]] = {
    "departments": Department,
    "rooms": Room,
    "segments": Segment,
    "people": Person,
    "data_classes": DataClass,
    "assets": Asset,
    "host_keys": HostKeys,
}
SINGLE_SECTIONS: dict[str, type[Record]] = {"centre": Centre, "lab": Lab}
