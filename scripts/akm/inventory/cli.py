"""``akm inventory check|show|hostkeys|known-hosts``: validate the inventory, show what it holds, record
the hosts' SSH host keys and write the known_hosts file of them."""

from __future__ import annotations

import argparse
import gc
import json
import sys
from collections import Counter
from pathlib import Path

from akm.i18n import _, format_number
from akm.inventory.ansible import build
from akm.inventory.load import InventoryError, load_inventory

DEFAULT_ROOT = Path("inventory")


def _default_inventories() -> list[Path]:
    return sorted(p.parent for p in DEFAULT_ROOT.glob("*/akm.yml"))


def _check(args: argparse.Namespace) -> int:
    paths = args.paths or _default_inventories()
    failed = False
    for path in paths:
        try:
            inventory = load_inventory(path)
            # The records live until the process ends; frozen, the collector no longer walks them.
            gc.freeze()
        except InventoryError as exc:
            failed = True
            for problem in exc.problems:
                print(problem.render(), file=sys.stderr)
            print(
                _("{path}: {count} problem(s); nothing was written").format(path=path, count=len(exc.problems)),
                file=sys.stderr,
            )
            continue
        for warning in inventory.warnings:
            print(_("warning: ") + warning.render(), file=sys.stderr)
        print(
            _("{path}: valid — {assets} assets, {people} people, {segments} segments").format(
                path=path,
                assets=format_number(len(inventory.assets)),
                people=format_number(len(inventory.people)),
                segments=format_number(len(inventory.segments)),
            )
        )
    return 1 if failed else 0


def _show(args: argparse.Namespace) -> int:
    inventory = load_inventory(args.path)
    if args.format == "json":
        json.dump(build(inventory), sys.stdout, indent=2, sort_keys=True, ensure_ascii=False)
        print()
        return 0
    print(f"{inventory.centre.name} — {inventory.root}")
    by_status = Counter(a.status for a in inventory.assets)
    print(_("Assets by status:"), ", ".join(f"{k} {format_number(v)}" for k, v in sorted(by_status.items())))
    by_kind = Counter(a.kind for a in inventory.assets)
    print(_("Assets by kind:"), ", ".join(f"{k} {format_number(v)}" for k, v in sorted(by_kind.items())))
    print()
    header = (_("Number"), _("Host"), _("Kind"), _("Department"), _("Address"), _("Status"), _("Profiles"))
    rows = [
        (a.inventory_no, a.hostname, a.kind, a.department, str(a.address or "—"), a.status, ",".join(a.profiles) or "—")
        for a in inventory.assets
    ]
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return 0


def _status_texts() -> dict[str, str]:
    return {"new": _("new"), "same": _("unchanged"), "changed": _("CHANGED"), "unreachable": _("no answer")}


def _key_cell(finding) -> str:
    def shown(keys) -> str:
        return ", ".join(f"{key.fingerprint} ({key.type})" for key in keys) or "—"

    if finding.status == "new":
        return shown([finding.chosen])
    if finding.status == "changed":
        return _("pinned {pinned}; presented {presented}").format(
            pinned=shown(finding.recorded), presented=shown(finding.presented)
        )
    return shown(finding.recorded)


def _hostkeys(args: argparse.Namespace) -> int:
    """Survey the hosts' SSH keys, show new and changed ones, and with --write record them."""
    from akm.inventory import hostkeys

    inventory = load_inventory(args.inventory)
    replace = set(args.replace or ())
    names = [*(args.host or ()), *sorted(replace - set(args.host or ()))] if args.host else []
    findings = hostkeys.survey(inventory, names, args.timeout)
    texts = _status_texts()
    rows = [(f.target.name, f"{f.target.address}:{f.target.port}", texts[f.status], _key_cell(f)) for f in findings]
    header = (_("Host"), _("Address"), _("Key"), _("Fingerprint"))
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(3)]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[3])
    refused = [f for f in findings if f.status == "changed" and f.target.name not in replace]
    for finding in refused:
        print(hostkeys.advice(inventory.root, finding.target.name, changed=True), file=sys.stderr)
    to_record = [f for f in findings if f.status == "new" or (f.status == "changed" and f.target.name in replace)]
    if args.write:
        for written in hostkeys.record(args.inventory, findings, replace):
            print(_("recorded the key of {host} in {file}:{line}").format(**vars(written)))
        inventory = load_inventory(args.inventory)
        print(_("known_hosts: {path}").format(path=hostkeys.write_known_hosts(inventory)))
    elif to_record:
        print(
            _(
                "Nothing was written: compare each new fingerprint with the machine's console, then add --write "
                "to record {count} key(s)."
            ).format(count=len(to_record))
        )
    silent = [f.target.name for f in findings if f.status == "unreachable"]
    if silent:
        print(_("No answer from: {hosts} (switched off, or SSH not running)").format(hosts=", ".join(silent)))
    return 1 if refused or silent else 0


def _known_hosts(args: argparse.Namespace) -> int:
    """Write the known_hosts file of the inventory's recorded keys."""
    from akm.inventory import hostkeys

    inventory = load_inventory(args.inventory)
    path = hostkeys.write_known_hosts(inventory, args.output)
    print(_("{path}: the keys of {count} host(s)").format(path=path, count=format_number(len(inventory.host_keys))))
    return 0


def _inventory_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-i",
        "--inventory",
        type=Path,
        default=Path("inventory/production"),
        metavar=_("INVENTORY"),
        help=_("inventory directory (default: inventory/production)"),
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``akm inventory`` and its subcommands."""
    parser = subparsers.add_parser("inventory", help=_("validate and show the inventory (T6)"))
    commands = parser.add_subparsers(dest="command", metavar=_("COMMAND"), required=True)
    check = commands.add_parser("check", help=_("validate inventories; report every problem"))
    check.add_argument(
        "paths", nargs="*", type=Path, metavar=_("PATH"), help=_("inventory directories (default: every inventory/*/)")
    )
    check.set_defaults(handler=_check)
    show = commands.add_parser("show", help=_("print the register of assets"))
    show.add_argument("path", nargs="?", type=Path, default=Path("inventory/production"), metavar=_("PATH"))
    show.add_argument("--format", choices=("table", "json"), default="table")
    show.set_defaults(handler=_show)
    keys = commands.add_parser(
        "hostkeys", help=_("read the hosts' SSH host keys; show new and changed ones; --write records them")
    )
    _inventory_option(keys)
    keys.add_argument("--host", action="append", metavar=_("HOST"), help=_("only this host (repeatable)"))
    keys.add_argument(
        "--write", action="store_true", help=_("record the new keys (and those of --replace) in the inventory")
    )
    keys.add_argument(
        "--replace",
        action="append",
        metavar=_("HOST"),
        help=_("record this host's changed key in place of the pinned one, with --write (repeatable)"),
    )
    keys.add_argument("--timeout", type=int, default=5, help=_("seconds to wait for each host (default: 5)"))
    keys.set_defaults(handler=_hostkeys)
    known = commands.add_parser("known-hosts", help=_("write the known_hosts file of the inventory's host keys"))
    _inventory_option(known)
    known.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar=_("FILE"),
        help=_("the file to write (default: the inventory's .known_hosts)"),
    )
    known.set_defaults(handler=_known_hosts)
