"""``akm vault init|check``: make the secrets the playbooks of an inventory need, and check that the
vault holds them all."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from akm.i18n import _, format_number
from akm.vault import DEFAULT_FILE, DEVICE_USER, MIN_LENGTH, Missing, SecretsError, fill, load, missing

_SHAPES = {
    "text": lambda: _("text of at least {count} characters").format(count=MIN_LENGTH),
    "login": lambda: _("a mapping {username: ..., password: ...}"),
    "per_person": lambda: _("a mapping of inventory logins to text"),
}


def _needed(item: Missing) -> str:
    return _("needed by {playbooks} ({readers})").format(
        playbooks=", ".join(item.playbooks()), readers=", ".join(item.readers())
    )


def _inputs(args: argparse.Namespace):
    """The list of secrets, the inventory and the vault file the arguments name."""
    from akm.inventory import load_inventory
    from akm.net.vault import default_vault_file

    secrets = load(args.file)
    inventory = load_inventory(args.inventory)
    return secrets, inventory, args.vault or default_vault_file(Path(inventory.root))


def _password_file(args: argparse.Namespace) -> Path:
    """The vault password file of the arguments; refused when not given, missing or empty."""
    from akm.net.vault import default_password_file

    path = args.vault_password_file or default_password_file()
    hint = _(
        "make one outside the repository, e.g. (umask 077; openssl rand -base64 32 > ~/.akm-vault-password), "
        "keep a copy in the safe, and pass --vault-password-file or set ANSIBLE_VAULT_PASSWORD_FILE"
    )
    if path is None:
        raise SecretsError.one(
            "vault.password-missing",
            _("no vault password file was given"),
            hint,
            file="--vault-password-file",
            field="--vault-password-file",
        )
    if not path.is_file():
        raise SecretsError.one(
            "vault.password-missing", _("the vault password file does not exist"), hint, file=str(path)
        )
    if not path.read_bytes().strip():
        raise SecretsError.one("vault.password-empty", _("the vault password file is empty"), hint, file=str(path))
    return path


def _init(args: argparse.Namespace) -> int:
    from akm.net.vault import read_vault, write_vault

    secrets, inventory, vault_file = _inputs(args)
    password_file = _password_file(args)
    if vault_file.exists() and not vault_file.is_file():
        raise SecretsError.one(
            "vault.not-a-file",
            _("the vault is not a file"),
            _("pass the vault file with --vault, e.g. inventory/production/group_vars/all/vault.yml"),
            file=str(vault_file),
        )
    variables = read_vault(vault_file, password_file) if vault_file.exists() else {}
    added = fill(secrets, variables, inventory)
    if added:
        write_vault(vault_file, password_file, variables | added)
    by_name = {name: secret for secret in secrets for name in secret.names(inventory)}
    for name in sorted(added):
        item = Missing(name, by_name[name], False)
        print(_("{file}: made {name}; {needed}").format(file=vault_file, name=name, needed=_needed(item)))
        if item.secret.shape == "login":
            print(
                "  "
                + _(
                    "create the user {user} with this password on the device (ansible-vault view {file}) "
                    "before its first backup"
                ).format(user=DEVICE_USER, file=vault_file)
            )
    for item in missing(secrets, variables | added, inventory):
        what = _("{name} has the wrong shape: it must be {shape}").format(
            name=item.name, shape=_SHAPES[item.secret.shape]()
        )
        print(
            _("{file}: warning: {what}; kept as it is, correct it with ansible-vault edit").format(
                file=vault_file, what=what
            ),
            file=sys.stderr,
        )
    print(
        _("{file}: {count} secrets made, the others kept").format(file=vault_file, count=format_number(len(added)))
        if added
        else _("{file}: the vault holds every secret of the list; nothing written").format(file=vault_file)
    )
    return 0


def _check(args: argparse.Namespace) -> int:
    from akm.net.vault import default_password_file, read_vault

    secrets, inventory, vault_file = _inputs(args)
    variables = read_vault(vault_file, args.vault_password_file or default_password_file())
    lacking = missing(secrets, variables, inventory)
    for item in lacking:
        what = (
            _("{name} has the wrong shape: it must be {shape}") if item.wrong_shape else _("{name} is missing")
        ).format(name=item.name, shape=_SHAPES[item.secret.shape]())
        label = _("error") if item.secret.required else _("warning")
        print(f"{vault_file}: {label}: {what}; {_needed(item)}", file=sys.stderr)
    errors = sum(item.secret.required for item in lacking)
    print(
        _("{file}: {errors} secrets missing, {warnings} optional ones missing").format(
            file=vault_file, errors=format_number(errors), warnings=format_number(len(lacking) - errors)
        )
    )
    return 1 if errors else 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``akm vault`` and its subcommands."""
    parser = subparsers.add_parser("vault", help=_("the secrets the ansible-vault file must hold"))
    commands = parser.add_subparsers(dest="command", metavar=_("COMMAND"), required=True)
    init = commands.add_parser(
        "init", help=_("make every secret of the list that the vault lacks (random values; none is replaced)")
    )
    check = commands.add_parser("check", help=_("list the secrets the vault lacks, with the playbook needing each"))
    for command, handler in ((init, _init), (check, _check)):
        command.add_argument("-i", "--inventory", type=Path, required=True, help=_("inventory directory"))
        command.add_argument(
            "--vault", type=Path, help=_("the vault file (default: <inventory>/group_vars/all/vault.yml)")
        )
        command.add_argument(
            "--vault-password-file",
            type=Path,
            help=_("file with the vault password (default: ANSIBLE_VAULT_PASSWORD_FILE)"),
        )
        command.add_argument(
            "--file", type=Path, default=DEFAULT_FILE, help=_("the list of secrets (default: policies/secrets.yml)")
        )
        command.set_defaults(handler=handler)
