"""``akm duties check|list|docs``: the list of scheduled duties, checked, resolved and documented."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from akm.duties import DEFAULT_FILE, assignments, load, time_of_day
from akm.i18n import _, format_number


def _check(args: argparse.Namespace) -> int:
    duties = load(args.file)
    built = sum(d.status == "built" for d in duties)
    print(
        _("{file}: valid — {count} duties, {built} built, {to_build} still to build").format(
            file=args.file,
            count=format_number(len(duties)),
            built=format_number(built),
            to_build=format_number(len(duties) - built),
        )
    )
    return 0


def _list(args: argparse.Namespace) -> int:
    duties = [d for d in load(args.file) if args.profile is None or d.runs_on == args.profile]
    if args.inventory is None:
        rows = [
            {
                "duty": d.id,
                "runs_on": d.runs_on,
                "per": d.per,
                "calendar": d.calendar,
                "timer": d.timer,
                "service": d.service,
                "status": d.status,
            }
            for d in duties
        ]
    else:
        from akm.inventory import load_inventory

        rows = [
            {
                "host": a.host,
                "duty": a.duty.id,
                "calendar": a.duty.calendar,
                "time": time_of_day(a.duty.calendar),
                "timer": a.timer,
                "service": a.service,
                "status": a.duty.status,
                "stock": a.duty.stock,
            }
            for a in assignments(duties, load_inventory(args.inventory))
        ]
    if args.format == "json":
        json.dump(rows, sys.stdout, indent=1, ensure_ascii=False)
        print()
        return 0
    columns = [
        c for c in ("host", "duty", "runs_on", "per", "calendar", "timer", "service", "status") if rows and c in rows[0]
    ]
    table = [[str(row[c]) for c in columns] for row in rows]
    widths = [max(len(x) for x in [c, *(r[i] for r in table)]) for i, c in enumerate(columns)]
    for row in [columns, *table]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return 0


def _docs(args: argparse.Namespace) -> int:
    from akm.duties.docs import render

    sys.stdout.write(render(load(args.file)))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``akm duties`` and its subcommands."""
    parser = subparsers.add_parser("duties", help=_("scheduled duties: check the list, where each runs, its page"))
    commands = parser.add_subparsers(dest="command", metavar=_("COMMAND"), required=True)
    check = commands.add_parser("check", help=_("check the list against systemd, the evidence schema and the roles"))
    show = commands.add_parser("list", help=_("which duties run where (with -i: on which hosts of an inventory)"))
    docs = commands.add_parser("docs", help=_("print docs/operations.md made from the list"))
    for command in (check, show, docs):
        command.add_argument(
            "--file", type=Path, default=DEFAULT_FILE, help=_("the list of duties (default: policies/duties.yml)")
        )
    show.add_argument("-i", "--inventory", type=Path, help=_("inventory directory whose hosts run the duties"))
    show.add_argument("--profile", help=_("only the duties that run on this profile (or linux, data, fixity)"))
    show.add_argument("--format", choices=("table", "json"), default="table")
    check.set_defaults(handler=_check)
    show.set_defaults(handler=_list)
    docs.set_defaults(handler=_docs)
