"""The one command-line entry point, ``akm``, with a subcommand per area.

Each area module exposes ``register(subparsers)``, which adds its subcommand and sets ``handler`` on the
parsed arguments. ``AREAS`` is the explicit registry: a new area is one import and one line here.
Errors of the package (:class:`akm.errors.Error`) are printed as located problems and end the process
with the error's exit code; nothing else is caught, so a bug still shows its traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from akm import i18n
from akm.errors import Error
from akm.i18n import _


def _areas() -> list:
    from akm.alert import cli as alert_cli
    from akm.backup import cli as backup_cli
    from akm.collect import cli as collect_cli
    from akm.duties import cli as duties_cli
    from akm.evidence import cli as evidence_cli
    from akm.inventory import cli as inventory_cli
    from akm.lab import cli as lab_cli
    from akm.net import cli as net_cli
    from akm.policy import cli as policy_cli
    from akm.report import cli as report_cli
    from akm.vault import cli as vault_cli

    return [
        inventory_cli,
        lab_cli,
        policy_cli,
        net_cli,
        backup_cli,
        report_cli,
        collect_cli,
        evidence_cli,
        duties_cli,
        vault_cli,
        alert_cli,
    ]


def build_parser() -> argparse.ArgumentParser:
    """Build the parser of ``akm`` and every registered area."""
    parser = argparse.ArgumentParser(
        prog="akm",
        description=_("Inventory-driven infrastructure of the Information-Library Centre."),
    )
    parser.add_argument(
        "--lang",
        choices=i18n.LANGUAGES,
        help=_("language of messages and reports (default: uz, or AKM_LANG)"),
    )
    subparsers = parser.add_subparsers(dest="area", metavar=_("AREA"), required=True)
    for area in _areas():
        area.register(subparsers)
    return parser


def _language_from(argv: Sequence[str]) -> str | None:
    for index, word in enumerate(argv):
        if word == "--lang" and index + 1 < len(argv):
            return argv[index + 1]
        if word.startswith("--lang="):
            return word.split("=", 1)[1]
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``akm`` with *argv* and return the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        i18n.setup(_language_from(argv))
    except ValueError as exc:
        i18n.setup("uz")
        print(
            _("akm: unknown language {lang!r}; choose one of: {choices}").format(
                lang=str(exc), choices=", ".join(i18n.LANGUAGES)
            ),
            file=sys.stderr,
        )
        return 2
    return run_handler(build_parser().parse_args(argv))


def run_handler(args: argparse.Namespace) -> int:
    """Run the handler of parsed *args*; print the problems of an :class:`Error` and return its code."""
    try:
        return int(args.handler(args) or 0)
    except Error as exc:
        for problem in exc.problems:
            print(problem.render(), file=sys.stderr)
        return exc.exit_code


def run_alone(prog: str, register, areas: tuple[str, ...], argv: list[str]) -> int:
    """Run the commands of one area without the others (``python3 -m akm.backup``): a host has that
    area's library only. *argv* may start with ``--lang L``; without one of *areas* first, the first is
    meant."""
    language = None
    if argv[:1] == ["--lang"] and len(argv) > 1:
        language, argv = argv[1], argv[2:]
    i18n.setup(language)
    parser = argparse.ArgumentParser(prog=prog)
    register(parser.add_subparsers(dest="area", required=True))
    return run_handler(parser.parse_args(argv if argv[:1] and argv[0] in areas else [areas[0], *argv]))


if __name__ == "__main__":
    sys.exit(main())
