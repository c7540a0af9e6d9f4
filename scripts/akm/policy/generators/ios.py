"""Cisco IOS: one extended ACL per user VLAN, applied inbound on its SVI; one text file per switch.

``ios/<hostname>.txt`` holds ``time-range`` blocks for the schedules, then for every segment that has a
VLAN (but not the management or wan ones) ``ip access-list extended AKM-IN-<SEGMENT>`` and the
``interface Vlan<N>`` line that applies it. Order inside an ACL: replies of established TCP sessions and
echo replies towards the management segments first (management VLANs get no ACL, so the
management path is never cut), the proxy and
DNS on the gateway, the policy's internal-service decisions, then every other LAN destination denied
and the rest permitted towards the gateway, whose firewall decides about the internet.

IOS ACL entries cannot expire, so a grant is in the file only while it is active; the next build after
its expiry leaves it out.
"""

from __future__ import annotations

from ipaddress import IPv4Network

from akm.policy.compile import CompiledPolicy, Decision
from akm.policy.generators.base import Generator

IOS_DAYS = {
    "mon": "Monday",
    "tue": "Tuesday",
    "wed": "Wednesday",
    "thu": "Thursday",
    "fri": "Friday",
    "sat": "Saturday",
    "sun": "Sunday",
}


def ios_net(net: IPv4Network) -> str:
    """``host A.B.C.D``, ``any`` or ``network wildcard`` as IOS writes an address in an ACL."""
    if net.prefixlen == 32:
        return f"host {net.network_address}"
    if net.prefixlen == 0:
        return "any"
    return f"{net.network_address} {net.hostmask}"


def _ports(first: int, last: int) -> str:
    return f"eq {first}" if first == last else f"range {first} {last}"


class IosGenerator(Generator):
    """Cisco IOS extended ACLs, one per user VLAN."""

    name = "ios"
    description = "Cisco IOS extended ACLs per VLAN"

    def _time_range(self, decision: Decision) -> str:
        return f" time-range AKM-{decision.when.upper().replace('-', '_')}" if decision.when else ""

    def config(self, policy: CompiledPolicy, hostname: str) -> str:
        out = self.header(policy, "!", f"Cisco IOS ACLs of {hostname}")
        for schedule in sorted(policy.schedules.values(), key=lambda s: s.id):
            days = " ".join(IOS_DAYS[d] for d in IOS_DAYS if d in schedule.days)
            to = "23:59" if schedule.to == "24:00" else schedule.to
            out += [
                f"time-range AKM-{schedule.id.upper().replace('-', '_')}",
                f" periodic {days} {schedule.from_} to {to}",
                "!",
            ]
        gateways = policy.assets_with(profile="gateway")
        managements = [n for s in policy.inventory.segments.values() if s.purpose == "management" for n in [s.subnet]]
        for segment in sorted(policy.inventory.segments.values(), key=lambda s: s.vlan or 0):
            if segment.vlan is None or segment.purpose in {"wan", "management"}:
                continue
            name = f"AKM-IN-{segment.id.upper().replace('-', '_')}"
            lines = [f"ip access-list extended {name}", " remark akm: generated, do not edit"]
            lines.append(" permit tcp any any established")
            lines += [f" permit icmp any {ios_net(n)} echo-reply" for n in managements]
            for gateway in gateways:
                ip = gateway.ip_on(segment.id)
                if ip is not None:
                    lines.append(f" permit tcp {ios_net(segment.subnet)} host {ip} eq {policy.settings.proxy_port}")
                    lines.append(f" permit udp {ios_net(segment.subnet)} host {ip} eq 53")
            for decision, service_id in self.service_decisions(policy):
                who = policy.networks(decision.who)
                if any(segment.subnet.subnet_of(n) for n in who):
                    sources = [segment.subnet]
                else:
                    sources = [n for n in who if n.subnet_of(segment.subnet)]
                if not sources:
                    continue
                lines.append(f" remark akm {decision.label}: {service_id}")
                action = "permit" if decision.action == "allow" else "deny"
                service = policy.services[service_id]
                for source in sources:
                    for destination in service.hosts:
                        for proto, first, last in service.ports:
                            lines.append(
                                f" {action} {proto} {ios_net(source)} {ios_net(destination)} "
                                f"{_ports(first, last)}{self._time_range(decision)}"
                            )
            # IOS keeps one of two equal lines of an access list, remarks too: the direct egresses (two
            # may open the same port to the same host, as the package cache's HTTPS and the alerts' Bot
            # API do) are one block under one remark, each entry once.
            egress = [
                f" permit {proto} {ios_net(source)} any {_ports(first, last)}"
                for nets, ports, _why in policy.direct_egress
                for source in nets
                if source.subnet_of(segment.subnet)
                for proto, first, last in ports
            ]
            if egress:
                lines += [" remark akm direct egress", *dict.fromkeys(egress)]
            lines.append(" remark akm: other LAN destinations only as the policy names them")
            lines += [f" deny ip any {ios_net(n)}" for n in policy.lan]
            lines.append(" permit ip any any")
            out += [*lines, "!", f"interface Vlan{segment.vlan}", f" ip access-group {name} in", "!"]
        return "\n".join(out) + "\n"

    def generate(self, policy: CompiledPolicy) -> dict[str, str]:
        return {
            f"ios/{asset.hostname}.txt": self.config(policy, asset.hostname)
            for asset in policy.assets_with(platform="cisco_ios")
        }
