"""The RouterOS v7 model of the simulator: menus, list tables, ``[find]``, ``/export``, schedulers.

A device is a tree of menus. List menus (``/ip firewall address-list``, ``/ip firewall filter``,
``/system scheduler`` ...) hold numbered items; singleton menus (``/system identity``) hold one set of
properties. Commands follow the RouterOS console: ``add``, ``remove``, ``set``, ``disable``, ``enable``,
``print [terse] [where ...]``, ``export``, and ``[find ...]`` expressions. Error texts are the console's
own (``failure: already have such entry``, ``bad command name``, ``expected end of command``).

Address-list entries with a ``timeout`` are dynamic: they expire and are never exported, like on the
device. ``/system backup save`` keeps a snapshot of the configuration that ``/system backup load``
restores (with a reboot, which drops every session), so a scheduler job can roll a change back.
"""

from __future__ import annotations

import copy
import re
import time
from dataclasses import dataclass, field

VERSION = "7.16.1"
SERIAL = "HE30800SIM"


class CommandError(Exception):
    """A console error; its text is printed to the session as the device would."""


class Reboot(Exception):
    """The device restarts: every session is dropped."""


# --- tokenizing -------------------------------------------------------------------------------------

_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "r": "\r", "t": "\t", "$": "$", "?": "?", "_": " ", "a": "\a"}


def _split_top_level(line: str, separators: str) -> list[str]:
    """Split *line* at the *separators* that stand outside quotes and ``[...]``; empty pieces are
    kept (the callers drop them)."""
    parts, current, depth, quoted, escape = [], [], 0, False, False
    for ch in line:
        if escape:
            escape = False
        elif ch == "\\" and quoted:
            escape = True
        elif ch == '"':
            quoted = not quoted
        elif not quoted and ch == "[":
            depth += 1
        elif not quoted and ch == "]":
            depth -= 1
        elif not quoted and depth == 0 and ch in separators:
            parts.append("".join(current))
            current = []
            continue
        current.append(ch)
    if quoted or depth:
        raise CommandError(f"syntax error (line 1 column {len(line)})")
    parts.append("".join(current))
    return parts


def split_statements(line: str) -> list[str]:
    """Split a console line at top-level ``;`` (outside quotes and brackets)."""
    return [p.strip() for p in _split_top_level(line, ";\n") if p.strip()]


def tokenize(line: str) -> list[str]:
    """Split one statement into words; quoted values and ``[...]`` stay whole, with their quotes."""
    return [token for token in _split_top_level(line, " \t") if token]


def unquote(value: str) -> str:
    """Remove the quotes of a console value and resolve its backslash escapes."""
    if not (len(value) >= 2 and value[0] == '"' and value[-1] == '"'):
        return value
    out, i, body = [], 0, value[1:-1]
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            if nxt in _ESCAPES:
                out.append(_ESCAPES[nxt])
                i += 2
                continue
            if re.fullmatch(r"[0-9A-Fa-f]{2}", body[i + 1 : i + 3]):
                out.append(chr(int(body[i + 1 : i + 3], 16)))
                i += 3
                continue
        out.append(ch)
        i += 1
    return "".join(out)


def quote(value: str) -> str:
    """Write a value the way ``/export`` does: bare when safe, else quoted with escapes."""
    if value and re.fullmatch(r"!?[A-Za-z0-9._:/,*+@%-]+", value):
        return value
    escaped = (
        value.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("$", "\\$")
        .replace("\r", "\\r")
        .replace("\n", "\\n")
        .replace("\t", "\\t")
    )
    return f'"{escaped}"'


def parse_duration(text: str) -> float:
    """Read a RouterOS time value (``300``, ``5m``, ``1d2h``, ``00:05:00``) as seconds."""
    if re.fullmatch(r"\d+", text):
        return float(text)
    match = re.fullmatch(r"(?:(\d+)d)?(\d+):(\d{2}):(\d{2})", text)
    if match:
        d, h, m, s = (int(g or 0) for g in match.groups())
        return float(((d * 24 + h) * 60 + m) * 60 + s)
    match = re.fullmatch(r"(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", text)
    if not match or not text:
        raise CommandError(f"value of timeout is out of range or invalid: {text}")
    w, d, h, m, s = (int(g or 0) for g in match.groups())
    return float((((w * 7 + d) * 24 + h) * 60 + m) * 60 + s)


