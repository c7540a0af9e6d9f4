"""Plan the virtual library from the inventory: which machines, which legs, which names and routes.

Planning is pure: it reads an inventory object (the contract of :mod:`akm.inventory`) and returns a
:class:`Plan` without touching the system, so the whole topology is unit-tested without root. Every
address the lab would configure is checked against 198.18.0.0/15 here, before anything is created.

Names. The lab owns the ``akm-`` prefix: every machine's network namespace is ``akm-<hostname>``, the
namespace that holds the segment bridges is ``akm-switch``, and the host's one veth into the management
bridge is ``akm-ctl``. Bridges (``br-<segment>``) and the switch ends of the veths (``v<m>.<i>``) live
inside ``akm-switch``, so the host's own link list only ever gains ``akm-ctl``. Inside a machine each
leg carries the interface name from the inventory.

Routes. No lab namespace gets a default route. Each LAN machine routes 198.18.0.0/15 through its
segment's gateway (the gateway machine), the fake internet routes it back through the gateway
machine's wan address, and the gateway machine is connected to every segment and forwards. The host
routes 198.18.0.0/15 through the gateway machine's management address and nothing else.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path
from typing import Any

from akm.errors import Error, Problem
from akm.i18n import _
from akm.inventory.model import DEBIAN_RELEASES, is_debian

LAB_RANGE = IPv4Network("198.18.0.0/15")
PREFIX = "akm-"
SWITCH_NETNS = "akm-switch"
HOST_LINK = "akm-ctl"
SWITCH_CONTROL_PORT = "ctl"
APT_CACHE_PORT = 3142
IFNAME_MAX = 15
RESERVED_HOSTNAMES = frozenset({"switch", "ctl"})


class LabError(Error):
    """The lab cannot be planned, started or changed; each problem says why and what to do."""


@dataclass(frozen=True)
class Port:
    """One leg of a machine: a veth pair from the machine's namespace to its segment's bridge."""

    segment: str
    bridge: str
    outer: str
    inner: str
    address: IPv4Interface
    mac: str | None = None
    dhcp: bool = False


@dataclass(frozen=True)
class Route:
    """A route set in a namespace: *destination* through the next hop *via*."""

    destination: IPv4Network
    via: IPv4Address


@dataclass(frozen=True)
class Machine:
    """A lab machine: a systemd-nspawn container in its own network namespace."""

    hostname: str
    netns: str
    ports: tuple[Port, ...]
    management: IPv4Address
    routes: tuple[Route, ...] = ()
    forwarding: bool = False
    internet: bool = False
    profiles: tuple[str, ...] = ()
    suite: str = DEBIAN_RELEASES["debian13"][0]
    resolver: IPv4Address | None = None

    @property
    def dhcp_ports(self) -> tuple[Port, ...]:
        """The legs the machine configures itself by DHCP (its reservation on the gateway)."""
        return tuple(port for port in self.ports if port.dhcp)


@dataclass(frozen=True)
class Site:
    """A test site served by the fake internet."""

    domain: str
    category: str
    https: bool = True


@dataclass(frozen=True)
class AlertEndpoints:
    """What the fake internet plays for the management host's alerts: the Telegram Bot API under the
    name ``centre.upstream.telegram`` on its own address (``lab.internet.telegram_ip``, with the wan's
    prefix), and the mail relay ``centre.upstream.mail_relay`` on the internet's first address. An
    empty name: the inventory sends nothing that way, and the lab plays nothing for it."""

    telegram: str = ""
    telegram_address: IPv4Interface | None = None
    mail_relay: str = ""
    mail_port: int = 587

    @property
    def names(self) -> tuple[str, ...]:
        """The names the fake internet answers for besides the sites."""
        return tuple(n for n in (self.telegram, self.mail_relay) if n)


@dataclass(frozen=True)
class Plan:
    """Everything the lab will create, derived from one inventory."""

    inventory: Path
    state_dir: Path
    bridges: dict[str, str]
    control: IPv4Interface
    control_segment: str
    host_routes: tuple[Route, ...]
    machines: tuple[Machine, ...]
    internet: str
    dns_server: IPv4Address
    sites: tuple[Site, ...]
    simulated: tuple[str, ...] = field(default=())
    alerts: AlertEndpoints = field(default_factory=AlertEndpoints)

    def machine(self, hostname: str) -> Machine:
        """Return the machine called *hostname*; :class:`LabError` ``lab.unknown-host`` if none."""
        for machine in self.machines:
            if machine.hostname == hostname:
                return machine
        raise LabError.one(
            "lab.unknown-host",
            _("the lab has no machine {host!r}").format(host=hostname),
            _("choose one of: {names}").format(names=", ".join(m.hostname for m in self.machines)),
            file=str(self.inventory),
            field="hostname",
        )

    @property
    def ident(self) -> str:
        """A digest of what the lab builds: a running lab of another plan is not this lab. Neither where
        the inventory was read from nor the machines' profiles count: profiles only choose the roles
        Ansible gives a machine, so giving one a role never makes ``akm lab up`` rebuild the lab."""
        machines = tuple(replace(machine, profiles=()) for machine in self.machines)
        return hashlib.sha256(repr(replace(self, inventory=Path(), machines=machines)).encode()).hexdigest()[:16]

    @property
    def apt_cache_url(self) -> str:
        """Where lab machines (and debootstrap) fetch Debian packages: the cache on the control node."""
        return f"http://{self.control.ip}:{APT_CACHE_PORT}"

    @property
    def suites(self) -> tuple[str, ...]:
        """The Debian releases (codenames) the machines run: one image each."""
        return tuple(sorted({machine.suite for machine in self.machines}))

    @property
    def netns_names(self) -> list[str]:
        """Every network namespace of the lab, the switch first."""
        return [SWITCH_NETNS, *(m.netns for m in self.machines)]


def bridge_name(segment: str) -> str:
    """Return the bridge of *segment* inside the switch namespace (at most 15 characters)."""
    name = f"br-{segment}"
    if len(name) <= IFNAME_MAX:
        return name
    digest = hashlib.sha1(segment.encode()).hexdigest()[:6]
    return f"br-{segment[: IFNAME_MAX - 10]}-{digest}"


def _locate(inv: Any, asset: Any | None, *path: Any) -> tuple[str, int | None, str]:
    """Return file, line and field of *path* inside *asset*'s YAML mapping, as precisely as known."""
    names = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
    source = None
    if asset is not None and hasattr(inv, "source_of"):
        try:
            source = inv.source_of(asset)
        except (KeyError, AttributeError):
            source = None
    if source is None:
        return str(getattr(inv, "root", "")), None, names
    node, line = source, getattr(source, "line", None)
    for key in path:
        lines = getattr(node, "lines", None)
        if isinstance(key, int):
            if lines is not None and key < len(lines):
                line = lines[key]
            node = node[key] if isinstance(node, list) and key < len(node) else None
        else:
            if isinstance(lines, dict) and key in lines:
                line = lines[key]
            node = node.get(key) if isinstance(node, dict) else None
    return getattr(source, "file", str(getattr(inv, "root", ""))), line, names


