"""``akm inventory check|show``: validate the inventory and show what it holds."""

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
