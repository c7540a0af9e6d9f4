"""Device credentials from ansible-vault.

The inventory names, for each network device, the ansible-vault variable holding its credentials
(``net.credentials: vault_net_mikrotik``); the variable is a mapping ``{username, password}`` with an
optional ``secret`` (the IOS enable secret). The vault file is an ansible-vault encrypted YAML file,
by default ``<inventory>/group_vars/all/vault.yml`` (where Ansible itself finds it), opened with the
password file given by ``--vault-password-file`` or ``ANSIBLE_VAULT_PASSWORD_FILE``. Nothing secret is
ever read from anywhere else.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from akm.errors import Error
from akm.i18n import _


class VaultError(Error):
    """The vault or a credential in it cannot be used."""


@dataclass(frozen=True)
class Login:
    """What a session to one device needs; ``repr`` never shows the secrets."""

    username: str
    password: str
    secret: str = ""

    def __repr__(self) -> str:
        return f"Login(username={self.username!r}, password=***, secret=***)"


def default_vault_file(inventory_dir: Path) -> Path:
    return Path(os.environ.get("AKM_VAULT_FILE") or inventory_dir / "group_vars" / "all" / "vault.yml")


def default_password_file() -> Path | None:
    value = os.environ.get("ANSIBLE_VAULT_PASSWORD_FILE")
    return Path(value) if value else None


def _problem(file: Path | str, code: str, message: str, hint: str, field: str = "") -> VaultError:
    return VaultError.one(code, message, hint, file=str(file), field=field)


def read_vault(vault_file: Path, password_file: Path | None) -> dict:
    """Decrypt *vault_file* with the password in *password_file* and return its variables."""
    from ansible.errors import AnsibleError
    from ansible.parsing.vault import VaultLib, VaultSecret, is_encrypted

    if password_file is None:
        raise _problem(
            vault_file,
            "net.vault-password-missing",
            _("no vault password file was given"),
            _("pass --vault-password-file or set ANSIBLE_VAULT_PASSWORD_FILE"),
        )
    if not vault_file.is_file():
        raise _problem(
            vault_file,
            "net.vault-missing",
            _("the vault file does not exist"),
            _("create it with ansible-vault create, or pass --vault"),
        )
    if not password_file.is_file():
        raise _problem(
            password_file,
            "net.vault-password-missing",
            _("the vault password file does not exist"),
            _("pass --vault-password-file or set ANSIBLE_VAULT_PASSWORD_FILE"),
        )
    data = vault_file.read_bytes()
    if not is_encrypted(data):
        raise _problem(
            vault_file,
            "net.vault-not-encrypted",
            _("the vault file is not encrypted"),
            _("encrypt it with ansible-vault encrypt; credentials are never kept in plain text"),
        )
    secret = VaultSecret(password_file.read_bytes().strip())
    try:
        plain = VaultLib([("default", secret)]).decrypt(data)
    except AnsibleError:
        raise _problem(
            vault_file,
            "net.vault-decrypt",
            _("the vault cannot be decrypted with this password"),
            _("check the vault password file"),
        ) from None
    try:
        loaded = yaml.safe_load(plain) or {}
    except yaml.YAMLError:
        raise _problem(
            vault_file,
            "net.vault-yaml",
            _("the decrypted vault is not valid YAML"),
            _("edit it with ansible-vault edit"),
        ) from None
    if not isinstance(loaded, dict):
        raise _problem(
            vault_file,
            "net.vault-yaml",
            _("the decrypted vault is not a mapping of variables"),
            _("edit it with ansible-vault edit"),
        )
    return loaded


def login_for(variables: dict, name: str, vault_file: Path | str) -> Login:
    """Return the credentials held in vault variable *name*."""
    value = variables.get(name)
    if value is None:
        raise _problem(
            vault_file,
            "net.credentials-missing",
            _("the vault has no variable {name}").format(name=name),
            _("add {name}: {{username: ..., password: ...}} with ansible-vault edit").format(name=name),
            field=name,
        )
    if not isinstance(value, dict) or not value.get("username") or not value.get("password"):
        raise _problem(
            vault_file,
            "net.credentials-shape",
            _("vault variable {name} must be a mapping with username and password").format(name=name),
            _("write it as {name}: {{username: ..., password: ..., secret: ...}}").format(name=name),
            field=name,
        )
    return Login(str(value["username"]), str(value["password"]), str(value.get("secret") or ""))


def write_vault(vault_file: Path, password_file: Path, variables: dict) -> None:
    """Encrypt *variables* into *vault_file* (mode 0600) with the password in *password_file*, as
    ``ansible-vault`` does: written to a temporary file beside it and renamed, so the vault is never
    half-written."""
    from ansible.parsing.vault import VaultLib, VaultSecret

    secret = VaultSecret(password_file.read_bytes().strip())
    data = VaultLib([("default", secret)]).encrypt(yaml.safe_dump(variables, sort_keys=True))
    vault_file.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{vault_file.name}.", dir=vault_file.parent)
    try:
        os.fchmod(descriptor, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        os.replace(temporary, vault_file)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
