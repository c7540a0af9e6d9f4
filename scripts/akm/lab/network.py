"""Build and remove the lab's network: namespaces, the switch with one bridge per segment, veth legs,
and the host's nftables table ``inet akm_lab`` that fences the host's one lab leg.

Everything is made with ``ip`` from iproute2. Creation follows the :class:`~akm.lab.plan.Plan`;
removal does not need a plan at all: it sweeps every namespace whose name starts with ``akm-``, the
host link ``akm-ctl`` and the table, so it also cleans up after a crashed or killed run. Deleting a namespace deletes
the veths and bridges inside it.
"""

from __future__ import annotations

from collections.abc import Sequence

from akm.lab.plan import APT_CACHE_PORT, HOST_LINK, PREFIX, SWITCH_CONTROL_PORT, SWITCH_NETNS, Machine, Plan
from akm.lab.system import run


def lab_namespaces() -> list[str]:
    """Network namespaces that belong to the lab (name starts with ``akm-``)."""
    listing = run(["ip", "netns", "list"], check=False).stdout
    names = [line.split()[0] for line in listing.splitlines() if line.strip()]
    return sorted(n for n in names if n.startswith(PREFIX))


def host_link_exists() -> bool:
    """True if the host still has the lab's management veth."""
    return run(["ip", "link", "show", "dev", HOST_LINK], check=False).returncode == 0


def _sysctl(netns: str, *settings: str) -> None:
    run(["sysctl", "-q", "-w", *settings], netns=netns)


def _namespace(name: str) -> None:
    run(["ip", "netns", "add", name])
    run(["ip", "-n", name, "link", "set", "lo", "up"])
    _sysctl(name, "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")


def create_switch(plan: Plan) -> None:
    """Create the switch namespace with its bridges and the host's leg into the management bridge."""
    _namespace(SWITCH_NETNS)
    for bridge in plan.bridges.values():
        run(
            [
                "ip",
                "-n",
                SWITCH_NETNS,
                "link",
                "add",
                bridge,
                "type",
                "bridge",
                "forward_delay",
                "0",
                "stp_state",
                "0",
            ]
        )
        run(["ip", "-n", SWITCH_NETNS, "link", "set", bridge, "up"])
    run(
        [
            "ip",
            "link",
            "add",
            HOST_LINK,
            "type",
            "veth",
            "peer",
            "name",
            SWITCH_CONTROL_PORT,
            "netns",
            SWITCH_NETNS,
        ]
    )
    run(
        [
            "ip",
            "-n",
            SWITCH_NETNS,
            "link",
            "set",
            SWITCH_CONTROL_PORT,
            "master",
            plan.bridges[plan.control_segment],
            "up",
        ]
    )
    run(["sysctl", "-q", "-w", f"net.ipv6.conf.{HOST_LINK}.disable_ipv6=1"])
    run(["ip", "addr", "add", str(plan.control), "dev", HOST_LINK])
    run(["ip", "link", "set", HOST_LINK, "up"])


def add_host_routes(plan: Plan) -> None:
    """Route the lab range from the host through the gateway machine's management address."""
    for route in plan.host_routes:
        run(["ip", "route", "replace", str(route.destination), "via", str(route.via), "dev", HOST_LINK])


HOST_TABLE = "akm_lab"


def host_firewall(plan: Plan, device_ports: Sequence[int] = ()) -> None:
    """Fence the host's lab leg: from the lab only the package cache, the simulated devices' ports
    (*device_ports*, from the management segment only, as real devices' management interfaces) and
    answers to the host's own connections reach the host, and the host forwards nothing to or from the
    lab. Applying it again replaces the rules in one transaction."""
    devices = ""
    if device_ports:
        ports = ", ".join(str(p) for p in sorted(set(device_ports)))
        devices = (
            f'iifname "{HOST_LINK}" ip saddr {plan.control.network} ip daddr {plan.control.ip} '
            f"tcp dport {{ {ports} }} accept"
        )
    rules = f"""
table inet {HOST_TABLE}
flush table inet {HOST_TABLE}
table inet {HOST_TABLE} {{
    chain input {{
        type filter hook input priority 0; policy accept;
        iifname "{HOST_LINK}" ct state established,related accept
        iifname "{HOST_LINK}" ip daddr {plan.control.ip} tcp dport {APT_CACHE_PORT} accept
        {devices}
        iifname "{HOST_LINK}" icmp type echo-request accept
        iifname "{HOST_LINK}" drop
    }}
    chain forward {{
        type filter hook forward priority 0; policy accept;
        iifname "{HOST_LINK}" drop
        oifname "{HOST_LINK}" drop
    }}
}}
"""
    run(["nft", "-f", "-"], input=rules)


def host_firewall_exists() -> bool:
    """True if the host still has the lab's nftables table."""
    return run(["nft", "list", "table", "inet", HOST_TABLE], check=False).returncode == 0


def create_machine_network(plan: Plan, machine: Machine) -> None:
    """Create *machine*'s namespace, its legs into the segment bridges, addresses and routes (a leg the
    inventory gives to DHCP gets no address here: the machine asks the gateway for its lease)."""
    _namespace(machine.netns)
    for port in machine.ports:
        run(
            [
                "ip",
                "-n",
                SWITCH_NETNS,
                "link",
                "add",
                port.outer,
                "type",
                "veth",
                "peer",
                "name",
                port.inner,
                "netns",
                machine.netns,
            ]
        )
        run(["ip", "-n", SWITCH_NETNS, "link", "set", port.outer, "master", port.bridge, "up"])
        if port.mac:
            run(["ip", "-n", machine.netns, "link", "set", port.inner, "address", port.mac])
        if not port.dhcp:
            run(["ip", "-n", machine.netns, "addr", "add", str(port.address), "dev", port.inner])
        run(["ip", "-n", machine.netns, "link", "set", port.inner, "up"])
    for route in machine.routes:
        run(["ip", "-n", machine.netns, "route", "add", str(route.destination), "via", str(route.via)])
    if machine.forwarding:
        _sysctl(machine.netns, "net.ipv4.ip_forward=1")


def destroy() -> list[str]:
    """Remove the host link and every ``akm-`` namespace; return what was removed."""
    removed = []
    if host_firewall_exists():
        run(["nft", "delete", "table", "inet", HOST_TABLE], check=False)
        removed.append(f"nft:{HOST_TABLE}")
    if host_link_exists():
        run(["ip", "link", "del", HOST_LINK], check=False)
        removed.append(HOST_LINK)
    for name in lab_namespaces():
        run(["ip", "netns", "del", name], check=False)
        removed.append(name)
    return removed
