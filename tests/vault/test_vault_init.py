"""``akm vault init``: makes every secret of the list the vault lacks, encrypted as ansible-vault reads it;
keeps what is there; runs again without a change; refuses bad arguments with a located error."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from akm import vault
from akm.cli import main as akm
from akm.errors import Error
from akm.inventory import load_inventory
from akm.net.vault import write_vault
from akm.vault import cli as vault_cli

REPO = Path(__file__).resolve().parents[2]
PRODUCTION = REPO / "inventory" / "production"
ANSIBLE_VAULT = Path(sys.executable).parent / "ansible-vault"


@pytest.fixture
def files(tmp_path):
    password = tmp_path / "vault-password"
    password.write_text("a throwaway test password\n")
    return tmp_path / "group_vars" / "all" / "vault.yml", password


def _akm(capsys, command: str, vault_file: Path, password: Path | None, inventory: Path = PRODUCTION):
    argv = ["--lang", "en", "vault", command, "-i", str(inventory), "--vault", str(vault_file)]
    if password is not None:
        argv += ["--vault-password-file", str(password)]
    code = akm(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def _ansible_vault_view(vault_file: Path, password: Path) -> dict:
    """The vault as ansible-vault itself decrypts it."""
    done = subprocess.run(
        [str(ANSIBLE_VAULT), "view", "--vault-password-file", str(password), str(vault_file)],
        capture_output=True,
        text=True,
        check=True,
    )
    return yaml.safe_load(done.stdout)


def test_init_makes_every_secret_the_playbooks_need(files, capsys, monkeypatch):
    vault_file, password = files
    monkeypatch.delenv("ANSIBLE_VAULT_PASSWORD_FILE", raising=False)
    inventory = load_inventory(PRODUCTION)
    secrets = vault.load(REPO / "policies" / "secrets.yml")
    expected = {name for secret in secrets for name in secret.names(inventory)}

    code, out, err = _akm(capsys, "init", vault_file, password)
    assert code == 0, err
    made = _ansible_vault_view(vault_file, password)
    assert set(made) == expected
    assert vault.missing(secrets, made, inventory) == []
    assert set(made["vault_file_server_smb_passwords"]) == set(inventory.people)
    assert made["vault_net_sw_core"]["username"] == vault.DEVICE_USER
    assert len({made["vault_backup_restic_password"], made["vault_backup_rest_secret"]}) == 2
    assert vault_file.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in vault_file.parent.iterdir()) == ["vault.yml"]
    lines = out.splitlines()
    assert any(
        line.startswith(f"{vault_file}: made vault_backup_rest_secret; needed by playbooks/backup.yml ")
        for line in lines
    )
    assert any("create the user akm with this password on the device" in line for line in lines)
    assert lines[-1] == f"{vault_file}: {len(expected)} secrets made, the others kept"
    assert _akm(capsys, "check", vault_file, password)[0] == 0


def test_init_again_changes_nothing(files, capsys):
    vault_file, password = files
    assert _akm(capsys, "init", vault_file, password)[0] == 0
    before = vault_file.read_bytes(), vault_file.stat().st_mtime_ns
    code, out, _err = _akm(capsys, "init", vault_file, password)
    assert code == 0
    assert out == f"{vault_file}: the vault holds every secret of the list; nothing written\n"
    assert (vault_file.read_bytes(), vault_file.stat().st_mtime_ns) == before


def test_init_keeps_every_value_the_vault_holds(files, capsys):
    vault_file, password = files
    kept = {
        "vault_backup_restic_password": "an existing repository password",  # pragma: allowlist secret
        "vault_alert_telegram_token": "short",  # pragma: allowlist secret
        "vault_file_server_smb_passwords": {"d.karimova": "her first password"},  # pragma: allowlist secret
        "vault_net_mikrotik": {"username": "admin", "password": "the router's password"},  # pragma: allowlist secret
        "an_unlisted_variable": 42,
    }
    write_vault(vault_file, password, kept)
    code, _out, err = _akm(capsys, "init", vault_file, password)
    assert code == 0
    made = _ansible_vault_view(vault_file, password)
    for name in ("vault_backup_restic_password", "vault_alert_telegram_token", "vault_net_mikrotik"):
        assert made[name] == kept[name]
    assert made["an_unlisted_variable"] == 42
    people = made["vault_file_server_smb_passwords"]
    assert people["d.karimova"] == "her first password"  # pragma: allowlist secret
    assert set(people) == set(load_inventory(PRODUCTION).people)
    assert err == (
        f"{vault_file}: warning: vault_alert_telegram_token has the wrong shape: it must be text of at least 16 "
        "characters; kept as it is, correct it with ansible-vault edit\n"
    )
    assert _akm(capsys, "check", vault_file, password)[0] == 1


def _refused(capsys, vault_file, password, code: str, where: str, field: str = "") -> str:
    """Run ``akm vault init``: exit 2, one located line, nothing on stdout; the error has *code*."""
    args = argparse.Namespace(
        inventory=PRODUCTION, vault=vault_file, vault_password_file=password, file=REPO / "policies" / "secrets.yml"
    )
    with pytest.raises(Error) as caught:
        vault_cli._init(args)
    assert [(p.code, p.file, p.field) for p in caught.value.problems] == [(code, where, field)]
    status, out, err = _akm(capsys, "init", vault_file, password)
    assert status == 2 and out == ""
    assert err.startswith(f"{where}: ") and err.count("\n") == 1, err
    return err


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("not given", "--vault-password-file: no vault password file was given — make one outside the repository"),
        ("missing", "the vault password file does not exist — make one outside the repository"),
        ("empty", "the vault password file is empty — make one"),
    ],
)
def test_init_refuses_a_missing_password_file_and_writes_nothing(files, capsys, monkeypatch, case, message):
    vault_file, password = files
    monkeypatch.delenv("ANSIBLE_VAULT_PASSWORD_FILE", raising=False)
    if case == "missing":
        password.unlink()
    elif case == "empty":
        password.write_text("\n")
    if case == "not given":
        err = _refused(
            capsys, vault_file, None, "vault.password-missing", "--vault-password-file", "--vault-password-file"
        )
    else:
        code = "vault.password-empty" if case == "empty" else "vault.password-missing"
        err = _refused(capsys, vault_file, password, code, str(password))
    assert message in err
    assert not vault_file.parent.exists()


def test_init_refuses_a_vault_it_cannot_read_and_leaves_it(files, capsys, tmp_path):
    vault_file, password = files
    other = tmp_path / "other-password"
    other.write_text("another password\n")
    made = {"vault_backup_restic_password": "made with another password"}  # pragma: allowlist secret
    write_vault(vault_file, other, made)
    before = vault_file.read_bytes()
    err = _refused(capsys, vault_file, password, "net.vault-decrypt", str(vault_file))
    assert "the vault cannot be decrypted with this password" in err
    assert vault_file.read_bytes() == before
    vault_file.write_text("vault_backup_restic_password: in plain text\n")  # pragma: allowlist secret
    err = _refused(capsys, vault_file, password, "net.vault-not-encrypted", str(vault_file))
    assert "the vault file is not encrypted" in err
    assert vault_file.read_text() == "vault_backup_restic_password: in plain text\n"
    assert sorted(p.name for p in vault_file.parent.iterdir()) == ["vault.yml"]


def test_init_refuses_a_folder_as_the_vault(files, capsys):
    vault_file, password = files
    vault_file.mkdir(parents=True)
    err = _refused(capsys, vault_file, password, "vault.not-a-file", str(vault_file))
    assert "the vault is not a file — pass the vault file with --vault" in err


def test_init_needs_an_inventory(files, capsys, tmp_path):
    vault_file, password = files
    with pytest.raises(SystemExit) as caught:
        akm(["--lang", "en", "vault", "init", "--vault", str(vault_file), "--vault-password-file", str(password)])
    assert caught.value.code == 2
    assert "the following arguments are required: -i/--inventory" in capsys.readouterr().err
    status, _out, err = _akm(capsys, "init", vault_file, password, inventory=tmp_path / "nowhere")
    assert status == 2 and str(tmp_path / "nowhere") in err
    assert not vault_file.exists()
