"""Credentials come only from ansible-vault; every way it can be wrong is a located problem."""

from __future__ import annotations

import pytest

from akm.net.vault import Login, VaultError, login_for, read_vault, write_vault


@pytest.fixture
def password_file(tmp_path):
    path = tmp_path / "pw"
    path.write_text("placeholder-vault-password\n")
    return path


def test_round_trip_and_secrets_not_in_repr(tmp_path, password_file):
    vault = tmp_path / "vault.yml"
    entry = {"username": "u", "password": "p-placeholder", "secret": "s"}  # pragma: allowlist secret
    write_vault(vault, password_file, {"vault_net_x": entry})
    assert vault.read_bytes().startswith(b"$ANSIBLE_VAULT;")
    login = login_for(read_vault(vault, password_file), "vault_net_x", vault)
    assert login == Login("u", "p-placeholder", "s")
    assert "p-placeholder" not in repr(login)


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("plain", "net.vault-not-encrypted"),
        ("wrong-password", "net.vault-decrypt"),
        ("missing", "net.vault-missing"),
        ("no-password-file", "net.vault-password-missing"),
        ("no-variable", "net.credentials-missing"),
        ("bad-shape", "net.credentials-shape"),
    ],
)
def test_vault_problems(tmp_path, password_file, case, code):
    vault = tmp_path / "vault.yml"
    write_vault(vault, password_file, {"vault_net_x": {"username": "u"}})
    if case == "plain":
        vault.write_text("vault_net_x: {username: u, password: p}\n")
    wrong = tmp_path / "other"
    wrong.write_text("another-placeholder")
    with pytest.raises(VaultError) as caught:
        variables = read_vault(
            tmp_path / "absent.yml" if case == "missing" else vault,
            {"wrong-password": wrong, "no-password-file": None}.get(case, password_file),
        )
        login_for(variables, "vault_net_y" if case == "no-variable" else "vault_net_x", vault)
    assert [p.code for p in caught.value.problems] == [code]
