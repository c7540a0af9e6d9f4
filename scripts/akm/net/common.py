"""What backup, push and health share: device targets, sessions, outcome classes, the parallel runner.

A :class:`Target` is one network device of the inventory. :func:`open_session` opens a netmiko session
and :func:`classify` turns whatever went wrong into one of the outcome classes the reports know:
``unreachable`` (nothing listens, or the connection was lost), ``host_key`` (the device's SSH host key
is not the one the inventory pins), ``auth_failed``, ``timeout`` (the device answered too slowly) and
``error`` (it rejected a command). :func:`run_parallel` runs one function per
device in a thread pool; one device failing never stops the others.
"""

from __future__ import annotations

import base64
import hashlib
import socket
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from akm import evidence
from akm.errors import Error
from akm.i18n import _
from akm.net.vault import Login

SUPPORTED = ("mikrotik_routeros", "cisco_ios")
OUTCOMES = ("ok", "changed", "unreachable", "host_key", "auth_failed", "timeout", "error", "rolled_back")


class NetError(Error):
    """A network-device command cannot run as asked (bad arguments, no devices, bad input file)."""


class CommandRejected(Exception):
    """The device answered a command with an error."""


class Unreachable(Exception):
    """Nothing answers on the device's address and port."""


class HostKeyRefused(Exception):
    """The device's SSH host key is not pinned for it: another one (``changed``), or none recorded."""

    def __init__(self, message: str, changed: bool) -> None:
        super().__init__(message)
        self.changed = changed


@dataclass(frozen=True)
class Target:
    """One network device: its inventory name, netmiko platform, address and vault variable."""

    name: str
    platform: str
    host: str
    port: int
    credentials: str
    known_hosts: str = ""
    """A known_hosts file that names the device by ``host`` and ``port`` with its pinned keys
    (:func:`pin_host_keys`); without one every key is refused."""


@dataclass(frozen=True)
class Timeouts:
    """Seconds to wait: for the TCP/SSH connection, and for one command's answer."""

    connect: float = 10.0
    command: float = 30.0


@dataclass
class DeviceResult:
    """What happened on one device; ``status`` is one of :data:`OUTCOMES`."""

    device: str
    platform: str
    status: str
    detail: str = ""
    seconds: float = 0.0
    data: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status in ("ok", "changed")


def targets_from_inventory(inventory, names: Iterable[str] = ()) -> list[Target]:
    """The inventory's network devices (those with a ``net`` block and a supported platform)."""
    wanted = set(names)
    targets = []
    for asset in inventory.assets:
        net = asset.net
        if net is None or (wanted and asset.hostname not in wanted):
            continue
        if net.platform not in SUPPORTED:
            continue
        host = net.host or (str(asset.address) if asset.address else "")
        targets.append(Target(asset.hostname, net.platform, host, int(net.port), net.credentials))
    unknown = wanted - {t.name for t in targets}
    if unknown:
        raise NetError.one(
            "net.unknown-device",
            _("no network device named {names} in the inventory").format(names=", ".join(sorted(unknown))),
            _("use a hostname of an asset that has a net block"),
            file=str(inventory.root),
            field="device",
        )
    if not targets:
        raise NetError.one(
            "net.no-devices",
            _("the inventory has no network device with a supported platform"),
            _("give routers and switches a net block (platform, credentials)"),
            file=str(inventory.root),
            field="net",
        )
    return targets


def pin_host_keys(targets: list[Target], known_hosts: Path, run_file: Path) -> list[Target]:
    """Write into *run_file* each target's pinned keys from *known_hosts* (the inventory's generated file,
    where a device is named by its hostname and address) under the address and port it is reached at
    now, and return the targets pointing at it. A device reached through another address (``--via``)
    keeps its own keys: they are found by its hostname."""
    from akm.inventory.hostkeys import known_names, read_known_hosts

    pinned = read_known_hosts(known_hosts)
    lines = []
    for target in targets:
        keys = next((pinned[n] for n in known_names(target.name, None, target.port) if n in pinned), [])
        names = ",".join(known_names(target.host, None, target.port))
        lines.extend(f"{names} {key.text}\n" for key in keys)
    run_file.write_text("".join(lines), encoding="utf-8")
    return [replace(target, known_hosts=str(run_file)) for target in targets]


