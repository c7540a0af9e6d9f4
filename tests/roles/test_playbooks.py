"""Playbooks: assemble.yml refuses what is not a Debian machine in use. (site.yml's converge and its
no-change second run are proved on the whole lab by tests/lab/test_demo.py.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LAB = REPO / "inventory" / "lab" / "akm.yml"


def _playbook(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    return subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(LAB), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_assemble_refuses_an_asset_that_is_not_in_the_inventory():
    result = _playbook("playbooks/assemble.yml", "-e", "asset=AKM-0404")
    assert result.returncode != 0
    assert "AKM-0404 is not a Debian machine in use" in result.stdout


def test_assemble_refuses_a_device_that_is_not_linux():
    result = _playbook("playbooks/assemble.yml", "-e", "asset=printer-akt")
    assert result.returncode != 0
    assert "found: printer-akt" in result.stdout
