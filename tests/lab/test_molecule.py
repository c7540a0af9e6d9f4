"""The shared molecule configuration drives a real scenario on a fresh lab machine."""

from __future__ import annotations

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.lab


def test_molecule_smoke_scenario_converges_and_verifies_on_a_reset_machine(molecule):
    molecule(
        REPO / "tests/molecule/smoke",
        stages=("create", "converge", "idempotence", "verify"),
        base_config=REPO / "tests/molecule/lab/config.yml",
        timeout=600,
    )
