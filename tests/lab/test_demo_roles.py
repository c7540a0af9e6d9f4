"""Every role has a molecule scenario, and each one runs on the lab: converge, idempotence (a second
converge changes nothing), verify of the machine's real state (issue 4).

Three roles' scenarios are driven by their own area's tests, with the fixtures they need (marker
``molecule``: ``make molecule-test``, out of ``make test`` for CI's time); this module runs every other
role's scenario in ``make test``, as ``make molecule`` does (the scenario's own ``molecule.yml``, on the lab
machine it names). It runs right after the demo (file order), on the converged centre: a scenario's
machine gets its packages through the centre's cache on srv, which later tests reset.
"""

from __future__ import annotations

import pytest

from tests.conftest import REPO

ROLES = sorted(path.name for path in (REPO / "roles").iterdir() if path.is_dir())
RUN_ELSEWHERE = {
    "access_policy": "tests/policy/test_lab_molecule.py",
    "backup_client": "tests/backup/test_lab_roles.py",
    "backup_server": "tests/backup/test_lab_roles.py",
}


@pytest.mark.parametrize("role", ROLES)
def test_every_role_has_a_molecule_scenario(role):
    scenario = REPO / "roles" / role / "molecule" / "default"
    missing = [name for name in ("molecule.yml", "converge.yml", "verify.yml") if not (scenario / name).is_file()]
    assert not missing, f"roles/{role}/molecule/default lacks {missing}"


def test_the_scenarios_run_elsewhere_really_are_run_there():
    for role, module in RUN_ELSEWHERE.items():
        assert f'"roles/{role}"' in (REPO / module).read_text(), f"{module} does not run roles/{role}'s scenario"


@pytest.mark.lab
@pytest.mark.parametrize("role", [role for role in ROLES if role not in RUN_ELSEWHERE])
def test_role_scenario_converges_idempotently_and_verifies(molecule, role):
    molecule(REPO / "roles" / role)
