"""Shared test set-up: messages in English unless a test asks for Uzbek, the repository root, and the
fixtures of the tests that need the running lab.

Tests marked ``lab`` need the running virtual library. They run when the lab is already up, or when
``AKM_LAB_TEST=1`` (set by ``make test`` and ``make lab-test``): then the session fixture brings the lab
up itself (idempotent, so an already running lab is used as it is). Otherwise they are skipped, so a
plain ``pytest`` on a developer's machine never starts containers behind their back.

Tests marked ``privileged`` act on the host as root (network namespaces, Squid, mounts); ``make unit``
leaves them out and ``make lab-test`` runs them. ``needs(tool, ...)`` marks a test that runs a program
``make deps`` installs. Under ``AKM_LAB_TEST=1`` nothing of this is ever a skip: a machine that does not
answer, a missing simulator or tool, or no root is a failure (:func:`unavailable`).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import NoReturn

import pytest

from akm import i18n
from akm.lab import lab
from akm.lab.plan import Plan

REPO = Path(__file__).resolve().parents[1]
LAB_INVENTORY = Path(os.environ.get("AKM_LAB_INVENTORY") or REPO / "inventory" / "lab")


def copy_lab_inventory(dest: Path) -> Path:
    """A copy of inventory/lab as git holds it: without the host keys ``akm lab up`` pins beside it."""
    shutil.copytree(REPO / "inventory" / "lab", dest, ignore=shutil.ignore_patterns("host_keys.yml", ".known_hosts"))
    return dest


def playbook_recap(output: str) -> dict[str, dict[str, int]]:
    """The PLAY RECAP of an ``ansible-playbook`` run: ``{host: {"ok": n, "changed": n, ...}}``."""
    return {
        host: {key: int(value) for key, value in re.findall(r"(\w+)=(\d+)", counts)}
        for host, counts in re.findall(r"^(\S+)\s+:\s+(ok=.*)$", output, flags=re.MULTILINE)
    }


def in_uzbek(message: str) -> str:
    """*message* as a report shows it (Uzbek by default, as the demo and the units write them)."""
    i18n.setup("uz")
    try:
        return i18n._(message)
    finally:
        i18n.setup("en")


def lab_test_enabled() -> bool:
    """True when ``make test`` or ``make lab-test`` asked for the lab tests (they may start and stop the
    lab, and nothing they need may be missing)."""
    return os.environ.get("AKM_LAB_TEST") == "1"


def unavailable(reason: str) -> NoReturn:
    """Skip a test whose machine, tool or privilege is missing — or fail it under ``AKM_LAB_TEST=1``,
    where a missing piece is a defect of the set-up, never a reason to pass quietly."""
    if lab_test_enabled():
        pytest.fail(f"{reason} (AKM_LAB_TEST=1: nothing may be skipped)", pytrace=False)
    pytest.skip(reason)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Apply the ``lab``, ``privileged`` and ``needs`` markers.

    A ``lab`` test converges and changes the shared virtual library, so it runs only when asked for
    (``make test``, ``make lab-test``, or ``AKM_LAB_TEST=1`` by hand), never because a lab happens to be
    up while someone runs ``pytest tests/backup``: that would converge the lab with whatever checkout the
    run comes from, under another person's tests."""
    if item.get_closest_marker("lab") and not lab_test_enabled():
        pytest.skip("a lab test: run it with make lab-test (or AKM_LAB_TEST=1)")
    if item.get_closest_marker("privileged") and os.geteuid() != 0:
        unavailable("acts on the host as root")
    for marker in item.iter_markers("needs"):
        missing = [tool for tool in marker.args if shutil.which(tool) is None]
        if missing:
            unavailable(f"{', '.join(missing)} not installed (make deps)")


@pytest.fixture(autouse=True)
def english_messages():
    """Run each test with English messages; tests of Uzbek output switch themselves."""
    i18n.setup("en")
    yield
    i18n.setup("en")


@pytest.fixture(scope="module")
def loopback_certificate(tmp_path_factory) -> tuple[Path, Path]:
    """A self-signed certificate of 127.0.0.1 and its key, made by openssl, for a local TLS server whose
    clients trust it as their CA file."""
    folder = tmp_path_factory.mktemp("tls")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(folder / "key.pem"), "-out", str(folder / "cert.pem")],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return folder / "cert.pem", folder / "key.pem"