def _outside(where: tuple[str, int | None, str], value: object) -> Problem:
    file, line, name = where
    return Problem(
        file,
        line,
        name,
        "lab.outside-range",
        _("the lab may only use addresses in {range}, but this is {value}").format(range=LAB_RANGE, value=value),
        _("choose an address or subnet inside {range} (RFC 2544 benchmark range)").format(range=LAB_RANGE),
    )


def _is_machine(asset: Any) -> bool:
    return (
        is_debian(getattr(asset, "os", None))
        and getattr(asset, "net", None) is None
        and getattr(asset, "status", "in_use") == "in_use"
        and any(i.ip is not None for i in asset.interfaces)
    )


def plan_lab(inv: Any) -> Plan:
    """Return the :class:`Plan` of the lab described by *inv*, or raise :class:`LabError`.

    Every problem is collected before raising: addresses outside 198.18.0.0/15 (``lab.outside-range``),
    a missing ``lab:`` section (``lab.not-a-lab``), interface names Linux cannot carry
    (``lab.interface-name``), reserved host names (``lab.reserved-name``), a missing management leg
    (``lab.no-management``).
    """
    root = Path(getattr(inv, "root", "."))
    lab = getattr(inv, "lab", None)
    if lab is None:
        raise LabError.one(
            "lab.not-a-lab",
            _("this inventory has no lab: section, so it describes real machines"),
            _("use the lab inventory (inventory/lab)"),
            file=str(root),
            field="lab",
        )
    problems: list[Problem] = []
    segments = inv.segments
    for seg_id, segment in sorted(segments.items()):
        if not segment.subnet.subnet_of(LAB_RANGE):
            problems.append(_outside((str(root), None, f"segments[{seg_id}].subnet"), segment.subnet))
        if segment.gateway is not None and segment.gateway not in LAB_RANGE:
            problems.append(_outside((str(root), None, f"segments[{seg_id}].gateway"), segment.gateway))
    if lab.control.ip not in LAB_RANGE:
        problems.append(_outside((str(root), None, "lab.control.ip"), lab.control.ip))

    bridges: dict[str, str] = {}

    def bridge_of(seg: str) -> str:
        bridges.setdefault(seg, bridge_name(seg))
        return bridges[seg]

    hosts = [a for a in inv.assets if _is_machine(a)]
    internet = lab.internet
    gateway = next((a for a in hosts if "gateway" in (a.profiles or [])), None)
    gateway_mgmt = gateway.ip_on(lab.control.segment) if gateway is not None else None

    def ports_of(index: int, owner: Any, interfaces: list, asset: Any | None, field_base: tuple) -> list[Port]:
        ports: list[Port] = []
        for k, iface in enumerate(interfaces):
            if iface.ip is None:
                continue
            where = _locate(inv, asset, *field_base, "interfaces", k, "ip")
            if iface.ip not in LAB_RANGE:
                problems.append(_outside(where, iface.ip))
                continue
            if len(iface.name) > IFNAME_MAX or "/" in iface.name:
                file, line, _name = _locate(inv, asset, *field_base, "interfaces", k, "name")
                problems.append(
                    Problem(
                        file,
                        line,
                        _name,
                        "lab.interface-name",
                        _("Linux cannot name an interface {name!r} (at most 15 characters, no '/')").format(
                            name=iface.name
                        ),
                        _("shorten the interface name in the lab inventory"),
                    )
                )
                continue
            segment = segments.get(iface.segment)
            if segment is None:
                continue
            ports.append(
                Port(
                    segment=iface.segment,
                    bridge=bridge_of(iface.segment),
                    outer=f"v{index}.{k}",
                    inner=iface.name,
                    address=IPv4Interface(f"{iface.ip}/{segment.subnet.prefixlen}"),
                    mac=iface.mac,
                    dhcp=iface.dhcp,
                )
            )
        return ports

    machines: list[Machine] = []
    everyone = [(a.hostname, a.interfaces, a, ("",)) for a in hosts]
    everyone.append((internet.hostname, internet.interfaces, None, ("lab", "internet")))
    for index, (hostname, interfaces, asset, base) in enumerate(everyone):
        base = tuple(b for b in base if b)
        if hostname in RESERVED_HOSTNAMES:
            file, line, _name = _locate(inv, asset, *base, "hostname")
            problems.append(
                Problem(
                    file,
                    line,
                    _name or "hostname",
                    "lab.reserved-name",
                    _("the host name {host!r} is reserved by the lab").format(host=hostname),
                    _("rename the machine"),
                )
            )
        ports = ports_of(index, hostname, interfaces, asset, base)
        mgmt = next((p for p in ports if p.segment == lab.control.segment), None)
        if mgmt is None:
            file, line, _name = _locate(inv, asset, *base, "interfaces")
            problems.append(
                Problem(
                    file,
                    line,
                    _name or "interfaces",
                    "lab.no-management",
                    _("{host} has no address on the management segment {segment}").format(
                        host=hostname, segment=lab.control.segment
                    ),
                    _("give every lab machine an interface on {segment}").format(segment=lab.control.segment),
                )
            )
            continue
        is_internet = asset is None
        routes: list[Route] = []
        own = {p.address.ip for p in ports}
        # The internet answers DNS itself; the gateway asks the internet, as a centre's gateway asks its
        # provider; every other machine asks the gateway of its LAN segment, as production hosts do.
        resolver = internet.ip
        if is_internet:
            resolver = IPv4Address("127.0.0.1")
            wan_ip = gateway.ip_on(internet.segment) if gateway is not None else None
            if wan_ip is not None:
                routes.append(Route(LAB_RANGE, wan_ip))
        elif asset is not gateway:
            for port in ports:
                gw = segments[port.segment].gateway
                if port.segment != lab.control.segment and gw is not None and gw not in own:
                    resolver = gw
                    # A leg configured by DHCP gets its routes from the gateway's lease.
                    if not port.dhcp:
                        routes.append(Route(LAB_RANGE, gw))
                    break
        machines.append(
            Machine(
                hostname=hostname,
                netns=f"{PREFIX}{hostname}",
                ports=tuple(ports),
                management=mgmt.address.ip,
                routes=tuple(routes),
                forwarding=asset is gateway,
                internet=is_internet,
                resolver=resolver,
                profiles=tuple(getattr(asset, "profiles", ()) or ()) if asset is not None else (),
                **({"suite": DEBIAN_RELEASES[asset.os][0]} if asset is not None else {}),
            )
        )

    control_segment = segments.get(lab.control.segment)
    if control_segment is None:
        problems.append(
            Problem(
                str(root),
                None,
                "lab.control.segment",
                "lab.no-management",
                _("the control node's segment {segment!r} is not in the inventory").format(segment=lab.control.segment),
                _("name the management segment in lab.control.segment"),
            )
        )
    upstream = getattr(getattr(inv, "centre", None), "upstream", None)
    alerts = _alert_endpoints(upstream, internet, segments)
    if upstream is not None and upstream.telegram and alerts.telegram_address is None:
        file, line, _name = _locate(inv, None, "lab", "internet")
        problems.append(
            Problem(
                file,
                line,
                "lab.internet.telegram_ip",
                "lab.no-telegram-address",
                _("the fake internet has no address for the Telegram Bot API {name}").format(name=upstream.telegram),
                _("give lab.internet a telegram_ip: a free address of its first interface's segment"),
            )
        )
    if problems:
        raise LabError(problems)
    bridge_of(lab.control.segment)
    host_routes = (Route(LAB_RANGE, gateway_mgmt),) if gateway_mgmt is not None else ()
    simulated = tuple(a.hostname for a in inv.assets if getattr(a, "net", None) is not None)
    return Plan(
        inventory=root,
        state_dir=Path(lab.state_dir),
        bridges=dict(sorted(bridges.items())),
        control=IPv4Interface(f"{lab.control.ip}/{control_segment.subnet.prefixlen}"),
        control_segment=lab.control.segment,
        host_routes=host_routes,
        machines=tuple(machines),
        internet=internet.hostname,
        dns_server=internet.ip,
        sites=tuple(Site(s.domain, s.category, bool(getattr(s, "https", True))) for s in internet.sites),
        simulated=simulated,
        alerts=alerts,
    )


def _alert_endpoints(upstream: Any | None, internet: Any, segments: dict) -> AlertEndpoints:
    if upstream is None:
        return AlertEndpoints()
    segment, own = segments.get(internet.segment), getattr(internet, "telegram_ip", None)
    address = None
    if upstream.telegram and own is not None and segment is not None:
        address = IPv4Interface(f"{own}/{segment.subnet.prefixlen}")
    relay = upstream.mail_relay
    return AlertEndpoints(
        telegram=upstream.telegram if address is not None else "",
        telegram_address=address,
        mail_relay=relay.host if relay else "",
        mail_port=relay.port if relay else 587,
    )
