"""The access_policy role's molecule scenario on a fresh lab gateway: converge, idempotence, verify."""

from __future__ import annotations

import pytest

from tests.conftest import REPO

pytestmark = [pytest.mark.lab, pytest.mark.molecule]


def test_access_policy_role_scenario_converges_idempotently_and_verifies(molecule):
    molecule(
        REPO / "roles/access_policy",
        stages=("create", "converge", "idempotence", "verify"),
        base_config=REPO / "tests/molecule/lab/config.yml",
    )
