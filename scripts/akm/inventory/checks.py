"""Rules that span records: uniqueness, references, addresses and dates.

Each check takes the validated records paired with the YAML mappings they came from, so a problem can
name the file and line of the offending field. Checks only report; they never change a record.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date
from ipaddress import IPv4Address, IPv4Network
from operator import attrgetter
from pathlib import PurePosixPath
from typing import Any

from akm.errors import Problem
from akm.i18n import _
from akm.inventory.model import NETWORK_KINDS, Asset, Segment, is_debian
from akm.sshsig import read_key_line, read_public_key
from akm.yamlsource import located

LAB_RANGE = IPv4Network("198.18.0.0/15")
Pairs = list[tuple[Any, Any]]


def _where(item: Any, *path: Any) -> tuple[str, int | None, str]:
    """Return file, line and a readable field path for *path* inside the mapping *item*.

    The mapping is located (:mod:`akm.yamlsource`); one read the fast way is a
    :class:`~akm.yamlsource.Deferred`, located here, when a problem is reported.
    """
    item = located(item)
    node = item
    line = getattr(item, "line", None)
    field = ""
    for key in path:
        lines = getattr(node, "lines", None)
        if isinstance(key, int):
            if lines is not None and key < len(lines):
                line = lines[key]
            node = node[key] if isinstance(node, list) and key < len(node) else None
            field += f"[{key}]"
        else:
            if lines is not None and key in lines:
                line = lines[key]
            node = node.get(key) if isinstance(node, dict) else None
            field += f".{key}" if field else key
    return getattr(item, "file", ""), line, field


def _problem(item: Any, path: tuple, code: str, message: str, hint: str, severity: str = "error") -> Problem:
    file, line, field = _where(item, *path)
    return Problem(file, line, field, code, message, hint, severity)


def _short_list(values: Iterable[str], limit: int = 12) -> str:
    values = sorted(values)
    text = ", ".join(values[:limit])
    return text + (", …" if len(values) > limit else "")


def _unique(pairs: Pairs, label: str, key, hint: str = "") -> Iterator[Problem]:
    seen: dict[Any, Any] = {}
    for record, item in pairs:
        for value, where in key(record, item):
            if value is None:
                continue
            if value in seen:
                first = seen[value]
                file, line, _field = _where(first[0], *first[1])
                yield _problem(
                    item,
                    where,
                    "inventory.duplicate",
                    _("{label} {value} is already used at {file}:{line}").format(
                        label=label, value=value, file=file, line=line
                    ),
                    hint or _("each {label} must be unique: correct one of the two").format(label=label),
                )
            else:
                seen[value] = (item, where)


def _has_duplicates(values: list) -> bool:
    distinct = set(values)
    distinct.discard(None)
    return len(distinct) != len(values) - values.count(None)


def _check_unique(validated: dict[str, Pairs]) -> Iterator[Problem]:
    """Report values that must be unique and are not. The values are first compared all at once; only a
    field that holds a duplicate is walked record by record to locate it."""
    for section in ("departments", "rooms", "segments", "people", "data_classes"):
        if _has_duplicates([r.id for r, _i in validated[section]]):
            yield from _unique(validated[section], "id", lambda r, i: [(r.id, ("id",))])
    assets = validated["assets"]
    records = [r for r, _i in assets]
    interfaces = [n for r in records for n in r.interfaces]
    fields = (
        (_("inventory number"), "inventory_no"),
        (_("hostname"), "hostname"),
        (_("serial number"), "serial"),
    )
    for label, name in fields:
        if _has_duplicates(list(map(attrgetter(name), records))):
            yield from _unique(assets, label, lambda r, i, name=name: [(getattr(r, name), (name,))])
    for label, name in (("MAC", "mac"), ("IP", "ip")):
        if _has_duplicates(list(map(attrgetter(name), interfaces))):
            yield from _unique(
                assets,
                label,
                lambda r, i, name=name: [
                    (getattr(n, name), ("interfaces", k, name)) for k, n in enumerate(r.interfaces)
                ],
            )
    if _has_duplicates([r.vlan for r, _i in validated["segments"]]):
        yield from _unique(validated["segments"], "VLAN", lambda r, i: [(r.vlan, ("vlan",))])
    yield from _check_unique_host_keys(validated["host_keys"])
    if _has_duplicates([_key_text(r.signing_key) for r, _i in validated["people"]]):
        yield from _unique(
            validated["people"], _("signing key"), lambda r, i: [(_key_text(r.signing_key), ("signing_key",))]
        )


def _check_unique_host_keys(pairs: Pairs) -> Iterator[Problem]:
    """A host written twice, and one key pinned twice: two machines with one host key are copies of one
    installed image, and either can answer in the other's place."""
    if _has_duplicates([r.host for r, _i in pairs]):
        yield from _unique(pairs, _("host"), lambda r, i: [(r.host, ("host",))])
    if _has_duplicates([_key_text(key) for r, _i in pairs for key in r.keys]):
        yield from _unique(
            pairs,
            _("host key"),
            lambda r, i: [(_key_text(key), ("keys", k)) for k, key in enumerate(r.keys)],
            _(
                "two hosts (or one host twice) with one key: if one machine was copied from the other, make it new "
                "keys (rm /etc/ssh/ssh_host_*; dpkg-reconfigure openssh-server), then record them with "
                "akm inventory hostkeys --replace HOST --write"
            ),
        )


