"""The management host's alerts get out through the gateway, and nothing else does: the Bot API (HTTPS)
and the mail relay that the inventory's ``centre.upstream`` names become a direct egress of the hosts
with the ``management`` profile in the gateway's nftables ruleset (and in the RouterOS and IOS ones, from
the same compiled list); without those names there is no such opening."""

from __future__ import annotations

import re

import pytest

from akm.inventory import load_inventory
from akm.policy.build import render
from akm.policy.compile import compile_policy
from akm.policy.load import load_policy
from tests.conftest import copy_lab_inventory

from .conftest import AT, ROOT


def _ruleset(inventory) -> str:
    policy = compile_policy(load_policy(ROOT / "policies" / "access" / "lab"), inventory, AT)
    assert not policy.errors, policy.errors
    return render(policy, ["nftables"])["nftables/gw.nft"]


def _egress(ruleset: str) -> dict[str, tuple[set[str], str]]:
    """Each direct egress set's comment -> (its addresses, the ports its forward rule accepts)."""
    found = {}
    for name, comment, elements in re.findall(
        r'set (egress_\d+) \{\n\t\ttype ipv4_addr; flags interval; comment "direct egress: ([^"]*)"\n'
        r"\t\telements = \{ ([^}]*) \}",
        ruleset,
    ):
        (ports,) = re.findall(rf"ip saddr @{name} ip daddr != @lan (tcp dport \{{ [^}}]+ \}}) accept", ruleset)
        found[comment] = ({e.strip() for e in elements.split(",")}, ports)
    return found


@pytest.fixture(scope="module")
def lab_inventory():
    return load_inventory(ROOT / "inventory" / "lab", today=AT.date())


def test_the_management_host_may_reach_the_bot_api_and_the_mail_relay_and_no_one_else(lab_inventory):
    management = {
        str(n.ip)
        for a in lab_inventory.assets
        if "management" in a.profiles
        for n in a.interfaces
        if n.ip is not None and lab_inventory.segments[n.segment].purpose not in {"wan", "management"}
    }
    assert management == {"198.18.10.10"}
    egress = _egress(_ruleset(lab_inventory))
    assert egress["alerts: the Telegram Bot API api.telegram.org"] == (management, "tcp dport { 443 }")
    assert egress["alerts: the mail relay mail.akm-lab.uz"] == (management, "tcp dport { 587 }")


def _lab_with(tmp_path, upstream: str):
    """The lab inventory, copied, with *upstream* as the alerts' part of ``centre.upstream``."""
    copy = tmp_path / "lab"
    copy_lab_inventory(copy)
    centre = copy / "centre.yml"
    text = centre.read_text()
    written = "    telegram: api.telegram.org\n    mail_relay: {host: mail.akm-lab.uz, port: 587}\n"
    assert written in text
    centre.write_text(text.replace(written, upstream))
    return load_inventory(copy, today=AT.date())


def test_without_the_names_in_the_inventory_there_is_no_opening(tmp_path):
    egress = _egress(_ruleset(_lab_with(tmp_path, "")))
    assert list(egress) == ["the package cache fetches Debian packages from the mirror itself"]


def test_the_relay_port_comes_from_the_inventory(tmp_path):
    egress = _egress(_ruleset(_lab_with(tmp_path, "    mail_relay: {host: smtp.example.uz, port: 465}\n")))
    assert egress["alerts: the mail relay smtp.example.uz"][1] == "tcp dport { 465 }"
    assert not [comment for comment in egress if "Telegram" in comment]


def test_the_switch_access_list_opens_each_port_once_under_one_remark(lab_inventory):
    """IOS keeps one of two equal lines: the package cache's HTTPS and the Bot API's are one entry."""
    policy = compile_policy(load_policy(ROOT / "policies" / "access" / "lab"), lab_inventory, AT)
    (config,) = [text for name, text in render(policy, ["ios"]).items() if name.startswith("ios/")]
    block = config.split("ip access-list extended AKM-IN-SERVERS\n", 1)[1].split("!\n", 1)[0].splitlines()
    start = block.index(" remark akm direct egress")
    assert block[start : start + 4] == [
        " remark akm direct egress",
        " permit tcp host 198.18.10.10 any eq 80",
        " permit tcp host 198.18.10.10 any eq 443",
        " permit tcp host 198.18.10.10 any eq 587",
    ]
    assert len(block) == len(set(block)), "no line twice in one access list"
