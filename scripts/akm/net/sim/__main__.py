"""``python -m akm.net.sim``: serve simulated devices on loopback until stopped.

Devices come from an inventory (every asset whose ``net.platform`` is simulated, on its ``net.host`` and
``net.port``) or are generated (``--devices N`` on consecutive ports from ``--base-port``; 0 picks free
ports). Credentials come from a JSON file made at run time (never from git)::

    {"default": {"username": "...", "password": "...", "secret": "..."},
     "devices": {"NAME": {"username": "...", "password": "...", "secret": "..."}}}

``--also-listen ADDRESS`` opens each device's port on one more address as well (loopback or the lab's
198.18.0.0/15): the lab passes its control address, so the management host reaches the devices over the
management segment as it would reach real routers' management interfaces.

When every port listens, the ready file (``--ready-file``) is written with the devices' ports and the
control socket, and ``READY`` is printed; a caller waits for either.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
from pathlib import Path

from akm.net.sim import ios
from akm.net.sim.server import PLATFORMS, Simulator, SimulatorError


def specs_from_inventory(path: Path) -> list[dict]:
    """Devices of the simulator from an inventory's assets with a simulated ``net.platform``."""
    from akm.inventory import load_inventory

    inventory = load_inventory(path)
    specs = []
    for asset in inventory.assets:
        net = asset.net
        if net is None or net.platform not in PLATFORMS:
            continue
        host = net.host or (str(asset.address) if asset.address else "")
        specs.append(
            {
                "name": asset.hostname,
                "platform": net.platform,
                "host": host,
                "port": net.port,
                "credentials": net.credentials,
            }
        )
    return specs


def generated_specs(count: int, platform: str, base_port: int) -> list[dict]:
    """*count* devices named ``sim-001``... alternating platforms when *platform* is ``mixed``."""
    specs = []
    for n in range(count):
        kind = platform if platform != "mixed" else PLATFORMS[n % 2]
        port = base_port + n if base_port else 0
        specs.append({"name": f"sim-{n + 1:03d}", "platform": kind, "host": "127.0.0.1", "port": port})
    return specs


async def _serve(args: argparse.Namespace, specs: list[dict], credentials: dict) -> int:
    simulator = Simulator(specs, credentials, args.state, args.host_keys, args.also_listen)
    await simulator.start()
    control_path = args.control or (args.ready_file.with_suffix(".sock") if args.ready_file else None)
    control = await simulator.serve_control(control_path) if control_path else None
    ready = {
        "pid": os.getpid(),
        "control": str(control_path) if control_path else None,
        "also_listen": simulator.also_listen,
        "devices": {
            n: {"platform": d.platform, "host": d.host, "port": d.port, "host_key": d.key.export_public_key().decode()}
            for n, d in simulator.devices.items()
        },
    }
    if args.ready_file:
        tmp = args.ready_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(ready, indent=1), encoding="utf-8")
        tmp.replace(args.ready_file)
    print("READY", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    if control:
        control.close()
    await simulator.stop()
    if control_path:
        with contextlib.suppress(FileNotFoundError):
            Path(control_path).unlink()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m akm.net.sim", description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--inventory", type=Path, help="serve the simulated network devices of this inventory")
    source.add_argument("--devices", type=int, help="serve N generated devices (bench)")
    parser.add_argument("--platform", choices=[*PLATFORMS, "mixed"], default="mixed")
    parser.add_argument("--base-port", type=int, default=0, help="first port of --devices (0: free ports)")
    parser.add_argument(
        "--credentials",
        type=Path,
        default=os.environ.get("AKM_SIM_CREDENTIALS"),
        help="JSON credentials file made at run time (or AKM_SIM_CREDENTIALS)",
    )
    parser.add_argument("--state", type=Path, help="JSON file keeping the devices' configuration across restarts")
    parser.add_argument("--ready-file", type=Path, help="written (JSON) when every port listens")
    parser.add_argument("--control", type=Path, help="control socket (default: beside the ready file)")
    parser.add_argument(
        "--host-keys",
        type=Path,
        help="folder of the devices' SSH host keys, <folder>/<device>/ssh_host_ed25519_key (made if missing); "
        "without it each device gets a new key per run",
    )
    parser.add_argument(
        "--also-listen",
        action="append",
        default=[],
        metavar="ADDRESS",
        help="every device also listens on this address, same port (the lab's control address, so the "
        "management host reaches the devices); loopback or 198.18.0.0/15 only",
    )
    parser.add_argument(
        "--ios-minute",
        type=float,
        default=60.0,
        help="real seconds in a minute of IOS 'revert timer' (tests shorten it)",
    )
    args = parser.parse_args(argv)
    ios.IOS.minute = args.ios_minute
    if not args.credentials or not Path(args.credentials).is_file():
        print(
            "akm.net.sim: a credentials file is required (--credentials or AKM_SIM_CREDENTIALS)",
            file=sys.stderr,
        )
        return 2
    credentials = json.loads(Path(args.credentials).read_text(encoding="utf-8"))
    try:
        if args.inventory:
            specs = specs_from_inventory(args.inventory)
        else:
            specs = generated_specs(args.devices, args.platform, args.base_port)
        return asyncio.run(_serve(args, specs, credentials))
    except SimulatorError as exc:
        print(f"akm.net.sim: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # an inventory error is printed, not traced back
        from akm.errors import Error

        if isinstance(exc, Error):
            print(exc, file=sys.stderr)
            return exc.exit_code
        raise


if __name__ == "__main__":
    sys.exit(main())