def _key_text(key: str | None) -> str | None:
    """A public key line without its comment: two people may not share one key, whatever they call it."""
    return " ".join(key.split()[:2]) if key else None


def _reference(item, path, value, known: dict, what: str, written: set) -> Iterator[Problem]:
    if value not in known and value not in written:
        yield _problem(
            item,
            path,
            "inventory.unknown-reference",
            _("unknown {what} {value!r}").format(what=what, value=value),
            _("use one of: {known}").format(known=_short_list(known) or "—"),
        )


def _check_references(validated: dict[str, Pairs], written_ids: dict[str, set]) -> Iterator[Problem]:
    """Report references to unknown ids. An id that is written but invalid is not reported again:
    its own schema problem says what to fix. All names are first compared at once; only if one is
    unknown are the records walked to locate it."""
    sections = ("departments", "rooms", "segments", "people", "data_classes")
    ids = {s: {r.id: r for r, _i in validated[s]} for s in sections}
    assets = validated["assets"]
    records = [r for r, _i in assets]
    named = {
        "departments": {r.department for s in ("rooms", "people") for r, _i in validated[s]}
        | set(map(attrgetter("department"), records)),
        "rooms": set(map(attrgetter("room"), records)),
        "people": set(map(attrgetter("responsible"), records)),
        "segments": {n.segment for r in records for n in r.interfaces},
        "data_classes": {p.data_class for r in records for p in r.data},
    }
    if all(named[s] <= ids[s].keys() | written_ids[s] for s in sections):
        return
    for record, item in validated["rooms"]:
        yield from _reference(
            item, ("department",), record.department, ids["departments"], _("department"), written_ids["departments"]
        )
    for record, item in validated["people"]:
        yield from _reference(
            item, ("department",), record.department, ids["departments"], _("department"), written_ids["departments"]
        )
    for record, item in validated["assets"]:
        yield from _reference(
            item, ("department",), record.department, ids["departments"], _("department"), written_ids["departments"]
        )
        yield from _reference(item, ("room",), record.room, ids["rooms"], _("room"), written_ids["rooms"])
        yield from _reference(
            item, ("responsible",), record.responsible, ids["people"], _("person"), written_ids["people"]
        )
        for k, interface in enumerate(record.interfaces):
            yield from _reference(
                item,
                ("interfaces", k, "segment"),
                interface.segment,
                ids["segments"],
                _("segment"),
                written_ids["segments"],
            )
        for k, placement in enumerate(record.data):
            yield from _reference(
                item,
                ("data", k, "data_class"),
                placement.data_class,
                ids["data_classes"],
                _("data class"),
                written_ids["data_classes"],
            )


def _any_overlap(subnets: list[IPv4Network]) -> bool:
    """Whether two of *subnets* overlap: in the order of their first address, a subnet overlaps an
    earlier one exactly when it starts before the earlier ones end."""
    end = -1
    for subnet in sorted(subnets, key=lambda net: int(net.network_address)):
        if int(subnet.network_address) <= end:
            return True
        end = max(end, int(subnet.broadcast_address))
    return False


