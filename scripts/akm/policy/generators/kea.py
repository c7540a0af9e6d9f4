"""Kea: the gateway's DHCP server, one configuration per host with the ``gateway`` profile.

``kea/<hostname>.json`` serves every leg of the gateway (:func:`akm.policy.generators.lan.legs`):

- a reservation for every registered device on the segment (by hardware address: its MAC, its address,
  its host name), and no pool, so a device that is not in the register gets no lease (rule AX-2.1);
- a pool with short leases only on a segment the inventory gives one (the guest Wi-Fi segment);
- router (or, when the segment names ``routes``, classless static routes to them instead of a default
  route, RFC 3442), DNS and time server (the gateway's address on the segment), the centre's domain and
  the proxy auto-configuration's address (option 252, WPAD: :mod:`akm.policy.generators.wpad`);
- leases in Kea's memfile (``/var/lib/kea``) and each lease logged to the journal, where the reports'
  collection reads them.

Kea 2.2 (Debian 12) and 2.6 (Debian 13) both read this file; it is checked with ``kea-dhcp4 -t`` on the
gateway before it goes live. The Kea configuration language is JSON, so the file is made with
:func:`json.dumps` and needs no escaping of its own.
"""

from __future__ import annotations

import json
from ipaddress import IPv4Address, IPv4Network

from akm.policy.compile import CompiledPolicy
from akm.policy.generators.base import Generator
from akm.policy.generators.lan import legs, registered
from akm.policy.generators.wpad import wpad_url

RESERVED_LIFETIME = 86400
CONTROL_SOCKET = "/run/kea/kea4-ctrl-socket"
# Option 252 is not one of Kea's standard options: the configuration defines it (a URL, as text).
WPAD_OPTION = 252


def classless_routes(routes: list[IPv4Network], router: IPv4Address) -> str:
    """Option 121 (RFC 3442) as hex: for each route its prefix length, the significant octets of the
    destination, then the router. Written as bytes because Kea 2.2 knows no text form of the option."""
    data = bytearray()
    for route in routes:
        data.append(route.prefixlen)
        data += route.network_address.packed[: (route.prefixlen + 7) // 8]
        data += router.packed
    return data.hex().upper()


class KeaGenerator(Generator):
    """Kea DHCPv4: reservations from the inventory, a pool only for guests."""

    name = "kea"
    description = "Kea DHCP server of the gateway: reservations, guest pool, options"

    def subnet(self, policy: CompiledPolicy, number: int, leg, gateway: str) -> dict:
        segment = leg.segment
        router = segment.gateway or leg.address
        options = [
            {"name": "domain-name-servers", "data": str(leg.address)},
            {"name": "ntp-servers", "data": str(leg.address)},
        ]
        if segment.routes:
            options.append({"code": 121, "csv-format": False, "data": classless_routes(segment.routes, router)})
        else:
            options.append({"name": "routers", "data": str(router)})
        subnet: dict = {
            "id": number,
            "subnet": str(segment.subnet),
            "interface": leg.interface,
            "option-data": options,
            "reservations": [
                {"hw-address": device.mac, "ip-address": str(device.ip), "hostname": device.hostname}
                for device in registered(policy.inventory, segment.id, without=gateway)
                if device.mac
            ],
        }
        if segment.pool is not None:
            subnet["pools"] = [{"pool": f"{segment.pool.first} - {segment.pool.last}"}]
            subnet["valid-lifetime"] = segment.pool.lease_minutes * 60
        return subnet

    def config(self, policy: CompiledPolicy, gateway) -> dict:
        served = legs(policy.inventory, gateway)
        return {
            "Dhcp4": {
                "interfaces-config": {"interfaces": [leg.interface for leg in served]},
                "control-socket": {"socket-type": "unix", "socket-name": CONTROL_SOCKET},
                "lease-database": {"type": "memfile", "persist": True, "lfc-interval": 3600},
                "host-reservation-identifiers": ["hw-address"],
                "valid-lifetime": RESERVED_LIFETIME,
                "option-def": [{"name": "wpad", "code": WPAD_OPTION, "type": "string", "space": "dhcp4"}],
                "option-data": [
                    {"name": "domain-name", "data": policy.inventory.centre.domain},
                    # Windows asks for it; always sent, so that other clients can be pointed at it too.
                    {
                        "name": "wpad",
                        "code": WPAD_OPTION,
                        "data": wpad_url(policy.inventory.centre.domain),
                        "always-send": True,
                    },
                ],
                "subnet4": [
                    self.subnet(policy, number, leg, gateway.hostname) for number, leg in enumerate(served, start=1)
                ],
                "loggers": [
                    {
                        "name": "kea-dhcp4",
                        "output_options": [{"output": "stdout"}],
                        "severity": "INFO",
                    }
                ],
            }
        }

    def generate(self, policy: CompiledPolicy) -> dict[str, str]:
        return {
            f"kea/{asset.hostname}.json": json.dumps(self.config(policy, asset), indent=2) + "\n"
            for asset in policy.assets_with(profile="gateway")
        }
