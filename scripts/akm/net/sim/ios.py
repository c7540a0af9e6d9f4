"""The Cisco IOS model of the simulator: exec/enable/config modes, extended ACLs, interfaces.

The running configuration is state: ``show running-config`` is built from it, ``write memory`` copies it
to the startup configuration (what a restarted simulator comes back with), ``copy running-config
flash:NAME`` saves it as a file and ``configure replace flash:NAME force`` makes a saved file the running
configuration again. Commands may be abbreviated as on IOS (``conf t``, ``sh run``, ``int gi0/1``).
Invalid input gets the ``^`` marker under the first word IOS could not parse.
"""

from __future__ import annotations

import copy
import ipaddress
import time
from dataclasses import dataclass, field

VERSION = "15.2(7)E8"
MODEL = "WS-C2960X-24TS-L"
SERIAL = "FOC0000SIM1"

PORT_NAMES = {
    "www": 80,
    "domain": 53,
    "ftp": 21,
    "telnet": 23,
    "smtp": 25,
    "pop3": 110,
    "ntp": 123,
    "ftp-data": 20,
    "bootps": 67,
    "bootpc": 68,
    "tftp": 69,
    "snmp": 161,
    "syslog": 514,
}
SHOWN_PORT = {80: "www", 53: "domain", 21: "ftp", 23: "telnet", 25: "smtp", 110: "pop3", 20: "ftp-data"}
UDP_SHOWN = {53: "domain", 67: "bootps", 68: "bootpc", 69: "tftp", 123: "ntp", 161: "snmp", 514: "syslog"}


class InvalidInput(Exception):
    """Input IOS rejects; ``position`` is the index of the offending character in the line."""

    def __init__(self, position: int, message: str = "% Invalid input detected at '^' marker.") -> None:
        super().__init__(message)
        self.position = position
        self.message = message


@dataclass
class Port:
    """An interface: configuration plus the link state and counters a test may change."""

    name: str
    mac: str
    description: str = ""
    address: str = ""
    shutdown: bool = False
    access_groups: dict[str, str] = field(default_factory=dict)
    switchport: list[str] = field(default_factory=list)
    connected: bool = True
    input_errors: int = 0
    crc: int = 0
    output_errors: int = 0


def _abbrev(word: str, choices: tuple[str, ...]) -> str | None:
    """Expand an abbreviated keyword when it is unambiguous (IOS style)."""
    word = word.lower()
    if word in choices:
        return word
    matches = [c for c in choices if c.startswith(word)]
    return matches[0] if len(matches) == 1 else None


def interface_name(text: str) -> str | None:
    """Normalise ``gi0/1``, ``GigabitEthernet0/1``, ``vlan 10``... to the IOS full name."""
    lowered = text.lower().replace(" ", "")
    for full in ("GigabitEthernet", "FastEthernet", "TenGigabitEthernet", "Vlan", "Loopback", "Port-channel"):
        for length in range(len(full), 1, -1):
            prefix = full[:length].lower()
            if lowered.startswith(prefix) and lowered[length:] and (lowered[length].isdigit()):
                return full + lowered[length:]
    return None


def _address(words: list[str], at: int) -> tuple[str, int]:
    """Parse an ACL address (``any``, ``host A``, ``A W``) at *at*; return its shown form and next index."""
    if at >= len(words):
        raise InvalidInput(at)
    word = words[at].lower()
    if word == "any":
        return "any", at + 1
    if word == "host":
        ipaddress.IPv4Address(words[at + 1])
        return f"host {words[at + 1]}", at + 2
    try:
        address = ipaddress.IPv4Address(words[at])
        wildcard = ipaddress.IPv4Address(words[at + 1])
    except (ValueError, IndexError):
        raise InvalidInput(at) from None
    if str(wildcard) == "0.0.0.0":
        return f"host {address}", at + 2
    if str(wildcard) == "255.255.255.255":
        return "any", at + 2
    return f"{address} {wildcard}", at + 2


