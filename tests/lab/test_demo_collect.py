"""The management host's collection on the converged lab (issue 15): a rotation of the gateway's proxy
log between collections, and a host whose SSH is stopped through one collection, lose nothing and bring
nothing twice.

It runs right after the demo (file order: ``test_demo.py`` converges the whole centre, and the molecule
scenarios of ``test_demo_roles.py`` reset machines afterwards). Every collection is the real unit,
``systemctl start akm-collect.service`` on the management host; the rotation is ``logrotate -f`` of the
access policy's own file (``/etc/logrotate.d/akm-squid``, with a date format down to the second, so it
can rotate more than once a day); the stopped host's ``sshd`` is stopped and started again from the
control node through ``nsenter`` into the machine (SSH is what is down). The checks count again from
the machines themselves: each marked request once in the collected logs, as in the gateway's own files,
and every evidence record of every host present once, byte for byte, on the management host.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import uuid
from datetime import datetime

import pytest

from akm.lab import lab
from akm.lab.machines import ssh_ready

pytestmark = pytest.mark.lab

EVIDENCE = "/var/lib/akm/evidence"
COLLECTED_LOGS = "/var/lib/akm/proxy-logs"
SQUID_LOGS = "/var/log/squid/akm"
LIST_RECORDS = (
    f"cd {EVIDENCE} && find . -name '*.json' ! -name '*-latest.json' ! -path '*/.*' ! -path './hosts/*' "
    "! -newermt @{before} -type f -exec sha256sum {{}} + | sort -k2"
)
"""A host's own records written before the last collection began, with their SHA-256."""
COPIES = (
    f"cd {EVIDENCE}/hosts/{{host}} 2>/dev/null || exit 0; "
    "find . -name '*.json' ! -path '*/.*' -type f -exec sha256sum {{}} + | sort -k2"
)
"""The copies of one host's records on the management host."""


def _profile(plan, profile: str) -> str:
    return next(m.hostname for m in plan.machines if profile in m.profiles)


@pytest.fixture(scope="module")
def hosts(running_lab, in_lab):
    """The management host, the gateway, the reader and the host stopped through one collection."""
    plan = running_lab
    management = _profile(plan, "management")
    enabled = in_lab(management, "systemctl", "is-enabled", "akm-collect.timer", check=False).stdout.strip()
    assert enabled == "enabled", "the lab is not converged with the collection: run the demo first"
    stopped = next(
        m.hostname for m in plan.machines if not {"management", "gateway", "backup_server"} & set(m.profiles)
    )
    return {
        "management": management,
        "gateway": _profile(plan, "gateway"),
        "reader": _profile(plan, "reader"),
        "stopped": stopped,
    }


def _collect(in_lab, management: str) -> dict:
    """Start the collection's unit and return the record of that run."""
    in_lab(management, "systemctl", "start", "akm-collect.service", timeout=600)
    latest = in_lab(management, f"ls -1 {EVIDENCE}/collect/run-*.json | tail -n 1").stdout.strip()
    return json.loads(in_lab(management, "cat", latest).stdout)


def _requests(plan, in_lab, reader: str, marker: str, numbers: range) -> None:
    site = plan.sites[0].domain
    for number in numbers:
        url = f"http://{site}/{marker}-{number}"
        script = f". /etc/environment; export http_proxy; curl -s -o /dev/null -m 5 {shlex.quote(url)}"
        in_lab(reader, "sh", "-c", shlex.quote(script), check=False)


def _rotate(in_lab, gateway: str) -> None:
    config = "/run/akm-collect-test-logrotate.conf"
    script = (
        f"printf 'dateformat -%%Y%%m%%d-%%s\\ninclude /etc/logrotate.d/akm-squid\\n' > {config} && "
        f"logrotate -f -s /run/akm-collect-test-logrotate.state {config} && sleep 1"
    )
    in_lab(gateway, "sh", "-c", shlex.quote(script))


def _inside(plan, host: str, *command: str) -> None:
    """Run *command* in *host*'s namespaces, without SSH (which may be stopped)."""
    pid = lab.leaders(plan)[host]
    prefix = ["nsenter", "--target", str(pid), "--mount", "--uts", "--ipc", "--net", "--pid"]
    subprocess.run([*prefix, *command], check=True, capture_output=True, timeout=120)


def _marked(text: str, marker: str) -> list[str]:
    return sorted(line.split()[6] for line in text.splitlines() if marker in line)


def test_rotation_and_a_host_down_through_one_collection_bring_every_record_once(running_lab, in_lab, hosts):
    plan = running_lab
    management, gateway, stopped = hosts["management"], hosts["gateway"], hosts["stopped"]
    marker = f"akm-collect-{uuid.uuid4().hex[:12]}"
    assert _collect(in_lab, management)["hosts"][gateway]["result"] in ("ok", "warning")

    _requests(plan, in_lab, hosts["reader"], marker, range(0, 3))
    _rotate(in_lab, gateway)
    _requests(plan, in_lab, hosts["reader"], marker, range(3, 6))
    _inside(plan, stopped, "systemctl", "stop", "ssh.service")
    try:
        write = "PYTHONPATH=/opt/akm/lib python3 -m akm.evidence write --dir /var/lib/akm/evidence/units "
        write += f"--name {marker}-while-down --kind unit.failed --result failed --set unit=akm-backup.service"
        _inside(plan, stopped, "sh", "-c", write)
        down = _collect(in_lab, management)
    finally:
        _inside(plan, stopped, "systemctl", "start", "ssh.service")
    address = str(plan.machine(stopped).management)
    assert ssh_ready(address, timeout=30), f"{stopped} does not answer SSH again"
    assert down["result"] == "failed"
    assert down["hosts"][stopped]["result"] == "failed" and down["hosts"][stopped]["reason"]
    assert down["hosts"][gateway]["result"] == "ok", down["hosts"][gateway]
    assert down["hosts"][gateway]["logs"]["proxy"]["lines"] >= 6

    _rotate(in_lab, gateway)  # the first rotated file is compressed now (delaycompress)
    _requests(plan, in_lab, hosts["reader"], marker, range(6, 9))
    back = _collect(in_lab, management)
    assert back["hosts"][stopped]["result"] == "ok", back["hosts"][stopped]
    assert back["hosts"][stopped]["evidence"] >= 1

    gateway_files = in_lab(gateway, "sh", "-c", shlex.quote(f"zcat -f {SQUID_LOGS}/access.log*")).stdout
    collected = in_lab(management, "sh", "-c", shlex.quote(f"cat {COLLECTED_LOGS}/{gateway}/access-*.log")).stdout
    at_gateway = _marked(gateway_files, marker)
    assert len(at_gateway) == 9 and len(set(at_gateway)) == 9, at_gateway
    assert _marked(collected, marker) == at_gateway, "every request line collected exactly once"

    before = int(datetime.fromisoformat(back["time"]).timestamp())
    for host in sorted(m.hostname for m in plan.machines if m.hostname != management and not m.internet):
        own = in_lab(host, "sh", "-c", shlex.quote(LIST_RECORDS.format(before=before))).stdout.splitlines()
        copies = in_lab(management, "sh", "-c", shlex.quote(COPIES.format(host=host))).stdout.splitlines()
        assert set(own) <= set(copies), f"{host}: records not collected: {sorted(set(own) - set(copies))}"
        assert len(copies) == len({line.split()[1] for line in copies}), f"{host}: a record copied twice"
    units = in_lab(management, "ls", "-1", f"{EVIDENCE}/hosts/{stopped}/units").stdout.split()
    assert f"{marker}-while-down.json" in units
