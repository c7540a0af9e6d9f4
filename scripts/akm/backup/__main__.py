"""``python3 -m akm.backup ...`` — the backup commands alone, as the backup roles run them on hosts.

Hosts get only this package's standard-library code (plus Debian's python3-babel for translations),
not the control node's virtual environment, so this entry point avoids importing the other areas.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from akm import i18n
from akm.backup import cli
from akm.errors import Error

ENV_FILE = Path("/etc/akm/backup/backup.env")


def load_env_file(path: Path) -> None:
    """Take ``KEY=value`` settings written by the backup_client role, unless already set."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return
    for line in lines:
        key, sep, value = line.strip().partition("=")
        if sep and key and not key.startswith("#"):
            os.environ.setdefault(key.strip(), value.strip())


def main(argv: list[str] | None = None) -> int:
    """Run ``akm backup ACTION ...`` without the rest of the CLI."""
    argv = list(sys.argv[1:] if argv is None else argv)
    load_env_file(Path(os.environ.get("AKM_BACKUP_ENV_FILE", ENV_FILE)))
    language = None
    if argv[:1] == ["--lang"] and len(argv) > 1:
        language, argv = argv[1], argv[2:]
    i18n.setup(language)
    parser = argparse.ArgumentParser(prog="python3 -m akm.backup")
    cli.register(parser.add_subparsers(dest="area", required=True))
    args = parser.parse_args(["backup", *argv] if argv[:1] not in (["backup"], ["fixity"]) else argv)
    try:
        return int(args.handler(args) or 0)
    except Error as exc:
        for problem in exc.problems:
            print(problem.render(), file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
