"""One class per device platform, in an explicit registry: how to read, clean, compare and change it.

:class:`Platform` is the base; :data:`PLATFORMS` maps netmiko device types to instances. A new
platform (Huawei, TP-Link) is one subclass and one registry line. Each platform knows

* its configuration command and which output lines are volatile (timestamps, uptime, byte counts) or
  secret (hashes, keys, communities), so a stored backup changes only when the configuration does;
* how to parse a configuration into comparable entries and plan the commands that turn the current
  state into the desired one (and the commands that undo them);
* its commit-confirmed safety net (a RouterOS scheduler job restoring a saved backup; an IOS saved
  configuration and ``configure replace``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

REDACTED = "<redacted>"


@dataclass
class Plan:
    """The difference between current and desired state, as commands to apply and to undo."""

    apply: list[str] = field(default_factory=list)
    undo: list[str] = field(default_factory=list)
    diff: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.apply


class Platform:
    """Base class: the operations every platform provides."""

    name = ""
    suffix = ".txt"
    desired_suffixes: tuple[str, ...] = ()
    dynamic_command = ""
    backup_command = ""
    volatile: tuple[re.Pattern, ...] = ()
    secrets: tuple[tuple[re.Pattern, str], ...] = ()

    def clean(self, raw: str) -> str:
        """Drop volatile lines and redact secrets; return the text to store (LF line ends, final LF)."""
        lines = []
        for line in raw.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
            line = line.rstrip()
            if any(p.search(line) for p in self.volatile):
                continue
            for pattern, replacement in self.secrets:
                line = pattern.sub(replacement, line)
            lines.append(line)
        while lines and not lines[0]:
            lines.pop(0)
        while lines and not lines[-1]:
            lines.pop()
        return "\n".join(lines) + "\n"

    def plan(self, current: str, desired: list[str], owner: str = "") -> Plan:
        """The commands turning *current* into *desired*; *owner* is the comment prefix of owned entries."""
        raise NotImplementedError

    def dynamic_lines(self, output: str) -> list[str]:
        """State that is not configuration but must be compared (RouterOS dynamic address-list entries)."""
        return []


# --- RouterOS ---------------------------------------------------------------------------------------


def ros_words(line: str) -> list[str]:
    """Split a RouterOS line into words, keeping quoted values whole."""
    return re.findall(r'(?:[^\s"\[]+|"(?:\\.|[^"\\])*"|\[[^\]]*\])+', line)


def ros_unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def ros_quote(value: str) -> str:
    if value and re.fullmatch(r"[A-Za-z0-9._:/,*+@%-]+", value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$") + '"'


def ros_props(words: list[str]) -> dict[str, str]:
    """``key=value`` words as a mapping of unquoted values."""
    return {k: ros_unquote(v) for k, v in (w.split("=", 1) for w in words if "=" in w and not w.startswith("["))}


def ros_sections(text: str) -> dict[str, list[str]]:
    """Group export lines (continuations joined) by menu: ``{"/ip firewall filter": ["add ...", ...]}``."""
    sections: dict[str, list[str]] = {}
    menu = ""
    joined = []
    for raw in text.replace("\r\n", "\n").split("\n"):
        if joined and joined[-1].endswith("\\"):
            joined[-1] = joined[-1][:-1].rstrip() + " " + raw.strip()
        else:
            joined.append(raw.rstrip())
    for line in joined:
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("/"):
            words = ros_words(stripped)
            first_command = next((i for i, w in enumerate(words) if w in ("add", "set", "remove")), None)
            if first_command is None:
                menu = " ".join(words)
                sections.setdefault(menu, [])
                continue
            menu = " ".join(words[:first_command])
            stripped = " ".join(words[first_command:])
        sections.setdefault(menu, []).append(stripped)
    return sections


ROS_DEFAULTS = {"/ip firewall filter": {"action": "accept"}, "/ip firewall nat": {"action": "accept"}}
DYNAMIC_MENU = "/ip firewall address-list (dynamic)"
ROS_ORDERED = frozenset({"/ip firewall filter", "/ip firewall nat", "/ip firewall mangle"})


def ros_key(line: str, menu: str = "") -> tuple:
    """A comparable form of an ``add``/``set`` line: the verb and its sorted properties (defaults filled)."""
    words = ros_words(line)
    props = {**ROS_DEFAULTS.get(menu, {}), **ros_props(words[1:])}
    return (words[0], tuple(sorted(props.items())))


class RouterOS(Platform):
    """MikroTik RouterOS v7 (``/export`` hides secrets by default since 7.1)."""

    name = "mikrotik_routeros"
    suffix = ".rsc"
    desired_suffixes = (".rsc",)
    dynamic_command = "/ip firewall address-list print terse where dynamic"
    backup_command = "/export terse"
    volatile = (
        re.compile(r"^# \d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} by RouterOS"),
        re.compile(r"^# [a-z]{3}/\d{2}/\d{4} \d{2}:\d{2}:\d{2} by RouterOS"),
    )
    secrets = (
        (
            re.compile(
                r"\b(password|secret|private-key|pre-shared-key|passphrase|auth-key|authentication-password|"
                r'encryption-password|wpa2?-pre-shared-key)=("(?:\\.|[^"\\])*"|\S+)'
            ),
            r"\1=" + REDACTED,
        ),
    )
    read_command = "/export terse"
    rollback_backup = "akm-pre-push"
    rollback_job = "akm-rollback"

    def dynamic_lines(self, output: str) -> list[str]:
        lines = []
        for row in output.replace("\r\n", "\n").split("\n"):
            found = re.search(r"\blist=(\S+) address=(\S+)", row)
            if found:
                lines.append(f"add list={found.group(1)} address={found.group(2)}")
        return [DYNAMIC_MENU, *lines] if lines else []

    def plan(self, current: str, desired: list[str], owner: str = "") -> Plan:
        """Compare menu by menu. A menu named in *desired* is owned: its entries (only those whose
        comment starts with *owner*, when given, or that are exactly desired) become exactly the desired
        ones — ``add`` what is missing, ``remove`` what is not desired; in firewall rule menus, where
        order matters, everything after the first difference is replaced in the desired order. An
        address-list entry with a ``timeout`` is dynamic on the device: it is added only when its list
        and address are not there at all. ``set`` lines of singleton menus are applied when a value
        differs. Menus not named are left alone."""
        have = ros_sections(current)
        want = ros_sections("\n".join(desired))
        dynamic = {ros_key(line)[1] for line in have.pop(DYNAMIC_MENU, [])}
        plan = Plan()
        for menu, lines in want.items():
            wanted_all = {ros_key(line, menu) for line in lines if line.startswith("add ")}
            present = [
                line
                for line in have.get(menu, [])
                if not line.startswith("add ")
                or ros_props(ros_words(line)[1:]).get("comment", "").startswith(owner)
                or ros_key(line, menu) in wanted_all
            ]
            for line in lines:
                if line.startswith("set "):
                    self._plan_set(plan, menu, line, present)
            if menu in ROS_ORDERED:
                self._plan_ordered(plan, menu, present, lines)
                continue
            present_keys = {ros_key(line, menu): line for line in present if line.startswith("add ")}
            wanted_keys = {ros_key(line, menu): line for line in lines if line.startswith("add ")}
            listed = {(dict(k[1]).get("list"), dict(k[1]).get("address")) for k in present_keys}
            for key, line in present_keys.items():
                if key not in wanted_keys:
                    plan.apply.append(f"{menu} remove [find {self._match(dict(key[1]))}]")
                    plan.undo.append(f"{menu} {line}")
                    plan.diff.append(f"-{menu} {line}")
            for key, line in wanted_keys.items():
                props = dict(key[1])
                if "timeout" in props:
                    entry = (props.get("list"), props.get("address"))
                    if entry in listed or ros_key(f"add list={entry[0]} address={entry[1]}")[1] in dynamic:
                        continue
                elif key in present_keys:
                    continue
                plan.apply.append(f"{menu} {line}")
                plan.undo.insert(0, f"{menu} remove [find {self._match(props)}]")
                plan.diff.append(f"+{menu} {line}")
        return plan

    def _plan_set(self, plan: Plan, menu: str, line: str, present: list[str]) -> None:
        props = ros_props(ros_words(line)[1:])
        old: dict[str, str] = {}
        for existing in present:
            if existing.startswith("set "):
                old.update(ros_props(ros_words(existing)[1:]))
        changed = {k: v for k, v in props.items() if old.get(k) != v}
        if not changed:
            return
        words = " ".join(f"{k}={ros_quote(v)}" for k, v in changed.items())
        plan.apply.append(f"{menu} set {words}")
        undo = " ".join(f"{k}={ros_quote(old[k])}" for k in changed if k in old)
        if undo:
            plan.undo.insert(0, f"{menu} set {undo}")
        plan.diff += [f"-{menu} set " + " ".join(f"{k}={old.get(k, '')}" for k in changed), f"+{menu} {line}"]

    def _plan_ordered(self, plan: Plan, menu: str, present: list[str], lines: list[str]) -> None:
        """Rules whose order matters: keep the common leading part, replace the rest in desired order."""
        have = [(ros_key(line, menu), line) for line in present if line.startswith("add ")]
        want = [(ros_key(line, menu), line) for line in lines if line.startswith("add ")]
        prefix = 0
        while prefix < min(len(have), len(want)) and have[prefix][0] == want[prefix][0]:
            prefix += 1
        if prefix == len(have) == len(want):
            return
        for key, line in have[prefix:]:
            plan.apply.append(f"{menu} remove [find {self._match(dict(key[1]))}]")
            plan.undo.append(f"{menu} {line}")
            plan.diff.append(f"-{menu} {line}")
        for key, line in want[prefix:]:
            plan.apply.append(f"{menu} {line}")
            plan.undo.insert(0, f"{menu} remove [find {self._match(dict(key[1]))}]")
            plan.diff.append(f"+{menu} {line}")

    @staticmethod
    def _match(props: dict[str, str]) -> str:
        return " and ".join(f"{k}={ros_quote(v)}" for k, v in sorted(props.items()) if k not in ("disabled", "timeout"))


# --- Cisco IOS --------------------------------------------------------------------------------------

IOS_PORTS = {
    "80": "www",
    "53": "domain",
    "21": "ftp",
    "23": "telnet",
    "25": "smtp",
    "110": "pop3",
    "20": "ftp-data",
}
IOS_UDP_PORTS = {
    "53": "domain",
    "67": "bootps",
    "68": "bootpc",
    "69": "tftp",
    "123": "ntp",
    "161": "snmp",
    "514": "syslog",
}


def ios_normalise(line: str) -> str:
    """Write an ACL entry as IOS shows it (``eq 80`` as ``eq www``, ``A 0.0.0.0`` as ``host A``)."""
    words = line.split()
    if not words or words[0] not in ("permit", "deny"):
        return " ".join(words)
    protocol = words[1] if len(words) > 1 else ""
    names = IOS_PORTS if protocol == "tcp" else IOS_UDP_PORTS if protocol == "udp" else {}
    out: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        if (
            i + 1 < len(words)
            and re.fullmatch(r"\d+\.\d+\.\d+\.\d+", word)
            and words[i + 1] in ("0.0.0.0", "255.255.255.255")
            and (not out or out[-1] != "host")
        ):
            out += ["host", word] if words[i + 1] == "0.0.0.0" else ["any"]
            i += 2
            continue
        if out and out[-1] in ("eq", "neq", "gt", "lt") and word in names:
            word = names[word]
        out.append(word)
        i += 1
    return " ".join(out)


def ios_blocks(text: str) -> list[tuple[str, list[str]]]:
    """Group running-config lines into (top line, child lines) blocks, skipping ``!`` and the header."""
    blocks: list[tuple[str, list[str]]] = []
    for raw in text.replace("\r\n", "\n").split("\n"):
        if not raw.strip() or raw.strip().startswith("!") or raw.strip() in ("end", "Building configuration..."):
            continue
        if raw.startswith("Current configuration"):
            continue
        if raw.startswith(" ") and blocks:
            blocks[-1][1].append(raw.strip())
        else:
            blocks.append((raw.strip(), []))
    return blocks


class IOS(Platform):
    """Cisco IOS (``show running-config``)."""

    name = "cisco_ios"
    suffix = ".cfg"
    desired_suffixes = (".cfg", ".txt")
    backup_command = "show running-config"
    read_command = "show running-config"
    rollback_file = "akm-pre-push.cfg"
    volatile = (
        re.compile(r"^Building configuration\.\.\."),
        re.compile(r"^Current configuration\s*:\s*\d+ bytes"),
        re.compile(r"^! (Last configuration change|NVRAM config last updated) at "),
        re.compile(r"^! No configuration change since last restart"),
        re.compile(r"^ntp clock-period \d+"),
    )
    secrets = (
        (re.compile(r"^(enable (?:secret|password)(?: \d+)?) \S+"), r"\1 " + REDACTED),
        (re.compile(r"^(username \S+ .*?(?:secret|password)(?: \d+)?) \S+"), r"\1 " + REDACTED),
        (re.compile(r"^(snmp-server community) \S+"), r"\1 " + REDACTED),
        (re.compile(r"^(\s*(?:tacacs-server|radius-server) key(?: \d+)?) \S+"), r"\1 " + REDACTED),
        (re.compile(r"^(\s*key(?:-string)?(?: \d+)?) \S+$"), r"\1 " + REDACTED),
    )

    def plan(self, current: str, desired: list[str], owner: str = "") -> Plan:
        """Compare block by block. An ``ip access-list extended`` block in *desired* is owned whole
        (rewritten when any entry differs, since order matters); a ``time-range`` block's periods become
        exactly the desired ones; ``interface`` blocks get their desired child lines, and an
        ``ip access-group`` for the same direction that is not desired is removed; other top lines
        (``hostname``...) are set when missing.

        Extended ACLs are a menu the way RouterOS has them: when *desired* has any, an ACL on the
        device that *desired* lacks is removed if its name starts with *owner* (case-insensitive; the
        policy's are ``AKM-...``) or *owner* is empty (a restore of a whole stored configuration)."""
        have = {top: children for top, children in ios_blocks(current)}
        wanted_blocks = ios_blocks("\n".join(desired))
        plan = Plan()
        acl = "ip access-list extended "
        if any(top.startswith(acl) for top, _children in wanted_blocks):
            named = {top for top, _children in wanted_blocks}
            for top, present in have.items():
                if top.startswith(acl) and top not in named and top[len(acl) :].lower().startswith(owner.lower()):
                    plan.apply.append(f"no {top}")
                    plan.undo += [top, *present]
                    plan.diff += [f"-{top}", *[f"-  {c}" for c in present]]
        for top, children in wanted_blocks:
            wanted = [ios_normalise(c) for c in children]
            if top.startswith("ip access-list extended "):
                present = have.get(top)
                if present == wanted:
                    continue
                if present is not None:
                    plan.apply.append(f"no {top}")
                    plan.diff += [f"-{top}", *[f"-  {c}" for c in present]]
                plan.apply += [top, *wanted]
                plan.diff += [f"+{top}", *[f"+  {c}" for c in wanted]]
                plan.undo.insert(0, f"no {top}")
                if present is not None:
                    plan.undo[1:1] = [top, *present]
                continue
            if top.startswith("time-range "):
                present = have.get(top)
                if present == wanted:
                    continue
                remove = [c for c in present or [] if c not in wanted]
                add = [c for c in wanted if c not in (present or [])]
                plan.apply += [top, *[f"no {c}" for c in remove], *add]
                if present is None:
                    plan.undo.insert(0, f"no {top}")
                else:
                    plan.undo += [top, *[f"no {c}" for c in add], *remove]
                plan.diff += [
                    top if present is not None else f"+{top}",
                    *[f"-  {c}" for c in remove],
                    *[f"+  {c}" for c in add],
                ]
                continue
            if top.startswith("interface "):
                present = have.get(top, [])
                add = [c for c in wanted if c not in present]
                directions = {c.split()[-1] for c in wanted if c.startswith("ip access-group ")}
                remove = [
                    c
                    for c in present
                    if c.startswith("ip access-group ") and c.split()[-1] in directions and c not in wanted
                ]
                if not add and not remove:
                    continue
                plan.apply += [top, *[f"no {c}" for c in remove], *add]
                plan.undo += [top, *[f"no {c}" for c in add], *remove]
                plan.diff += [top, *[f"-  {c}" for c in remove], *[f"+  {c}" for c in add]]
                continue
            if top in have:
                continue
            key = top.split()[0]
            old = next((t for t in have if t.split()[0] == key), None) if key == "hostname" else None
            plan.apply.append(top)
            plan.undo.insert(0, old if old else f"no {top}")
            if old:
                plan.diff.append(f"-{old}")
            plan.diff.append(f"+{top}")
        return plan


PLATFORMS: dict[str, Platform] = {p.name: p for p in (RouterOS(), IOS())}
