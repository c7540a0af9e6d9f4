"""Make the simulator's credentials and the matching ansible-vault entries at run time.

``python -m akm.net.sim.credentials --inventory inventory/lab --vault FILE --vault-password-file PW
--out FILE`` gives every simulated device of the inventory a login: an existing vault variable (named by
the asset's ``net.credentials``) is kept, a missing one gets a random user password and enable secret
and is added to the vault (created if absent). The simulator's credentials file (``--out``, mode 0600)
then holds the same values. Nothing here is ever written into the repository.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from pathlib import Path

from akm.errors import Error
from akm.net.sim.__main__ import specs_from_inventory
from akm.net.vault import read_vault, write_vault


def make(inventory: Path, vault_file: Path, password_file: Path, out: Path) -> list[str]:
    """Ensure vault entries for the inventory's simulated devices; write the simulator's file.

    Returns the names of the vault variables that were added.
    """
    specs = specs_from_inventory(inventory)
    variables = read_vault(vault_file, password_file) if vault_file.exists() else {}
    added = []
    devices = {}
    for spec in specs:
        name = spec["credentials"]
        if name not in variables:
            variables[name] = {
                "username": "admin",
                "password": secrets.token_urlsafe(16),
                "secret": secrets.token_urlsafe(12),
            }
            added.append(name)
        value = variables[name]
        devices[spec["name"]] = {
            "username": value["username"],
            "password": value["password"],
            "secret": value.get("secret", ""),
        }
    if added or not vault_file.exists():
        write_vault(vault_file, password_file, variables)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps({"devices": devices}, indent=1, sort_keys=True), encoding="utf-8")
    os.chmod(tmp, 0o600)
    tmp.replace(out)
    return added


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m akm.net.sim.credentials", description=__doc__.splitlines()[0])
    parser.add_argument("--inventory", type=Path, required=True)
    parser.add_argument("--vault", type=Path, required=True, help="ansible-vault file (created if missing)")
    parser.add_argument("--vault-password-file", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True, help="the simulator's credentials file to write")
    args = parser.parse_args(argv)
    try:
        added = make(args.inventory, args.vault, args.vault_password_file, args.out)
    except Error as exc:
        print(exc, file=sys.stderr)
        return exc.exit_code
    print(f"{len(added)} vault variables added; simulator credentials in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
