"""Drift: the live facts of the hosts (a ``drift.facts`` record, :mod:`akm.report.facts`) against the
inventory.

Compared with the inventory, for every Debian host in use:

``hostname``
    the name the machine calls itself against its inventory ``hostname``;
``serial``
    the DMI serial against ``serial``, when the machine has a readable one (not in a container, whose
    DMI is the host's, and not a firmware placeholder: those are counted, not compared);
``mac <interface>``
    every inventory interface with a ``mac`` against the live interface of that name (missing on the
    host is a difference); a live interface the inventory does not list is a difference too (not
    compared when the host could not list its interfaces);
``os``
    ``debian13``/``debian12`` against the release's ``ID`` and ``VERSION_ID``.

The inventory does not record RAM and disks, so those are compared with the host's previous
collection: a module or disk that disappeared between two collections is listed. A host of the
inventory that is missing from the record (added after the collection) is listed as not collected.

Hosts without an agent (Windows PCs, printers, network devices) are seen by **network presence**
instead (:func:`presence`): the gateways' DHCP leases and neighbour tables that the management host
collects (``network.presence`` records). A MAC there that the inventory does not list is a device not in
the register (rule AX-2.1), except on the guest segment (the one with a pool) and the provider's side;
each registered device without an agent is listed with when it was last seen.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from ipaddress import ip_address

from akm.inventory.model import DEBIAN_RELEASES, is_debian
from akm.report.evidence import Record


@dataclass(frozen=True)
class Difference:
    """One fact that is not what was expected; ``source`` is ``inventory`` or ``previous``."""

    host: str
    field: str
    expected: str
    live: str
    source: str = "inventory"


def linux_hosts(inventory) -> list:
    """The assets the collector visits: Debian, in use, with an address (Ansible's ``linux`` group)."""
    return [a for a in inventory.assets if is_debian(a.os) and a.status == "in_use" and a.address is not None]


def live_os(facts: dict) -> str:
    """``debian12`` from ``ID=debian`` and ``VERSION_ID="12"``; ``""`` when unknown."""
    release = facts.get("os") or {}
    return f"{release.get('id', '')}{release.get('version_id', '').split('.')[0]}"


def compare_host(asset, facts: dict) -> list[Difference]:
    """Every difference between *asset* of the inventory and the live *facts* of that host."""
    found = []
    name = asset.hostname
    if facts.get("hostname") and facts["hostname"] != name:
        found.append(Difference(name, "hostname", name, facts["hostname"]))
    if facts.get("serial") and facts["serial"] != asset.serial:
        found.append(Difference(name, "serial", asset.serial, facts["serial"]))
    live = facts.get("interfaces")
    if isinstance(live, dict):
        listed = {i.name for i in asset.interfaces}
        for interface in asset.interfaces:
            mac = live.get(interface.name)
            if interface.mac is not None and mac != interface.mac:
                found.append(Difference(name, f"mac {interface.name}", interface.mac, mac or "—"))
        for interface in sorted(set(live) - listed):
            found.append(Difference(name, f"mac {interface}", "—", live[interface]))
    if is_debian(asset.os):
        actual = live_os(facts)
        if actual != "debian" + DEBIAN_RELEASES[asset.os][1]:
            found.append(Difference(name, "os", asset.os, actual or "—"))
    return found


def compare_previous(host: str, facts: dict, previous: dict | None) -> list[Difference]:
    """RAM and disks against the same host's previous collection (the inventory has no such fields)."""
    if not previous:
        return []
    found = []
    if previous.get("memory_mib") and facts.get("memory_mib") and previous["memory_mib"] != facts["memory_mib"]:
        found.append(Difference(host, "ram_mib", str(previous["memory_mib"]), str(facts["memory_mib"]), "previous"))
    before, now = (d.get("disks") if isinstance(d.get("disks"), dict) else {} for d in (previous, facts))
    for disk in sorted(set(before) | set(now)):
        if before.get(disk) != now.get(disk):
            found.append(
                Difference(
                    host,
                    f"disk {disk}",
                    str(before.get(disk, "—")),
                    str(now.get(disk, "—")),
                    "previous",
                )
            )
    return found


def host_facts(record: Record) -> dict[str, dict]:
    """The ``hosts`` of a ``drift.facts`` record: the facts of each host that answered."""
    return record.extra["hosts"]


def unreachable_hosts(record: Record) -> dict[str, dict]:
    """The ``unreachable`` hosts of a ``drift.facts`` record, each ``{address, reason}``."""
    return record.extra["unreachable"]


def compare(inventory, record: Record, earlier: list[Record] = ()) -> tuple[list[Difference], list[str]]:
    """Every difference of *record* (a ``drift.facts`` record) with the inventory and with each host's
    newest collection in *earlier*; and the inventory's hosts the record does not mention."""
    hosts = host_facts(record)
    unreachable = unreachable_hosts(record)
    differences: list[Difference] = []
    not_collected = []
    for asset in linux_hosts(inventory):
        facts = hosts.get(asset.hostname)
        if facts is None:
            if asset.hostname not in unreachable:
                not_collected.append(asset.hostname)
            continue
        differences.extend(compare_host(asset, facts))
        previous = None
        for older in earlier:
            if older.time < record.time and asset.hostname in host_facts(older):
                previous = host_facts(older)[asset.hostname]
        differences.extend(compare_previous(asset.hostname, facts, previous))
    return differences, not_collected


@dataclass(frozen=True)
class Sighting:
    """A MAC seen on a gateway's network: its address, the name its DHCP request gave, when last seen."""

    mac: str
    address: str
    segment: str
    name: str
    seen: datetime


def presence(inventory, records: list[Record]) -> tuple[list[Sighting], dict[str, datetime | None]]:
    """From the ``network.presence`` records (oldest first): the devices whose MAC the inventory does
    not list, each as last seen; and for every registered device without an agent (in use, not a
    Debian host, with a MAC) when it was last seen, ``None`` if never."""
    registered = {i.mac.lower(): a.hostname for a in inventory.assets for i in a.interfaces if i.mac}
    ignored = {seg.id for seg in inventory.segments.values() if seg.pool is not None or seg.purpose == "wan"}
    lab = getattr(inventory, "lab", None)
    harness = {str(lab.control.ip), *(str(i.ip) for i in lab.internet.interfaces)} if lab else set()

    def segment_of(address: str) -> str:
        try:
            where = ip_address(address)
        except ValueError:
            return ""
        return next((seg.id for seg in inventory.segments.values() if where in seg.subnet), "")

    unknown: dict[str, Sighting] = {}
    last_seen: dict[str, datetime] = {}
    for record in records:
        if record.kind != "network.presence":
            continue
        names = {lease["mac"]: lease["hostname"] for lease in record.extra["leases"]}
        for entry in [*record.extra["leases"], *record.extra["neighbours"]]:
            mac = entry["mac"].lower()
            if mac in registered:
                last_seen[registered[mac]] = record.time
                continue
            segment = segment_of(entry["address"])
            if segment in ignored or entry["address"] in harness or not mac:
                continue
            unknown[mac] = Sighting(mac, entry["address"], segment, names.get(mac, ""), record.time)
    agentless = [
        a.hostname
        for a in inventory.assets
        if a.status == "in_use" and not is_debian(a.os) and any(i.mac for i in a.interfaces)
    ]
    return sorted(unknown.values(), key=lambda s: s.mac), {name: last_seen.get(name) for name in sorted(agentless)}
