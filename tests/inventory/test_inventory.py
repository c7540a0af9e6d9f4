"""The shipped inventories, the CLI and Ansible's view of the inventory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from ipaddress import IPv4Network
from pathlib import Path

import pytest
from tests.conftest import copy_lab_inventory

from akm import i18n
from akm.cli import main
from akm.inventory import load_inventory, synthetic
from akm.inventory.ansible import build

REPO = Path(__file__).resolve().parents[2]
LAB_RANGE = IPv4Network("198.18.0.0/15")


def test_production_describes_a_whole_centre():
    inventory = load_inventory(REPO / "inventory/production")
    kinds = Counter(a.kind for a in inventory.assets)
    assert kinds["workstation"] + kinds["laptop"] >= 40
    for kind in ("server", "router", "switch", "access_point", "printer", "scanner"):
        assert kinds[kind] >= 1, kind
    assert inventory.director.id == "d.karimova"
    assert {p.id for p in inventory.people_with("it_staff")} == {"n.toshmatova", "o.ismoilov"}
    assert {"in_use", "in_repair", "in_store", "written_off"} <= {a.status for a in inventory.assets}
    assert inventory.lab is None


def test_lab_stays_inside_the_benchmark_range():
    inventory = load_inventory(REPO / "inventory/lab")
    assert inventory.lab is not None
    for segment in inventory.segments.values():
        assert segment.subnet.subnet_of(LAB_RANGE)
    for asset in inventory.assets:
        for interface in asset.interfaces:
            assert interface.ip in LAB_RANGE
    assert str(inventory.asset("oqish-01").address) == "198.19.255.41"
    assert inventory.asset("AKM-9001").hostname == "gw"


def test_ansible_groups_follow_profiles_departments_and_segments():
    data = build(load_inventory(REPO / "inventory/production"))
    groups = data["groups"]
    assert "oqish-07" not in groups["profile_reader"], "a machine in repair is not converged"
    assert "oqish-01" in groups["profile_reader"] and "bolalar-01" in groups["profile_reader"]
    assert groups["profile_gateway"] == ["gw"]
    assert "buxgalter-01" not in groups["linux"], "Windows machines are out of scope"
    assert set(groups["netdev"]) == {"mikrotik", "sw-core", "sw-zal", "sw-bolalar"}
    assert data["hostvars"]["gw"]["ansible_host"] == "10.77.99.3"
    assert data["hostvars"]["sw-core"]["akm_net_platform"] == "cisco_ios"


def _plain(value):
    return value["__ansible_unsafe"] if isinstance(value, dict) and "__ansible_unsafe" in value else value


def test_ansible_inventory_graph_shows_the_groups():
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"))
    ansible_inventory = Path(sys.executable).with_name("ansible-inventory")
    result = subprocess.run(
        [str(ansible_inventory), "-i", "inventory/lab/akm.yml", "--list"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    listed = json.loads(result.stdout)
    assert set(listed["profile_reader"]["hosts"]) == {"oqish-01", "oqish-02"}
    hostvars = listed["_meta"]["hostvars"]
    # Ansible marks variables from inventory plugins as unsafe (never templated) in its JSON listing.
    assert _plain(hostvars["oqish-01"]["reader_kiosk_usb_storage"]) == "blocked"
    assert _plain(hostvars["gw"]["ansible_user"]) == "root"


def test_ansible_stops_on_an_invalid_inventory(tmp_path):
    copy_lab_inventory(tmp_path / "lab")
    (tmp_path / "lab" / "extra.yml").write_text("---\nassets:\n  - hostname: Bad_Name\n")
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"))
    ansible_inventory = Path(sys.executable).with_name("ansible-inventory")
    result = subprocess.run(
        [str(ansible_inventory), "-i", str(tmp_path / "lab" / "akm.yml"), "--list"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "extra.yml:3: hostname" in result.stderr


def test_cli_check_passes_on_the_shipped_inventories(capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    assert main(["--lang", "en", "inventory", "check"]) == 0
    out = capsys.readouterr().out
    assert "inventory/production: valid — 68 assets" in out
    assert "inventory/lab: valid — 12 assets" in out


def test_cli_reports_in_uzbek_by_default_without_traceback(tmp_path, monkeypatch):
    copy_lab_inventory(tmp_path / "lab")
    (tmp_path / "lab" / "assets.yml").write_text(
        (tmp_path / "lab" / "assets.yml").read_text().replace("hostname: oqish-02", "hostname: oqish-01")
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AKM_LANG", raising=False)
    result = subprocess.run(
        [sys.executable, "-m", "akm.cli", "inventory", "check", "lab"],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "AKM_LANG"},
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "lab/assets.yml:" in result.stderr
    assert "kompyuter nomi oqish-01 allaqachon" in result.stderr
    assert "1 ta muammo; hech narsa yozilmadi" in result.stderr


def test_cli_usage_errors_are_translated(capsys):
    i18n.setup("uz")
    with pytest.raises(SystemExit) as caught:
        main(["inventory", "chek"])
    assert caught.value.code == 2
    assert "notoʻgʻri tanlov: 'chek'" in capsys.readouterr().err


def test_a_fifty_thousand_asset_inventory_is_checked(tmp_path):
    inventory = load_inventory(synthetic.write(tmp_path, assets=50_000))
    assert len(inventory.assets) == 50_000
    assert len({a.address for a in inventory.assets}) == 50_000
