"""Ansible inventory plugin ``akm``: reads the project's YAML inventory through the ``akm`` package.

The plugin is a thin adapter: loading, validation and grouping live in ``akm.inventory`` so that the
CLI (``akm inventory check``) and Ansible see exactly the same inventory. An invalid inventory stops
Ansible with the same located problems the CLI prints.
"""

from __future__ import annotations

DOCUMENTATION = r"""
name: akm
short_description: The Information-Library Centre's inventory (inventory/<name>/*.yml)
description:
  - Reads the inventory directory that holds the configuration file, validates it with the
    C(akm inventory check) rules and builds groups by department, kind, OS, profile and segment.
  - Writes the inventory's known_hosts file of pinned SSH host keys (C(akm inventory known-hosts)) and
    sets strict host key checking against it for every host.
options:
  plugin:
    description: Must be C(akm).
    required: true
    choices: [akm]
"""

from pathlib import Path

from ansible.errors import AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin


class InventoryModule(BaseInventoryPlugin):
    """Inventory plugin that exposes the validated akm inventory to Ansible."""

    NAME = "akm"

    def verify_file(self, path):
        return super().verify_file(path) and Path(path).name in ("akm.yml", "akm.yaml")

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache)
        self._read_config_data(path)
        try:
            from akm.errors import Error
            from akm.inventory import load_inventory
            from akm.inventory.ansible import build
            from akm.inventory.hostkeys import write_known_hosts
        except ImportError as exc:
            raise AnsibleParserError(
                f"the akm package is not installed in Ansible's Python ({exc}); run `make venv`"
            ) from exc
        try:
            inventory = load_inventory(Path(path).parent)
            # The known_hosts file the connections check host keys against (akm_known_hosts), made from
            # the inventory's pinned keys before any connection.
            write_known_hosts(inventory)
            data = build(inventory)
        except Error as exc:
            raise AnsibleParserError(str(exc)) from exc
        for group, hosts in data["groups"].items():
            self.inventory.add_group(group)
            for host in hosts:
                self.inventory.add_host(host, group=group)
        for host, variables in data["hostvars"].items():
            self.inventory.add_host(host)
            for key, value in variables.items():
                self.inventory.set_variable(host, key, value)
        for key, value in data["vars"].items():
            self.inventory.set_variable("all", key, value)
        # The inventory's directory name (production, lab): which inventory and access policy the
        # management host's own timers use. inventory_dir cannot tell when several sources are given.
        self.inventory.set_variable("all", "akm_inventory_name", Path(path).parent.name)
