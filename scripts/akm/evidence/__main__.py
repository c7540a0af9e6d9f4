"""``python3 -m akm.evidence check|write|schema`` — the evidence commands alone, as hosts run them.

Hosts have this package's library and Debian's python3 only, so this entry point does not import the
other areas (``akm.cli`` would).
"""

from __future__ import annotations

import argparse
import sys

from akm import i18n
from akm.errors import Error
from akm.evidence import cli


def main(argv: list[str] | None = None) -> int:
    """Run ``akm evidence COMMAND ...`` without the rest of the CLI."""
    argv = list(sys.argv[1:] if argv is None else argv)
    language = None
    if argv[:1] == ["--lang"] and len(argv) > 1:
        language, argv = argv[1], argv[2:]
    i18n.setup(language)
    parser = argparse.ArgumentParser(prog="python3 -m akm.evidence")
    cli.register(parser.add_subparsers(dest="area", required=True))
    args = parser.parse_args(["evidence", *argv])
    try:
        return int(args.handler(args) or 0)
    except Error as exc:
        for problem in exc.problems:
            print(problem.render(), file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
