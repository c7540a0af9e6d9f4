"""``akm lab``: bring the virtual library up and down, show it, reset a machine, log into one."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from akm.i18n import _, format_number
from akm.lab import lab


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``akm lab`` and its commands."""
    parser = subparsers.add_parser("lab", help=_("the virtual library: real Debian machines on this computer"))
    parser.add_argument(
        "--inventory",
        "-i",
        type=Path,
        default=lab.DEFAULT_INVENTORY,
        help=_("the lab inventory (default: inventory/lab)"),
    )
    commands = parser.add_subparsers(dest="lab_command", metavar=_("COMMAND"), required=True)

    up = commands.add_parser("up", help=_("build the image if needed and boot every machine"))
    up.add_argument("--fresh", action="store_true", help=_("give every machine a fresh layer"))
    up.add_argument(
        "--new-image",
        action="store_true",
        help=_("build the image anew (every machine fresh), as on a new machine; the package cache stays"),
    )
    up.add_argument("--timeout", type=float, default=180.0, help=_("seconds to wait for SSH on every machine"))
    up.set_defaults(handler=_up)

    down = commands.add_parser("down", help=_("stop every machine and remove all the lab made"))
    down.add_argument(
        "--grace",
        type=float,
        default=10.0,
        help=_("seconds the machines get to power off before they are killed"),
    )
    down.set_defaults(handler=_down)

    status = commands.add_parser("status", help=_("show the machines and services of the lab"))
    status.set_defaults(handler=_status)

    reset = commands.add_parser("reset", help=_("give one machine a fresh layer and boot it again"))
    reset.add_argument("host", help=_("host name of the machine"))
    reset.set_defaults(handler=_reset)

    demo = commands.add_parser(
        "demo", help=_("converge the running lab, push the policy, run a backup and write the weekly report")
    )
    demo.add_argument("--out", type=Path, default=Path("out/demo"), help=_("output folder (default: out/demo)"))
    demo.set_defaults(handler=_demo)

    info = commands.add_parser("info", help=_("print how Ansible and molecule connect to a machine (JSON)"))
    info.add_argument("host", nargs="?", help=_("host name of the machine (default: every machine)"))
    info.set_defaults(handler=_info)

    ssh = commands.add_parser("ssh", help=_("log into a machine as root with the lab's key"))
    ssh.add_argument("host", help=_("host name of the machine"))
    ssh.add_argument("command", nargs=argparse.REMAINDER, help=_("command to run instead of a shell"))
    ssh.set_defaults(handler=_ssh)


def _up(args: argparse.Namespace) -> int:
    lab.up(args.inventory, fresh=args.fresh, new_image=args.new_image, timeout=args.timeout)
    return 0


def _down(args: argparse.Namespace) -> int:
    lab.down(args.inventory, grace=args.grace)
    return 0


def _reset(args: argparse.Namespace) -> int:
    lab.reset(args.inventory, args.host)
    return 0


def _ssh(args: argparse.Namespace) -> int:
    plan = lab.load_plan(args.inventory)
    command = lab.ssh_command(plan, args.host, [c for c in args.command if c != "--"])
    os.execvp(command[0], command)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from akm.lab import demo

    plan = lab.load_plan(args.inventory)
    if not lab.is_running(plan):
        raise lab.LabError.one("lab.not-running", _("the lab is not running"), _("run akm lab up first"), field="lab")
    report = demo.run(plan, args.out)
    print(_("The report of the demo is in {path}").format(path=report))
    return 0


def _info(args: argparse.Namespace) -> int:
    plan = lab.load_plan(args.inventory)
    hosts = [plan.machine(args.host)] if args.host else list(plan.machines)
    print(json.dumps([lab.connection(plan, m.hostname) for m in hosts], indent=1, sort_keys=True))
    return 0


def _status(args: argparse.Namespace) -> int:
    plan, rows, services = lab.status(args.inventory)
    header = (_("machine"), _("management"), _("segments"), _("state"), _("memory, MiB"))
    table = [header] + [
        (
            r.hostname,
            r.management,
            r.segments,
            _("running") if r.running else _("stopped"),
            format_number(round(r.memory_kib / 1024)) if r.running else "-",
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    print()
    for name, ok in services.items():
        if name.startswith("image "):
            suite = name.split()[1]
            print(_("image {suite}: {state}").format(suite=suite, state=_("ready") if ok else _("not built")))
        else:
            print(_("{service}: {state}").format(service=name, state=_("running") if ok else _("stopped")))
    running = all(r.running for r in rows)
    print(_("State directory: {path}").format(path=plan.state_dir))
    return 0 if running else 3
