"""A control group of its own for each lab machine.

``systemd-nspawn --keep-unit`` (the host has no systemd to make a scope) puts the container in the cgroup
of whoever started it, under ``payload/``. Without this module every machine would share that one
tree: one machine's ``user@0.service`` cgroup would also hold another machine's user manager, whose
processes it cannot see or kill, so stopping it hangs until its timeout and every SSH login meanwhile
waits (seen as Ansible's "Connection timed out" on a staff PC). Each machine's nspawn is therefore
started inside ``<hierarchy>/akm-lab/<host>`` of each hierarchy systemd tracks processes with (the
unified one, and ``name=systemd`` on a hybrid host), made at the root of the mount so that
``akm lab down`` finds them again from any shell and removes them once the machines are gone.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from akm.i18n import _
from akm.lab.plan import LabError

HOME = "akm-lab"


def hierarchies(mountinfo: str | None = None) -> list[Path]:
    """Mount points of the cgroup hierarchies systemd tracks processes with: cgroup2, and the v1
    ``name=systemd`` one of a hybrid host."""
    if mountinfo is None:
        mountinfo = Path("/proc/self/mountinfo").read_text()
    found = []
    for line in mountinfo.splitlines():
        mount, separator, source = line.partition(" - ")
        if not separator:
            continue
        kind, _device, options = ([*source.split(), "", ""])[:3]
        if kind == "cgroup2" or (kind == "cgroup" and "name=systemd" in options.split(",")):
            found.append(Path(mount.split()[4]))
    return found


def machine_groups(hostname: str, roots: list[Path] | None = None) -> list[Path]:
    """Create (if needed) *hostname*'s cgroup in every tracked hierarchy and return them."""
    roots = hierarchies() if roots is None else roots
    if not roots:
        raise LabError.one(
            "lab.no-cgroup",
            _("no cgroup hierarchy is mounted, so the lab machines cannot be kept apart"),
            _("mount cgroup2 on /sys/fs/cgroup (Debian does so at boot)"),
        )
    groups = []
    for root in roots:
        group = root / HOME / hostname
        _remove_empty(group)  # what the machine's last boot left, so a reset starts from a clean tree
        try:
            group.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise LabError.one(
                "lab.no-cgroup",
                _("cannot create the lab machine's cgroup {path}: {error}").format(path=group, error=error.strerror),
                _("run the lab as root on a host whose cgroup hierarchy is writable"),
            ) from error
        groups.append(group)
    return groups


def enter_argv(groups: list[Path], argv: list[str]) -> list[str]:
    """*argv* run by a shell that first moves itself into *groups* and then becomes *argv* (same PID), so
    nothing nspawn starts is ever outside the machine's own cgroup."""
    script = 'for g; do [ "$g" = -- ] && break; echo $$ > "$g/cgroup.procs" || exit 125; shift; done; shift; exec "$@"'
    return ["sh", "-c", script, "sh", *(str(g) for g in groups), "--", *argv]


def remove_all(roots: list[Path] | None = None) -> list[str]:
    """Remove the lab's cgroups whose processes are gone, deepest first; return ``cgroup:<path>`` of each
    top removed. A cgroup still holding a process stays (its machine is still stopping)."""
    roots = hierarchies() if roots is None else roots
    removed = []
    for root in roots:
        home = root / HOME
        if home.is_dir():
            _remove_empty(home)
            if not home.exists():
                removed.append(f"cgroup:{home}")
    return removed


def _remove_empty(top: Path) -> None:
    """rmdir every cgroup under *top* and *top* itself, deepest first; one with processes stays."""
    for path, _dirs, _files in os.walk(top, topdown=False):
        with contextlib.suppress(OSError):
            os.rmdir(path)
