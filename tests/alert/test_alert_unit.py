"""``akm-alert@.service`` (base role): systemd accepts the rendered unit, and its command records a unit's
failure as evidence that ``akm alert`` counts for the duty whose service failed."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import jinja2
import pytest
import yaml

from akm import alert, evidence
from akm.duties import load as load_duties

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "roles" / "base" / "templates" / "akm-alert@.service.j2"


def _render(evidence_dir: Path) -> str:
    defaults = yaml.safe_load((REPO / "roles" / "base" / "defaults" / "main.yml").read_text())
    variables = {k: v for k, v in defaults.items() if not str(v).startswith("{{")}
    return jinja2.Template(TEMPLATE.read_text(), undefined=jinja2.StrictUndefined).render(
        variables | {"ansible_managed": "test", "inventory_hostname": "srv", "base_evidence_dir": str(evidence_dir)}
    )


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_accepts_the_rendered_unit(tmp_path):
    unit = tmp_path / "akm-alert@.service"
    unit.write_text(_render(tmp_path / "evidence"))
    done = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_the_command_records_the_failure_for_its_duty(tmp_path):
    unit = _render(tmp_path / "evidence")
    command = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    argv = [word.replace("%i", "akm-backup-drill@av_masters.service") for word in shlex.split(command[10:])]
    assert argv[0] == "/usr/bin/python3"
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(REPO / "scripts"), "AKM_LANG": "en"}
    done = subprocess.run([sys.executable, *argv[1:]], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    ((path,),) = [
        list((tmp_path / "evidence" / "units").glob("unit-failed-akm-backup-drill@av_masters.service-*.json"))
    ]
    ((_where, record),), problems = evidence.load(path)
    assert problems == [] and (record["kind"], record["host"]) == ("unit.failed", "srv")
    (finding,) = alert.findings([record], load_duties(REPO / "policies" / "duties.yml")).values()
    assert (finding.key, finding.failed) == ("restore-drill|srv|av_masters", True)


def test_every_service_of_ours_records_its_failure():
    """Each akm-*.service of every role (and the drop-in of Debian's security updates) starts the alert
    unit when it fails; the alert unit itself does not, or its own failure would start it again."""
    drop_in = REPO / "roles" / "base" / "templates" / "akm-alert-onfailure.conf.j2"
    services = [*sorted(REPO.glob("roles/*/templates/akm-*.service.j2")), drop_in]
    assert len(services) > 5
    for template in services:
        unit = template.read_text()
        section = unit.split("[Unit]", 1)[1].split("\n[", 1)[0]
        expected = [] if template == TEMPLATE else ["akm-alert@%n.service"]
        assert [line.removeprefix("OnFailure=") for line in section.splitlines() if "OnFailure" in line] == expected, (
            template
        )
