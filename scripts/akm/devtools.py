"""Checks of the repository itself, run by ``make lint``: ``python -m akm.devtools NAME``.

``collections``: the collections pinned in requirements.yml are installed in exactly those versions
(they come from the pinned ``ansible`` bundle, because Ansible Galaxy cannot be reached).
``argspecs``: every role has meta/argument_specs.yml, and its options are exactly the role's defaults.
"""

from __future__ import annotations

import json
import sys
import sysconfig
from pathlib import Path

import yaml


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


def main(argv: list[str]) -> int:
    """Run the named checks and print what is wrong; exit 1 if anything is."""
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