@pytest.fixture
def repo() -> Path:
    """The repository's root directory."""
    return REPO


@pytest.fixture(scope="session")
def lab_plan() -> Plan:
    """The plan of the lab inventory."""
    return lab.load_plan(LAB_INVENTORY)


@pytest.fixture(scope="session")
def running_lab(lab_plan: Plan) -> Plan:
    """The running lab: brought up here under ``AKM_LAB_TEST=1``, else used if up, else skip."""
    if os.geteuid() != 0:
        unavailable("the lab needs root")
    if lab_test_enabled():
        lab.up(lab_plan)
        return lab_plan
    if not lab.is_running(lab_plan):
        unavailable("the lab is not up (make lab, or make lab-test)")
    return lab_plan


@pytest.fixture(scope="session")
def in_lab(running_lab: Plan):
    """Run a command on a lab machine over SSH; return the finished process (text output)."""

    def run(host: str, *command: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        done = subprocess.run(
            lab.ssh_command(running_lab, host, list(command)),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"{host}: {' '.join(command)} failed ({done.returncode}): {done.stderr}")
        return done

    return run


@pytest.fixture(scope="session")
def no_foreign_backup_repositories(running_lab: Plan, in_lab) -> list[str]:
    """Remove repositories on the backup machine that the lab vault's password cannot open.

    An earlier run with throw-away secrets leaves such a repository; it can never be opened again in
    this lab and would make every backup of that host and every prune run red. Returns their names.
    """
    from akm.backup import jobs
    from akm.inventory import load_inventory

    server = jobs.backup_server(load_inventory(running_lab.inventory)).hostname
    script = (
        "[ -f /etc/akm/backup/password ] && [ -d /srv/akm-restic ] || exit 0; cd /srv/akm-restic; "
        'for d in */; do d=${d%/}; [ -f "$d/config" ] || continue; '
        'restic --no-cache --no-lock --password-file /etc/akm/backup/password -r "$d" cat config '
        '>/dev/null 2>&1 || { rm -rf "$d"; echo "$d"; }; done'
    )
    return in_lab(server, shlex.join(["sh", "-c", script]), timeout=300).stdout.split()


def run_molecule(
    scenario_dir: Path,
    stages: tuple[str, ...] = ("converge", "idempotence", "verify"),
    base_config: Path | None = None,
    timeout: float = 900,
) -> str:
    """Run ``molecule test`` in *scenario_dir* (a role's or a test's directory) and assert that it
    passed and ran every one of *stages*; return molecule's output.

    The one runner of every molecule scenario the lab tests drive. *base_config* is molecule's ``-c``
    (the shared lab configuration, ``tests/molecule/lab/config.yml``, which resets the machines); without
    it the scenario's own ``molecule.yml`` is used as ``make molecule`` uses it, with the lab inventory as
    the second inventory source.
    """
    binaries = Path(sys.executable).parent
    env = {
        **os.environ,
        "AKM_REPO": str(REPO),
        "AKM_MOLECULE_INVENTORY": os.environ.get("AKM_MOLECULE_INVENTORY") or str(LAB_INVENTORY),
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "PATH": f"{binaries}{os.pathsep}{os.environ.get('PATH', '')}",
        "NO_COLOR": "1",
    }
    command = [str(binaries / "molecule")]
    if base_config is not None:
        command += ["-c", str(base_config)]
    done = subprocess.run(
        [*command, "test"],
        cwd=scenario_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    output = done.stdout + done.stderr
    failures = [line for line in output.splitlines() if line.startswith(("fatal:", "failed:")) or "FAILED!" in line]
    assert done.returncode == 0, "\n".join(failures[:20]) + "\n...\n" + output[-4000:]
    for stage in stages:
        assert f"{stage}: Executed: Successful" in output, f"{stage} did not run:\n{output[-3000:]}"
    return output


@pytest.fixture(scope="session")
def molecule(running_lab: Plan):
    """:func:`run_molecule` on the running lab."""
    return run_molecule
