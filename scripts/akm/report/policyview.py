"""The categories, grants and restricted subjects of the users' history, read from the access policy
(``policies/access/<name>``, :mod:`akm.policy`) instead of a ``--policy-view`` file.

The policy is compiled against the inventory at the end of the report's period, so that grants that
have expired by then are still known (they are kept with their dates: history needs them).
Selectors map onto the engine's subjects: ``person``, ``host``, ``department`` and ``segment`` as they
are; ``profile:NAME`` becomes every host with that profile; ``all`` means no restriction by subject.
Grants that allow a ``category:`` are in force from the day of their approval (``approval.date``) until
``expires_on`` (midnight in the centre's time zone, as the policy's own ``grant_expiry``).
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from pathlib import Path

from akm.report.squidlog import CategoryRule, Grant

SUBJECT_KINDS = ("person", "host", "department", "segment")


def _subjects(selector: str, inventory) -> list[tuple[str, str]] | None:
    if selector == "all":
        return None
    kind, name = selector.split(":", 1)
    if kind in SUBJECT_KINDS:
        return [(kind, name)]
    if kind == "profile":
        return [("host", a.hostname) for a in inventory.assets if name in a.profiles]
    return []


def from_access_policy(path: Path, inventory, at: datetime):
    """Return (category rules, grants, restricted_for) for :func:`akm.report.squidlog.analyse`.

    Raises the policy's own error (with located problems) when the policy does not compile.
    """
    from akm.errors import Error
    from akm.policy.compile import compile_policy
    from akm.policy.load import load_policy

    # Checked as of now when the period is past: a grant approved after the period is no mistake of
    # the policy, and each grant's own start and end decide which requests it covered.
    compiled = compile_policy(load_policy(path), inventory, at=max(at, datetime.now(UTC)))
    if compiled.errors:
        raise Error(compiled.errors)
    settings = compiled.settings
    rules = [
        CategoryRule(domain, category)
        for category in settings.restricted_categories
        if category in compiled.categories
        for domain in compiled.categories[category].domains
    ]
    restricted_for: list[tuple[str, str]] | None = []
    for selector in settings.restricted:
        found = _subjects(selector, inventory)
        if found is None:
            restricted_for = None
            break
        restricted_for.extend(found)
    grants = []
    for located in [*compiled.active_grants, *compiled.expired_grants]:
        grant = located.record
        subjects = _subjects(grant.who, inventory) or []
        start = datetime.combine(grant.approval.approved_on, time(), tzinfo=compiled.zone)
        until = compiled.grant_expiry(grant)
        for target in grant.allow:
            if target.startswith("category:"):
                grants.extend(
                    Grant(kind, name, target.split(":", 1)[1], start, until, grant.id) for kind, name in subjects
                )
    return rules, grants, restricted_for
