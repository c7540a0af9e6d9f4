"""Client of the simulator's control socket, used by tests and the bench.

The protocol is one JSON object per line each way. Requests: ``{"op": "ping"}``, ``{"op": "devices"}``,
``{"op": "fault", "device": D, "faults": {...}}``, ``{"op": "exec", "device": D, "lines": [...]}``
(console lines on RouterOS, configuration-mode lines on IOS), ``{"op": "config", "device": D}``,
``{"op": "link", "device": D, "interface": I, "up": bool, "errors": int}``, ``{"op": "latency", ...}``.
A reply is sent only after the request took effect, so a test needs no sleeps.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path


class ControlError(Exception):
    """The simulator refused a control request."""


class SimControl:
    """A connection to a running simulator's control socket."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)

    def request(self, **payload) -> dict:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(30)
            sock.connect(self.path)
            sock.sendall((json.dumps(payload) + "\n").encode())
            data = b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        reply = json.loads(data)
        if not reply.get("ok"):
            raise ControlError(reply.get("error", "failed"))
        return reply

    def devices(self) -> dict:
        return self.request(op="devices")["devices"]

    def fault(self, device: str, **faults) -> dict:
        """Set the faults of *device* (no keyword clears them)."""
        return self.request(op="fault", device=device, faults=faults)["faults"]

    def exec(self, device: str, *lines: str) -> str:
        return self.request(op="exec", device=device, lines=list(lines))["output"]

    def config(self, device: str) -> str:
        return self.request(op="config", device=device)["config"]

    def link(self, device: str, interface: str, up: bool | None = None, errors: int | None = None) -> None:
        self.request(op="link", device=device, interface=interface, up=up, errors=errors)

    def latency(self, device: str) -> dict:
        return self.request(op="latency", device=device)
