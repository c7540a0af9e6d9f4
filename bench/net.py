"""Bench of ``akm net backup`` against the simulator: parallel versus sequential (issue 6).

Anchor: the issue's goal that a parallel backup of 50 devices takes at most 3x the time of backing up a
single device. Also printed: the simulated devices' per-command latency (round trip of one netmiko
command, and the simulator's own processing time), so the backup figures can be read fairly.

    python bench/net.py [--devices 50] [--workers 50] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from akm.net.backup import backup
from akm.net.common import Target, Timeouts, open_session
from akm.net.sim import known_hosts
from akm.net.sim.control import SimControl
from akm.net.vault import login_for, read_vault, write_vault


def start_simulator(tmp: Path, count: int) -> tuple[subprocess.Popen, dict, list[Target], dict]:
    credentials = {"username": "admin", "password": secrets.token_urlsafe(12), "secret": secrets.token_urlsafe(8)}
    (tmp / "creds.json").write_text(json.dumps({"default": credentials}))
    password_file = tmp / "vault-password"
    password_file.write_text(secrets.token_hex(16))
    write_vault(tmp / "vault.yml", password_file, {"vault_net_bench": credentials})
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "akm.net.sim",
            "--devices",
            str(count),
            "--credentials",
            str(tmp / "creds.json"),
            "--ready-file",
            str(tmp / "ready.json"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    if process.stdout.readline().strip() != "READY":
        raise SystemExit("the simulator did not start")
    ready = json.loads((tmp / "ready.json").read_text())
    (tmp / "known_hosts").write_text(known_hosts(ready))
    targets = [
        Target(n, d["platform"], d["host"], d["port"], "vault_net_bench", str(tmp / "known_hosts"))
        for n, d in ready["devices"].items()
    ]
    variables = read_vault(tmp / "vault.yml", password_file)
    logins = {t.name: login_for(variables, t.credentials, tmp / "vault.yml") for t in targets}
    return process, ready, targets, logins


def timed(function) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=50)
    parser.add_argument("--workers", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    timeouts = Timeouts(connect=30, command=60)
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        process, ready, targets, logins = start_simulator(tmp, args.devices)
        try:

            def run(selection, workers, name):
                folder = tmp / name
                return timed(lambda: backup(selection, logins, folder, timeouts, workers))

            single = statistics.median(run(targets[:1], 1, f"single{i}") for i in range(args.repeat))
            single_ios = statistics.median(run(targets[1:2], 1, f"single-ios{i}") for i in range(args.repeat))
            sequential = run(targets, 1, "sequential")
            parallel = statistics.median(run(targets, args.workers, f"parallel{i}") for i in range(args.repeat))

            round_trips = {}
            for target in targets[:2]:
                connection = open_session(target, logins[target.name], timeouts)
                command = "/system identity print" if target.platform == "mikrotik_routeros" else "show clock"
                samples = [timed(lambda c=connection, cmd=command: c.send_command(cmd)) for _ in range(20)]
                connection.disconnect()
                round_trips[target.platform] = statistics.median(samples)
            control = SimControl(ready["control"])
            processing = statistics.median(
                control.latency(t.name)["median"] for t in targets if control.latency(t.name)["count"]
            )
        finally:
            process.terminate()
            process.wait(timeout=30)

    print(
        f"akm net backup, {args.devices} simulated devices (half RouterOS, half IOS), "
        f"{os.cpu_count()} CPUs, workers={args.workers}, median of {args.repeat}"
    )
    print()
    rows = [
        ("single device (RouterOS)", single, 1),
        ("single device (IOS)", single_ios, 1),
        (f"{args.devices} devices, sequential", sequential, args.devices),
        (f"{args.devices} devices, parallel", parallel, args.devices),
    ]
    print(f"{'case':<32} {'seconds':>9} {'per device':>11} {'x single':>9}")
    for name, seconds, count in rows:
        print(f"{name:<32} {seconds:>9.2f} {seconds / count:>11.3f} {seconds / single:>9.2f}")
    print()
    print(f"parallel vs sequential speed-up: {sequential / parallel:.1f}x")
    goal = "met" if parallel <= 3 * single else "NOT met"
    print(f"goal parallel <= 3x single device: {parallel / single:.2f}x -> {goal}")
    print()
    print("simulated device latency per command:")
    for platform, seconds in round_trips.items():
        print(f"  {platform:<20} netmiko round trip {seconds * 1000:7.1f} ms (median of 20)")
    print(f"  {'simulator':<20} processing         {processing * 1000:7.3f} ms (median over devices)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
