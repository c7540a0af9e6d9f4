"""Decide one request against a compiled policy: "may these hosts reach this site or service now?"

This is the policy's own reading of itself, used by ``akm policy query`` and ``akm policy diff``; the
generators express the same order of decisions in each platform's language.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from ipaddress import IPv4Network

from akm.policy.compile import CompiledPolicy, Decision, covers, normalise_domain, schedule_matches


@dataclass(frozen=True)
class Answer:
    """The outcome for one request: ``allow`` or ``deny`` and the decision that gave it."""

    action: str
    decision: Decision | None


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


def decide(policy: CompiledPolicy, nets: tuple[IPv4Network, ...], target: str, moment: datetime) -> Answer:
    """Return the first decision that matches every address of *nets*, *target* and *moment*."""
    categories = category_of(policy, target.split(":", 1)[1]) if target.startswith("site:") else []
    for decision in policy.decisions:
        if decision.expires is not None and moment >= decision.expires:
            continue
        if decision.when is not None and not schedule_matches(policy.schedules[decision.when], moment, policy.zone):
            continue
        if not any(_target_matches(t, target, categories) for t in decision.what):
            continue
        if not covers(policy.networks(decision.who), nets):
            continue
        return Answer(decision.action, decision)
    return Answer("deny", None)
