"""Hostile files, checked the way a user checks them: ``akm inventory check`` and ``akm policy check`` in
a process of their own.

Alias bombs and deep nesting are checked under an address-space limit of 1 GiB (``RLIMIT_AS``): the
check must end with its own clear error and exit code, never be killed by the limit, run out of memory
with a traceback, or hang. An inventory or policy folder the user may not read must be an error naming
the folder, not an inventory with nothing in it; as root can read anything, a test run as root takes
from the child the two capabilities that let root read what it may not (``CAP_DAC_OVERRIDE``,
``CAP_DAC_READ_SEARCH``), which is what a non-root user lacks.
"""

from __future__ import annotations

import ctypes
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
REPO = HERE.parents[1]
POLICY_TESTS = REPO / "tests" / "policy"
MEMORY_LIMIT = 1 << 30
GUARD = 300  # seconds: only so that a hang fails the test instead of stopping the suite
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, PR_CAPBSET_DROP = 1, 2, 24


def limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def drop_root_reading() -> None:
    """In the child, before it runs akm: lose the capabilities that let root read any file."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def akm(*args: str, preexec=limit_memory) -> subprocess.CompletedProcess:
    command = [sys.executable, "-c", "import sys; from akm.cli import main; sys.exit(main())", "--lang", "en", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=GUARD, preexec_fn=preexec, cwd=REPO)


def laughs(levels: int = 9, width: int = 9, indent: str = "      ") -> str:
    """The billion laughs as YAML lines: each list holds *width* aliases of the one before."""
    lines = [f"{indent}l0: &l0 [" + ", ".join(['"lol"'] * width) + "]"]
    for k in range(1, levels):
        lines.append(f"{indent}l{k}: &l{k} [" + ", ".join([f"*l{k - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


ASSET = """---
assets:
  - inventory_no: AKM-0100
    hostname: pc-100
    kind: workstation
    model: Test PC
    serial: SN-0100
    department: oqish_zali
    room: zal-1
    responsible: i.tech
    purchased: 2024-05-01
    status: in_use
    os: debian12
"""
HOSTILE_INVENTORIES = {
    "laughs-in-vars": ASSET + "    vars:\n" + laughs(),
    "long-text-by-alias": ASSET.replace("Test PC", "&t " + "x" * 2_000_000)
    + "    vars:\n      copies: [" + ", ".join(["*t"] * 50_000) + "]\n",
    "wide-fan-out": ASSET + "    vars:\n      one: &o lol\n      many: [" + ", ".join(["*o"] * 200_000) + "]\n",
    "deep-nesting": ASSET + "    vars:\n      deep: " + "[" * 100_000 + "]" * 100_000 + "\n",
}  # fmt: skip


def inventory_with(tmp_path: Path, text: str) -> Path:
    for source in (HERE / "base").iterdir():
        shutil.copy(source, tmp_path / source.name)
    (tmp_path / "extra.yml").write_text(text)
    return tmp_path


@pytest.mark.parametrize("name", sorted(HOSTILE_INVENTORIES))
def test_a_hostile_inventory_gets_a_clear_error_within_1_gib(name, tmp_path):
    path = inventory_with(tmp_path, HOSTILE_INVENTORIES[name])
    done = akm("inventory", "check", str(path))
    assert done.returncode == 1, f"killed or crashed ({done.returncode}): {done.stderr[-2000:]}"
    assert "Traceback" not in done.stderr and "MemoryError" not in done.stderr
    assert f"{path}/extra.yml:" in done.stderr or "extra.yml:" in done.stderr
    assert "alias bomb" in done.stderr or "YAML syntax error" in done.stderr, done.stderr


def policy_with(tmp_path: Path, rules: str) -> tuple[Path, Path]:
    inventory = tmp_path / "inventory"
    shutil.copytree(POLICY_TESTS / "inventory", inventory)
    policy = tmp_path / "policy"
    shutil.copytree(POLICY_TESTS / "policy", policy)
    shutil.copytree(POLICY_TESTS / "lists", tmp_path / "lists")
    (policy / "rules.yml").write_text(rules)
    return inventory, policy


RULE = """---
rules:
  - id: staff-all
    who: [segment:staff]
    allow: [internet]
"""


@pytest.mark.parametrize(
    "rules",
    [
        RULE + "    note:\n" + laughs(indent="      - ").replace(": &", "-x: &"),
        RULE.replace("    who: [segment:staff]\n", "    who:\n" + laughs(indent="      - ").replace(": &", "-x: &")),
    ],
    ids=["laughs-in-note", "laughs-in-who"],
)
def test_a_hostile_policy_gets_a_clear_error_within_1_gib(rules, tmp_path):
    inventory, policy = policy_with(tmp_path, rules)
    done = akm("policy", "check", "-i", str(inventory), "-p", str(policy), "--at", "2026-11-25T12:00")
    assert done.returncode == 2, f"killed or crashed ({done.returncode}): {done.stderr[-2000:]}"
    assert "Traceback" not in done.stderr
    assert "rules.yml:" in done.stderr and "alias bomb" in done.stderr, done.stderr


def test_a_misspelt_time_zone_is_an_error_not_a_traceback(tmp_path):
    inventory, policy = policy_with(tmp_path, RULE)
    centre = inventory / "centre.yml"
    centre.write_text(centre.read_text().replace("timezone: Asia/Tashkent", "timezone: Asia/Tashkend"))
    done = akm("policy", "check", "-i", str(inventory), "-p", str(policy), "--at", "2026-11-25T12:00")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "'Asia/Tashkend' is not a time zone (did you mean Asia/Tashkent?)" in done.stderr


def test_an_unreadable_assets_folder_is_an_error_naming_it(tmp_path):
    for source in (HERE / "base").iterdir():
        if source.name != "assets.yml":
            shutil.copy(source, tmp_path / source.name)
    assets = tmp_path / "assets"
    assets.mkdir()
    shutil.copy(HERE / "base" / "assets.yml", assets / "assets.yml")
    assets.chmod(0)
    try:
        done = akm("inventory", "check", str(tmp_path), preexec=drop_root_reading if os.geteuid() == 0 else None)
    finally:
        assets.chmod(0o755)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"{assets}: the folder cannot be read: Permission denied" in done.stderr
    assert "valid" not in done.stdout


def test_an_unreadable_policy_folder_is_an_error_naming_it(tmp_path):
    inventory, policy = policy_with(tmp_path, RULE)
    grants = policy / "grants"
    grants.mkdir()
    (policy / "grants.yml").rename(grants / "grants.yml")
    grants.chmod(0)
    try:
        done = akm(
            "policy", "check", "-i", str(inventory), "-p", str(policy), "--at", "2026-11-25T12:00",
            preexec=drop_root_reading if os.geteuid() == 0 else None,
        )  # fmt: skip
    finally:
        grants.chmod(0o755)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"{grants}: the folder cannot be read: Permission denied" in done.stderr
