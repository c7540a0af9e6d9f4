"""The control node may run Debian 13: ``make deps`` on a Debian 13 lab machine finds every package it
names (apt resolves them all; ``APT_SIMULATE=1`` installs nothing but ``make`` itself)."""

from __future__ import annotations

import shlex
import subprocess

import pytest

from akm.lab import lab
from tests.conftest import REPO

pytestmark = pytest.mark.lab


def test_make_deps_finds_every_package_on_debian_13(running_lab, in_lab):
    host = next(m.hostname for m in running_lab.machines if m.suite == "trixie" and not m.internet)
    in_lab(host, "mkdir -p /root/akm-deps")
    copy = lab.ssh_command(running_lab, host, ["cat > /root/akm-deps/Makefile"])
    with (REPO / "Makefile").open("rb") as makefile:
        subprocess.run(copy, stdin=makefile, check=True, timeout=60)
    in_lab(host, "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq make", timeout=600)
    done = in_lab(host, "make -C /root/akm-deps deps APT_SIMULATE=1", check=False, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    # apt's simulation names each package it would set up ("Inst <name> ..."): every one the Makefile
    # names and the machine lacks is among them, so none is unknown to Debian 13.
    installed = set(in_lab(host, "dpkg-query -W -f='${Package}\\n'").stdout.split())
    planned = {line.split()[1] for line in done.stdout.splitlines() if line.startswith("Inst ")}
    wanted = set(_make_variable("APT_PACKAGES")) - installed
    assert wanted and wanted <= planned, sorted(wanted - planned)


def _make_variable(name: str) -> list[str]:
    """The value of the Makefile's variable *name*, as make expands it."""
    done = subprocess.run(
        ["make", "-s", "--no-print-directory", "-f", "-", "print"],
        input=f"include {shlex.quote(str(REPO / 'Makefile'))}\nprint:\n\t@echo $({name})\n",
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
    )
    return done.stdout.split()
