"""nftables: the gateway's own firewall, one ruleset file per host with the ``gateway`` profile.

``nftables/<hostname>.nft`` replaces the table ``inet akm_policy`` in one transaction (create, delete,
create again in one file: ``nft -f`` applies it atomically or not at all). In it:

- ``input``: management SSH from the management segments and the IT staff's workstations is accepted
  before anything else (a policy cannot cut it); the LAN may use the proxy port, DNS and time on the
  gateway, and its legs DHCP.
- ``registered`` (prerouting, rule AX-2.1): on every leg but the guest segment's, a packet whose
  (MAC, address) pair is not a registered device of the inventory (:mod:`akm.policy.generators.lan`)
  is dropped before it reaches the gateway or anything behind it: a device with a static address
  joins no network that DHCP would refuse it. Only a DHCP request (from 0.0.0.0) passes, and DHCP gives
  an unknown device no lease. A registered device whose MAC the inventory does not give is let through
  by its address alone (``akm inventory check`` warns about it).
- ``intercept`` (prerouting NAT): web traffic (port 80) from a leg to outside the LAN goes to the proxy's
  intercept port, so the policy holds for a client without proxy settings (a Windows PC that ignores
  WPAD, a guest's phone); a direct egress the policy allows on port 80 is left alone. With
  ``settings.staff_login: required`` the legs on the staff's segments are not intercepted (a proxy cannot
  ask intercepted traffic for a login): their direct web is dropped like any other direct egress, and
  only the explicit proxy, where Squid asks for the login, takes them to the web.
- ``forward``: on the guest segment (the one with a pool) HTTPS goes out directly, since a guest's
  device has no proxy settings and its certificate store does not trust ours: a denied site fails
  already in DNS (:mod:`akm.policy.generators.unbound`), and the gateway's resolver is the only one the
  LAN can ask.
- ``forward``: internal services only as the policy's decisions name them (addresses in named sets,
  grants in sets whose elements carry a ``timeout`` that ends them at their expiry even between builds);
  direct egress from the LAN that bypasses the proxy is logged and dropped; everything else is dropped.
- ``forward``: SMB from the backup machines to the Windows PCs' shares they pull, read from the
  inventory's ``data[].smb`` (:attr:`~akm.policy.compile.CompiledPolicy.smb_pulls`), never written in
  the policy by hand.

Web sites are not decided here: that is the proxy's job (:mod:`akm.policy.generators.squid`).
"""

from __future__ import annotations

from collections.abc import Collection
from ipaddress import IPv4Network

from akm.backup.smb import PORT as SMB_PORT
from akm.policy.compile import CompiledPolicy, Decision, covers
from akm.policy.generators.base import Generator, net_text, safe_name, seconds_until
from akm.policy.generators.lan import legs, registered

NFT_DAYS = {
    "mon": "Monday",
    "tue": "Tuesday",
    "wed": "Wednesday",
    "thu": "Thursday",
    "fri": "Friday",
    "sat": "Saturday",
    "sun": "Sunday",
}
TABLE = "akm_policy"


def _ports(first: int, last: int) -> str:
    return str(first) if first == last else f"{first}-{last}"