def format_duration(seconds: float) -> str:
    """Write seconds the way RouterOS prints durations: ``1w2d3h4m5s``."""
    seconds = int(max(seconds, 0))
    parts = []
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    if seconds or not parts:
        parts.append(f"{seconds}s")
    return "".join(parts)


# --- tables -----------------------------------------------------------------------------------------


@dataclass
class Item:
    """One entry of a list menu."""

    id: int
    props: dict[str, str]
    created: float = field(default_factory=time.time)
    expires: float | None = None

    @property
    def dynamic(self) -> bool:
        return self.expires is not None

    @property
    def disabled(self) -> bool:
        return self.props.get("disabled") == "yes"


@dataclass(frozen=True)
class TableSpec:
    """What a list menu accepts: its properties, required ones, defaults and the identity of an entry."""

    path: str
    keys: tuple[str, ...]
    required: tuple[str, ...] = ()
    unique: tuple[str, ...] = ()
    defaults: tuple[tuple[str, str], ...] = ()
    sensitive: tuple[str, ...] = ()
    columns: tuple[str, ...] = ()
    fixed: bool = False


FILTER_KEYS = (
    "chain",
    "action",
    "protocol",
    "src-address",
    "dst-address",
    "src-address-list",
    "dst-address-list",
    "src-port",
    "dst-port",
    "in-interface",
    "out-interface",
    "in-interface-list",
    "out-interface-list",
    "connection-state",
    "jump-target",
    "reject-with",
    "log",
    "log-prefix",
    "time",
    "comment",
    "disabled",
)

TABLES = {
    spec.path: spec
    for spec in (
        TableSpec(
            "interface",
            ("name", "default-name", "type", "mtu", "mac-address", "comment", "disabled"),
            columns=("name", "type", "mtu", "mac-address"),
            fixed=True,
        ),
        TableSpec(
            "ip address",
            ("address", "interface", "network", "comment", "disabled"),
            required=("address", "interface"),
            unique=("address", "interface"),
            columns=("address", "network", "interface"),
        ),
        TableSpec(
            "ip firewall address-list",
            ("list", "address", "timeout", "comment", "disabled"),
            required=("list", "address"),
            unique=("list", "address"),
            columns=("list", "address", "creation-time", "timeout"),
        ),
        TableSpec(
            "ip firewall filter",
            FILTER_KEYS,
            required=("chain",),
            defaults=(("action", "accept"),),
            columns=("chain", "action", "src-address-list", "dst-address-list", "protocol", "dst-port"),
        ),
        TableSpec(
            "ppp secret",
            ("name", "password", "service", "profile", "comment", "disabled"),
            required=("name",),
            unique=("name",),
            sensitive=("password",),
            columns=("name", "service", "profile"),
        ),
        TableSpec(
            "system scheduler",
            ("name", "start-date", "start-time", "interval", "on-event", "policy", "comment", "disabled"),
            required=("name",),
            unique=("name",),
            columns=("name", "start-time", "interval", "on-event"),
        ),
    )
}
SINGLETONS = {"system identity": ("name",)}
READ_ONLY = ("system resource", "system backup", "file")
EXPORT_ORDER = (
    "interface",
    "ppp secret",
    "ip address",
    "ip firewall address-list",
    "ip firewall filter",
    "system identity",
    "system scheduler",
)
MENUS = set(TABLES) | set(SINGLETONS) | set(READ_ONLY) | {"ip", "ip firewall", "system", "ppp"}
LIST_COMMANDS = ("add", "remove", "set", "print", "find", "disable", "enable", "export", "edit")


@dataclass
class Interface:
    """A physical port; ``running`` and the counters can be changed by a test (control socket)."""

    name: str
    mac: str
    running: bool = True
    rx_errors: int = 0
    tx_errors: int = 0
    link_downs: int = 0


