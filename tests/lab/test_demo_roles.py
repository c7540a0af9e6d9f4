"""Every role has a molecule scenario, and each one runs on the lab: converge, idempotence (a second
converge changes nothing), verify of the machine's real state (issue 4).

The scenarios run right after the demo (file order), on the converged centre: a scenario's machine gets
its packages through the centre's cache on srv, which later tests reset. Most run on the machine their
own ``molecule.yml`` names, as ``make molecule`` does; ``access_policy``'s resets its gateway first (the
shared lab configuration). The three long ones carry the marker ``molecule`` (``make molecule-test``
runs them alone).
"""

from __future__ import annotations

import pytest

from tests.conftest import REPO

ROLES = sorted(path.name for path in (REPO / "roles").iterdir() if path.is_dir())
LONG = {"access_policy", "backup_client", "backup_server"}
# How a scenario runs when not as make molecule runs it: molecule's arguments and fixtures it needs first.
SPECIAL = {
    "access_policy": {
        "stages": ("create", "converge", "idempotence", "verify"),
        "base_config": REPO / "tests/molecule/lab/config.yml",
    },
}
NEEDS = {"backup_client": ("no_foreign_backup_repositories",)}


@pytest.mark.parametrize("role", ROLES)
def test_every_role_has_a_molecule_scenario(role):
    scenario = REPO / "roles" / role / "molecule" / "default"
    missing = [name for name in ("molecule.yml", "converge.yml", "verify.yml") if not (scenario / name).is_file()]
    assert not missing, f"roles/{role}/molecule/default lacks {missing}"


@pytest.mark.lab
@pytest.mark.parametrize("role", [pytest.param(r, marks=pytest.mark.molecule) if r in LONG else r for r in ROLES])
def test_role_scenario_converges_idempotently_and_verifies(molecule, role, request):
    for fixture in NEEDS.get(role, ()):
        request.getfixturevalue(fixture)
    molecule(REPO / "roles" / role, **SPECIAL.get(role, {}))
