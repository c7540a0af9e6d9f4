"""The inventory as Ansible sees it: hosts, groups and variables.

Only assets in use that have an address become Ansible hosts; the register keeps the rest. Groups
switch roles on (DebOps' idea): ``profile_reader`` gets the reader-kiosk role because the inventory
says so. Host variables coming from the inventory start with ``akm_``; role variables never do.
"""

from __future__ import annotations

import shlex
from collections import defaultdict
from typing import Any

from akm.inventory.hostkeys import known_hosts_path, ssh_options
from akm.inventory.load import Inventory
from akm.inventory.model import DEBIAN_RELEASES, is_debian

NETWORK_OS = {
    "mikrotik_routeros": "community.routeros.routeros",
    "cisco_ios": "cisco.ios.ios",
    "huawei": "community.network.ce",
    "tplink_jetstream": "community.network.tplink",
}


def _plain(model: Any) -> Any:
    return model.model_dump(mode="json")


def smb_pulls(inventory: Inventory) -> list[dict[str, str]]:
    """The shares of Windows PCs the backup machine pulls (``data[].smb``), sorted: for each, the PC, the
    data class, the share, the folder inside it, and the machine serving the share with the address it
    answers at — the PC itself (outside the management segment, where it has one), or in the lab its
    stand-in ``server``."""
    pulls = []
    for asset in inventory.assets:
        if asset.status != "in_use":
            continue
        for placement in asset.data:
            if placement.smb is None:
                continue
            serving = inventory.asset(placement.smb.server) if placement.smb.server else asset
            addresses = [
                n.ip for n in serving.interfaces if n.ip and inventory.segments[n.segment].purpose != "management"
            ]
            pulls.append(
                {
                    "host": asset.hostname,
                    "data_class": placement.data_class,
                    "share": placement.smb.share,
                    "path": placement.path,
                    "address": str(addresses[0] if addresses else serving.address),
                    "server": serving.hostname,
                }
            )
    return sorted(pulls, key=lambda p: (p["host"], p["data_class"], p["share"], p["path"]))


def build(inventory: Inventory) -> dict[str, Any]:
    """Return ``{"groups": {name: [hosts]}, "hostvars": {...}, "vars": {...}}`` for *inventory*."""
    groups: dict[str, list[str]] = defaultdict(list)
    known_hosts = known_hosts_path(inventory.root)
    hostvars: dict[str, dict[str, Any]] = {}
    lab = inventory.lab
    for asset in inventory.assets:
        endpoint = asset.ssh_endpoint
        if asset.status != "in_use" or endpoint is None:
            continue
        name = asset.hostname
        for group in (
            f"dept_{asset.department}",
            f"kind_{asset.kind}",
            f"os_{asset.os}",
            *(f"profile_{profile}" for profile in asset.profiles),
            *sorted({f"segment_{n.segment}" for n in asset.interfaces}),
        ):
            groups[group].append(name)
        variables: dict[str, Any] = {
            "ansible_host": endpoint[0],
            "akm_inventory_no": asset.inventory_no,
            "akm_kind": asset.kind,
            "akm_department": asset.department,
            "akm_room": asset.room,
            "akm_responsible": asset.responsible,
            "akm_os": asset.os,
            "akm_profiles": list(asset.profiles),
            "akm_interfaces": [_plain(n) for n in asset.interfaces],
            "akm_data": [_plain(d) for d in asset.data],
        }
        if is_debian(asset.os):
            groups["linux"].append(name)
            if lab is not None:
                variables["ansible_user"] = "root"
                variables["ansible_ssh_private_key_file"] = str(lab.state_dir / "ssh" / "id_ed25519")
        if asset.net is not None:
            groups["netdev"].append(name)
            variables["ansible_port"] = asset.net.port
            variables["ansible_network_os"] = NETWORK_OS[asset.net.platform]
            variables["ansible_connection"] = "ansible.netcommon.network_cli"
            variables["akm_net_platform"] = asset.net.platform
            variables["akm_net_credentials"] = asset.net.credentials
        variables.update(asset.vars)
        hostvars[name] = variables
    all_vars: dict[str, Any] = {
        "akm_centre": _plain(inventory.centre),
        "akm_departments": {k: _plain(v) for k, v in inventory.departments.items()},
        "akm_rooms": {k: _plain(v) for k, v in inventory.rooms.items()},
        "akm_segments": {k: _plain(v) for k, v in inventory.segments.items()},
        "akm_people": {k: _plain(v) for k, v in inventory.people.items()},
        "akm_data_classes": {k: _plain(v) for k, v in inventory.data_classes.items()},
        "akm_hosts": {
            a.hostname: {
                "inventory_no": a.inventory_no,
                "kind": a.kind,
                "profiles": list(a.profiles),
                "department": a.department,
                "address": str(a.address) if a.address else None,
                "ips": {n.segment: str(n.ip) for n in a.interfaces if n.ip},
            }
            for a in inventory.assets
            if a.status == "in_use"
        },
        "akm_lab": _plain(lab) if lab is not None else None,
        # The backup machine pulls these shares of Windows PCs (roles/backup_server, docs/windows.md).
        "akm_smb_pulls": smb_pulls(inventory),
        # Every SSH connection checks the host's key against the inventory's pinned keys only (the
        # plugin writes the file); Mitogen honours both settings (docs/inventory.md says how).
        "akm_known_hosts": str(known_hosts),
        "ansible_host_key_checking": True,
        "ansible_ssh_common_args": shlex.join(ssh_options(known_hosts)),
        "akm_debian_releases": {
            os: {"codename": codename, "version": version} for os, (codename, version) in DEBIAN_RELEASES.items()
        },
    }
    return {"groups": dict(sorted(groups.items())), "hostvars": hostvars, "vars": all_vars}
