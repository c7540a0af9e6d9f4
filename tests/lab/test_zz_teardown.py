"""Crash recovery and teardown. These stop the lab, so they run last and only under ``make lab-test``."""

from __future__ import annotations

import os
import signal

import pytest

from akm.lab import lab
from akm.lab.machines import lab_mounts
from akm.lab.network import host_firewall_exists, host_link_exists, lab_namespaces
from akm.lab.system import RUN_DIR, State, all_pids, cmdline

from .conftest import lab_test_enabled

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(not lab_test_enabled(), reason="stops the lab: only under make lab-test (AKM_LAB_TEST=1)"),
]


def _lab_processes(plan) -> list[int]:
    layer = f"--directory={plan.state_dir / 'machines'}/"
    cache = str(plan.state_dir / "apt-cache" / "conf")
    sim = str(lab.simulator_files(plan.state_dir)["ready"])
    return [pid for pid in all_pids() if any(mark in cmdline(pid) for mark in (layer, cache, sim))]


def test_up_after_a_crash_cleans_the_remains_then_starts(running_lab):
    """A machine killed and the state file lost (as after ``kill -9`` of akm): up repairs it all."""
    victim = State.load().processes[f"machine:{running_lab.machines[0].hostname}"]
    os.kill(victim.pid, signal.SIGKILL)
    (RUN_DIR / "state.json").unlink()
    said = []
    lab.up(running_lab, log=said.append)
    assert any("remains of an earlier lab run" in line for line in said)
    assert lab.is_running(running_lab)


def test_down_leaves_nothing_behind(running_lab):
    lab.down(running_lab, grace=5, log=lambda _line: None)
    assert lab_namespaces() == []
    assert not host_link_exists()
    assert not host_firewall_exists()
    assert lab_mounts(running_lab.state_dir) == []
    assert _lab_processes(running_lab) == []
    assert State.load() is None
    assert lab.leftovers(running_lab.state_dir) == []


def test_down_twice_is_harmless(running_lab):
    said = []
    assert lab.down(running_lab, log=said.append) == []
    assert said == ["The lab was not running; nothing to remove."]
