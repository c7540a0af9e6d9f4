"""MikroTik RouterOS 7: address lists and firewall filter rules, one text file of CLI lines per router.

``routeros/<hostname>.rsc`` is the desired state of everything the policy owns on the router; each line
carries a ``comment`` starting with ``akm`` so the push (the network-devices issue) can compare it with
the device, add what is missing and remove only what it put there. Grants are address-list entries with
a ``timeout``, so the router forgets them at their expiry by itself.

The router enforces the network part of the policy (internal services, no direct egress around the
proxy, management always reachable). Web categories are the proxy's job.
"""

from __future__ import annotations

from akm.policy.compile import CompiledPolicy, Decision
from akm.policy.generators.base import Generator, net_text, safe_name, seconds_until

ROS_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _duration(seconds: int) -> str:
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{days}d" if days else ""
    return text + f"{hours:02d}:{minutes:02d}:{secs:02d}"


def _clock(text: str) -> str:
    hours, minutes = (int(part) for part in text.split(":"))
    return f"{hours}h" + (f"{minutes}m" if minutes else "")


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class RouterosGenerator(Generator):
    """RouterOS address lists and filter rules."""

    name = "routeros"
    description = "MikroTik RouterOS address lists and filter rules"

    def _list(self, name: str, nets, comment: str, timeout: int | None = None) -> list[str]:
        extra = f" timeout={_duration(timeout)}" if timeout else ""
        return [f"add list={name} address={net_text(n)}{extra} comment={_quote('akm: ' + comment)}" for n in nets]

    def _time(self, policy: CompiledPolicy, decision: Decision) -> str:
        if decision.when is None:
            return ""
        schedule = policy.schedules[decision.when]
        days = ",".join(d for d in ROS_DAYS if d in schedule.days)
        return f" time={_clock(schedule.from_)}-{_clock(schedule.to)},{days}"

    def script(self, policy: CompiledPolicy, hostname: str) -> str:
        lists: list[str] = []
        lists += self._list("akm-lan", policy.lan, "every segment but the wan")
        lists += self._list("akm-management", policy.management, "management")
        proxies = [
            ip
            for a in policy.assets_with(profile="gateway")
            for i in a.interfaces
            if (ip := i.ip) is not None and policy.inventory.segments[i.segment].purpose == "wan"
        ]
        for service in sorted(policy.services.values(), key=lambda s: s.id):
            lists += self._list(f"akm-svc-{service.id}", service.hosts, f"service {service.id}")
        filters: list[str] = []
        seen: set[str] = set()
        for decision, service_id in self.service_decisions(policy):
            nets = policy.networks(decision.who)
            if not nets:
                continue
            name = f"akm-{'grant' if decision.kind == 'grant' else 'who'}-{safe_name(decision.id)}"
            if name not in seen:
                seen.add(name)
                timeout = seconds_until(decision.expires, policy.at) if decision.expires else None
                lists += self._list(name, nets, decision.label, timeout)
            action = "accept" if decision.action == "allow" else "drop"
            service = policy.services[service_id]
            for proto in sorted({p[0] for p in service.ports}):
                ports = ",".join(str(a) if a == b else f"{a}-{b}" for p, a, b in service.ports if p == proto)
                filters.append(
                    f"add chain=forward action={action} src-address-list={name} "
                    f"dst-address-list=akm-svc-{service_id} protocol={proto} dst-port={ports}"
                    f"{self._time(policy, decision)} comment={_quote('akm: ' + decision.label)}"
                )
        for number, (nets, ports, why) in enumerate(policy.direct_egress):
            if not nets:
                continue
            name = f"akm-egress-{number}"
            lists += self._list(name, nets, "direct egress: " + why)
            for proto in sorted({p[0] for p in ports}):
                listed = ",".join(str(a) if a == b else f"{a}-{b}" for p, a, b in ports if p == proto)
                filters.append(
                    f"add chain=forward action=accept src-address-list={name} "
                    f"dst-address-list=!akm-lan protocol={proto} dst-port={listed} "
                    f"comment={_quote('akm: direct egress')}"
                )
        lists += [f"add list=akm-proxy address={ip} comment={_quote('akm: the proxy')}" for ip in sorted(proxies)]
        out = self.header(policy, "#", f"RouterOS address lists and filter rules of {hostname}")
        out += ["/ip firewall address-list", *lists, "/ip firewall filter"]
        out += [
            "add chain=input action=accept protocol=tcp dst-port=22 src-address-list=akm-management "
            'comment="akm: management SSH is always allowed"',
            'add chain=forward action=accept connection-state=established,related comment="akm: established"',
            'add chain=forward action=drop connection-state=invalid comment="akm: invalid"',
            "add chain=forward action=accept src-address-list=akm-management dst-address-list=akm-lan "
            'comment="akm: management reaches every LAN host"',
            'add chain=forward action=accept src-address-list=akm-proxy comment="akm: the proxy"',
            *filters,
            "add chain=forward action=drop src-address-list=akm-lan dst-address-list=!akm-lan log=yes "
            'log-prefix=akm-bypass comment="akm: direct egress bypasses the proxy"',
            "add chain=forward action=drop src-address-list=akm-lan dst-address-list=akm-lan "
            'comment="akm: not named by the policy"',
        ]
        return "\n".join(out) + "\n"

    def generate(self, policy: CompiledPolicy) -> dict[str, str]:
        return {
            f"routeros/{asset.hostname}.rsc": self.script(policy, asset.hostname)
            for asset in policy.assets_with(platform="mikrotik_routeros")
        }
