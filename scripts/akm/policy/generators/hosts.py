"""Host firewalls: one nftables input policy per Linux host of the inventory that is not a gateway.

``hosts/<hostname>.nft`` replaces the table ``inet akm_host`` in one transaction, as the gateway's
ruleset (:mod:`akm.policy.generators.nftables`) replaces its own; the gateway's input chain is its host
firewall. The push (role ``access_policy``, ``playbooks/host-firewall.yml``) validates it with
``nft -c -f`` on the host and rolls it back by itself when the host's SSH stops answering.

What a host accepts, all of it read from the inventory and the policy, never from a host's name:

- SSH (the port Ansible is told, 22 unless the inventory says) from the *admins*
  (:attr:`~akm.policy.compile.CompiledPolicy.admins`): the management hosts, the IT staff's
  workstations (their management legs too, see below) and, in the lab, the control node. Accepted
  before anything else: a policy cannot cut it.
  Ping from the same addresses; ICMP errors of its own connections come back as ``related``.
- The internal services of the policy that run on this host (its profile or its name in a service's
  ``hosts``), from whoever the policy's decisions name, in decision order, with the decision's schedule
  and a grant's expiry, as the gateway's forward chain has them; the expiry is a moment in the rule
  (``meta time``), not a timeout counted from the build, so two builds of one day are the same bytes and
  the release's name (the push's digest of the file) stays the same between converges. A host the
  decision names is admitted on its management leg too: in the lab every machine has one, and a peer on
  a shared segment is reached there (``/etc/hosts`` of the ``base`` role), so traffic between two such
  legs never crosses the gateway.
- On a backup machine (profile ``backup_server``), its REST server's port from every address of every
  host with data placements in the inventory: the backup clients.
- On a host that serves a Windows PC's share the backup machine pulls (in the lab, the machine standing in
  for the PC: the inventory's ``data[].smb.server``), SMB from the backup machines
  (:attr:`~akm.policy.compile.CompiledPolicy.smb_pulls`).
- On a host whose interface takes its address by DHCP, the replies of its segment's gateway.

Everything else that comes in is dropped; what the host sends and the answers to it pass (time, DNS,
the proxy, apt, backups and alerts are all connections the host opens).
"""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import IPv4Network, collapse_addresses

from akm.backup.jobs import server_port
from akm.backup.smb import PORT as SMB_PORT
from akm.inventory.model import is_debian
from akm.policy.compile import CompiledPolicy, Networks, covers, overlaps
from akm.policy.generators.nftables import NftablesGenerator

TABLE = "akm_host"


def _management_legs(policy: CompiledPolicy) -> dict[str, list[IPv4Network]]:
    """Each in-use host's addresses on management segments, by hostname."""
    inventory = policy.inventory
    legs: dict[str, list[IPv4Network]] = {}
    for asset in inventory.assets:
        if asset.status != "in_use":
            continue
        for interface in asset.interfaces:
            segment = inventory.segments.get(interface.segment)
            if interface.ip is not None and segment is not None and segment.purpose == "management":
                legs.setdefault(asset.hostname, []).append(IPv4Network(interface.ip))
    return legs


def _addresses(policy: CompiledPolicy, assets: Iterable) -> Networks:
    """Every non-wan address of *assets*."""
    segments = policy.inventory.segments
    return tuple(
        collapse_addresses(
            IPv4Network(interface.ip)
            for asset in assets
            for interface in asset.interfaces
            if interface.ip is not None
            and interface.segment in segments
            and segments[interface.segment].purpose != "wan"
        )
    )


class HostFirewallGenerator(NftablesGenerator):
    """nftables input policy of every Linux host but the gateways."""

    name = "hosts"
    description = "nftables input policy of every Linux host but the gateways"

    @staticmethod
    def widen(policy: CompiledPolicy, legs: dict[str, list[IPv4Network]], nets: Networks) -> Networks:
        """*nets* and the management *legs* of every in-use host that has an address in them."""
        extra = [
            leg
            for asset in policy.inventory.assets
            if asset.status == "in_use"
            and any(covers(nets, (IPv4Network(i.ip),)) for i in asset.interfaces if i.ip is not None)
            for leg in legs.get(asset.hostname, ())
        ]
        return tuple(collapse_addresses([*nets, *extra]))

    def ruleset(self, policy: CompiledPolicy, hostname: str) -> str:
        inventory = policy.inventory
        asset = inventory.asset(hostname)
        own = _addresses(policy, [asset])
        legs = _management_legs(policy)
        services = sorted(s.id for s in policy.services.values() if any(covers(s.hosts, (net,)) for net in own))
        sets = self._set(
            "admins",
            self.widen(policy, legs, policy.admins),
            "SSH: management hosts, IT staff workstations, the lab's control node",
        )
        decided, rules = self.decision_rules(
            policy,
            services,
            destination=False,
            widen=lambda nets: self.widen(policy, legs, nets),
            expiry_in_rules=True,
        )
        sets += decided
        if "backup_server" in asset.profiles:
            clients = [a for a in inventory.assets if a.status == "in_use" and a.data and a.hostname != hostname]
            sets += self._set("backup_clients", _addresses(policy, clients), "hosts with data placements")
            rules.append(
                f"\t\tip saddr @backup_clients tcp dport {server_port(asset)} accept "
                'comment "the backup REST server for its clients"'
            )
        pullers, shares = policy.smb_pulls
        if overlaps(own, shares):
            sets += self._set("smb_pullers", self.widen(policy, legs, pullers), "backup machines pulling its shares")
            rules.append(
                f"\t\tip saddr @smb_pullers tcp dport {SMB_PORT} accept "
                'comment "the backup machine pulls the shares it serves (inventory data[].smb)"'
            )
        dhcp_servers = sorted(
            {
                str(inventory.segments[i.segment].gateway)
                for i in asset.interfaces
                if i.dhcp and i.segment in inventory.segments and inventory.segments[i.segment].gateway is not None
            }
        )
        if dhcp_servers:
            rules.insert(
                0,
                f"\t\tip saddr {{ {', '.join(dhcp_servers)} }} udp sport 67 udp dport 68 accept "
                'comment "DHCP replies of the segment\'s gateway"',
            )
        endpoint = asset.ssh_endpoint
        ssh_port = endpoint[1] if endpoint else 22
        body = [
            *sets,
            "",
            *self.input_head(f"tcp dport {ssh_port} ip saddr @admins"),
            '\t\tip saddr @admins icmp type echo-request accept comment "ping from the admins"',
            *rules,
            '\t\tcounter comment "not named by the policy: dropped"',
            "\t}",
        ]
        profiles = ", ".join(asset.profiles) or "-"
        return self.document(policy, TABLE, f"host firewall of {hostname} (profiles: {profiles})", body)

    def generate(self, policy: CompiledPolicy) -> dict[str, str]:
        return {
            f"hosts/{asset.hostname}.nft": self.ruleset(policy, asset.hostname)
            for asset in sorted(policy.inventory.assets, key=lambda a: a.hostname)
            if asset.status == "in_use" and is_debian(asset.os) and "gateway" not in asset.profiles
        }


__all__ = ["TABLE", "HostFirewallGenerator"]
