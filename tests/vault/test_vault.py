"""The list of the vault's secrets: in step with what the playbooks and the code read, checked against
a real encrypted vault by ``akm vault check``, and the source of the lab's run-time vault."""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path

import pytest
import yaml

from akm import vault
from akm.cli import main as akm
from akm.duties import load as load_duties
from akm.inventory import load_inventory
from akm.lab import lab
from akm.net.vault import read_vault, write_vault

REPO = Path(__file__).resolve().parents[2]
LAB = REPO / "inventory" / "lab"
SECRETS = vault.load(REPO / "policies" / "secrets.yml")
NAMED = {s.name for s in SECRETS if s.name}
# The lab and the device simulator are test infrastructure: they make secrets, they do not need them.
NOT_READERS = ("lab", "net/sim")


def _vault_names(paths) -> set[str]:
    """The ``vault_*`` names written in the text files among *paths*."""
    found = set()
    for path in paths:
        if path.is_file():
            try:
                text = path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                continue
            found |= set(re.findall(r"\bvault_[a-z0-9_]+", text))
    return found


def _referenced_by_playbooks() -> set[str]:
    """Every vault variable a role (any of its files: tasks, defaults, templates, scripts), a playbook, an
    Ansible plugin or an inventory's group variables reads."""
    places = ["roles/**/*", "playbooks/**/*", "plugins/**/*", "inventory/*/group_vars/**/*", "ansible.cfg"]
    return _vault_names(path for pattern in places for path in REPO.glob(pattern))


def _read_by_code() -> set[str]:
    """Vault variables the package reads by name (string constants, not examples in docstrings)."""
    found = set()
    for path in (REPO / "scripts" / "akm").rglob("*.py"):
        if any(part in path.relative_to(REPO / "scripts" / "akm").as_posix() for part in NOT_READERS):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and re.fullmatch(r"vault_[a-z0-9_]+", node.value)
            ):
                found.add(node.value)
    return found


def test_the_list_names_exactly_what_the_playbooks_and_the_code_read():
    assert _referenced_by_playbooks() | _read_by_code() == NAMED


@pytest.mark.parametrize("name", ["production", "lab"])
def test_every_vault_name_an_inventory_writes_is_a_secret_of_the_list(name):
    """The inventory names a vault variable only as a device's net.credentials (names_from), so
    ``akm vault init`` makes and ``akm vault check`` asks for every one it writes."""
    inventory = load_inventory(REPO / "inventory" / name)
    listed = {n for secret in SECRETS for n in secret.names(inventory)}
    written = _vault_names((REPO / "inventory" / name).rglob("*"))
    assert written and written <= listed


def test_every_reader_exists_and_reads_it():
    duties = {d.id for d in load_duties(REPO / "policies" / "duties.yml")}
    by_code = _read_by_code()
    for secret in SECRETS:
        for reader in secret.readers:
            playbook = yaml.safe_load((REPO / reader.playbook).read_text())
            roles = {r["role"] for play in playbook for r in play.get("roles", [])} | {
                t["ansible.builtin.include_role"]["name"]
                for play in playbook
                for t in play.get("tasks", [])
                if "ansible.builtin.include_role" in t
            }
            assert reader.role in roles, (secret, reader)
            text = "".join(p.read_text(encoding="utf-8") for p in (REPO / "roles" / reader.role).rglob("*.y*ml"))
            if secret.name:
                assert secret.name in text or secret.name in by_code, (secret.name, reader.role)
            assert reader.duty is None or reader.duty in duties, reader.duty


@pytest.fixture
def vault_files(tmp_path):
    password = tmp_path / "vault-password"
    password.write_text("a throwaway test password\n")
    return tmp_path / "vault.yml", password


def _check(vault_file, password, capsys) -> tuple[int, str, str]:
    code = akm(
        [
            "--lang",
            "en",
            "vault",
            "check",
            "-i",
            str(LAB),
            "--vault",
            str(vault_file),
            "--vault-password-file",
            str(password),
        ]
    )
    out = capsys.readouterr()
    return code, out.out, out.err


def test_check_lists_what_is_missing_with_the_playbook_that_needs_it(vault_files, capsys):
    vault_file, password = vault_files
    write_vault(
        vault_file,
        password,
        {
            "vault_backup_restic_password": "short",  # pragma: allowlist secret
            "vault_alert_telegram_token": "123456789:a-throwaway-test-token",  # pragma: allowlist secret
            "vault_net_mikrotik": {"username": "admin", "password": "a-throwaway-password"},  # pragma: allowlist secret
        },
    )
    code, out, err = _check(vault_file, password, capsys)
    assert code == 1
    lines = err.splitlines()
    assert f"{vault_file}: error: vault_backup_rest_secret is missing; needed by playbooks/backup.yml " in lines[1]
    assert any("vault_backup_restic_password has the wrong shape" in line for line in lines)
    assert any(
        "vault_net_sw_core is missing; needed by playbooks/management.yml (management, net-backup)" in line
        for line in lines
    )
    assert any(line.startswith(f"{vault_file}: warning: vault_alert_smtp_password is missing") for line in lines)
    assert "vault_net_mikrotik" not in err and "vault_alert_telegram_token" not in err
    assert out.strip() == f"{vault_file}: 4 secrets missing, 2 optional ones missing"


def test_the_lab_makes_its_vault_as_akm_vault_init_does(tmp_path):
    """lab_secrets makes every secret of the list with vault.fill, keeping the device logins the simulator
    made first; a second run changes nothing."""
    plan = dataclasses.replace(lab.load_plan(LAB), state_dir=tmp_path)
    files = lab.simulator_files(tmp_path)
    inventory = load_inventory(LAB)
    devices = {a.net.credentials for a in inventory.assets if a.net is not None and a.status == "in_use"}
    login = {"username": "admin", "password": "a-throwaway-password"}  # pragma: allowlist secret
    files["vault_password"].write_text("a throwaway test password\n")
    write_vault(files["vault"], files["vault_password"], dict.fromkeys(devices, login))
    lab.lab_secrets(plan)
    made = read_vault(files["vault"], files["vault_password"])
    assert set(made) == NAMED | devices
    assert all(made[name] == login for name in devices)
    assert set(made["vault_file_server_smb_passwords"]) == set(inventory.people)
    assert vault.missing(SECRETS, made, inventory) == []
    before = files["vault"].read_bytes()
    lab.lab_secrets(plan)
    assert files["vault"].read_bytes() == before


def test_a_bad_list_is_located(tmp_path):
    bad = tmp_path / "secrets.yml"
    bad.write_text(
        "---\nsecrets:\n  - name: vault_x_token\n    names_from: net.credentials\n    shape: text\n"
        "    readers: [{playbook: playbooks/site.yml}]\n    description: x\n    description_en: x\n"
        "  - name: backup_password\n    shape: text\n    readers: []\n    description: x\n    description_en: x\n"
    )
    with pytest.raises(vault.SecretsError) as caught:
        vault.load(bad)
    assert [(p.code, p.line, p.field) for p in caught.value.problems] == [
        ("schema.value_error", 3, "secrets[0]"),
        ("schema.string_pattern_mismatch", 9, "secrets[1].name"),
        ("schema.too_short", 11, "secrets[1].readers"),
    ]
