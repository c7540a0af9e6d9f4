"""Unbound: the gateway's DNS resolver, one configuration per host with the ``gateway`` profile.

``unbound/<hostname>.conf`` (a complete ``server:`` clause, included from Debian's unbound.conf):

- answers the LAN on the gateway's legs and itself on loopback; every other client is refused, and the
  firewall lets no LAN device ask a resolver outside, so this is the only resolver that goes outward;
- the centre's domain from the inventory: ``<host>.<domain>`` and ``<host>.<segment>.<domain>`` with
  their reverse names (:func:`akm.policy.generators.lan.names`), and ``wpad.<domain>``: the gateway,
  which serves the proxy auto-configuration;
- the categories the access policy denies, refused in DNS as well (``always_nxdomain``) for exactly the
  clients it denies them: each category is a tag, a segment's or a host's addresses carry the tags of the
  categories denied to them (a host that a grant or rule treats otherwise than its segment gets its own
  entry, and Unbound uses the most specific one). A scheduled decision is left to the proxy, which knows
  the time: DNS refuses only what is denied at every hour. So HTTPS to a denied site fails at once even
  for a client with no proxy settings;
- forwards to ``centre.upstream.dns`` when the inventory names resolvers, else resolves from the root
  servers itself; DNSSEC validation unless ``centre.upstream.dnssec`` is false (the lab's fake
  internet signs nothing).

Checked with ``unbound-checkconf`` on the gateway before it goes live.
"""

from __future__ import annotations

from ipaddress import IPv4Network

from akm.policy.compile import CompiledPolicy, covers
from akm.policy.generators.base import Generator, safe_name
from akm.policy.generators.lan import legs, names

NAME_TTL = 3600


def _tag(category: str) -> str:
    return "cat_" + safe_name(category)


def denied_in_dns(policy: CompiledPolicy, client: IPv4Network) -> frozenset[str]:
    """The categories the policy denies *client* at every hour, by its first matching decision."""
    denied = set()
    for category in policy.categories:
        for decision in policy.decisions:
            if decision.expires is not None and policy.at >= decision.expires:
                continue
            if not any(t in (f"category:{category}", "internet") for t in decision.what):
                continue
            if not covers(policy.networks(decision.who), (client,)):
                continue
            if decision.when is None and decision.action == "deny":
                denied.add(category)
            break
    return frozenset(denied)


class UnboundGenerator(Generator):
    """Unbound: the centre's names, denied categories refused per client, upstream resolution."""

    name = "unbound"
    description = "Unbound DNS resolver of the gateway: local names, denied categories, upstream"

    def clients(self, policy: CompiledPolicy) -> list[tuple[IPv4Network, frozenset[str]]]:
        """Every LAN segment with its denied categories, then each host address whose categories differ
        from its segment's."""
        inventory = policy.inventory
        found = []
        for segment in sorted(inventory.segments.values(), key=lambda s: s.subnet):
            if segment.purpose == "wan":
                continue
            tags = denied_in_dns(policy, segment.subnet)
            found.append((segment.subnet, tags))
            hosts = sorted(
                {
                    i.ip
                    for a in inventory.assets
                    if a.status != "written_off"
                    for i in a.interfaces
                    if i.segment == segment.id and i.ip is not None
                }
            )
            for ip in hosts:
                own = denied_in_dns(policy, IPv4Network(ip))
                if own != tags:
                    found.append((IPv4Network(ip), own))
        return found

    def config(self, policy: CompiledPolicy, gateway) -> str:
        inventory = policy.inventory
        upstream = inventory.centre.upstream
        out = [*self.header(policy, "#", f"Unbound resolver of the gateway {gateway.hostname}"), "server:"]
        out += ["\tinterface: 127.0.0.1"]
        out += [f"\tinterface: {leg.address}" for leg in legs(inventory, gateway)]
        management = [
            i.ip
            for i in gateway.interfaces
            if i.ip is not None and inventory.segments[i.segment].purpose == "management"
        ]
        out += [f"\tinterface: {ip}" for ip in management]
        out += ["\taccess-control: 127.0.0.0/8 allow", "\thide-identity: yes", "\thide-version: yes"]
        if not upstream.dnssec:
            out.append('\tmodule-config: "iterator"')
        clients = self.clients(policy)
        used = sorted({tag for _net, tags in clients for tag in tags})
        if used:
            out.append('\tdefine-tag: "' + " ".join(_tag(c) for c in used) + '"')
        for net, tags in clients:
            out.append(f"\taccess-control: {net} allow")
            if tags:
                out.append(f'\taccess-control-tag: {net} "' + " ".join(_tag(c) for c in sorted(tags)) + '"')
        out.append(f'\tlocal-zone: "{inventory.centre.domain}." static')
        primary = next(
            ip for name, ip, _reverse in names(inventory) if name == f"{gateway.hostname}.{inventory.centre.domain}"
        )
        out.append(f'\tlocal-data: "wpad.{inventory.centre.domain}. {NAME_TTL} IN A {primary}"')
        for name, ip, reverse in names(inventory):
            out.append(f'\tlocal-data: "{name}. {NAME_TTL} IN A {ip}"')
            if reverse:
                out.append(f'\tlocal-data-ptr: "{ip} {NAME_TTL} {name}."')
        zones: dict[str, set[str]] = {}
        for category in used:
            for domain in policy.categories[category].domains:
                zones.setdefault(domain, set()).add(category)
        for domain in sorted(zones):
            out.append(f'\tlocal-zone: "{domain}." always_nxdomain')
            out.append(f'\tlocal-zone-tag: "{domain}." "' + " ".join(_tag(c) for c in sorted(zones[domain])) + '"')
        if upstream.dns:
            out += ["", "forward-zone:", '\tname: "."', *(f"\tforward-addr: {ip}" for ip in upstream.dns)]
        return "\n".join(out) + "\n"

    def generate(self, policy: CompiledPolicy) -> dict[str, str]:
        return {
            f"unbound/{asset.hostname}.conf": self.config(policy, asset)
            for asset in policy.assets_with(profile="gateway")
        }