def _check_segments(validated: dict[str, Pairs]) -> Iterator[Problem]:
    """Gateways and pools inside their subnets; subnets that overlap, each compared with every earlier
    one only when the subnets are found to overlap at all."""
    seen: list[tuple[Segment, Any]] = []
    overlapping = _any_overlap([record.subnet for record, _item in validated["segments"]])
    for record, item in validated["segments"]:
        gateway = record.gateway
        if gateway is not None and (
            gateway not in record.subnet or gateway in (record.subnet.network_address, record.subnet.broadcast_address)
        ):
            yield _problem(
                item,
                ("gateway",),
                "inventory.gateway-outside-subnet",
                _("gateway {gateway} is not a host address of {subnet}").format(gateway=gateway, subnet=record.subnet),
                _("choose an address inside the subnet, usually the first one"),
            )
        for other, other_item in seen if overlapping else ():
            if record.subnet.overlaps(other.subnet):
                file, line, _f = _where(other_item, "subnet")
                yield _problem(
                    item,
                    ("subnet",),
                    "inventory.subnet-overlap",
                    _("subnet {subnet} overlaps {other} of segment {segment} ({file}:{line})").format(
                        subnet=record.subnet, other=other.subnet, segment=other.id, file=file, line=line
                    ),
                    _("give each segment its own subnet"),
                )
        seen.append((record, item))
        yield from _check_pool(record, item)


def _check_pool(record: Segment, item: Any) -> Iterator[Problem]:
    """Rule AX-2.1: only the guest Wi-Fi segment lends addresses, from a pool inside its subnet that
    leaves out its gateway and its network and broadcast addresses."""
    pool = record.pool
    if pool is None:
        return
    if record.purpose != "wifi":
        yield _problem(
            item,
            ("pool",),
            "inventory.pool-not-guest",
            _("segment {segment} ({purpose}) lends addresses to devices that are not in the register").format(
                segment=record.id, purpose=record.purpose
            ),
            _("rule AX-2.1: only the guest Wi-Fi segment (purpose: wifi) has a pool; remove pool: here"),
        )
    subnet = record.subnet
    hosts = (subnet.network_address, subnet.broadcast_address)
    for end in ("first", "last"):
        address = getattr(pool, end)
        if address not in subnet or address in hosts:
            yield _problem(
                item,
                ("pool", end),
                "inventory.pool-outside-subnet",
                _("pool address {ip} is not a host address of {subnet}").format(ip=address, subnet=subnet),
                _("choose the pool's first and last addresses inside the segment's subnet"),
            )
    if pool.first > pool.last:
        yield _problem(
            item,
            ("pool", "last"),
            "inventory.pool-reversed",
            _("the pool ends at {last}, before it starts at {first}").format(last=pool.last, first=pool.first),
            _("write the lower address as first: and the higher as last:"),
        )
    elif record.gateway is not None and pool.first <= record.gateway <= pool.last:
        yield _problem(
            item,
            ("pool",),
            "inventory.pool-holds-gateway",
            _("the pool {first}-{last} holds the gateway {gateway}").format(
                first=pool.first, last=pool.last, gateway=record.gateway
            ),
            _("keep the gateway's address out of the pool: start the pool after it or end the pool before it"),
        )
    if record.gateway is None:
        yield _problem(
            item,
            ("pool",),
            "inventory.pool-without-gateway",
            _("segment {segment} lends addresses but names no gateway to serve them").format(segment=record.id),
            _("add gateway: (the gateway machine's address on this segment)"),
        )


