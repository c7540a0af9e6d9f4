"""``python3 -m akm.backup ...`` — the backup commands alone, as the backup roles run them on hosts.

Hosts get only this package's standard-library code (plus Debian's python3-babel for translations),
not the control node's virtual environment, so this entry point avoids importing the other areas.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from akm.backup import cli
from akm.cli import run_alone

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
    return run_alone("python3 -m akm.backup", cli.register, ("backup", "fixity"), argv)


if __name__ == "__main__":
    sys.exit(main())
