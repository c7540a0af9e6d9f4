"""The SSH side of the simulator: one asyncssh listener per device, sessions, faults, control socket.

Start-up is race-free: :meth:`Simulator.start` returns only when every device's port listens, and the
entry point writes its ready file (and prints ``READY``) only after that.

Faults are set per device through the control socket and take effect on the next connection or
command: ``down`` (the port stops listening; open sessions are cut), ``refuse_login`` (every password is
wrong), ``delay`` (seconds before each command's answer), ``drop_after`` (cut the connection when the
N+1-th non-empty command of a session arrives), ``drop_on`` (cut it when a command matches a regex) and
``ignore`` (accept commands matching a regex without applying them — a device that silently loses a
change, which a post-check must catch).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import asyncssh

from akm.net.sim import ios, routeros

PLATFORMS = ("mikrotik_routeros", "cisco_ios")
FAULT_KEYS = {
    "down": bool,
    "refuse_login": bool,
    "delay": float,
    "drop_after": int,
    "drop_on": str,
    "ignore": str,
}


class SimulatorError(Exception):
    """The simulator cannot start as asked (bad spec, non-loopback host, port in use)."""


LAB_NETWORK = ipaddress.ip_network("198.18.0.0/15")


def _check_also_listen(addresses: list[str]) -> list[str]:
    """Return *addresses* if each is a loopback or lab (198.18.0.0/15) address; raise otherwise."""
    for address in addresses:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            raise SimulatorError(f"--also-listen {address}: not an IP address") from None
        if not (ip.is_loopback or (ip.version == 4 and ip in LAB_NETWORK)):
            raise SimulatorError(f"--also-listen {address}: only loopback or lab addresses (198.18.0.0/15)")
    return list(addresses)


@dataclass
class Credentials:
    username: str
    password: str
    secret: str = ""


@dataclass
class Device:
    """One simulated device: its model, listener, open connections and faults."""

    name: str
    platform: str
    host: str
    port: int
    credentials: Credentials
    model: routeros.RouterOS | ios.IOS
    key: asyncssh.SSHKey | None = None
    faults: dict = field(default_factory=dict)
    server: asyncssh.SSHAcceptor | None = None
    extra_servers: list = field(default_factory=list)
    connections: set = field(default_factory=set)
    latency: list[float] = field(default_factory=list)


class _Server(asyncssh.SSHServer):
    def __init__(self, device: Device) -> None:
        self.device = device
        self.conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self.conn = conn
        self.device.connections.add(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        self.device.connections.discard(self.conn)

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        device = self.device
        if device.faults.get("refuse_login"):
            return False
        if device.platform == "mikrotik_routeros":
            # netmiko appends console options (``+ct511w4098h``) to the user name, as RouterOS documents.
            username = username.split("+", 1)[0]
        return username == device.credentials.username and password == device.credentials.password


def _host_key(folder: Path | None, name: str) -> asyncssh.SSHKey:
    """Device *name*'s own SSH host key: ``<folder>/<name>/ssh_host_ed25519_key`` (made once, as the lab
    makes its machines' keys), or a new one for this run without *folder*. Each device has its own key,
    as real devices do, so a key pinned for one is refused on another."""
    key_file = folder / name / "ssh_host_ed25519_key" if folder else None
    if key_file is not None and key_file.exists():
        return asyncssh.read_private_key(str(key_file))
    key = asyncssh.generate_private_key("ssh-ed25519", comment=f"root@{name}")
    if key_file is not None:
        key_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        key.write_private_key(str(key_file))
        os.chmod(key_file, 0o600)
    return key


class Simulator:
    """All devices of one simulator process."""

    def __init__(
        self,
        specs: list[dict],
        credentials: dict,
        state_file: Path | None = None,
        host_keys: Path | None = None,
        also_listen: list[str] | None = None,
    ) -> None:
        self.devices: dict[str, Device] = {}
        self.also_listen = _check_also_listen(also_listen or [])
        self.state_file = state_file
        saved = {}
        if state_file and state_file.exists():
            saved = json.loads(state_file.read_text(encoding="utf-8"))
        for index, spec in enumerate(specs, start=1):
            name, platform = spec["name"], spec["platform"]
            host = spec.get("host", "127.0.0.1")
            try:
                loopback = ipaddress.ip_address(host).is_loopback
            except ValueError:
                loopback = False
            if not loopback:
                raise SimulatorError(
                    f"{name}: host {host} is not a loopback address; the simulator serves 127.0.0.0/8 only"
                )
            if platform not in PLATFORMS:
                raise SimulatorError(f"{name}: platform {platform} is not simulated (only {', '.join(PLATFORMS)})")
            cred = credentials.get("devices", {}).get(name) or credentials.get("default")
            if not cred:
                raise SimulatorError(f"{name}: no credentials in the credentials file")
            model = routeros.RouterOS(name, index) if platform == "mikrotik_routeros" else ios.IOS(name, index)
            record = saved.get(name)
            if record and record.get("platform") == platform:
                model.load_config(record["config"])
                if isinstance(model, ios.IOS):
                    model.startup = record["config"]
            model.changed = False
            self.devices[name] = Device(
                name,
                platform,
                host,
                int(spec.get("port", 0)),
                Credentials(cred["username"], cred["password"], cred.get("secret", "")),
                model,
                _host_key(host_keys, name),
            )
        self._ticker: asyncio.Task | None = None

    # -- listeners -----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Open every device's port; return when all listen."""
        for device in self.devices.values():
            await self._listen(device)
        self._ticker = asyncio.create_task(self._tick_forever())

    async def _listen(self, device: Device) -> None:
        device.server = await self._serve(device, device.host, device.port)
        device.port = device.server.sockets[0].getsockname()[1]
        for address in self.also_listen:
            device.extra_servers.append(await self._serve(device, address, device.port))

    async def _serve(self, device: Device, address: str, port: int):
        """One SSH listener of *device* on *address*:*port*."""
        try:
            return await asyncssh.create_server(
                lambda d=device: _Server(d),
                address,
                port,
                server_host_keys=[device.key],
                process_factory=lambda process, d=device: self._session(d, process),
                line_editor=False,
                encoding="utf-8",
                login_timeout=30,
                keepalive_interval=0,
            )
        except OSError as exc:
            raise SimulatorError(f"{device.name}: cannot listen on {address}:{port}: {exc}") from exc

    async def stop(self) -> None:
        if self._ticker:
            self._ticker.cancel()
        for device in self.devices.values():
            await self._close(device)
        self._save()

    async def _close(self, device: Device) -> None:
        for conn in list(device.connections):
            conn.abort()
        if device.server:
            device.server.close()
            await device.server.wait_closed()
            device.server = None
        for server in device.extra_servers:
            server.close()
            await server.wait_closed()
        device.extra_servers = []

    async def set_faults(self, name: str, faults: dict) -> dict:
        """Replace the faults of device *name*; a ``down`` change closes or reopens its port."""
        device = self.devices[name]
        clean = {}
        for key, value in faults.items():
            if key not in FAULT_KEYS:
                raise SimulatorError(f"unknown fault {key!r}; known: {', '.join(FAULT_KEYS)}")
            if value not in (None, False):
                clean[key] = FAULT_KEYS[key](value)
        device.faults = clean
        if clean.get("down") and device.server:
            await self._close(device)
        elif not clean.get("down") and device.server is None:
            await self._listen(device)
        return clean

    # -- sessions ------------------------------------------------------------------------------------

    def _new_session(self, device: Device, user: str):
        if device.platform == "mikrotik_routeros":
            return routeros.Session(device.model, user.split("+", 1)[0])
        return ios.Session(device.model, user)

    def _execute(self, device: Device, session, line: str) -> str:
        started = time.perf_counter()
        ignore = device.faults.get("ignore")
        if ignore and re.search(ignore, line):
            output = ""
        elif device.platform == "mikrotik_routeros":
            output = session.run_line(line)
        else:
            output = session.run_line(line, device.credentials.secret)
        device.latency.append(time.perf_counter() - started)
        del device.latency[:-1000]
        return output

    async def _session(self, device: Device, process: asyncssh.SSHServerProcess) -> None:
        conn = process.channel.get_connection()
        session = self._new_session(device, process.get_extra_info("username") or "admin")
        model = device.model
        if isinstance(model, routeros.RouterOS):
            process.stdout.write(model.banner())
        else:
            process.stdout.write("\r\n")
        process.stdout.write(session.prompt)
        buffer, last, commands = "", "", 0
        try:
            while not session.closed:
                try:
                    data = await process.stdin.read(4096)
                except (asyncssh.TerminalSizeChanged, asyncssh.BreakReceived):
                    continue
                if not data:
                    break
                echo = []
                for ch in data:
                    previous, last = last, ch
                    if ch == "\n" and previous == "\r":
                        continue
                    if ch in "\r\n":
                        echo.append("\r\n")
                        process.stdout.write("".join(echo))
                        echo = []
                        line, buffer = buffer, ""
                        if line.strip():
                            commands += 1
                            limit = device.faults.get("drop_after")
                            pattern = device.faults.get("drop_on")
                            if (limit is not None and commands > limit) or (pattern and re.search(pattern, line)):
                                conn.abort()
                                return
                            delay = device.faults.get("delay")
                            if delay:
                                await asyncio.sleep(delay)
                        try:
                            output = self._execute(device, session, line)
                        except routeros.Reboot:
                            self._reboot(device)
                            return
                        process.stdout.write(output)
                        if session.closed:
                            break
                        process.stdout.write(session.prompt)
                    elif ch in "\x7f\x08":
                        if buffer:
                            buffer = buffer[:-1]
                            echo.append("\x08 \x08")
                    elif ch == "\x03":
                        buffer = ""
                        echo.append("\r\n" + session.prompt)
                    elif ch == "\x1a" and device.platform == "cisco_ios":
                        buffer = ""
                        self._execute(device, session, "end")
                        echo.append("\r\n" + session.prompt)
                    else:
                        buffer += ch
                        if getattr(session, "mode", "") != "asking-enable":
                            echo.append(ch)
                if echo:
                    process.stdout.write("".join(echo))
        except (asyncssh.Error, ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(Exception):
                process.exit(0)

    def _reboot(self, device: Device) -> None:
        device.model.booted = time.time()
        for conn in list(device.connections):
            conn.abort()

    # -- time and state ------------------------------------------------------------------------------

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(0.2)
            self.tick()

    def tick(self) -> None:
        """Expire entries, run due scheduler jobs, save the state file if anything changed."""
        dirty = False
        for device in self.devices.values():
            model = device.model
            if isinstance(model, ios.IOS):
                model.tick()
            if isinstance(model, routeros.RouterOS):
                for script in model.tick():
                    try:
                        model.run_script(script)
                    except routeros.Reboot:
                        self._reboot(device)
                    except routeros.CommandError:
                        pass
            if model.changed:
                model.changed = False
                dirty = True
        if dirty:
            self._save()

    def _save(self) -> None:
        if not self.state_file:
            return
        data = {name: {"platform": d.platform, "config": d.model.config_text()} for name, d in self.devices.items()}
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
        os.chmod(tmp, 0o600)
        tmp.replace(self.state_file)

    # -- control -------------------------------------------------------------------------------------

    async def control(self, request: dict) -> dict:
        """Answer one control request (see :mod:`akm.net.sim.control`)."""
        op = request.get("op")
        if op == "ping":
            return {"ok": True}
        if op == "devices":
            return {
                "ok": True,
                "devices": {
                    n: {"platform": d.platform, "host": d.host, "port": d.port} for n, d in self.devices.items()
                },
            }
        name = request.get("device")
        if name not in self.devices:
            return {"ok": False, "error": f"unknown device {name!r}"}
        device = self.devices[name]
        if op == "fault":
            try:
                return {"ok": True, "faults": await self.set_faults(name, request.get("faults") or {})}
            except (SimulatorError, ValueError, TypeError) as exc:
                return {"ok": False, "error": str(exc)}
        if op == "exec":
            session = self._new_session(device, device.credentials.username)
            if isinstance(session, ios.Session):
                session.mode = "config"
            outputs = []
            for line in request.get("lines", []):
                try:
                    outputs.append(self._execute(device, session, line))
                except routeros.Reboot:
                    self._reboot(device)
            self.tick()
            return {"ok": True, "output": "".join(outputs)}
        if op == "config":
            model = device.model
            if isinstance(model, routeros.RouterOS):
                text = model.export(sensitive=True, header=False, terse=True)
            else:
                text = model.running_config(volatile=False)
            return {"ok": True, "config": text.replace("\r\n", "\n")}
        if op == "link":
            model = device.model
            links = model.links if isinstance(model, routeros.RouterOS) else model.ports
            port = links.get(request.get("interface"))
            if port is None:
                return {"ok": False, "error": f"unknown interface {request.get('interface')!r}"}
            up = request.get("up")
            errors = request.get("errors")
            if isinstance(model, routeros.RouterOS):
                if up is not None:
                    if port.running and not up:
                        port.link_downs += 1
                    port.running = bool(up)
                if errors is not None:
                    port.rx_errors = int(errors)
            else:
                if up is not None:
                    port.connected = bool(up)
                if errors is not None:
                    port.input_errors = port.crc = int(errors)
            return {"ok": True}
        if op == "latency":
            samples = sorted(device.latency)
            return {
                "ok": True,
                "count": len(samples),
                "median": samples[len(samples) // 2] if samples else None,
            }
        return {"ok": False, "error": f"unknown op {op!r}"}

    async def serve_control(self, path: Path) -> asyncio.AbstractServer:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while line := await reader.readline():
                    try:
                        reply = await self.control(json.loads(line))
                    except (ValueError, KeyError) as exc:
                        reply = {"ok": False, "error": str(exc)}
                    writer.write((json.dumps(reply) + "\n").encode())
                    await writer.drain()
            finally:
                writer.close()

        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        server = await asyncio.start_unix_server(handle, str(path))
        os.chmod(path, 0o600)
        return server