def _port(words: list[str], at: int, protocol: str) -> tuple[str, int]:
    if at >= len(words) or words[at] not in ("eq", "neq", "gt", "lt", "range") or protocol not in ("tcp", "udp"):
        return "", at
    operator = words[at]
    count = 2 if operator == "range" else 1
    shown = []
    for word in words[at + 1 : at + 1 + count]:
        number = int(word) if word.isdigit() else PORT_NAMES.get(word)
        if number is None or not 0 <= number <= 65535:
            raise InvalidInput(at + 1)
        names = SHOWN_PORT if protocol == "tcp" else UDP_SHOWN
        shown.append(names.get(number, str(number)))
    if len(shown) != count:
        raise InvalidInput(at + 1)
    return f" {operator} {' '.join(shown)}", at + 1 + count


def ace(words: list[str]) -> str:
    """Validate an extended ACL entry (``permit tcp A W any eq 443``) and return it as IOS shows it."""
    action = words[0]
    if action == "remark":
        return " ".join(words)
    if len(words) < 2:
        raise InvalidInput(len(words), "% Incomplete command.")
    protocol = words[1].lower()
    if protocol not in ("ip", "tcp", "udp", "icmp", "gre", "esp") and not protocol.isdigit():
        raise InvalidInput(1)
    source, at = _address(words, 2)
    source_port, at = _port(words, at, protocol)
    destination, at = _address(words, at)
    destination_port, at = _port(words, at, protocol)
    tail = []
    while at < len(words):
        if words[at] == "time-range" and at + 1 < len(words):
            tail += words[at : at + 2]
            at += 2
        elif words[at] in ("log", "established") or (protocol == "icmp" and words[at] in ("echo", "echo-reply")):
            tail.append(words[at])
            at += 1
        else:
            raise InvalidInput(at)
    text = f"{action} {protocol} {source}{source_port} {destination}{destination_port}"
    return " ".join([text, *tail])


