"""``akm evidence check|write|schema``: check records against the schema, write one from a shell script.

``python3 -m akm.evidence`` runs the same commands on hosts, where only Debian's ``python3`` (with
``python3-jsonschema`` and ``python3-babel``) and this package's library are installed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from akm import evidence
from akm.i18n import _, format_number


def _check(args: argparse.Namespace) -> int:
    count, found = 0, []
    for path in args.paths:
        for file in evidence.files(path) if path.is_dir() else [path]:
            records, problems = evidence.load(file)
            count += len(records)
            found.extend(problems)
    for problem in found:
        print(problem.render(), file=sys.stderr)
    print(
        _("{count} records fit the evidence schema, {problems} problems").format(
            count=format_number(count), problems=format_number(len(found))
        )
    )
    return 1 if found else 0


def _pair(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(_("write NAME=VALUE"))
    return name, value


def _number(text: str) -> tuple[str, int]:
    name, value = _pair(text)
    try:
        return name, int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(_("write NAME=NUMBER (a whole number)")) from None


def _write(args: argparse.Namespace) -> int:
    parts = dict(args.set) | dict(args.number)
    moment = evidence.now()
    data = evidence.record(args.kind, args.result, time=moment, host=args.host, **parts)
    name = args.name.replace("{stamp}", evidence.stamp(moment))
    print(evidence.write(evidence.directory(args.dir), name, data))
    return 0


def _schema(_args: argparse.Namespace) -> int:
    print(evidence.SCHEMA_FILE)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``akm evidence`` and its subcommands."""
    parser = subparsers.add_parser("evidence", help=_("evidence records: check them against the schema"))
    commands = parser.add_subparsers(dest="command", metavar=_("COMMAND"), required=True)
    check = commands.add_parser("check", help=_("check record files or directories against the schema"))
    check.add_argument("paths", nargs="+", type=Path, metavar=_("PATH"))
    check.set_defaults(handler=_check)
    write = commands.add_parser("write", help=_("write one record (for shell scripts)"))
    write.add_argument("--dir", type=Path, help=_("directory of the record (default: AKM_EVIDENCE_DIR)"))
    write.add_argument("--name", required=True, help=_("file name without .json; {stamp} is the UTC time"))
    write.add_argument("--kind", required=True, choices=evidence.kinds())
    write.add_argument("--result", required=True, choices=evidence.RESULTS)
    write.add_argument("--host", help=_("inventory hostname (default: this machine's name)"))
    write.add_argument(
        "--set", action="append", type=_pair, default=[], metavar="NAME=VALUE", help=_("a field of the record")
    )
    write.add_argument(
        "--number",
        action="append",
        type=_number,
        default=[],
        metavar="NAME=NUMBER",
        help=_("a field of the record that is a whole number"),
    )
    write.set_defaults(handler=_write)
    schema = commands.add_parser("schema", help=_("print where the schema file is"))
    schema.set_defaults(handler=_schema)