class NftablesGenerator(Generator):
    """nftables ruleset of the gateway: sets, input and forward chains."""

    name = "nftables"
    description = "nftables ruleset of the gateway"

    def _set(self, name: str, nets, comment: str, timeout: int | None = None) -> list[str]:
        if timeout is None:
            flags = "interval"
            elements = ", ".join(net_text(n) for n in nets)
        else:
            flags = "interval, timeout"
            elements = ", ".join(f"{net_text(n)} timeout {timeout}s" for n in nets)
        lines = [f"\tset {name} {{", f'\t\ttype ipv4_addr; flags {flags}; comment "{comment}"']
        if elements:
            lines.append(f"\t\telements = {{ {elements} }}")
        lines.append("\t}")
        return lines

    def _when(self, policy: CompiledPolicy, decision: Decision) -> str:
        if decision.when is None:
            return ""
        schedule = policy.schedules[decision.when]
        days = ", ".join(f'"{NFT_DAYS[d]}"' for d in sorted(schedule.days, key=list(NFT_DAYS).index))
        to = "23:59:59" if schedule.to == "24:00" else schedule.to
        return f'meta day {{ {days} }} meta hour "{schedule.from_}"-"{to}" '

    def document(self, policy: CompiledPolicy, table: str, target: str, body: list[str]) -> str:
        """The ruleset file: a header, then the table *table* created, deleted and created again with
        *body* in it, so that ``nft -f`` replaces it in one transaction."""
        out = [
            "#!/usr/sbin/nft -f",
            *self.header(policy, "#", target),
            f"table inet {table}",
            f"delete table inet {table}",
            "",
            f"table inet {table} {{",
            *body,
            "}",
        ]
        return "\n".join(out) + "\n"

    @staticmethod
    def input_head(ssh: str) -> list[str]:
        """The start of an input chain that drops by default: management SSH (*ssh*, the saddr part)
        before anything else, so that no policy can cut it; answers, loopback."""
        return [
            "\tchain input {",
            "\t\ttype filter hook input priority filter; policy drop;",
            f'\t\t{ssh} accept comment "management SSH is always allowed"',
            "\t\tct state established,related accept",
            "\t\tct state invalid drop",
            '\t\tiifname "lo" accept',
        ]

    def decision_rules(
        self,
        policy: CompiledPolicy,
        services: Collection[str],
        *,
        destination: bool,
        widen=None,
        expiry_in_rules: bool = False,
    ) -> tuple[list[str], list[str]]:
        """The sets and the rules of the policy's decisions about the internal *services*, in decision
        order: ``accept`` or ``drop`` from the decision's ``who`` (a set) on the service's ports, within
        its schedule. A grant ends at its expiry: by its set's elements' ``timeout`` (seconds from the
        build's moment), or with *expiry_in_rules* by ``meta time`` before the expiry (seconds since the
        epoch) in each of its rules, so that the file's bytes do not depend on the build's moment and a
        release loaded again later (a reboot, a rollback) does not stretch the grant. With *destination*
        each rule also names the service's addresses (the gateway's forward chain); *widen* may add
        addresses to a ``who``."""
        sets: list[str] = []
        rules: list[str] = []
        seen: set[str] = set()
        for decision, service_id in self.service_decisions(policy):
            if service_id not in services:
                continue
            nets = policy.networks(decision.who)
            if widen is not None:
                nets = widen(nets)
            if not nets:
                continue
            prefix = "grant" if decision.kind == "grant" else "who"
            set_name = f"{prefix}_{safe_name(decision.id)}"
            if set_name not in seen:
                seen.add(set_name)
                timeout = (
                    seconds_until(decision.expires, policy.at) if decision.expires and not expiry_in_rules else None
                )
                comment = decision.label + (f" until {decision.expires.date().isoformat()}" if decision.expires else "")
                sets += self._set(set_name, nets, comment, timeout)
            verdict = "accept" if decision.action == "allow" else "drop"
            service = policy.services[service_id]
            daddr = f"ip daddr @svc_{safe_name(service_id)} " if destination else ""
            if expiry_in_rules and decision.expires:
                daddr += f"meta time < {int(decision.expires.timestamp())} "
            for proto in sorted({p[0] for p in service.ports}):
                ports = ", ".join(_ports(a, b) for p, a, b in service.ports if p == proto)
                rules.append(
                    f"\t\tip saddr @{set_name} {daddr}"
                    f"{self._when(policy, decision)}"
                    f'{proto} dport {{ {ports} }} {verdict} comment "{decision.label}: {service_id}"'
                )
        return sets, rules

    def ruleset(self, policy: CompiledPolicy, hostname: str) -> str:
        sets: list[str] = []
        sets += self._set("lan", policy.lan, "every segment but the wan")
        sets += self._set("management", policy.management, "management segments and IT staff workstations")
        for service in sorted(policy.services.values(), key=lambda s: s.id):
            sets += self._set(f"svc_{safe_name(service.id)}", service.hosts, f"service {service.id}")
        decided, forward = self.decision_rules(policy, policy.services, destination=True)
        sets += decided
        for number, (nets, ports, why) in enumerate(policy.direct_egress):
            if not nets:
                continue
            set_name = f"egress_{number}"
            sets += self._set(set_name, nets, "direct egress: " + why.replace('"', "'")[:100])
            for proto in sorted({p[0] for p in ports}):
                listed = ", ".join(_ports(a, b) for p, a, b in ports if p == proto)
                forward.append(
                    f"\t\tip saddr @{set_name} ip daddr != @lan {proto} dport {{ {listed} }} accept "
                    f'comment "direct egress"'
                )
        pullers, shares = policy.smb_pulls
        if shares:
            sets += self._set("smb_pullers", pullers, "backup machines")
            sets += self._set("smb_shares", shares, "Windows PCs' shares the backup machines pull")
            forward.append(
                f"\t\tip saddr @smb_pullers ip daddr @smb_shares tcp dport {SMB_PORT} accept "
                'comment "the backup machine pulls the Windows PCs\' shares (inventory data[].smb)"'
            )
        dns = '\t\tip saddr @lan meta l4proto { tcp, udp } th dport 53 accept comment "DNS on the gateway"'
        gateway = policy.inventory.asset(hostname)
        served = legs(policy.inventory, gateway)
        checked = [leg for leg in served if leg.segment.pool is None]
        devices = [d for leg in checked for d in registered(policy.inventory, leg.segment.id, without=hostname)]
        pairs = [f"{d.mac} . {d.ip}" for d in devices if d.mac]
        sets += [
            "\tset registered {",
            '\t\ttype ether_addr . ipv4_addr; comment "registered devices (MAC . address), rule AX-2.1"',
            *([f"\t\telements = {{ {', '.join(pairs)} }}"] if pairs else []),
            "\t}",
        ]
        sets += self._set(
            "registered_address",
            [IPv4Network(d.ip) for d in devices if not d.mac],
            "registered devices whose MAC the inventory does not give: known by address only",
        )
        web_direct = [
            net
            for nets, ports, _why in policy.direct_egress
            if any(p == "tcp" and a <= 80 <= b for p, a, b in ports)
            for net in nets
        ]
        sets += self._set("web_direct", web_direct, "direct egress on port 80: not intercepted")
        guests = [leg for leg in served if leg.segment.pool is not None]
        guests_in = "iifname {{ {} }} ".format(", ".join(f'"{leg.interface}"' for leg in guests))
        intercept = policy.settings.intercept_port
        legs_in = "iifname {{ {} }} ".format(", ".join(f'"{leg.interface}"' for leg in served))
        intercepted = [
            leg
            for leg in served
            if not (policy.login_networks and covers(policy.login_networks, (leg.segment.subnet,)))
        ]
        intercepted_in = "iifname {{ {} }} ".format(", ".join(f'"{leg.interface}"' for leg in intercepted))
        checked_in = "iifname {{ {} }} ".format(", ".join(f'"{leg.interface}"' for leg in checked))
        body = [
            *sets,
            "",
            *self.input_head("tcp dport 22 ip saddr @management"),
            "\t\tip protocol icmp accept",
            f'\t\tip saddr @lan tcp dport {policy.settings.proxy_port} accept comment "the proxy"',
            f'\t\tip saddr @lan tcp dport {intercept} accept comment "the proxy, for intercepted web traffic"',
            '\t\tip saddr @lan tcp dport 80 accept comment "proxy auto-configuration (WPAD)"',
            dns,
            *(
                [
                    f'\t\t{legs_in}udp sport 68 udp dport 67 accept comment "DHCP on the gateway"',
                    '\t\tip saddr @lan udp dport 123 accept comment "time on the gateway"',
                ]
                if served
                else []
            ),
            "\t}",
            "",
            "\tchain registered {",
            "\t\ttype filter hook prerouting priority filter; policy accept;",
            *(
                [
                    f'\t\t{checked_in}ip saddr 0.0.0.0 udp dport 67 accept comment "a DHCP request"',
                    f'\t\t{checked_in}ip saddr @registered_address accept comment "registered, MAC unknown"',
                    f"\t\t{checked_in}ether saddr . ip saddr != @registered limit rate 10/second "
                    'log prefix "akm-unregistered " drop comment "AX-2.1: not in the register"',
                    f'\t\t{checked_in}ether saddr . ip saddr != @registered drop comment "AX-2.1: not in the register"',
                ]
                if checked
                else []
            ),
            "\t}",
            "",
            "\tchain intercept {",
            "\t\ttype nat hook prerouting priority dstnat; policy accept;",
            *(
                [
                    f"\t\t{intercepted_in}ip daddr != @lan ip saddr != @web_direct tcp dport 80 "
                    f'redirect to :{intercept} comment "web without proxy settings goes through the proxy"'
                ]
                if intercepted
                else []
            ),
            "\t}",
            "",
            "\tchain forward {",
            "\t\ttype filter hook forward priority filter; policy drop;",
            "\t\tct state established,related accept",
            "\t\tct state invalid drop",
            '\t\tip saddr @management ip daddr @lan accept comment "management reaches every LAN host"',
            *forward,
            *(
                [
                    f"\t\t{guests_in}ip daddr != @lan tcp dport 443 accept "
                    'comment "guests\' HTTPS: a denied site fails in DNS"'
                ]
                if guests
                else []
            ),
            '\t\tip saddr @lan ip daddr != @lan limit rate 10/second log prefix "akm-bypass " drop '
            'comment "direct egress bypasses the proxy"',
            '\t\tip saddr @lan ip daddr != @lan drop comment "direct egress bypasses the proxy"',
            '\t\tcounter comment "not named by the policy: dropped"',
            "\t}",
            "",
            "\tchain output {",
            "\t\ttype filter hook output priority filter; policy accept;",
            "\t}",
        ]
        return self.document(policy, TABLE, f"nftables ruleset of the gateway {hostname}", body)

    def generate(self, policy: CompiledPolicy) -> dict[str, str]:
        return {
            f"nftables/{asset.hostname}.nft": self.ruleset(policy, asset.hostname)
            for asset in policy.assets_with(profile="gateway")
        }
