"""Checks of the repository itself, run by ``make lint``: ``python -m akm.devtools NAME``.

``collections``: the collections pinned in requirements.yml are installed in exactly those versions
(they come from the pinned ``ansible`` bundle, because Ansible Galaxy cannot be reached).
``argspecs``: every role has meta/argument_specs.yml, and its options are exactly the role's defaults.

One tool that is not a check: ``sign-examples`` gives the approvers of the repository's example
inventories new example signing keys and signs every grant of their policies again
(:func:`sign_examples`); run it after editing an example grant.
"""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import tempfile
from datetime import date
from pathlib import Path

import yaml

EXAMPLES = (
    (Path("inventory/production"), Path("policies/access/production")),
    (Path("inventory/lab"), Path("policies/access/lab")),
    (Path("tests/policy/inventory"), Path("tests/policy/policy")),
)
"""The example inventories and their policies, whose approvers' keys are made for the repository."""
EXAMPLE_KEY = "example key"
"""The words in the comment of an example signing key; ``sign-examples`` replaces no other key."""


def _installed_collections() -> dict[str, str]:
    """Read the versions of the collections installed beside ansible-core (the bundle's)."""
    found: dict[str, str] = {}
    root = Path(sysconfig.get_paths()["purelib"]) / "ansible_collections"
    for manifest in root.glob("*/*/MANIFEST.json"):
        info = json.loads(manifest.read_text())["collection_info"]
        found[f"{info['namespace']}.{info['name']}"] = info["version"]
    return found


def check_collections(requirements: Path) -> list[str]:
    """Return one line per collection whose installed version differs from requirements.yml."""
    wanted = yaml.safe_load(requirements.read_text())["collections"]
    installed = _installed_collections()
    problems = []
    for entry in wanted:
        have = installed.get(entry["name"])
        if have != entry["version"]:
            problems.append(f"{requirements}: {entry['name']}: pinned {entry['version']}, installed {have}")
    return problems


def check_argspecs(roles: Path) -> list[str]:
    """Return one line per role whose argument_specs.yml disagrees with its defaults/main.yml."""
    problems = []
    if not roles.is_dir():
        return problems
    for role in sorted(p for p in roles.iterdir() if p.is_dir()):
        spec_file = role / "meta" / "argument_specs.yml"
        defaults_file = role / "defaults" / "main.yml"
        if not spec_file.exists():
            problems.append(f"{role}: meta/argument_specs.yml is missing")
            continue
        specs = yaml.safe_load(spec_file.read_text()) or {}
        options = set(((specs.get("argument_specs") or {}).get("main") or {}).get("options") or {})
        defaults = set(yaml.safe_load(defaults_file.read_text()) or {}) if defaults_file.exists() else set()
        for name in sorted(defaults - options):
            problems.append(f"{spec_file}: default {name} is not described in argument_specs")
        for name in sorted(options - defaults):
            required = specs["argument_specs"]["main"]["options"][name].get("required", False)
            if not required:
                problems.append(f"{spec_file}: option {name} has no default in defaults/main.yml")
    return problems


def _replace_key(inventory_dir: Path, old: str, new: str) -> None:
    from akm.inventory.load import inventory_files

    holders = [path for path in inventory_files(inventory_dir) if old in path.read_text(encoding="utf-8")]
    for path in holders:
        path.write_text(path.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")


def sign_examples(examples: tuple[tuple[Path, Path], ...], keys: Path) -> list[str]:
    """Make a new example key for each approver of the *examples* (inventory, policy) in *keys*, write its
    public half into the inventory in place of the old example key, and sign every grant of the policy
    again as the approver it names (the director where it names none), on its own approval date.

    The private halves stay in *keys* (a temporary directory: they are never kept). A key whose comment
    does not say ``example key`` is a real person's and is left alone: that example is not signed.
    Returns one line per grant signed and per example left alone.
    """
    from akm.inventory import load_inventory
    from akm.policy.approve import approve
    from akm.policy.compile import compile_policy
    from akm.policy.load import load_policy

    done = []
    for inventory_dir, policy_dir in examples:
        compiled = compile_policy(load_policy(policy_dir), load_inventory(inventory_dir))
        people = compiled.inventory.people
        real = [login for login in sorted(compiled.approvers) if EXAMPLE_KEY not in (people[login].signing_key or "")]
        if real:
            done.append(f"{inventory_dir}: left alone, not an {EXAMPLE_KEY}: {', '.join(real)}")
            continue
        for login in sorted(compiled.approvers):
            private = keys / login
            if not private.exists():
                subprocess.run(
                    ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", EXAMPLE_KEY, "-f", str(private)],
                    check=True,
                )
            _replace_key(
                inventory_dir, people[login].signing_key, private.with_name(login + ".pub").read_text().strip()
            )
        for grant in [located.record for located in compiled.raw.grants]:
            compiled = compile_policy(load_policy(policy_dir), load_inventory(inventory_dir))
            approval = grant.approval
            by = approval.by if approval is not None and approval.by in compiled.approvers else None
            signed = approve(
                compiled,
                grant.id,
                keys / (by or compiled.inventory.director.id),
                approval.approved_on if approval is not None else date.today(),
            )
            done.append(f"{signed.file}:{signed.line}: {grant.id} signed by {signed.by}")
    return done


def main(argv: list[str]) -> int:
    """Run the named checks and print what is wrong; exit 1 if anything is."""
    if argv == ["sign-examples"]:
        with tempfile.TemporaryDirectory(prefix="akm-example-keys-") as keys:
            for line in sign_examples(EXAMPLES, Path(keys)):
                print(line)
        return 0
    checks = {
        "collections": lambda: check_collections(Path("requirements.yml")),
        "argspecs": lambda: check_argspecs(Path("roles")),
    }
    problems = []
    for name in argv or list(checks):
        problems.extend(checks[name]())
    for line in problems:
        print(line, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
