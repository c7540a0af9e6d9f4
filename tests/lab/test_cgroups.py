"""The lab machines' own cgroups: which hierarchies, how a machine's nspawn enters them, and cleanup.

The hierarchies are directories in tmp_path here (a real cgroup needs root and a running lab; the lab
test in test_running.py checks the real trees): ``cgroup.procs`` is then a plain file, so what the
shell wrote into it can be read back and compared with the PID of the program it became.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from akm.lab import cgroups
from akm.lab.plan import LabError

HYBRID = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""

UNIFIED = """\
22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate
"""


def test_a_hybrid_host_tracks_with_the_unified_and_the_systemd_hierarchies():
    assert [str(p) for p in cgroups.hierarchies(HYBRID)] == ["/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified"]


def test_a_unified_host_has_one_hierarchy():
    assert [str(p) for p in cgroups.hierarchies(UNIFIED)] == ["/sys/fs/cgroup"]


def test_this_host_has_a_hierarchy_to_track_with():
    assert cgroups.hierarchies()


def test_the_machine_program_runs_inside_every_group_with_its_own_pid(tmp_path):
    roots = [tmp_path / "systemd", tmp_path / "unified"]
    groups = cgroups.machine_groups("xodim-01", roots)
    assert groups == [root / "akm-lab" / "xodim-01" for root in roots]
    argv = [sys.executable, "-c", "import os; print(os.getpid())"]
    ran = subprocess.run(cgroups.enter_argv(groups, argv), capture_output=True, text=True, check=True)
    for group in groups:
        assert (group / "cgroup.procs").read_text() == ran.stdout  # the shell's PID is the program's


def test_the_machine_program_does_not_start_outside_its_group(tmp_path):
    group = tmp_path / "unified" / "akm-lab" / "oqish-01"  # never created: the move fails
    ran = subprocess.run(cgroups.enter_argv([group], ["touch", str(tmp_path / "started")]), capture_output=True)
    assert ran.returncode == 125
    assert not (tmp_path / "started").exists()


def test_a_group_that_cannot_be_made_is_a_clear_error(tmp_path):
    (tmp_path / "unified").write_text("")  # a file where the hierarchy should be
    with pytest.raises(LabError) as raised:
        cgroups.machine_groups("srv", [tmp_path / "unified"])
    [problem] = raised.value.problems
    assert problem.code == "lab.no-cgroup"
    assert str(tmp_path / "unified" / "akm-lab" / "srv") in problem.message


def test_no_hierarchy_is_a_clear_error():
    with pytest.raises(LabError) as raised:
        cgroups.machine_groups("srv", [])
    assert [p.code for p in raised.value.problems] == ["lab.no-cgroup"]


def test_down_removes_the_emptied_groups_and_keeps_a_busy_one(tmp_path):
    roots = [tmp_path / "systemd", tmp_path / "unified"]
    for host in ("srv", "bak"):
        for group in cgroups.machine_groups(host, roots):
            (group / "payload" / "user.slice").mkdir(parents=True)
    busy = tmp_path / "unified" / "akm-lab" / "bak" / "payload" / "cgroup.procs"
    busy.write_text("4242\n")  # rmdir of a real cgroup with a process fails as this one does
    assert cgroups.remove_all(roots) == [f"cgroup:{tmp_path / 'systemd' / 'akm-lab'}"]
    assert not (tmp_path / "unified" / "akm-lab" / "srv").exists()
    assert busy.exists()


def test_a_reset_machine_starts_from_a_clean_tree(tmp_path):
    [group] = cgroups.machine_groups("oqish-02", [tmp_path])
    (group / "payload" / "system.slice" / "ssh.service").mkdir(parents=True)
    assert cgroups.machine_groups("oqish-02", [tmp_path]) == [group]
    assert list(group.iterdir()) == []