class RouterOS:
    """The configuration and run-time state of one simulated RouterOS device."""

    platform = "mikrotik_routeros"

    def __init__(self, name: str, index: int = 1, ports: int = 5) -> None:
        self.booted = time.time()
        self.items: dict[str, list[Item]] = {path: [] for path in TABLES}
        self.singletons: dict[str, dict[str, str]] = {"system identity": {"name": name}}
        self.next_id = 1
        self.backups: dict[str, dict] = {}
        self.links: dict[str, Interface] = {}
        for n in range(1, ports + 1):
            mac = f"02:00:5E:{index // 256 % 256:02X}:{index % 256:02X}:{n:02X}"
            self.links[f"ether{n}"] = Interface(f"ether{n}", mac)
            self._insert(
                "interface",
                {
                    "name": f"ether{n}",
                    "default-name": f"ether{n}",
                    "type": "ether",
                    "mtu": "1500",
                    "mac-address": mac,
                },
            )
        self.changed = False

    # -- session-facing ------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.singletons["system identity"]["name"]

    def prompt(self, user: str, menu: str) -> str:
        where = f" /{menu}" if menu else " "
        return f"[{user}@{self.name}]{where}> "

    def banner(self) -> str:
        return (
            "\r\n\r\n"
            f"  MikroTik RouterOS {VERSION} (c) 1999-2024       https://www.mikrotik.com/\r\n\r\n"
            "Press F1 for help\r\n\r\n"
        )

    def tick(self, now: float | None = None) -> list[str]:
        """Expire dynamic entries and run due scheduler jobs; return the scripts that ran."""
        now = time.time() if now is None else now
        for items in self.items.values():
            items[:] = [i for i in items if i.expires is None or i.expires > now]
        ran = []
        for job in list(self.items["system scheduler"]):
            if job.disabled or "interval" not in job.props:
                continue
            interval = parse_duration(job.props["interval"])
            if interval <= 0:
                continue
            due = job.props.get("_next")
            next_run = float(due) if due else job.created + interval
            if now >= next_run:
                job.props["_next"] = str(now + interval)
                ran.append(job.props.get("on-event", ""))
        return ran

    def run_script(self, script: str, user: str = "scheduler") -> None:
        """Run a scheduler's ``on-event`` text statement by statement from the root menu."""
        session = Session(self, user)
        for statement in split_statements(script):
            session.execute(statement)

    # -- state persistence ---------------------------------------------------------------------------

    def snapshot(self) -> dict:
        return {
            "items": copy.deepcopy(self.items),
            "singletons": copy.deepcopy(self.singletons),
            "next_id": self.next_id,
        }

    def restore(self, snap: dict) -> None:
        self.items = copy.deepcopy(snap["items"])
        self.singletons = copy.deepcopy(snap["singletons"])
        self.next_id = snap["next_id"]
        self.changed = True

    def config_text(self) -> str:
        """The configuration as console lines (with secrets): what a state file keeps."""
        return self.export(sensitive=True, terse=True, header=False)

    def load_config(self, text: str) -> None:
        """Replay console lines (as written by :meth:`config_text`) into this device."""
        session = Session(self, "admin")
        for line in text.splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                session.execute(line.strip())

    # -- tables --------------------------------------------------------------------------------------

    def _insert(self, path: str, props: dict[str, str], expires: float | None = None) -> Item:
        item = Item(self.next_id, props, expires=expires)
        self.next_id += 1
        self.items[path].append(item)
        self.changed = True
        return item

    def export(
        self,
        menu: str = "",
        sensitive: bool = False,
        terse: bool = False,
        header: bool = True,
        verbose: bool = False,
    ) -> str:
        """Build ``/export`` output for *menu* (and what is below it)."""
        lines = []
        if header:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime())
            lines += [
                f"# {stamp} by RouterOS {VERSION}",
                "# software id = SIM0-0001",
                "#",
                "# model = CCR2004-1G-12S+2XS",
                f"# serial number = {SERIAL}",
            ]
        for path in EXPORT_ORDER:
            if menu and not (path == menu or path.startswith(menu + " ")):
                continue
            if path in SINGLETONS:
                props = self.singletons[path]
                lines.append(f"/{path}")
                lines.append(_wrap("set " + " ".join(f"{k}={quote(v)}" for k, v in sorted(props.items())), terse))
                continue
            spec = TABLES[path]
            if path == "interface":
                body = []
                for item in self.items[path]:
                    extra = {k: v for k, v in item.props.items() if k in ("comment", "disabled")}
                    if extra:
                        words = " ".join(f"{k}={quote(v)}" for k, v in sorted(extra.items()))
                        body.append(f"set [ find default-name={item.props['default-name']} ] {words}")
                if body:
                    lines.append("/interface ethernet")
                    lines += [_wrap(b, terse) for b in body]
                continue
            entries = [i for i in self.items[path] if not i.dynamic]
            if not entries:
                continue
            lines.append(f"/{path}")
            for item in entries:
                props = {k: v for k, v in item.props.items() if not k.startswith("_")}
                if not sensitive:
                    props = {k: v for k, v in props.items() if k not in spec.sensitive}
                words = " ".join(f"{k}={quote(v)}" for k, v in sorted(props.items()))
                lines.append(_wrap(f"add {words}", terse))
        return "\r\n".join(lines) + "\r\n"

    def resource(self) -> str:
        uptime = format_duration(time.time() - self.booted)
        rows = [
            ("uptime", uptime),
            ("version", f"{VERSION} (stable)"),
            ("build-time", "Oct/10/2024 14:03:32"),
            ("factory-software", "7.1"),
            ("free-memory", "812.4MiB"),
            ("total-memory", "1024.0MiB"),
            ("cpu", "ARM64"),
            ("cpu-count", "4"),
            ("cpu-frequency", "1700MHz"),
            ("cpu-load", "1%"),
            ("free-hdd-space", "98.6MiB"),
            ("total-hdd-space", "128.0MiB"),
            ("write-sect-since-reboot", "120"),
            ("write-sect-total", "4211"),
            ("bad-blocks", "0%"),
            ("architecture-name", "arm64"),
            ("board-name", "CCR2004-1G-12S+2XS"),
            ("platform", "MikroTik"),
        ]
        return "\r\n".join(f"{k:>25}: {v}" for k, v in rows) + "\r\n"


