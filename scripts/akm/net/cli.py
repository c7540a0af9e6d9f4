"""``akm net``: ``backup``, ``push`` and ``health`` of the inventory's network devices.

Every subcommand reads the devices from the inventory and their credentials from ansible-vault before
touching any device, so a missing credential stops the run before anything is half done. The exit code
is 0 when every device succeeded, 1 when at least one did not (the summary says which and why), 2 for
bad input.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import ipaddress
import os
import sys
import tempfile
from pathlib import Path

from akm import evidence
from akm.i18n import _
from akm.net.common import (
    DeviceResult,
    NetError,
    Timeouts,
    pin_host_keys,
    targets_from_inventory,
    write_evidence,
)
from akm.net.vault import default_password_file, default_vault_file, login_for, read_vault


def status_text(status: str) -> str:
    """The translated name of an outcome class."""
    names = {
        "ok": _("ok"),
        "changed": _("changed"),
        "unreachable": _("unreachable"),
        "auth_failed": _("auth failed"),
        "timeout": _("timeout"),
        "error": _("error"),
        "rolled_back": _("rolled back"),
        "host_key": _("host key refused"),
    }
    return names.get(status, status)


def _load(args: argparse.Namespace, stack: contextlib.ExitStack):
    """Inventory targets and their logins, all checked before any device is contacted.

    Each device's pinned host keys (``--known-hosts``, by default the inventory's generated file) are
    written, for the run, into a file that names the device by the address it is reached at (``--via``
    may change it); netmiko refuses a device whose key is not there (:func:`akm.net.common.open_session`).
    """
    from akm.inventory import load_inventory
    from akm.inventory.hostkeys import write_known_hosts

    inventory = load_inventory(args.inventory)
    targets = targets_from_inventory(inventory, args.device or ())
    if args.via:
        targets = [dataclasses.replace(t, host=str(args.via)) for t in targets]
    known = args.known_hosts or write_known_hosts(inventory)
    folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="akm-net-")))
    targets = pin_host_keys(targets, known, folder / "known_hosts")
    args.inventory_root = inventory.root
    args.pinned = {t.name for t in targets if t.name in inventory.host_keys}
    vault_file = args.vault or default_vault_file(Path(inventory.root))
    variables = read_vault(vault_file, args.vault_password_file or default_password_file())
    logins = {t.name: login_for(variables, t.credentials, vault_file) for t in targets}
    args.known_devices = [a.hostname for a in inventory.assets if a.net is not None]
    return targets, logins


def _timeouts(args: argparse.Namespace) -> Timeouts:
    return Timeouts(connect=args.connect_timeout, command=args.timeout)


def print_summary(results: list[DeviceResult], out=None, args: argparse.Namespace | None = None) -> None:
    """Print one line per device: name, platform, outcome, seconds, detail; then, given the run's *args*,
    what to do about each device whose host key was refused."""
    from akm.inventory.hostkeys import advice

    out = out or sys.stdout
    header = (_("device"), _("platform"), _("result"), _("seconds"), _("detail"))
    rows = [(r.device, r.platform, status_text(r.status), f"{r.seconds:.2f}", r.detail) for r in results]
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(4)]
    for row in [header, *rows]:
        print("  ".join(str(cell).ljust(widths[i]) for i, cell in enumerate(row[:4])) + "  " + row[4], file=out)
    for result in results:
        if result.status == "host_key" and args is not None:
            print(advice(args.inventory_root, result.device, result.device in args.pinned), file=sys.stderr)


def _backup(args: argparse.Namespace) -> int:
    from akm.net.backup import backup

    with contextlib.ExitStack() as stack:
        targets, logins = _load(args, stack)
        folder_of_evidence = evidence.directory(args.evidence)
        folder = args.folder or folder_of_evidence / "netconfig"
        run = backup(targets, logins, folder, _timeouts(args), args.workers)
        path = write_evidence(
            folder_of_evidence, "backup", run.started, run.results, folder=str(folder), commit=run.commit
        )
        print_summary(run.results, args=args)
        if run.commit:
            print(_("committed {commit} in {folder}").format(commit=run.commit[:12], folder=folder))
        else:
            print(_("no configuration changed; nothing committed"))
        print(_("evidence: {path}").format(path=path))
        return 0 if run.all_ok else 1


def _push(args: argparse.Namespace) -> int:
    from akm.net.push import PushOptions, push, read_desired

    with contextlib.ExitStack() as stack:
        targets, logins = _load(args, stack)
        desired = read_desired(args.desired, targets, args.known_devices)
        targets = [t for t in targets if t.name in desired]
        options = PushOptions(
            dry_run=args.dry_run,
            confirm=args.confirm,
            confirm_timeout=args.confirm_timeout,
            save=not args.no_save,
            timeouts=_timeouts(args),
            workers=args.workers,
            owner=args.owner,
        )
        started = evidence.iso(evidence.now())
        results = push(targets, logins, desired, options, ask=_ask_operator, report=_show_diff)
        path = write_evidence(evidence.directory(args.evidence), "push", started, results)
        print_summary(results, args=args)
        print(_("evidence: {path}").format(path=path))
        return 0 if all(r.ok for r in results) else 1


def _show_diff(device: str, diff: list[str]) -> None:
    print(_("--- {device}: planned changes").format(device=device))
    for line in diff or [_("(no change)")]:
        print("  " + line)


def _ask_operator(timeout: float) -> bool:
    """Ask on the terminal whether to keep the changes; no answer in *timeout* seconds means no."""
    import select

    if not sys.stdin.isatty():
        print(_("no terminal to ask for confirmation; rolling back (use --confirm yes in playbooks)"))
        return False
    print(
        _("Keep the changes? Type yes within {seconds} seconds, or they are rolled back: ").format(
            seconds=int(timeout)
        ),
        end="",
        flush=True,
    )
    ready, _w, _x = select.select([sys.stdin], [], [], timeout)
    if not ready:
        print()
        return False
    return sys.stdin.readline().strip().lower() in ("yes", "ha", "y")


def _health(args: argparse.Namespace) -> int:
    from akm.net.health import health

    with contextlib.ExitStack() as stack:
        targets, logins = _load(args, stack)
        started = evidence.iso(evidence.now())
        results = health(targets, logins, _timeouts(args), args.workers)
        path = write_evidence(evidence.directory(args.evidence), "health", started, results)
        for result in results:
            if result.ok:
                data = result.data
                print(
                    _("{device}: uptime {uptime}, interfaces up {up}/{total}, with errors: {errors}").format(
                        device=result.device,
                        uptime=data.get("uptime", "?"),
                        up=data.get("up", 0),
                        total=data.get("total", 0),
                        errors=", ".join(data.get("with_errors", [])) or "-",
                    )
                )
        print_summary(results, args=args)
        print(_("evidence: {path}").format(path=path))
        return 0 if all(r.ok for r in results) else 1


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--inventory",
        type=Path,
        default=Path(os.environ.get("AKM_INVENTORY", "inventory/production")),
        help=_("inventory directory (default: AKM_INVENTORY or inventory/production)"),
    )
    parser.add_argument("--vault", type=Path, help=_("ansible-vault file with the device credentials"))
    parser.add_argument(
        "--vault-password-file",
        type=Path,
        help=_("file with the vault password (default: ANSIBLE_VAULT_PASSWORD_FILE)"),
    )
    parser.add_argument("--device", action="append", help=_("only this device (repeatable)"))
    parser.add_argument(
        "--known-hosts",
        type=Path,
        metavar=_("FILE"),
        help=_("known_hosts file of the pinned host keys (default: the inventory's, made from its host_keys)"),
    )
    parser.add_argument(
        "--via",
        type=ipaddress.ip_address,
        metavar=_("ADDRESS"),
        help=_(
            "reach every device at this address (same port) instead of its net.host: the lab's "
            "management host reaches the simulated devices on the control node's address"
        ),
    )
    parser.add_argument("--evidence", type=Path, help=_("evidence directory (default: AKM_EVIDENCE_DIR)"))
    parser.add_argument("--workers", type=int, default=32, help=_("devices handled at the same time"))
    parser.add_argument("--timeout", type=float, default=30.0, help=_("seconds to wait for one command"))
    parser.add_argument("--connect-timeout", type=float, default=10.0, help=_("seconds to wait for a connection"))


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``akm net`` and its subcommands."""
    parser = subparsers.add_parser("net", help=_("network devices: backup, push, health"))
    sub = parser.add_subparsers(dest="net_command", metavar=_("COMMAND"), required=True)

    p = sub.add_parser("backup", help=_("store every device's configuration in a git-tracked folder"))
    _common(p)
    p.add_argument("--folder", type=Path, help=_("git-tracked folder (default: <evidence>/netconfig)"))
    p.set_defaults(handler=_backup)

    p = sub.add_parser("push", help=_("apply desired configuration lines with automatic rollback"))
    _common(p)
    p.add_argument(
        "desired",
        type=Path,
        help=_("a file of CLI lines for one device, or a directory of <hostname>.rsc/.cfg files"),
    )
    p.add_argument("--dry-run", action="store_true", help=_("show the differences only"))
    p.add_argument(
        "--confirm",
        choices=("ask", "yes"),
        default="ask",
        help=_("ask the operator to keep the change (ask) or keep it after the checks pass (yes)"),
    )
    p.add_argument(
        "--confirm-timeout",
        type=float,
        default=120.0,
        help=_("seconds the operator has to confirm before the device rolls back by itself"),
    )
    p.add_argument("--no-save", action="store_true", help=_("do not write the change to startup configuration"))
    p.add_argument(
        "--owner",
        default="akm",
        help=_("RouterOS entries whose comment starts with this are managed; '' manages all (restoring a backup)"),
    )
    p.set_defaults(handler=_push)

    p = sub.add_parser("health", help=_("interfaces up/down, errors and uptime of every device"))
    _common(p)
    p.set_defaults(handler=_health)


__all__ = ["NetError", "register"]