class IOS:
    """Configuration and run-time state of one simulated Cisco IOS switch.

    ``minute`` is how many real seconds a minute of ``configure terminal revert timer`` lasts (60 on a
    real switch; tests shorten it with the simulator's ``--ios-minute``).
    """

    platform = "cisco_ios"
    minute = 60.0

    def __init__(self, name: str, index: int = 1, ports: int = 8) -> None:
        self.booted = time.time()
        self.hostname = name
        self.enable_secret = ""
        self.users: dict[str, str] = {}
        self.globals: list[str] = ["ip ssh version 2"]
        self.acls: dict[str, list[str]] = {}
        self.ports: dict[str, Port] = {}
        for n in range(1, ports + 1):
            self.ports[f"GigabitEthernet0/{n}"] = Port(
                f"GigabitEthernet0/{n}", f"0200.5e{index // 256 % 256:02x}.{index % 256:02x}{n:02x}"
            )
        self.ports["Vlan1"] = Port("Vlan1", f"0200.5e{index // 256 % 256:02x}.{index % 256:02x}00")
        self.startup: str = ""
        self.flash: dict[str, str] = {}
        self.archive_path = ""
        self.time_ranges: dict[str, list[str]] = {}
        self.revert: tuple[float, str] | None = None  # (deadline, configuration to go back to)
        self.last_change = time.time()
        self.changed = False
        self.startup = self.running_config(volatile=False)

    # -- state as text -------------------------------------------------------------------------------

    def config_lines(self) -> list[str]:
        """The configuration commands in running-config order (without volatile lines)."""
        lines = [
            "version 15.2",
            "no service pad",
            "service timestamps debug datetime msec",
            "service timestamps log datetime msec",
            "no service password-encryption",
            "!",
            f"hostname {self.hostname}",
            "!",
            "boot-start-marker",
            "boot-end-marker",
            "!",
        ]
        if self.enable_secret:
            lines += [f"enable secret 5 {self.enable_secret}", "!"]
        for user, secret in sorted(self.users.items()):
            lines.append(f"username {user} privilege 15 secret 5 {secret}")
        lines += ["no aaa new-model", "!"]
        lines += [*self.globals, "!"]
        if self.archive_path:
            lines += ["archive", f" path {self.archive_path}", "!"]
        for port in self.ports.values():
            lines.append(f"interface {port.name}")
            if port.description:
                lines.append(f" description {port.description}")
            lines += [f" switchport {s}" for s in port.switchport]
            lines.append(f" ip address {port.address}" if port.address else " no ip address")
            for direction in ("in", "out"):
                if direction in port.access_groups:
                    lines.append(f" ip access-group {port.access_groups[direction]} {direction}")
            if port.shutdown:
                lines.append(" shutdown")
            lines.append("!")
        for name, entries in self.acls.items():
            lines.append(f"ip access-list extended {name}")
            lines += [f" {entry}" for entry in entries]
            lines.append("!")
        for name, periods in self.time_ranges.items():
            lines.append(f"time-range {name}")
            lines += [f" {p}" for p in periods]
            lines.append("!")
        lines += ["line con 0", "line vty 0 4", " login local", " transport input ssh", "!", "end"]
        return lines

    def running_config(self, volatile: bool = True) -> str:
        body = self.config_lines()
        stamp = time.strftime("%H:%M:%S UTC %a %b %d %Y", time.gmtime(self.last_change))
        text = "\n".join(body)
        head = (
            [
                "Building configuration...",
                "",
                f"Current configuration : {len(text) + 1} bytes",
                "!",
                f"! Last configuration change at {stamp} by admin",
                "!",
            ]
            if volatile
            else []
        )
        return "\r\n".join(head + body) + "\r\n"

    def config_text(self) -> str:
        return self.startup

    def load_config(self, text: str) -> None:
        """Make *text* (running-config lines) the configuration: the ``configure replace`` path."""
        self.enable_secret, self.users, self.archive_path, self.time_ranges = "", {}, "", {}
        self.globals, self.acls = [], {}
        for port in self.ports.values():
            port.description, port.address, port.shutdown = "", "", False
            port.access_groups, port.switchport = {}, []
        session = Session(self, "admin")
        session.mode = "config"
        for line in text.splitlines():
            stripped = line.strip()
            if (
                not stripped
                or stripped.startswith("!")
                or stripped in ("end", "Building configuration...")
                or stripped.startswith("Current configuration")
            ):
                continue
            if not line.startswith(" ") and session.mode != "config":
                session.mode = "config"
            try:
                session.configure(stripped if line.startswith(" ") else line.strip())
            except InvalidInput:
                continue
        self.touch()

    def tick(self, now: float | None = None) -> bool:
        """Revert to the archived configuration when an unconfirmed change's timer ran out."""
        now = time.time() if now is None else now
        if self.revert and now >= self.revert[0]:
            text = self.revert[1]
            self.revert = None
            self.load_config(text)
            return True
        return False

    def touch(self) -> None:
        self.last_change = time.time()
        self.changed = True

    def snapshot(self) -> dict:
        return copy.deepcopy({k: v for k, v in self.__dict__.items() if k not in ("flash", "startup")})

    # -- show ----------------------------------------------------------------------------------------

    def show_version(self) -> str:
        up = int(time.time() - self.booted)
        weeks, rest = divmod(up, 604800)
        days, rest = divmod(rest, 86400)
        hours, rest = divmod(rest, 3600)
        minutes = rest // 60
        parts = [
            f"{n} {unit}{'s' if n != 1 else ''}" for n, unit in ((weeks, "week"), (days, "day"), (hours, "hour")) if n
        ]
        parts.append(f"{minutes} minute{'s' if minutes != 1 else ''}")
        restarted = time.strftime("%H:%M:%S UTC %a %b %d %Y", time.gmtime(self.booted))
        lines = [
            f"Cisco IOS Software, C2960X Software (C2960X-UNIVERSALK9-M), Version {VERSION}, RELEASE SOFTWARE (fc1)",
            "Copyright (c) 1986-2023 by Cisco Systems, Inc.",
            "Compiled Fri 14-Apr-23 04:07 by prod_rel_team",
            "",
            "ROM: Bootstrap program is C2960X boot loader",
            "BOOTLDR: C2960X Boot Loader (C2960X-HBOOT-M) Version 15.2(7r)E8, RELEASE SOFTWARE (fc1)",
            "",
            f"{self.hostname} uptime is {', '.join(parts)}",
            "System returned to ROM by power-on",
            f"System restarted at {restarted}",
            'System image file is "flash:c2960x-universalk9-mz.152-7.E8.bin"',
            "Last reload reason: power-on",
            "",
            f"cisco {MODEL} (APM86XXX) processor (revision B0) with 524288K bytes of memory.",
            f"Processor board ID {SERIAL}",
            "Last reset from power-on",
            f"{len(self.ports) - 1} Gigabit Ethernet interfaces",
            "",
            "Base ethernet MAC Address       : 02:00:5E:00:00:01",
            f"Model number                    : {MODEL}",
            f"System serial number            : {SERIAL}",
            "",
            "Configuration register is 0xF",
            "",
        ]
        return "\r\n".join(lines) + "\r\n"

    def _status(self, port: Port) -> tuple[str, str, str]:
        if port.shutdown:
            return "administratively down", "down", "disabled"
        if port.connected:
            return "up", "up", "connected"
        return "down", "down", "notconnect"

    def show_interfaces(self, only: str | None = None) -> str:
        out = []
        uptime = int(time.time() - self.booted) + 1
        for port in self.ports.values():
            if only and port.name != only:
                continue
            link, protocol, reason = self._status(port)
            packets_in = uptime * 3 if protocol == "up" else 0
            out += [
                f"{port.name} is {link}, line protocol is {protocol} ({reason})",
                f"  Hardware is Gigabit Ethernet, address is {port.mac} (bia {port.mac})",
            ]
            if port.description:
                out.append(f"  Description: {port.description}")
            if port.address:
                ip = ipaddress.IPv4Interface(port.address.replace(" ", "/"))
                out.append(f"  Internet address is {ip.with_prefixlen}")
            out += [
                "  MTU 1500 bytes, BW 1000000 Kbit/sec, DLY 10 usec,",
                "     reliability 255/255, txload 1/255, rxload 1/255",
                "  Encapsulation ARPA, loopback not set",
                "  Keepalive set (10 sec)",
                "  Full-duplex, 1000Mb/s, media type is 10/100/1000BaseTX",
                "  Last input 00:00:01, output 00:00:00, output hang never",
                '  Last clearing of "show interface" counters never',
                "  Input queue: 0/75/0/0 (size/max/drops/flushes); Total output drops: 0",
                "  Queueing strategy: fifo",
                "  Output queue: 0/40 (size/max)",
                "  5 minute input rate 1000 bits/sec, 2 packets/sec",
                "  5 minute output rate 2000 bits/sec, 3 packets/sec",
                f"     {packets_in} packets input, {packets_in * 500} bytes, 0 no buffer",
                "     0 runts, 0 giants, 0 throttles",
                f"     {port.input_errors} input errors, {port.crc} CRC, 0 frame, 0 overrun, 0 ignored",
                f"     {packets_in * 2} packets output, {packets_in * 900} bytes, 0 underruns",
                f"     {port.output_errors} output errors, 0 collisions, 1 interface resets",
            ]
        if only and not out:
            raise InvalidInput(16)
        return "\r\n".join(out) + "\r\n"

    def show_ip_interface_brief(self) -> str:
        rows = ["Interface              IP-Address      OK? Method Status                Protocol"]
        for port in self.ports.values():
            link, protocol, _ = self._status(port)
            address = port.address.split()[0] if port.address else "unassigned"
            method = "manual" if port.address else "unset "
            rows.append(f"{port.name:<22} {address:<15} YES {method} {link:<21} {protocol}")
        return "\r\n".join(rows) + "\r\n"

    def show_access_lists(self, name: str | None = None) -> str:
        out = []
        for acl, entries in self.acls.items():
            if name and acl != name:
                continue
            out.append(f"Extended IP access list {acl}")
            out += [f"    {(n + 1) * 10} {e}" for n, e in enumerate(entries)]
        return "\r\n".join(out) + ("\r\n" if out else "")


