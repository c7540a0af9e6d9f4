"""Playbooks: assemble.yml refuses an unknown asset; site.yml converges the lab and re-converges with
nothing changed (the lab test needs `make lab`)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LAB = REPO / "inventory" / "lab" / "akm.yml"


def _playbook(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    return subprocess.run(
        ["ansible-playbook", "-i", str(LAB), *args], cwd=REPO, env=env, capture_output=True, text=True, check=False
    )


def _recap(output: str) -> dict[str, dict[str, int]]:
    """Return ``{host: {"ok": n, "changed": n, ...}}`` from a PLAY RECAP."""
    recap = {}
    for host, counts in re.findall(r"^(\S+)\s+:\s+(ok=.*)$", output, flags=re.MULTILINE):
        recap[host] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", counts)}
    return recap


def test_assemble_refuses_an_asset_that_is_not_in_the_inventory():
    result = _playbook("playbooks/assemble.yml", "-e", "asset=AKM-0404")
    assert result.returncode != 0
    assert "AKM-0404 is not a Debian 12 machine in use" in result.stdout


def test_assemble_refuses_a_device_that_is_not_linux():
    result = _playbook("playbooks/assemble.yml", "-e", "asset=printer-akt")
    assert result.returncode != 0
    assert "found: printer-akt" in result.stdout


@pytest.mark.lab
@pytest.mark.converge
def test_site_converges_the_lab_and_a_second_run_changes_nothing():
    ping = subprocess.run(
        ["ansible", "-i", str(LAB), "linux", "-m", "ansible.builtin.ping", "-o"],
        cwd=REPO,
        env=dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg")),
        capture_output=True,
        text=True,
        check=False,
    )
    if ping.returncode != 0:
        pytest.skip("the lab is not up (make lab)")
    first = _playbook("playbooks/site.yml")
    assert first.returncode == 0, first.stdout[-4000:]
    second = _playbook("playbooks/site.yml")
    assert second.returncode == 0, second.stdout[-4000:]
    recap = _recap(second.stdout)
    assert recap, second.stdout[-2000:]
    assert {host: counts["changed"] for host, counts in recap.items() if counts["changed"]} == {}
