"""Planning without a device: what a push would change, per platform."""

from __future__ import annotations

from akm.net.platforms import IOS, RouterOS

CURRENT = """\
# 2026-11-25 22:00:00 by RouterOS 7.16.1
/ip firewall address-list
add address=198.18.20.0/24 list=staff
/ip firewall filter
add action=accept chain=forward comment="a" src-address-list=staff
add action=drop chain=forward comment="b"
add action=accept chain=input comment="c" \\
    src-address-list=staff
/system identity
set name=gw
"""


def test_routeros_rule_order_is_kept():
    desired = [
        "/ip firewall filter",
        "add chain=forward comment=a src-address-list=staff",
        "add action=accept chain=input comment=c src-address-list=staff",
        "add action=drop chain=forward comment=b",
    ]
    plan = RouterOS().plan(CURRENT, desired)
    assert plan.apply == [
        "/ip firewall filter remove [find action=drop and chain=forward and comment=b]",
        "/ip firewall filter remove [find action=accept and chain=input and comment=c and src-address-list=staff]",
        "/ip firewall filter add action=accept chain=input comment=c src-address-list=staff",
        "/ip firewall filter add action=drop chain=forward comment=b",
    ]


def test_routeros_same_state_written_differently_is_no_change():
    desired = [
        "/ip firewall address-list",
        'add list="staff" address=198.18.20.0/24',
        "/system identity",
        "set name=gw",
    ]
    assert RouterOS().plan(CURRENT, desired).empty


def test_ios_acl_is_rewritten_when_an_entry_differs_and_ports_compare_as_ios_shows_them():
    current = "hostname sw\n!\nip access-list extended A\n permit tcp any any eq www\n!\nend\n"
    assert IOS().plan(current, ["ip access-list extended A", " permit tcp any any eq 80"]).empty
    plan = IOS().plan(current, ["ip access-list extended A", " permit tcp any any eq 443"])
    assert plan.apply == ["no ip access-list extended A", "ip access-list extended A", "permit tcp any any eq 443"]


def test_ios_acls_the_file_lacks_are_removed_only_when_owned():
    current = (
        "hostname sw\n!\nip access-list extended AKM-IN-OLD\n permit ip any any\n!\n"
        "ip access-list extended HAND-MADE\n deny ip any any\n!\nend\n"
    )
    desired = ["ip access-list extended AKM-IN-NEW", " permit tcp any any eq 443"]
    owned = IOS().plan(current, desired, owner="akm")
    assert owned.apply[0] == "no ip access-list extended AKM-IN-OLD"
    assert "no ip access-list extended HAND-MADE" not in owned.apply
    assert owned.undo[-2:] == ["ip access-list extended AKM-IN-OLD", "permit ip any any"]
    restore = IOS().plan(current, desired, owner="")
    assert {"no ip access-list extended AKM-IN-OLD", "no ip access-list extended HAND-MADE"} <= set(restore.apply)
    # A file without ACLs owns none: the device's ACLs stay.
    assert IOS().plan(current, ["hostname sw"], owner="").empty