class Session:
    """One vty session: the mode (exec, enable, config, config-if, config-ext-nacl) and the interpreter."""

    def __init__(self, device: IOS, user: str) -> None:
        self.device = device
        self.user = user
        self.mode = "exec"
        self.context = ""
        self.closed = False
        self.pending = None  # a question waiting for its answer: (handler, prompt)

    @property
    def prompt(self) -> str:
        if self.pending:
            return self.pending[1]
        name = self.device.hostname[:20]
        return {
            "exec": f"{name}>",
            "enable": f"{name}#",
            "config": f"{name}(config)#",
            "config-if": f"{name}(config-if)#",
            "config-ext-nacl": f"{name}(config-ext-nacl)#",
            "config-archive": f"{name}(config-archive)#",
            "config-time-range": f"{name}(config-time-range)#",
            "asking-enable": "Password: ",
        }[self.mode]

    def run_line(self, line: str, secret: str) -> str:
        """Execute a typed line; return its output (CRLF line ends)."""
        if self.pending:
            handler, _ = self.pending
            self.pending = None
            return handler(line.strip())
        if self.mode == "asking-enable":
            if line == secret:
                self.mode = "enable"
                return ""
            self.mode = "exec"
            return "% Access denied\r\n\r\n"
        stripped = line.strip()
        if not stripped:
            return ""
        offset = len(self.prompt) + (len(line) - len(line.lstrip()))
        try:
            if self.mode in ("exec", "enable"):
                return self.exec(stripped)
            if stripped.lower() in ("end", "\x1a"):
                self.mode, self.context = "enable", ""
                return ""
            words = stripped.split()
            if words[0].lower() == "do" and len(words) > 1:
                return self.exec(" ".join(words[1:]))
            return self.configure(stripped)
        except InvalidInput as exc:
            if exc.message.startswith("% Invalid"):
                column = offset + len(" ".join(stripped.split()[: exc.position])) + (1 if exc.position else 0)
                return " " * column + "^\r\n" + exc.message + "\r\n\r\n"
            return exc.message + "\r\n\r\n"

    # -- exec ----------------------------------------------------------------------------------------

    def exec(self, line: str) -> str:
        words = line.split()
        command = _abbrev(
            words[0],
            (
                "enable",
                "disable",
                "exit",
                "logout",
                "quit",
                "terminal",
                "show",
                "configure",
                "write",
                "copy",
                "dir",
                "delete",
            ),
        )
        if command is None:
            raise InvalidInput(0)
        if command == "enable":
            if self.mode == "exec":
                self.mode = "asking-enable"
            return ""
        if command == "disable":
            self.mode = "exec"
            return ""
        if command in ("exit", "logout", "quit"):
            if self.mode.startswith("config"):
                return self.configure(line)
            self.closed = True
            return ""
        if command == "terminal":
            if len(words) >= 3 and _abbrev(words[1], ("length", "width", "monitor")) and words[2].isdigit():
                return ""
            raise InvalidInput(1 if len(words) < 2 else 2)
        if command == "show":
            return self.show(words[1:])
        if self.mode == "exec":
            raise InvalidInput(0)
        if command == "configure":
            if len(words) == 2 and _abbrev(words[1], ("confirm",)):
                if self.device.revert is None:
                    return "%No Rollback Confirmed Change pending\r\n"
                self.device.revert = None
                return ""
            if len(words) >= 2 and _abbrev(words[1], ("terminal",)):
                if len(words) > 2:
                    if (
                        len(words) != 5
                        or _abbrev(words[2], ("revert",)) != "revert"
                        or _abbrev(words[3], ("timer",)) != "timer"
                        or not words[4].isdigit()
                        or not 1 <= int(words[4]) <= 120
                    ):
                        raise InvalidInput(min(len(words) - 1, 4))
                    if not self.device.archive_path:
                        return "%Rollback Confirmed Change: archive path is not configured\r\n"
                    if self.device.revert is None:
                        self.device.revert = (
                            time.time() + int(words[4]) * self.device.minute,
                            self.device.running_config(volatile=False),
                        )
                self.mode = "config"
                return "Enter configuration commands, one per line.  End with CNTL/Z.\r\n"
            if len(words) >= 3 and _abbrev(words[1], ("replace",)):
                return self.replace(words[2:])
            raise InvalidInput(1)
        if command == "write":
            if len(words) == 1 or _abbrev(words[1], ("memory",)):
                self.device.startup = self.device.running_config(volatile=False)
                return "Building configuration...\r\n[OK]\r\n"
            raise InvalidInput(1)
        if command == "copy":
            return self.copy(words[1:])
        if command == "delete":
            target = words[-1]
            if len(words) < 2 or not target.startswith("flash:") or target[6:] not in self.device.flash:
                return f"%Error deleting {target} (No such file or directory)\r\n"
            if "/force" not in words:

                def confirm(_answer: str) -> str:
                    self.device.flash.pop(target[6:], None)
                    return ""

                self.pending = (confirm, f"Delete filename [{target[6:]}]? ")
                return ""
            self.device.flash.pop(target[6:])
            return ""
        if command == "dir":
            rows = [
                f"  {n + 1:>3}  -rwx  {len(t):>8}  {name}"
                for n, (name, t) in enumerate(sorted(self.device.flash.items()))
            ]
            return "Directory of flash:/\r\n\r\n" + "\r\n".join(rows) + "\r\n"
        raise InvalidInput(0)

    def show(self, words: list[str]) -> str:
        if not words:
            raise InvalidInput(1, "% Incomplete command.")
        what = _abbrev(
            words[0],
            ("running-config", "startup-config", "version", "interfaces", "ip", "access-lists", "clock"),
        )
        device = self.device
        if what == "running-config":
            if self.mode == "exec":
                raise InvalidInput(1)
            return device.running_config()
        if what == "startup-config":
            return f"Using {len(device.startup)} out of 65536 bytes\r\n{device.startup}"
        if what == "version":
            return device.show_version()
        if what == "interfaces":
            only = interface_name("".join(words[1:])) if len(words) > 1 else None
            if len(words) > 1 and not only:
                raise InvalidInput(2)
            return device.show_interfaces(only)
        if what == "ip" and len(words) >= 3 and _abbrev(words[1], ("interface",)) and _abbrev(words[2], ("brief",)):
            return device.show_ip_interface_brief()
        if what == "access-lists":
            return device.show_access_lists(words[1] if len(words) > 1 else None)
        if what == "clock":
            return time.strftime("*%H:%M:%S.000 UTC %a %b %d %Y", time.gmtime()) + "\r\n"
        raise InvalidInput(1)

    def copy(self, words: list[str]) -> str:
        if len(words) != 2 or _abbrev(words[0], ("running-config",)) != "running-config":
            raise InvalidInput(1)
        target = words[1]
        if _abbrev(target, ("startup-config",)) == "startup-config":

            def save(_answer: str) -> str:
                self.device.startup = self.device.running_config(volatile=False)
                return "Building configuration...\r\n[OK]\r\n"

            self.pending = (save, "Destination filename [startup-config]? ")
            return ""
        if target.startswith("flash:") and len(target) > 6:
            name = target[6:]

            def save_file(answer: str) -> str:
                text = self.device.running_config(volatile=False)
                self.device.flash[answer or name] = text
                return f"{len(text)} bytes copied in 0.100 secs ({len(text) * 10} bytes/sec)\r\n"

            self.pending = (save_file, f"Destination filename [{name}]? ")
            return ""
        raise InvalidInput(2)

    def replace(self, words: list[str]) -> str:
        source = words[0]
        if not source.startswith("flash:") or source[6:] not in self.device.flash:
            return f"%Error opening {source} (File not found)\r\n"
        text = self.device.flash[source[6:]]
        if "force" not in words[1:]:

            def answer(reply: str) -> str:
                if reply.lower().startswith("y"):
                    self.device.load_config(text)
                    return "Total number of passes: 1\r\nRollback Done\r\n\r\n"
                return ""

            self.pending = (
                answer,
                "This will apply all necessary additions and deletions\r\n"
                "to replace the current running configuration with the\r\n"
                "contents of the specified configuration file, which is\r\n"
                "assumed to be a complete configuration, not a partial\r\n"
                "configuration. Enter Y if you are sure you want to proceed. ? [no]: ",
            )
            return ""
        self.device.revert = None
        self.device.load_config(text)
        return "Total number of passes: 1\r\nRollback Done\r\n\r\n"

    # -- configuration -------------------------------------------------------------------------------

    def configure(self, line: str) -> str:
        words = line.split()
        device = self.device
        negate = words[0].lower() == "no"
        body = words[1:] if negate else words
        if not body:
            raise InvalidInput(1, "% Incomplete command.")
        first = body[0].lower()
        shift = 1 if negate else 0
        if first in ("exit", "end"):
            if self.mode == "config" or first == "end":
                self.mode, self.context = ("enable", "") if self.mode == "config" or first == "end" else ("config", "")
            else:
                self.mode, self.context = "config", ""
            return ""
        if self.mode == "config-time-range":
            if first in ("periodic", "absolute"):
                text = " ".join(body)
                periods = device.time_ranges[self.context]
                if negate:
                    if text in periods:
                        periods.remove(text)
                elif text not in periods:
                    if first == "periodic" and " to " not in text:
                        raise InvalidInput(shift + len(body), "% Incomplete command.")
                    periods.append(text)
                device.touch()
                return ""
            self.mode, self.context = "config", ""
            return self.configure(line)
        if self.mode == "config-archive":
            keyword = _abbrev(first, ("path", "maximum", "write-memory"))
            if keyword == "path":
                if not negate and (len(body) != 2 or ":" not in body[1]):
                    raise InvalidInput(shift + 1)
                device.archive_path = "" if negate else body[1]
                device.touch()
                return ""
            if keyword is not None:
                return ""
            self.mode, self.context = "config", ""
            return self.configure(line)
        if self.mode == "config-ext-nacl":
            if first in ("permit", "deny", "remark") or first.isdigit():
                entries = device.acls[self.context]
                if first.isdigit():
                    index = int(first) // 10 - 1
                    if negate and 0 <= index < len(entries):
                        entries.pop(index)
                        device.touch()
                        return ""
                    body = body[1:]
                entry = ace(body) if body[0] != "remark" else " ".join(body)
                if negate:
                    if entry in entries:
                        entries.remove(entry)
                        device.touch()
                    return ""
                if entry not in entries:
                    entries.append(entry)
                    device.touch()
                return ""
            self.mode, self.context = "config", ""
            return self.configure(line)
        if self.mode == "config-if":
            port = device.ports[self.context]
            keyword = _abbrev(first, ("description", "ip", "shutdown", "switchport", "speed", "duplex"))
            if keyword == "description":
                port.description = "" if negate else " ".join(body[1:])
                device.touch()
                return ""
            if keyword == "shutdown":
                port.shutdown = not negate
                device.touch()
                return ""
            if keyword == "switchport":
                text = " ".join(body[1:])
                if negate:
                    port.switchport = [s for s in port.switchport if s != text]
                elif text and text not in port.switchport:
                    port.switchport.append(text)
                device.touch()
                return ""
            if keyword == "ip" and len(body) >= 2:
                sub = _abbrev(body[1], ("access-group", "address"))
                if sub == "access-group":
                    if len(body) != 4 or body[3] not in ("in", "out"):
                        raise InvalidInput(shift + min(len(body), 3))
                    if negate:
                        if port.access_groups.get(body[3]) == body[2]:
                            del port.access_groups[body[3]]
                    else:
                        port.access_groups[body[3]] = body[2]
                    device.touch()
                    return ""
                if sub == "address":
                    if negate:
                        port.address = ""
                    else:
                        try:
                            ipaddress.IPv4Interface(f"{body[2]}/{body[3]}")
                        except (ValueError, IndexError):
                            raise InvalidInput(shift + 2) from None
                        port.address = f"{body[2]} {body[3]}"
                    device.touch()
                    return ""
                if sub is None and len(body) >= 2 and _abbrev(body[1], ("access-list",)):
                    self.mode, self.context = "config", ""
                    return self.configure(line)
                raise InvalidInput(shift + 1)
            self.mode, self.context = "config", ""
            return self.configure(line)
        if first == "time-range":
            if len(body) != 2:
                raise InvalidInput(shift + 1)
            if negate:
                if device.time_ranges.pop(body[1], None) is not None:
                    device.touch()
                return ""
            if body[1] not in device.time_ranges:
                device.time_ranges[body[1]] = []
                device.touch()
            self.mode, self.context = "config-time-range", body[1]
            return ""
        if first == "archive":
            if negate:
                device.archive_path = ""
                device.touch()
                return ""
            self.mode = "config-archive"
            return ""
        keyword = _abbrev(
            first,
            (
                "hostname",
                "interface",
                "ip",
                "enable",
                "username",
                "ntp",
                "logging",
                "snmp-server",
                "service",
                "version",
                "boot-start-marker",
                "boot-end-marker",
                "aaa",
                "line",
                "login",
                "transport",
                "banner",
                "vlan",
                "spanning-tree",
            ),
        )
        if keyword is None:
            raise InvalidInput(shift)
        if keyword == "hostname":
            if negate or len(body) != 2:
                raise InvalidInput(shift + 1)
            device.hostname = body[1]
            device.touch()
            return ""
        if keyword == "interface":
            name = interface_name("".join(body[1:]))
            if not name:
                raise InvalidInput(shift + 1)
            if name not in device.ports:
                if not name.startswith(("Vlan", "Loopback")):
                    raise InvalidInput(shift + 1)
                device.ports[name] = Port(name, "0200.5e00.0001")
                device.touch()
            if negate:
                del device.ports[name]
                device.touch()
                return ""
            self.mode, self.context = "config-if", name
            return ""
        if keyword == "ip" and len(body) >= 2 and _abbrev(body[1], ("access-list",)):
            if len(body) != 4 or _abbrev(body[2], ("extended",)) != "extended":
                raise InvalidInput(shift + 2)
            name = body[3]
            if negate:
                if device.acls.pop(name, None) is not None:
                    device.touch()
                return ""
            if name not in device.acls:
                device.acls[name] = []
                device.touch()
            self.mode, self.context = "config-ext-nacl", name
            return ""
        if keyword == "enable":
            if len(body) >= 2 and _abbrev(body[1], ("secret",)):
                device.enable_secret = "" if negate else body[-1]
                device.touch()
                return ""
            raise InvalidInput(shift + 1)
        if keyword == "username":
            if negate:
                device.users.pop(body[1], None)
            elif (len(body) >= 4 and body[-2] in ("secret", "password")) or len(body) >= 5:
                device.users[body[1]] = body[-1]
            else:
                raise InvalidInput(shift + 2)
            device.touch()
            return ""
        if keyword in (
            "version",
            "boot-start-marker",
            "boot-end-marker",
            "aaa",
            "line",
            "login",
            "transport",
            "service",
            "banner",
        ):
            return ""
        text = " ".join(body)
        if (
            keyword == "ip"
            and len(body) >= 2
            and not _abbrev(body[1], ("ssh", "domain-name", "default-gateway", "name-server", "route"))
        ):
            raise InvalidInput(shift + 1)
        if negate:
            device.globals = [g for g in device.globals if g != text]
        elif text not in device.globals:
            device.globals.append(text)
        device.touch()
        return ""
