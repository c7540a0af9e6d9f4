"""``akm lab demo``: the whole system working on the virtual library, start to finish.

After ``akm lab up`` it prepares the gateway and pushes the access policy (the gateway comes first, as
in a new centre: it gives the LAN its addresses, names and time, and the package cache resolves the
mirrors' names through it), converges every machine (``playbooks/site.yml``), sets up backups and runs
one, sends a few requests from a reader through the proxy, digitises a page on the digitisation
station (OCR and its register entry), backs up the network devices' configurations, collects the
hosts' live facts (for the drift section), then starts the management host's collection
(``akm-collect.service``, the unit its timer starts every hour), which gathers every machine's evidence
records and the gateway's proxy log, and writes the weekly report from what the management host
collected (copied to the control node from that one host). Every step is the ordinary command a
specialist would run; the lab differs only by its inventory and by its run-time vault
(``<state_dir>/vault.yml``).
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml

from akm.errors import Error
from akm.i18n import _
from akm.inventory import Inventory, load_inventory
from akm.inventory.model import is_debian
from akm.lab import lab
from akm.lab.plan import Plan

REPO = Path(__file__).resolve().parents[3]
# Ansible's commands are installed beside the Python running akm (the project's venv).
ANSIBLE_PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")
PLAYBOOKS = ("gateway.yml", "access-policy.yml", "site.yml", "backup.yml")
MANAGEMENT_DEFAULTS = REPO / "roles" / "management" / "defaults" / "main.yml"
# The demo's digitised book: a page rendered where a scanner would leave it, its register entry's id
# and collection (the reports' digitised resources read the entry).
DIGITISED_FOLDER = "/var/tmp/akm-demo"
DIGITISED_ITEM = "XONOBOD-TARIXI"
DIGITISED_COLLECTION = "Oʻlkashunoslik"


class DemoError(Error):
    """A step of the demo failed; the message names the step and the command."""


def _run(step: str, command: list[str], log: Callable[[str], None]) -> None:
    log(_("== {step}").format(step=step))
    done = subprocess.run(command, cwd=REPO, check=False)
    if done.returncode != 0:
        raise DemoError.one(
            "lab.demo-step-failed",
            _("the step failed (exit {code}): {command}").format(code=done.returncode, command=" ".join(command)),
            _("read the output above; fix, then run make demo again (it is idempotent)"),
            field=step,
        )


def _ssh(plan: Plan, host: str, *command: str) -> subprocess.CompletedProcess:
    return subprocess.run(lab.ssh_command(plan, host, list(command)), capture_output=True, check=False)


def _fetch(plan: Plan, host: str, remote: str, local: Path) -> None:
    """Copy the directory *remote* of *host* into *local* (nothing when it does not exist)."""
    local.mkdir(parents=True, exist_ok=True)
    archive = _ssh(plan, host, "tar", "-C", remote, "-cf", "-", ".")
    if archive.returncode == 0:
        subprocess.run(["tar", "-C", str(local), "-xf", "-"], input=archive.stdout, check=True)


@cache
def _management_default(name: str) -> str:
    """A default of the management role: where its units keep what they collect."""
    return yaml.safe_load(MANAGEMENT_DEFAULTS.read_text(encoding="utf-8"))[name]


def run(plan: Plan, out: Path, log: Callable[[str], None] = print) -> Path:
    """Run the demo on the running lab of *plan*; return the folder of the report."""
    files = lab.simulator_files(plan.state_dir)
    # A lab brought up by an older checkout may lack secrets this one's playbooks read.
    lab.lab_secrets(plan)
    inventory = str(plan.inventory / "akm.yml")
    vault = ["-e", f"@{files['vault']}", "--vault-password-file", str(files["vault_password"])]
    first_site = next(s for s in plan.sites if s.category in ("news", "library")) if plan.sites else None
    for playbook in PLAYBOOKS:
        extra = ["-e", f"access_policy_check_url=http://{first_site.domain}/"] if first_site else []
        _run(playbook, [ANSIBLE_PLAYBOOK, "-i", inventory, f"playbooks/{playbook}", *vault, *extra], log)
    inventory_data = load_inventory(plan.inventory)
    zone = ZoneInfo(inventory_data.centre.timezone)
    collected = out / "collected"
    # What an earlier demo collected is not this run's: the report reads only what this one gathers.
    for earlier in (collected, out / "report"):
        shutil.rmtree(earlier, ignore_errors=True)
    while True:
        week = _this_week(zone)
        _activity(plan, inventory_data, collected, log)
        if _this_week(zone) == week:
            break
        log(_("A new week began while the demo ran; its backups and requests run again inside it."))
    management = next(m.hostname for m in plan.machines if "management" in m.profiles)
    collection = lab.ssh_command(plan, management, ["systemctl", "start", "akm-collect.service"])
    _run(_("the collection on {host}").format(host=management), collection, log)
    evidence_dir = _management_default("management_evidence_dir")
    _fetch(plan, management, evidence_dir, collected / "evidence" / management)
    logs = collected / "squid"
    _fetch(plan, management, _management_default("management_proxy_log_dir"), logs)
    report = out / "report"
    command = [
        sys.executable,
        "-m",
        "akm.cli",
        "report",
        "weekly",
        "--inventory",
        str(plan.inventory),
        "--period",
        week,
        "--evidence",
        str(collected / "evidence"),
        "--access-policy",
        str(REPO / "policies" / "access" / plan.inventory.name),
        "--out",
        str(report),
        "--access-log",
        str(logs),
    ]
    _run(_("the weekly report"), command, log)
    return report


def _this_week(zone: ZoneInfo) -> str:
    """The ISO week (``--period`` spelling) it is now in the centre's time zone."""
    return datetime.now(zone).strftime("%G-W%V")


