"""Decide one request against a compiled policy: "may these hosts reach this site or service now?"

This is the policy's own reading of itself, used by ``akm policy query`` and ``akm policy diff``; the
generators express the same order of decisions in each platform's language.

A request may carry a personal login. It counts only where the generated Squid configuration asks for one:
with ``settings.staff_login: required``, for the web, from the staff's segments
(:attr:`CompiledPolicy.login_networks`). There a request without a login is refused (Squid answers 407
and asks for it), and a ``person:LOGIN`` selector holds for that login on any staff computer and for no
other; every other selector, and everything elsewhere (readers' kiosks never log in) and every internal
service, is decided by address.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from ipaddress import IPv4Network, collapse_addresses

from akm.policy.compile import (
    CLIENT_KINDS,
    CompiledPolicy,
    Decision,
    covers,
    normalise_domain,
    overlaps,
    schedule_matches,
)


@dataclass(frozen=True)
class Answer:
    """The outcome for one request: ``allow`` or ``deny`` and the decision that gave it."""

    action: str
    decision: Decision | None
    login_required: bool = False
    """denied before any decision: the proxy asks this request for a personal login (407)"""


ANY_LOGIN = "*"
"""A personal login that no ``person:`` selector names (no login may contain ``*``): asked with it, a
request gets what the address rules decide for whoever logs in."""


def category_of(policy: CompiledPolicy, domain: str) -> list[str]:
    """Return the ids of the categories that list *domain* or one of its parent domains."""
    labels = normalise_domain(domain).split(".")
    suffixes = {".".join(labels[i:]) for i in range(len(labels))}
    return sorted(c.id for c in policy.categories.values() if suffixes & set(c.domains))


def _target_matches(rule_target: str, target: str, categories: list[str]) -> bool:
    """*target* is ``internet``, ``category:X``, ``service:X`` or ``site:DOMAIN`` (with its categories)."""
    if rule_target == target:
        return True
    if target.startswith("service:"):
        return False
    if rule_target == "internet":
        return True
    return (
        target.startswith("site:")
        and rule_target.startswith("category:")
        and rule_target.split(":", 1)[1] in categories
    )


def asks_login(policy: CompiledPolicy, nets: tuple[IPv4Network, ...], target: str) -> bool:
    """True when the proxy asks a request from *nets* for *target* for a personal login: a web target and
    an address of *nets* on the staff's segments while ``settings.staff_login`` is ``required``."""
    return not target.startswith("service:") and overlaps(policy.login_networks, nets)


def staff_computers(policy: CompiledPolicy) -> list[tuple[str, tuple[IPv4Network, ...]]]:
    """Where a person may log in: each in-use workstation or laptop with an address on the staff's
    segments (hostname, address), or each of those segments whole when the inventory has none there."""
    found = []
    for asset in sorted(policy.inventory.assets, key=lambda a: a.hostname):
        if asset.status != "in_use" or asset.kind not in CLIENT_KINDS:
            continue
        for interface in asset.interfaces:
            if interface.ip is not None and covers(policy.login_networks, (IPv4Network(interface.ip),)):
                found.append((asset.hostname, (IPv4Network(interface.ip),)))
    return found or [(str(net), (net,)) for net in policy.login_networks]


def _who_matches(policy: CompiledPolicy, who: tuple[str, ...], nets, login: str | None) -> bool:
    """Whether *who* selects the request from *nets* with *login* (``None`` where no login is asked):
    a ``person:`` selector by that login, or by address on the person's computers elsewhere
    (:meth:`CompiledPolicy.web_reach`, as the Squid generator writes it)."""
    if login is None:
        return covers(policy.networks(who), nets)
    addresses = []
    for selector in who:
        reach, by_login = policy.web_reach(selector)
        if by_login == login:
            return True
        addresses.extend(reach)
    return covers(tuple(collapse_addresses(addresses)), nets)


def decide(
    policy: CompiledPolicy, nets: tuple[IPv4Network, ...], target: str, moment: datetime, login: str | None = None
) -> Answer:
    """Return the first decision that matches every address of *nets*, *target* and *moment*, for a
    request with the personal *login* (``None``: without one; ignored where the proxy asks for none)."""
    asked = asks_login(policy, nets, target)
    if asked and login is None:
        return Answer("deny", None, login_required=True)
    if not (asked and covers(policy.login_networks, nets)):
        login = None
    categories = category_of(policy, target.split(":", 1)[1]) if target.startswith("site:") else []
    for decision in policy.decisions:
        if decision.expires is not None and moment >= decision.expires:
            continue
        if decision.when is not None and not schedule_matches(policy.schedules[decision.when], moment, policy.zone):
            continue
        if not any(_target_matches(t, target, categories) for t in decision.what):
            continue
        if not _who_matches(policy, decision.who, nets, login):
            continue
        return Answer(decision.action, decision)
    return Answer("deny", None)