def _check_interface(
    segments: dict[str, Segment], record, item, k: int, interface, holds_gateway: bool = False
) -> Iterator[Problem]:
    segment = segments.get(interface.segment)
    ip: IPv4Address | None = interface.ip
    if segment is None or ip is None:
        return
    subnet = segment.subnet
    path = ("interfaces", k, "ip")
    pool = segment.pool
    if pool is not None and pool.first <= ip <= pool.last:
        yield _problem(
            item,
            path,
            "inventory.ip-in-pool",
            _("{ip} lies in the guest pool {first}-{last} of segment {segment}").format(
                ip=ip, first=pool.first, last=pool.last, segment=segment.id
            ),
            _("give a registered device an address outside the pool, which is lent to unknown devices"),
        )
    if ip not in subnet:
        yield _problem(
            item,
            path,
            "inventory.ip-outside-subnet",
            _("{ip} is not inside {subnet} of segment {segment}").format(ip=ip, subnet=subnet, segment=segment.id),
            _("choose a free address of {subnet}, or correct the segment").format(subnet=subnet),
        )
    elif ip in (subnet.network_address, subnet.broadcast_address) and subnet.prefixlen < 31:
        yield _problem(
            item,
            path,
            "inventory.ip-reserved",
            _("{ip} is the network or broadcast address of {subnet}").format(ip=ip, subnet=subnet),
            _("choose a host address between them"),
        )
    elif ip == segment.gateway and not (
        holds_gateway or (isinstance(record, Asset) and ("gateway" in record.profiles or record.kind == "router"))
    ):
        yield _problem(
            item,
            path,
            "inventory.ip-is-gateway",
            _("{ip} is the gateway of segment {segment}").format(ip=ip, segment=segment.id),
            _("only the gateway or router may hold it; choose another address"),
        )


def _check_hosts_fit(validated: dict[str, Pairs]) -> Iterator[Problem]:
    """A /31 or /32 segment has no address for hosts beside its network and broadcast addresses."""
    small = {r.id: (r, i) for r, i in validated["segments"] if r.subnet.prefixlen >= 31}
    if not small:
        return
    hosts: dict[str, list[str]] = {}
    for record, _item in validated["assets"]:
        for interface in record.interfaces:
            if interface.segment in small:
                hosts.setdefault(interface.segment, []).append(record.hostname)
    for segment, names in hosts.items():
        record, item = small[segment]
        yield _problem(
            item,
            ("subnet",),
            "inventory.segment-too-small",
            _("segment {segment} is {subnet}, which leaves no address for hosts, yet these are in it: {hosts}").format(
                segment=segment, subnet=record.subnet, hosts=_short_list(names)
            ),
            _("give the segment a subnet of /30 or larger (usually /24), or move the hosts to another segment"),
        )


def _check_assets(validated: dict[str, Pairs], today: date) -> Iterator[Problem]:
    segments = {r.id: r for r, _i in validated["segments"]}
    for record, item in validated["assets"]:
        names: dict[str, int] = {}
        for k, interface in enumerate(record.interfaces):
            yield from _check_interface(segments, record, item, k, interface)
            if interface.name in names:
                yield _problem(
                    item,
                    ("interfaces", k, "name"),
                    "inventory.duplicate-interface",
                    _("the asset has two interfaces named {name} (the first is interfaces[{first}])").format(
                        name=interface.name, first=names[interface.name]
                    ),
                    _("give each interface of an asset its own name (eth0, eth1 …); without name: it is eth0"),
                )
            names.setdefault(interface.name, k)
            segment = segments.get(interface.segment)
            if (
                interface.ip is not None
                and interface.mac is None
                and record.status != "written_off"
                and segment is not None
                and segment.purpose not in {"wan", "management"}
                and segment.pool is None
            ):
                yield _problem(
                    item,
                    ("interfaces", k, "mac"),
                    "inventory.no-mac",
                    _(
                        "the interface has an address on {segment} but no MAC: it has no DHCP reservation, and "
                        "the gateway knows it by its address alone (rule AX-2.1)"
                    ).format(segment=segment.id),
                    _("write the network card's MAC (on its label, or in `ip link` / `ipconfig /all`)"),
                    severity="warning",
                )
            if interface.dhcp and (interface.mac is None or interface.ip is None):
                yield _problem(
                    item,
                    ("interfaces", k, "dhcp"),
                    "inventory.dhcp-without-reservation",
                    _("the interface takes its address by DHCP but has no {missing} for its reservation").format(
                        missing="mac" if interface.mac is None else "ip"
                    ),
                    _("write the interface's mac: and ip: (the address its reservation gives)"),
                )
        if record.warranty_until is not None and record.warranty_until < record.purchased:
            yield _problem(
                item,
                ("warranty_until",),
                "inventory.warranty-before-purchase",
                _("warranty ends {end} before the purchase on {start}").format(
                    end=record.warranty_until, start=record.purchased
                ),
                _("check both dates; the warranty ends after the purchase"),
            )
        if record.purchased > today:
            yield _problem(
                item,
                ("purchased",),
                "inventory.future-date",
                _("purchase date {day} is in the future").format(day=record.purchased),
                _("write the date of the purchase invoice"),
            )
        if record.kind in NETWORK_KINDS and record.status == "in_use" and record.net is None:
            yield _problem(
                item,
                ("kind",),
                "inventory.missing-platform",
                _("a network device in use needs a net: block with its platform"),
                _("add net: with platform (e.g. mikrotik_routeros, cisco_ios) and credentials"),
            )
        if record.net is not None and record.net.host is None and not any(n.ip for n in record.interfaces):
            yield _problem(
                item,
                ("net",),
                "inventory.no-management-address",
                _("the device has no address to be managed at"),
                _("add an interface with ip:, or net.host"),
            )
        if record.profiles and not is_debian(record.os):
            yield _problem(
                item,
                ("profiles",),
                "inventory.profile-needs-debian",
                _("profiles configure Debian machines, but this asset runs {os}").format(os=record.os),
                _("remove the profiles, or set os: debian13 (or debian12)"),
            )


