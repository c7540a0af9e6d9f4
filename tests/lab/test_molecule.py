"""The shared molecule configuration drives a real scenario on a fresh lab machine."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]


def test_molecule_smoke_scenario_converges_and_verifies_on_a_reset_machine(running_lab):
    binaries = Path(sys.executable).parent
    env = {
        **os.environ,
        "AKM_REPO": str(REPO),
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "PATH": f"{binaries}{os.pathsep}{os.environ.get('PATH', '')}",
        "NO_COLOR": "1",
    }
    done = subprocess.run(
        [str(binaries / "molecule"), "-c", str(REPO / "tests/molecule/lab/config.yml"), "test"],
        cwd=REPO / "tests/molecule/smoke",
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    for stage in ("create", "converge", "idempotence", "verify"):
        assert f"{stage}: Executed: Successful" in output, stage
