"""Run the rollback script (roles/access_policy/templates/akm-policy-rollback.sh.j2) rendered
with the role's own defaults and variables, on paths of the test's own: the daemons' links are files in
a temporary folder, and ``systemctl``, ``nft`` and ``squid`` are stand-ins that only record what they
were asked, so a test never touches the machine running it (the lab tests roll back for real)."""

from __future__ import annotations

import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import jinja2
import yaml

REPO = Path(__file__).resolve().parents[2]
ROLE = REPO / "roles" / "access_policy"
RECORDED = ("systemctl", "nft", "squid")
TRUE = ("1", "on", "true", "yes")


@dataclass
class Rollback:
    """The rendered script's world: its release root, the daemons' links, and what it asked the tools."""

    root: Path
    links: dict[str, Path]
    calls: Path

    def run(self, previous: str, failed: str, reason: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["sh", str(self.root.parent / "akm-policy-rollback"), previous, failed, reason],
            env={"PATH": f"{self.root.parent / 'bin'}:{Path(sys.executable).parent}:/usr/bin:/bin", "AKM_LANG": "en"},
            capture_output=True,
            text=True,
            check=False,
        )

    def asked(self) -> list[str]:
        return self.calls.read_text().splitlines() if self.calls.exists() else []


def rollback(tmp_path: Path, evidence_dir: Path, gateway: bool = True) -> Rollback:
    """Render the script into *tmp_path* with links that exist, as after a push, for a gateway or (with
    *gateway* false) for another Linux host, whose release is its host firewall only."""
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    role_vars = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())
    # As Ansible's template module renders it: blocks trimmed, its quote and bool filters.
    environment = jinja2.Environment(trim_blocks=True, autoescape=False)
    environment.filters["quote"] = shlex.quote
    environment.filters["bool"] = lambda value: value if isinstance(value, bool) else str(value).lower() in TRUE
    template = environment.from_string((ROLE / "templates" / "akm-policy-rollback.sh.j2").read_text())
    links = {name: tmp_path / "etc" / f"{name}.conf" for name in role_vars["_access_policy_links"]}
    for link in links.values():
        link.parent.mkdir(exist_ok=True)
        link.write_text("points at the current release\n")
    tools, calls = tmp_path / "bin", tmp_path / "calls.log"
    tools.mkdir()
    for tool in RECORDED:
        (tools / tool).write_text(f'#!/bin/sh\necho "{tool} $*" >> {calls}\n')
        (tools / tool).chmod(0o755)
    root = tmp_path / "releases"
    root.mkdir()
    (tmp_path / "akm-policy-rollback").write_text(
        template.render(
            defaults
            | {
                "ansible_managed": "test",
                "inventory_hostname": "gw" if gateway else "srv",
                "_access_policy_gateway": gateway,
                "_access_policy_ruleset": "nftables/gateway.nft" if gateway else "hosts/host.nft",
                "_access_policy_table": "akm_policy" if gateway else "akm_host",
                "access_policy_release_root": str(root),
                "access_policy_evidence_dir": str(evidence_dir),
                "access_policy_akm_lib": str(REPO / "scripts"),
                "_access_policy_release_files": role_vars["_access_policy_release_files"],
                "_access_policy_links": {name: str(path) for name, path in links.items()},
            }
        )
    )
    return Rollback(root, links, calls)