def _smb_address_problem(record, item, k: int, assets: dict[str, Asset], lab: bool) -> Iterator[Problem]:
    """Where the share of placement *k* answers: the PC itself, or in the lab the stand-in ``server``."""
    server = record.data[k].smb.server
    if server is not None and not lab:
        yield _problem(
            item,
            ("data", k, "smb", "server"),
            "inventory.smb-server-outside-lab",
            _("smb.server names a stand-in for the PC, which only the lab has"),
            _("remove server: — in the centre the PC serves its own share at its own address"),
        )
        return
    if server is not None and server not in assets:
        yield from _reference(item, ("data", k, "smb", "server"), server, assets, _("host"), set())
        return
    serving = record if server is None else assets[server]
    if not any(n.ip for n in serving.interfaces):
        yield _problem(
            item,
            ("data", k, "smb") if server is None else ("data", k, "smb", "server"),
            "inventory.smb-no-address",
            _("the backup machine pulls this share, but {host} has no address").format(host=serving.hostname),
            _("write the PC's interface with ip: (and mac:, dhcp: true for its reservation)")
            if server is None
            else _("name a lab machine with an address, where Samba serves the share"),
        )


def _check_smb(validated: dict[str, Pairs], lab: bool) -> Iterator[Problem]:
    """Data on a Windows PC is pulled from one of its shares (``smb:``); a Debian host backs up its own.
    The folder inside the share is written with ``/`` and never climbs out of it."""
    assets = {r.hostname: r for r, _i in validated["assets"]}
    for record, item in validated["assets"]:
        shared: list[tuple[str, PurePosixPath, int]] = []
        for k, placement in enumerate(record.data):
            if placement.smb is None:
                if record.os.startswith("windows"):
                    yield _problem(
                        item,
                        ("data", k, "path"),
                        "inventory.windows-data-without-smb",
                        _("nothing of the project runs on a Windows PC to back up {path}").format(path=placement.path),
                        _("name the share that holds it: smb: {share: NAME}, and as path: the folder inside the share"),
                    )
                continue
            if is_debian(record.os):
                yield _problem(
                    item,
                    ("data", k, "smb"),
                    "inventory.smb-on-debian",
                    _("{host} runs Debian and backs up its own data; smb: is for Windows PCs").format(
                        host=record.hostname
                    ),
                    _("remove smb: — the host's backup_client backs up path"),
                )
                continue
            folder = PurePosixPath(placement.path)
            if "\\" in placement.path or ".." in folder.parts:
                yield _problem(
                    item,
                    ("data", k, "path"),
                    "inventory.smb-bad-path",
                    _("{path!r} is not a folder inside the share").format(path=placement.path),
                    _("write the folder with / and without .., e.g. /1C or / for the whole share"),
                )
                continue
            share = placement.smb.share.lower()  # Windows compares share names without case
            for other_share, other, first in shared:
                if share == other_share and (other in folder.parents or folder in (other, *other.parents)):
                    yield _problem(
                        item,
                        ("data", k, "path"),
                        "inventory.smb-overlap",
                        _("{path} overlaps data[{first}] in the share {share}").format(
                            path=placement.path, first=first, share=placement.smb.share
                        ),
                        _("place each folder of a share once: one placement holds the folders below it"),
                    )
                    break
            shared.append((share, folder, k))
            yield from _smb_address_problem(record, item, k, assets, lab)


