"""``python3 -m akm.evidence check|write|schema`` — the evidence commands alone, as hosts run them.

Hosts have this package's library and Debian's python3 only, so this entry point does not import the
other areas (``akm.cli`` would).
"""

from __future__ import annotations

import sys

from akm.cli import run_alone
from akm.evidence import cli

if __name__ == "__main__":
    sys.exit(run_alone("python3 -m akm.evidence", cli.register, ("evidence",), sys.argv[1:]))