def _wrap(line: str, terse: bool, width: int = 80) -> str:
    """Wrap a long export line with `` \\`` continuations at word boundaries, as the console does."""
    if terse or len(line) <= width:
        return line
    words = tokenize(line)
    out, current = [], ""
    for word in words:
        if current and len(current) + 1 + len(word) > width - 2:
            out.append(current + " \\")
            current = "    " + word
        else:
            current = f"{current} {word}" if current else word
    out.append(current)
    return "\r\n".join(out)


# --- sessions ---------------------------------------------------------------------------------------


class Session:
    """One console session: the current menu and the command interpreter."""

    def __init__(self, device: RouterOS, user: str) -> None:
        self.device = device
        self.user = user
        self.menu = ""
        self.closed = False
        self.pending = None  # a question waiting for its answer: (handler, prompt)

    @property
    def prompt(self) -> str:
        if self.pending:
            return self.pending[1]
        return self.device.prompt(self.user, self.menu)

    def run_line(self, line: str) -> str:
        """Execute a typed line and return its output (lines joined with CRLF)."""
        if self.pending:
            handler, _ = self.pending
            self.pending = None
            return handler(line.strip())
        try:
            outputs = [self.execute(s) for s in split_statements(line)]
        except CommandError as exc:
            return str(exc) + "\r\n"
        return "".join(outputs)

    def execute(self, statement: str) -> str:
        words = tokenize(statement)
        if not words:
            return ""
        menu = self.menu
        first = words[0]
        if first.startswith("/"):
            menu = ""
            words[0] = first[1:]
            if not words[0]:
                words = words[1:]
            if not words:
                self.menu = ""
                return ""
        index = 0
        while index < len(words):
            word = words[index]
            if word == "..":
                menu = " ".join(menu.split()[:-1])
                index += 1
                continue
            candidate = f"{menu} {word}".strip()
            if candidate in MENUS or (candidate == "interface ethernet"):
                menu = "interface" if candidate == "interface ethernet" else candidate
                index += 1
                continue
            break
        rest = words[index:]
        if not rest:
            self.menu = menu
            return ""
        command, args = rest[0], rest[1:]
        if command == "quit":
            self.closed = True
            return ""
        if command == "export":
            return self._export(menu, args)
        if menu in TABLES:
            return self._table_command(menu, command, args)
        if menu in SINGLETONS:
            return self._singleton_command(menu, command, args)
        if menu == "system resource" and command == "print":
            return self.device.resource()
        if menu == "system backup":
            return self._backup(command, args)
        if menu == "file" and command == "print":
            names = sorted(self.device.backups)
            return "".join(f"{n:>2} {name}.backup  backup\r\n" for n, name in enumerate(names))
        if menu == "file" and command == "remove" and args:
            name = unquote(args[0].split("=", 1)[-1]).removesuffix(".backup")
            if self.device.backups.pop(name, None) is None:
                raise CommandError(f"no such item ({args[0]})")
            return ""
        if menu == "system" and command == "reboot":
            raise Reboot()
        column = len(" ".join(words[:index])) + 2 if index else 1
        raise CommandError(f"bad command name {command} (line 1 column {column})")

    # -- helpers -------------------------------------------------------------------------------------

    def _parse_args(self, path: str, args: list[str], allowed: tuple[str, ...]) -> tuple[list[str], dict]:
        """Split arguments into positional words (ids, flags) and ``key=value`` properties."""
        positional, props = [], {}
        column = 1
        for arg in args:
            if "=" in arg and not arg.startswith("["):
                key, value = arg.split("=", 1)
                if key not in allowed:
                    raise CommandError(f"expected end of command (line 1 column {column})")
                props[key] = unquote(value)
            else:
                positional.append(arg)
            column += len(arg) + 1
        return positional, props

    def _resolve(self, path: str, refs: list[str]) -> list[Item]:
        """Turn ``0,2``, ``*5`` and ``[find ...]`` references into items of *path*."""
        items = self.device.items[path]
        chosen: list[Item] = []
        for ref in refs:
            if ref.startswith("["):
                chosen += self._find(path, ref[1:-1].strip())
                continue
            for part in ref.split(","):
                if part.startswith("*"):
                    match = [i for i in items if f"*{i.id:X}" == part.upper()]
                elif part.isdigit() and int(part) < len(items):
                    match = [items[int(part)]]
                elif TABLES[path].unique == ("name",):
                    match = [i for i in items if i.props.get("name") == part]
                else:
                    match = []
                if not match:
                    raise CommandError(f"no such item ({part})")
                chosen += match
        return chosen

    def _find(self, path: str, expression: str) -> list[Item]:
        words = tokenize(expression)
        if words and words[0].startswith("/"):
            sub = Session(self.device, self.user)
            for index, word in enumerate(words):
                if word == "find":
                    sub.execute(" ".join(words[:index]))
                    return sub._find(sub.menu, " ".join(words[index:]))
        if not words or words[0] != "find":
            raise CommandError("syntax error (line 1 column 2)")
        return [i for i in self.device.items[path] if _matches(i, words[1:])]

    def _table_command(self, path: str, command: str, args: list[str]) -> str:
        spec = TABLES[path]
        device = self.device
        if command == "add":
            if spec.fixed:
                raise CommandError("failure: cannot add to this menu")
            positional, props = self._parse_args(path, args, (*spec.keys, "place-before"))
            if positional:
                raise CommandError("expected end of command (line 1 column 5)")
            for key in spec.required:
                if key not in props:
                    raise CommandError(f"failure: {key} not specified")
            for key, value in spec.defaults:
                props.setdefault(key, value)
            if spec.unique and any(
                all(i.props.get(k) == props.get(k) for k in spec.unique) for i in device.items[path]
            ):
                raise CommandError("failure: already have such entry")
            place_before = props.pop("place-before", None)
            expires = None
            if path == "ip firewall address-list" and "timeout" in props:
                expires = time.time() + parse_duration(props.pop("timeout"))
            item = device._insert(path, props, expires)
            if place_before is not None:
                target = self._resolve(path, [place_before])[0]
                device.items[path].remove(item)
                device.items[path].insert(device.items[path].index(target), item)
            return ""
        if command in ("remove", "disable", "enable"):
            if not args:
                raise CommandError("expected end of command (line 1 column 7)")
            for item in self._resolve(path, args):
                if command == "remove":
                    if spec.fixed:
                        raise CommandError("failure: cannot remove this item")
                    device.items[path].remove(item)
                else:
                    item.props["disabled"] = "yes" if command == "disable" else "no"
                    if item.props["disabled"] == "no":
                        del item.props["disabled"]
            device.changed = True
            return ""
        if command == "set":
            positional, props = self._parse_args(path, args, (*spec.keys, "numbers"))
            if "numbers" in props:
                positional.append(props.pop("numbers"))
            targets = self._resolve(path, positional)
            for item in targets:
                new = {**item.props, **props}
                if spec.unique and any(
                    other is not item and all(other.props.get(k) == new.get(k) for k in spec.unique)
                    for other in device.items[path]
                ):
                    raise CommandError("failure: already have such entry")
            for item in targets:
                item.props.update(props)
                if path == "ip firewall address-list" and "timeout" in props:
                    item.expires = time.time() + parse_duration(item.props.pop("timeout"))
                if path == "system scheduler" and "interval" in props:
                    item.props.pop("_next", None)
                    item.created = time.time()
            device.changed = True
            return ""
        if command == "print":
            return self._print(path, args)
        if command == "find":
            return ""
        raise CommandError(f"bad command name {command} (line 1 column 1)")

    def _print(self, path: str, args: list[str]) -> str:
        spec = TABLES[path]
        terse = "terse" in args
        count_only = "count-only" in args
        condition: list[str] = []
        if "where" in args:
            condition = args[args.index("where") + 1 :]
        items = [(n, i) for n, i in enumerate(self.device.items[path]) if not condition or _matches(i, condition)]
        if count_only:
            return f"{len(items)}\r\n"
        if path == "interface" and "stats" in args:
            return self._interface_stats(items)
        now = time.time()
        lines = []
        for n, item in items:
            props = self._shown(path, item, now)
            if terse:
                flags = ("X" if item.disabled else "") + ("D" if item.dynamic else "")
                if path == "interface" and self.device.links[item.props["default-name"]].running:
                    flags += "R"
                words = " ".join(f"{k}={v}" for k, v in props.items())
                lines.append(f"{n:>2} {flags:<2}{words}".rstrip() if flags else f"{n:>2}    {words}")
            else:
                lines.append((n, item, props))
        if terse:
            return "".join(f"{line}\r\n" for line in lines)
        columns = [c for c in spec.columns]
        header = "Flags: X - DISABLED; D - DYNAMIC" + ("; R - RUNNING" if path == "interface" else "")
        table = [["#", *[c.upper() for c in columns]]]
        for n, _item, props in lines:
            table.append([str(n), *[props.get(c, "") for c in columns]])
        widths = [max(len(row[k]) for row in table) for k in range(len(table[0]))]
        out = [header, "Columns: " + ", ".join(c.upper() for c in columns)]
        for row in table:
            out.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        return "\r\n".join(out) + "\r\n"

    def _shown(self, path: str, item: Item, now: float) -> dict[str, str]:
        spec = TABLES[path]
        props = {k: v for k, v in item.props.items() if not k.startswith("_") and k != "disabled"}
        ordered: dict[str, str] = {}
        if "comment" in props:
            ordered["comment"] = props.pop("comment")
        for key in spec.keys:
            if key in props:
                ordered[key] = props.pop(key)
        if path == "ip firewall address-list":
            ordered["creation-time"] = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(item.created))
            if item.expires is not None:
                ordered["timeout"] = format_duration(item.expires - now)
                ordered["dynamic"] = "yes"
            else:
                ordered["dynamic"] = "no"
        if path == "interface":
            link = self.device.links[item.props["default-name"]]
            ordered["actual-mtu"] = item.props.get("mtu", "1500")
            ordered.pop("mac-address", None)
            ordered["mac-address"] = item.props["mac-address"]
            ordered["last-link-up-time"] = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.device.booted))
            ordered["link-downs"] = str(link.link_downs)
        return ordered

    def _interface_stats(self, items: list[tuple[int, Item]]) -> str:
        header = (
            "Flags: R - RUNNING\r\nColumns: NAME, RX-BYTE, TX-BYTE, RX-PACKET, TX-PACKET, RX-DROP, TX-DROP, "
            "TX-QUEUE-DROP, RX-ERROR, TX-ERROR\r\n"
        )
        rows = [
            " #   NAME     RX-BYTE   TX-BYTE  RX-PACKET  TX-PACKET  RX-DROP  TX-DROP  TX-QUEUE-DROP  RX-ERROR  TX-ERROR"
        ]
        for n, item in items:
            link = self.device.links[item.props["default-name"]]
            up = "R" if link.running else " "
            uptime = int(time.time() - self.device.booted) + 1 if link.running else 0
            rows.append(
                f"{n:>2} {up} {item.props['name']:<8} {uptime * 1500:>8} {uptime * 900:>9} {uptime * 3:>10} "
                f"{uptime * 2:>10} {0:>8} {0:>8} {0:>14} {link.rx_errors:>9} {link.tx_errors:>9}"
            )
        return header + "\r\n".join(rows) + "\r\n"

    def _singleton_command(self, path: str, command: str, args: list[str]) -> str:
        keys = SINGLETONS[path]
        if command == "set":
            positional, props = self._parse_args(path, args, keys)
            if positional or not props:
                raise CommandError("expected end of command (line 1 column 5)")
            self.device.singletons[path].update(props)
            self.device.changed = True
            return ""
        if command == "print":
            return "".join(f"{k:>6}: {v}\r\n" for k, v in self.device.singletons[path].items())
        raise CommandError(f"bad command name {command} (line 1 column 1)")

    def _backup(self, command: str, args: list[str]) -> str:
        _, props = self._parse_args("system backup", args, ("name", "password", "dont-encrypt", "encryption"))
        name = props.get("name", "").removesuffix(".backup")
        if not name:
            raise CommandError("failure: name not specified")
        if command == "save":
            self.device.backups[name] = self.device.snapshot()
            return "Configuration backup saved\r\n"
        if command == "load":
            if name not in self.device.backups:
                raise CommandError("failure: no such file")
            if self.user == "scheduler":
                self.device.restore(self.device.backups[name])
                raise Reboot()

            def answer(reply: str) -> str:
                if reply.lower().startswith("y"):
                    self.device.restore(self.device.backups[name])
                    raise Reboot()
                return ""

            self.pending = (answer, "Restore and reboot? [y/N]: ")
            return ""
        raise CommandError(f"bad command name {command} (line 1 column 1)")

    def _export(self, menu: str, args: list[str]) -> str:
        for arg in args:
            if arg not in (
                "hide-sensitive",
                "show-sensitive",
                "terse",
                "verbose",
                "compact",
            ) and not arg.startswith("file="):
                raise CommandError("expected end of command (line 1 column 8)")
        return self.device.export(menu, sensitive="show-sensitive" in args, terse="terse" in args)


def _matches(item: Item, words: list[str]) -> bool:
    """Evaluate a ``find``/``where`` condition: ``key=value``, ``key~"re"``, flags, ``and``/``or``/``!``."""
    result: bool | None = None
    joiner = "and"
    for word in words:
        if word in ("and", "or"):
            joiner = word
            continue
        negate = word.startswith("!")
        word = word.lstrip("!")
        if word == "where":
            continue
        if "~" in word and ("=" not in word or word.index("~") < word.index("=")):
            key, pattern = word.split("~", 1)
            value = re.search(unquote(pattern), item.props.get(key, "")) is not None
        elif "=" in word:
            key, expected = word.split("=", 1)
            value = item.props.get(key, "") == unquote(expected)
        elif word == "dynamic":
            value = item.dynamic
        elif word == "disabled":
            value = item.disabled
        else:
            raise CommandError(f"syntax error (line 1 column {len(word)})")
        value = not value if negate else value
        result = value if result is None else (result and value if joiner == "and" else result or value)
        joiner = "and"
    return True if result is None else result
