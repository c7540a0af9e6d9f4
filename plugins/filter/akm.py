"""Jinja filters that answer network questions from the inventory's ``akm_hosts`` and ``akm_segments``.

Roles need to know how one host reaches another (apt to the package cache, a workstation to its
department's printer, a host to its gateway). The answer is derived here, in one place, from the
inventory variables the ``akm`` inventory plugin sets, so no role types an address.

A host reaches a peer over a segment they share, preferring LAN segments to the management segment;
without one, it uses the peer's first LAN address (routed by the gateway); failing that, the peer's
inventory ``address``.
"""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError

_NOT_LAN = ("management", "wan")


def _host(hosts: dict[str, Any], name: str) -> dict[str, Any]:
    try:
        return hosts[name]
    except KeyError:
        raise AnsibleFilterError(f"host {name!r} is not in akm_hosts (is it in the inventory and in use?)") from None


def _lan(ips: dict[str, str], segments: dict[str, Any]) -> list[str]:
    return [s for s in ips if segments.get(s, {}).get("purpose") not in _NOT_LAN]


def akm_address(peer: str, source: str, hosts: dict[str, Any], segments: dict[str, Any]) -> str:
    """Return the IP address *source* uses to reach *peer* ('' if the peer has none)."""
    mine = _host(hosts, source)["ips"]
    theirs = _host(hosts, peer)["ips"]
    ordered = _lan(mine, segments) + [s for s in mine if s not in _lan(mine, segments)]
    for segment in ordered:
        if segment in theirs and segments.get(segment, {}).get("purpose") != "wan":
            return theirs[segment]
    lan = _lan(theirs, segments)
    if lan:
        return theirs[lan[0]]
    return _host(hosts, peer)["address"] or ""


def akm_gateway(source: str, hosts: dict[str, Any], segments: dict[str, Any]) -> str:
    """Return the gateway address of *source*'s first LAN segment ('' if it has none)."""
    for segment in _lan(_host(hosts, source)["ips"], segments):
        gateway = segments[segment].get("gateway")
        if gateway:
            return str(gateway)
    return ""


def akm_hosts_where(hosts: dict[str, Any], **wanted: Any) -> list[str]:
    """Return the sorted names of hosts whose fields match: ``profile=``, ``kind=`` (str or list),
    ``department=``."""
    found = []
    for name, host in hosts.items():
        if "profile" in wanted and wanted["profile"] not in host["profiles"]:
            continue
        if "kind" in wanted:
            kinds = wanted["kind"] if isinstance(wanted["kind"], list) else [wanted["kind"]]
            if host["kind"] not in kinds:
                continue
        if "department" in wanted and host["department"] != wanted["department"]:
            continue
        found.append(name)
    return sorted(found)


class FilterModule:
    """The project's network filters."""

    def filters(self) -> dict[str, Any]:
        return {"akm_address": akm_address, "akm_gateway": akm_gateway, "akm_hosts_where": akm_hosts_where}