def _activity(plan: Plan, inventory_data: Inventory, collected: Path, log: Callable[[str], None]) -> None:
    """What a day of the centre leaves behind: backups, a reader's requests, the devices' configuration
    backup and the hosts' live facts."""
    files = lab.simulator_files(plan.state_dir)
    backup_hosts = [a.hostname for a in inventory_data.assets if a.data and is_debian(a.os)]
    for host in backup_hosts:
        log(_("== a backup of {host}").format(host=host))
        done = _ssh(plan, host, "systemctl", "start", "akm-backup.service")
        if done.returncode != 0:
            log(_("the backup of {host} failed; the report shows it").format(host=host))
    # The Windows PCs' shares, pulled by the backup machine over SMB (the lab's stand-in is srv's Samba).
    if any(p.smb for a in inventory_data.assets for p in a.data):
        for server in (m.hostname for m in plan.machines if "backup_server" in m.profiles):
            log(_("== a backup of {host}").format(host=_("the Windows PCs' shares")))
            if _ssh(plan, server, "systemctl", "start", "akm-backup-smb.service").returncode != 0:
                log(_("the backup of {host} failed; the report shows it").format(host=_("the Windows PCs' shares")))
    readers = [m.hostname for m in plan.machines if "reader" in m.profiles]
    for reader in readers[:1]:
        for site in plan.sites:
            fetch = f". /etc/environment; export http_proxy; curl -s -o /dev/null -m 5 http://{site.domain}/"
            _ssh(plan, reader, shlex.join(["sh", "-c", fetch]))
    for station in (m.hostname for m in plan.machines if "digitization" in m.profiles):
        log(_("== a book digitised on {host}").format(host=station))
        # A page as a scanner would leave it, made into a searchable PDF and entered in the register.
        pages = f"{DIGITISED_FOLDER}/{DIGITISED_ITEM}"
        render = f"mkdir -p {pages} && convert -size 1400x300 xc:white -font DejaVu-Sans -pointsize 64"
        render += f" -fill black -annotate +40+120 'Xonobod tarixi' {pages}/page-1.png"
        ocr = ["akm-ocr", "-c", DIGITISED_COLLECTION, "-i", DIGITISED_ITEM, pages]
        if _ssh(plan, station, shlex.join(["sh", "-c", f"{render} && {shlex.join(ocr)}"])).returncode != 0:
            log(_("akm-ocr failed on {host}; the report shows no digitised item from it").format(host=station))
    if any(a.net for a in inventory_data.assets):
        command = [sys.executable, "-m", "akm.cli", "net", "backup", "--inventory", str(plan.inventory)]
        command += ["--vault", str(files["vault"]), "--vault-password-file", str(files["vault_password"])]
        command += ["--evidence", str(collected / "evidence" / "control")]
        _run(_("the network devices' configuration backup"), command, log)
    command = [sys.executable, "-m", "akm.cli", "report", "facts", "--inventory", str(plan.inventory)]
    _run(_("the hosts' live facts"), [*command, "--evidence", str(collected / "evidence" / "control")], log)
