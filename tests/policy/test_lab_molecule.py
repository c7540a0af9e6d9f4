"""The access_policy role's molecule scenario on a fresh lab gateway: converge, idempotence, verify."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.lab


def test_access_policy_role_scenario_converges_idempotently_and_verifies(running_lab):
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
        cwd=REPO / "roles/access_policy",
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    for stage in ("create", "converge", "idempotence", "verify"):
        assert f"{stage}: Executed: Successful" in output, stage