def _check_people(validated: dict[str, Pairs], root_item: Any) -> Iterator[Problem]:
    people = validated["people"]
    directors = [(r, i) for r, i in people if "director" in r.duties]
    if len(directors) != 1:
        item = directors[1][1] if len(directors) > 1 else (people[0][1] if people else root_item)
        path = ("duties",) if len(directors) > 1 else ()
        yield _problem(
            item,
            path,
            "inventory.director-count",
            _("exactly one person must have the duty director; found {count}").format(count=len(directors)),
            _("give the duty director to the director of the centre only"),
        )
    for record, item in people:
        if record.signing_key is None:
            continue
        try:
            read_public_key(record.signing_key)
        except ValueError as exc:
            yield _problem(
                item,
                ("signing_key",),
                "inventory.bad-signing-key",
                _("the signing key of {login} cannot be read: {reason}").format(login=record.id, reason=exc),
                _("paste the whole line of the .pub file again (ssh-keygen -y -f KEY prints it)"),
            )
    if people and not any("it_staff" in r.duties for r, _i in people):
        yield _problem(
            people[0][1],
            (),
            "inventory.no-it-staff",
            _("nobody has the duty it_staff"),
            _("add it_staff to the duties of the service's specialists"),
        )


FINGERPRINT_PREFIXES = ("SHA256:", "MD5:")


def _check_host_keys(validated: dict[str, Pairs], hostnames: set) -> Iterator[Problem]:
    """Each host of ``host_keys`` is an asset reached over SSH, and each of its keys a whole public key
    line (a fingerprint cannot be checked by ssh, pyinfra or netmiko: they compare the key itself)."""
    if not validated["host_keys"]:
        return
    assets = {r.hostname: r for r, _i in validated["assets"]}
    for record, item in validated["host_keys"]:
        asset = assets.get(record.host)
        if asset is None:
            yield from _reference(item, ("host",), record.host, assets, _("host"), hostnames)
        elif not asset.over_ssh:
            yield _problem(
                item,
                ("host",),
                "inventory.host-key-no-ssh",
                _("{host} is a {kind} running {os}: nothing of the project reaches it over SSH").format(
                    host=record.host, kind=asset.kind, os=asset.os
                ),
                _("only Debian hosts and network devices with a net: block have host keys to pin; remove this entry"),
            )
        for k, key in enumerate(record.keys):
            if key.strip().startswith(FINGERPRINT_PREFIXES):
                yield _problem(
                    item,
                    ("keys", k),
                    "inventory.host-key-fingerprint",
                    _("{key!r} is a fingerprint, not the key itself").format(key=key.strip()),
                    _(
                        "SSH clients compare the whole key: record it with akm inventory hostkeys --write, and "
                        "compare its fingerprint with the one shown at the machine's console"
                    ),
                )
                continue
            try:
                read_key_line(key)
            except ValueError as exc:
                yield _problem(
                    item,
                    ("keys", k),
                    "inventory.bad-host-key",
                    _("a host key of {host} cannot be read: {reason}").format(host=record.host, reason=exc),
                    _("record the key again with akm inventory hostkeys --replace {host} --write").format(
                        host=record.host
                    ),
                )