def open_session(target: Target, login: Login, timeouts: Timeouts):
    """Open a netmiko session (in enable mode on IOS) that trusts only the device's pinned host keys;
    raise :class:`Unreachable` if nothing listens, :class:`HostKeyRefused` if its key is not pinned."""
    from netmiko import ConnectHandler
    from netmiko.exceptions import NetmikoTimeoutException
    from paramiko.ssh_exception import BadHostKeyException, SSHException

    try:
        with socket.create_connection((target.host, target.port), timeout=timeouts.connect):
            pass
    except OSError as exc:
        raise Unreachable(str(exc)) from None
    try:
        connection = ConnectHandler(
            device_type=target.platform,
            host=target.host,
            port=target.port,
            username=login.username,
            password=login.password,
            secret=login.secret,
            conn_timeout=timeouts.connect,
            auth_timeout=timeouts.connect,
            banner_timeout=timeouts.connect,
            read_timeout_override=timeouts.command,
            session_timeout=timeouts.command,
            allow_agent=False,
            use_keys=False,
            fast_cli=True,
            ssh_strict=True,
            system_host_keys=False,
            alt_host_keys=True,
            alt_key_file=target.known_hosts,
        )
    except NetmikoTimeoutException as exc:
        # netmiko reports paramiko's refusal of the host key as a timeout; the refusal is its context.
        cause = exc.__context__
        if isinstance(cause, BadHostKeyException):
            raise HostKeyRefused(
                _("the device presented {fingerprint}, not its pinned key").format(fingerprint=_fingerprint(cause.key)),
                changed=True,
            ) from None
        if isinstance(cause, SSHException) and "not found in known_hosts" in str(cause):
            raise HostKeyRefused(_("the inventory pins no host key for the device"), changed=False) from None
        raise
    if target.platform == "cisco_ios":
        connection.enable()
    return connection


def _fingerprint(key) -> str:
    """``SHA256:…`` of a paramiko key, as ``ssh-keygen -l`` and ``akm inventory hostkeys`` show it."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")


def classify(exc: BaseException) -> tuple[str, str]:
    """Map an exception from a device session to an outcome class and a short detail."""
    from netmiko.exceptions import NetmikoAuthenticationException, NetmikoTimeoutException, ReadTimeout
    from paramiko.ssh_exception import SSHException

    if isinstance(exc, Unreachable):
        return "unreachable", _("nothing answers: {reason}").format(reason=exc)
    if isinstance(exc, HostKeyRefused):
        return "host_key", str(exc)
    if isinstance(exc, NetmikoAuthenticationException):
        return "auth_failed", _("the device refused the credentials")
    if isinstance(exc, ReadTimeout):
        return "timeout", _("the device did not answer in time")
    if isinstance(exc, NetmikoTimeoutException):
        if "TCP connection" in str(exc):
            return "unreachable", _("nothing answers")
        return "timeout", _("the device did not answer in time")
    if isinstance(exc, CommandRejected):
        return "error", _("the device rejected a command: {reason}").format(reason=exc)
    if isinstance(exc, (EOFError, OSError, SSHException)):
        return "unreachable", _("the connection was lost")
    return "error", f"{type(exc).__name__}: {exc}"


def run_parallel(targets: list[Target], work: Callable[[Target], DeviceResult], workers: int) -> list[DeviceResult]:
    """Run *work* for every target (at most *workers* at a time); results in target order."""

    def guarded(target: Target) -> DeviceResult:
        started = time.perf_counter()
        try:
            result = work(target)
        except Exception as exc:  # one device's failure is its result, never the others' problem
            status, detail = classify(exc)
            result = DeviceResult(target.name, target.platform, status, detail)
        result.seconds = round(time.perf_counter() - started, 3)
        return result

    if workers <= 1:
        return [guarded(t) for t in targets]
    with ThreadPoolExecutor(max_workers=min(workers, len(targets)) or 1) as pool:
        return list(pool.map(guarded, targets))


def write_evidence(evidence_dir: Path, kind: str, started: str, results: list[DeviceResult], **parts) -> Path:
    """Write the record of one run over the devices (kind ``network.<kind>``; ``backup`` is
    ``network.config-backup``) as ``<evidence>/net/<kind>-<stamp>.json`` and ``<kind>-latest.json``.

    The run failed when a device did not end ``ok`` or ``changed``; the summary names each device's
    outcome."""
    finished = evidence.now()
    record = evidence.record(
        "network.config-backup" if kind == "backup" else f"network.{kind}",
        "ok" if all(r.ok for r in results) else "failed",
        time=finished,
        started=started,
        summary=", ".join(f"{r.device}: {r.status}" for r in results),
        devices=[asdict(r) for r in results],
        **parts,
    )
    return evidence.write(evidence_dir / "net", f"{kind}-{evidence.stamp(finished)}", record, latest=kind)


def send(connection, command: str, timeouts: Timeouts, expect: str | None = None) -> str:
    """Send one command and raise :class:`CommandRejected` if the device answers with an error."""
    if expect:
        output = connection.send_command(command, expect_string=expect, read_timeout=timeouts.command)
    else:
        output = connection.send_command(command, read_timeout=timeouts.command)
    for marker in (
        "% Invalid input",
        "% Incomplete command",
        "% Ambiguous command",
        "failure:",
        "bad command name",
        "expected end of command",
        "syntax error",
        "no such item",
        "%Error",
    ):
        if marker in output:
            raise CommandRejected(f"{command}: {output.strip().splitlines()[-1]}")
    return output
