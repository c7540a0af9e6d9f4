"""WPAD: the proxy auto-configuration file each gateway serves, so that Windows PCs and phones find the
proxy by themselves.

``wpad/<hostname>.dat`` is a PAC file (JavaScript's ``FindProxyForURL``): the centre's own names and
every LAN address go direct, everything else through the gateway's proxy by its name. The gateway
serves it at ``http://wpad.<domain>/wpad.dat`` (lighttpd, set up by the gateway role); DHCP hands that
address out as option 252 (:mod:`akm.policy.generators.kea`) and DNS answers the name ``wpad``
(:mod:`akm.policy.generators.unbound`), the two ways a client looks for it.
"""

from __future__ import annotations

from akm.policy.compile import CompiledPolicy
from akm.policy.generators.base import Generator

PATH = "/wpad.dat"


def wpad_url(domain: str) -> str:
    """Where a client finds the file: the name DNS gives for WPAD in the centre's domain."""
    return f"http://wpad.{domain}{PATH}"


class WpadGenerator(Generator):
    """Proxy auto-configuration (PAC) of the gateway."""

    name = "wpad"
    description = "proxy auto-configuration file (WPAD/PAC) the gateway serves"

    def pac(self, policy: CompiledPolicy, gateway) -> str:
        domain = policy.inventory.centre.domain
        lan = ",\n".join(f'        ["{net.network_address}", "{net.netmask}"]' for net in sorted(policy.lan))
        out = [
            *self.header(policy, "//", f"proxy auto-configuration (WPAD) of the gateway {gateway.hostname}"),
            "function FindProxyForURL(url, host) {",
            f'    if (isPlainHostName(host) || host == "{domain}" || dnsDomainIs(host, ".{domain}"))',
            '        return "DIRECT";',
            "    var lan = [",
            lan,
            "    ];",
            "    if (/^[0-9]+\\.[0-9]+\\.[0-9]+\\.[0-9]+$/.test(host))",
            "        for (var i = 0; i < lan.length; i++)",
            "            if (isInNet(host, lan[i][0], lan[i][1]))",
            '                return "DIRECT";',
            f'    return "PROXY {gateway.hostname}.{domain}:{policy.settings.proxy_port}";',
            "}",
        ]
        return "\n".join(out) + "\n"

    def generate(self, policy: CompiledPolicy) -> dict[str, str]:
        return {
            f"wpad/{asset.hostname}.dat": self.pac(policy, asset) for asset in policy.assets_with(profile="gateway")
        }