def _check_lab(validated: dict[str, Pairs], singles: dict[str, Any]) -> Iterator[Problem]:
    lab = singles.get("lab")
    if lab is None:
        return
    segments = {r.id: r for r, _i in validated["segments"]}
    for record, item in validated["segments"]:
        if not record.subnet.subnet_of(LAB_RANGE):
            yield _problem(
                item,
                ("subnet",),
                "lab.outside-benchmark-range",
                _("the lab may only use 198.18.0.0/15, but this segment is {subnet}").format(subnet=record.subnet),
                _("choose a subnet inside 198.18.0.0/15, e.g. 198.18.10.0/24"),
            )
    for record, item in validated["assets"]:
        if record.net is not None and record.net.host is not None and record.net.host not in ("127.0.0.1", "localhost"):
            yield _problem(
                item,
                ("net", "host"),
                "lab.device-not-loopback",
                _("a simulated device must listen on loopback, not {host}").format(host=record.net.host),
                _("write host: 127.0.0.1 and a free port"),
            )
    item = singles["lab_item"]
    control = segments.get(lab.control.segment)
    if control is None:
        yield _problem(
            item,
            ("control", "segment"),
            "inventory.unknown-reference",
            _("unknown {what} {value!r}").format(what=_("segment"), value=lab.control.segment),
            _("use one of: {known}").format(known=_short_list(segments)),
        )
    elif lab.control.ip not in control.subnet:
        yield _problem(
            item,
            ("control", "ip"),
            "inventory.ip-outside-subnet",
            _("{ip} is not inside {subnet} of segment {segment}").format(
                ip=lab.control.ip, subnet=control.subnet, segment=control.id
            ),
            _("choose a free address of {subnet}, or correct the segment").format(subnet=control.subnet),
        )
    internet_item = item.get("internet", item)
    for k, interface in enumerate(lab.internet.interfaces):
        if interface.segment not in segments:
            yield _problem(
                internet_item,
                ("interfaces", k, "segment"),
                "inventory.unknown-reference",
                _("unknown {what} {value!r}").format(what=_("segment"), value=interface.segment),
                _("use one of: {known}").format(known=_short_list(segments)),
            )
        else:
            yield from _check_interface(segments, lab.internet, internet_item, k, interface, holds_gateway=True)
    taken = {str(n.ip): r.hostname for r, _i in validated["assets"] for n in r.interfaces if n.ip}
    taken[str(lab.control.ip)] = "control"
    for k, interface in enumerate(lab.internet.interfaces):
        if interface.ip is not None and str(interface.ip) in taken:
            yield _problem(
                internet_item,
                ("interfaces", k, "ip"),
                "inventory.duplicate",
                _("{label} {value} is already used by {owner}").format(
                    label="IP", value=interface.ip, owner=taken[str(interface.ip)]
                ),
                _("each {label} must be unique: correct one of the two").format(label="IP"),
            )
        if interface.ip is not None:
            taken[str(interface.ip)] = lab.internet.hostname
    yield from _check_telegram_ip(segments, lab, internet_item, taken)


def _check_telegram_ip(segments, lab, item, taken: dict[str, str]) -> Iterator[Problem]:
    """The Bot API stand-in's address: free, and on the segment of the fake internet's first leg."""
    address, segment = lab.internet.telegram_ip, segments.get(lab.internet.segment)
    if address is None or segment is None:
        return
    if address not in segment.subnet:
        yield _problem(
            item,
            ("telegram_ip",),
            "inventory.ip-outside-subnet",
            _("{ip} is not inside {subnet} of segment {segment}").format(
                ip=address, subnet=segment.subnet, segment=segment.id
            ),
            _("choose a free address of {subnet}, or correct the segment").format(subnet=segment.subnet),
        )
    elif str(address) in taken:
        yield _problem(
            item,
            ("telegram_ip",),
            "inventory.duplicate",
            _("{label} {value} is already used by {owner}").format(
                label="IP", value=address, owner=taken[str(address)]
            ),
            _("each {label} must be unique: correct one of the two").format(label="IP"),
        )


def run(validated: dict[str, Pairs], singles: dict[str, Any], today: date) -> list[Problem]:
    """Run every cross-record check and return the problems, in no particular order."""
    problems: list[Problem] = []
    problems.extend(_check_unique(validated))
    problems.extend(_check_references(validated, singles["written_ids"]))
    problems.extend(_check_segments(validated))
    problems.extend(_check_hosts_fit(validated))
    problems.extend(_check_assets(validated, today))
    root_item = singles.get("centre_item")
    problems.extend(_check_people(validated, root_item))
    problems.extend(_check_lab(validated, singles))
    problems.extend(_check_smb(validated, singles.get("lab") is not None))
    problems.extend(_check_host_keys(validated, singles["written_ids"]["assets"]))
    return problems
