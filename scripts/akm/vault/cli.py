"""``akm vault check``: does the vault hold every secret the playbooks of an inventory need?"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from akm.i18n import _, format_number
from akm.vault import DEFAULT_FILE, MIN_LENGTH, load, missing

_SHAPES = {
    "text": lambda: _("text of at least {count} characters").format(count=MIN_LENGTH),
    "login": lambda: _("a mapping {username: ..., password: ...}"),
    "per_person": lambda: _("a mapping of inventory logins to text"),
}


def _check(args: argparse.Namespace) -> int:
    from akm.inventory import load_inventory
    from akm.net.vault import default_password_file, default_vault_file, read_vault

    secrets = load(args.file)
    inventory = load_inventory(args.inventory)
    vault_file = args.vault or default_vault_file(Path(inventory.root))
    variables = read_vault(vault_file, args.vault_password_file or default_password_file())
    lacking = missing(secrets, variables, inventory)
    for item in lacking:
        what = (
            _("{name} has the wrong shape: it must be {shape}") if item.wrong_shape else _("{name} is missing")
        ).format(name=item.name, shape=_SHAPES[item.secret.shape]())
        needed = _("needed by {playbooks} ({readers})").format(
            playbooks=", ".join(item.playbooks()), readers=", ".join(item.readers())
        )
        label = _("error") if item.secret.required else _("warning")
        print(f"{vault_file}: {label}: {what}; {needed}", file=sys.stderr)
    errors = sum(item.secret.required for item in lacking)
    print(
        _("{file}: {errors} secrets missing, {warnings} optional ones missing").format(
            file=vault_file, errors=format_number(errors), warnings=format_number(len(lacking) - errors)
        )
    )
    return 1 if errors else 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``akm vault`` and its subcommand."""
    parser = subparsers.add_parser("vault", help=_("the secrets the ansible-vault file must hold"))
    commands = parser.add_subparsers(dest="command", metavar=_("COMMAND"), required=True)
    check = commands.add_parser("check", help=_("list the secrets the vault lacks, with the playbook needing each"))
    check.add_argument("-i", "--inventory", type=Path, required=True, help=_("inventory directory"))
    check.add_argument("--vault", type=Path, help=_("the vault file (default: <inventory>/group_vars/all/vault.yml)"))
    check.add_argument(
        "--vault-password-file",
        type=Path,
        help=_("file with the vault password (default: ANSIBLE_VAULT_PASSWORD_FILE)"),
    )
    check.add_argument(
        "--file", type=Path, default=DEFAULT_FILE, help=_("the list of secrets (default: policies/secrets.yml)")
    )
    check.set_defaults(handler=_check)
