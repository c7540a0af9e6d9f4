"""What a change of the policy does, in plain words, for a review: ``akm policy diff REV1 REV2``.

Both revisions are read from git (``git show REV:path`` of every file under the policy's parent folder,
so list files come along) and compiled against the same inventory (the working tree's) at the same
moment. Then every group the policy can speak about — each segment, and each department, profile,
person and host that either revision names — is asked about every target — the internet, each
category, each service — once inside each schedule and once outside all of them. Whatever decides
differently is reported: who gains or loses access to what, and when. Grants are compared by id: new,
removed, renewed (a later ``expires_on``), changed, expired.

When either revision makes the staff log in to the proxy (``settings.staff_login: required``), the
requests are asked as :mod:`akm.policy.evaluate` models them: a person is asked with their personal
login on every staff computer (``login:LOGIN``, "with their personal login on any staff computer") and by
address on their computers elsewhere; segments, departments, profiles and hosts are asked for whoever
logs in (:data:`~akm.policy.evaluate.ANY_LOGIN`), so turning logins on or off is said once, as its own
sentence, not as every staff computer losing the web. A new, renewed or changed grant to a person then
says that it follows the person's login.
"""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from ipaddress import IPv4Network
from pathlib import Path

from akm import i18n
from akm.i18n import _
from akm.policy.compile import CompiledPolicy, compile_policy, covers, schedule_matches
from akm.policy.evaluate import ANY_LOGIN, decide, staff_computers
from akm.policy.load import PolicyError, load_policy


def _git(args: list[str], cwd: Path) -> bytes:
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=False)
    if result.returncode != 0:
        raise PolicyError.one(
            "policy.git",
            _("git failed: {reason}").format(reason=result.stderr.decode(errors="replace").strip()),
            _("check that the revision exists, e.g. git log --oneline"),
            file="git",
            field=" ".join(args[:2]),
        )
    return result.stdout


def export_revision(policy_dir: Path, revision: str, target: Path) -> Path:
    """Write the policy's parent folder as it was at *revision* under *target*.

    Returns the policy directory inside *target*.
    """
    policy_dir = policy_dir.resolve()
    top = Path(
        _git(["rev-parse", "--show-toplevel"], policy_dir if policy_dir.is_dir() else policy_dir.parent)
        .decode()
        .strip()
    )
    relative = policy_dir.relative_to(top)
    folder = relative.parent
    names = _git(["ls-tree", "-r", "--name-only", "-z", revision, "--", folder.as_posix()], top).split(b"\0")
    for name in filter(None, names):
        path = name.decode()
        content = _git(["show", f"{revision}:{path}"], top)
        destination = target / path
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_bytes(content)
    exported = target / relative
    if not exported.exists():
        raise PolicyError.one(
            "policy.not-in-revision",
            _("the policy does not exist at revision {rev}").format(rev=revision),
            _("choose a revision that has it"),
            file=relative.as_posix(),
            field=revision,
        )
    return exported


@dataclass(frozen=True)
class Change:
    who: str
    target: str
    when: str
    before: str
    after: str
    units: int
    total: int


@dataclass
class DiffResult:
    changes: list[Change]
    grants: list[tuple[str, str, str]]
    names: dict[str, tuple[str, str]]
    staff_login: str | None = None
    """the new ``settings.staff_login`` when the change turns the staff's proxy logins on or off"""
    followers: dict[str, str] | None = None
    """grant id → the login it follows to any staff computer (a person's grant, logins required after)"""


def _moments(policies: list[CompiledPolicy], at: datetime) -> list[tuple[str, datetime]]:
    """One moment inside each schedule of either policy, and one outside all of them, in the week of *at*."""
    schedules = {}
    for policy in policies:
        schedules.update(policy.schedules)
    zone = policies[0].zone
    local = at.astimezone(zone)
    start = (local - timedelta(days=local.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
    hours = [start + timedelta(hours=h, minutes=30) for h in range(7 * 24)]
    moments = []
    for schedule_id in sorted(schedules):
        schedule = schedules[schedule_id]
        inside = next((m for m in hours if schedule_matches(schedule, m, zone)), None)
        if inside is not None:
            moments.append((f"schedule:{schedule_id}", inside))
    outside = next((m for m in hours if not any(schedule_matches(s, m, zone) for s in schedules.values())), None)
    if outside is not None:
        moments.append(("outside" if schedules else "always", outside))
    return moments


Request = tuple[tuple[IPv4Network, ...], str | None]
"""the addresses a request comes from and the personal login it carries"""


def _principals(policies: list[CompiledPolicy]) -> dict[str, list[Request]]:
    inventory = policies[0].inventory
    logins = next((p for p in policies if p.login_networks), None)
    found: dict[str, list[Request]] = {}
    for segment in sorted(inventory.segments.values(), key=lambda s: s.id):
        if segment.purpose not in {"wan", "management"}:
            found[f"segment:{segment.id}"] = [((segment.subnet,), ANY_LOGIN)]
    for policy in policies:
        for selector, nets in sorted(policy.selectors.items()):
            kind, _sep, name = selector.partition(":")
            if kind not in {"department", "profile", "person", "host"} or selector in found:
                continue
            units = [(IPv4Network(address),) for net in nets for address in net]
            if kind != "person":
                found[selector] = [(unit, ANY_LOGIN) for unit in units]
                continue
            if logins is not None:
                units = [unit for unit in units if not covers(logins.login_networks, unit)]
                found[f"login:{name}"] = [(unit, name) for _host, unit in staff_computers(logins)]
            if units:
                found[selector] = [(unit, name) for unit in units]
    return found


def _targets(policies: list[CompiledPolicy]) -> list[str]:
    targets = {"internet"}
    for policy in policies:
        targets |= {f"category:{c}" for c in policy.categories}
        targets |= {f"service:{s}" for s in policy.services}
    return sorted(targets)


def compare(old: CompiledPolicy, new: CompiledPolicy) -> DiffResult:
    """Return every change of decision and of grants between *old* and *new* (compiled at the same moment)."""
    at = new.at
    moments = _moments([old, new], at)
    changes = []
    for who, units in _principals([old, new]).items():
        for target in _targets([old, new]):
            per_moment = []
            for label, moment in moments:
                before = [decide(old, unit, target, moment, login).action for unit, login in units]
                after = [decide(new, unit, target, moment, login).action for unit, login in units]
                changed = sum(1 for b, a in zip(before, after, strict=True) if b != a)
                if changed:
                    direction = "allow" if after.count("allow") > before.count("allow") else "deny"
                    per_moment.append((label, direction, changed))
            if not per_moment:
                continue
            if len(per_moment) == len(moments) and len({d for _l, d, _c in per_moment}) == 1:
                per_moment = [("always", per_moment[0][1], max(c for _l, _d, c in per_moment))]
            for label, direction, changed in per_moment:
                before_action = "deny" if direction == "allow" else "allow"
                changes.append(Change(who, target, label, before_action, direction, changed, len(units)))
    grants = []
    old_grants = {g.record.id: g.record for g in old.raw.grants}
    new_grants = {g.record.id: g.record for g in new.raw.grants}
    today = at.astimezone(new.zone).date()
    for grant_id in sorted(set(old_grants) | set(new_grants)):
        before, after = old_grants.get(grant_id), new_grants.get(grant_id)
        if before is None:
            grants.append((grant_id, "new", after.expires_on.isoformat()))
        elif after is None:
            grants.append((grant_id, "removed", before.expires_on.isoformat()))
        elif after.expires_on > before.expires_on:
            grants.append((grant_id, "renewed", after.expires_on.isoformat()))
        elif after != before:
            grants.append((grant_id, "changed", after.expires_on.isoformat()))
        if after is not None and after.expires_on <= today:
            grants.append((grant_id, "expired", after.expires_on.isoformat()))
    names: dict[str, tuple[str, str]] = {}
    for policy in (old, new):
        for category in policy.categories.values():
            names[f"category:{category.id}"] = (category.name, category.name_en)
        for service in policy.services.values():
            names[f"service:{service.id}"] = (service.name, service.name_en)
        for schedule in policy.schedules.values():
            names[f"schedule:{schedule.id}"] = (schedule.name, schedule.name_en)
    staff_login = new.settings.staff_login if bool(old.login_networks) != bool(new.login_networks) else None
    followers = {
        grant_id: new_grants[grant_id].who[7:]
        for grant_id, status, _date in grants
        if status in {"new", "renewed", "changed"}
        and new.login_networks
        and new_grants[grant_id].who.startswith("person:")
    }
    return DiffResult(changes, grants, names, staff_login, followers)


def _describe_who(who: str, inventory) -> str:
    kind, _sep, name = who.partition(":")
    if kind == "segment":
        segment = inventory.segments.get(name)
        return _("segment {name}").format(name=segment.name if segment and i18n.language() == "uz" else name)
    if kind == "department":
        department = inventory.departments.get(name)
        label = (department.name if i18n.language() == "uz" else department.name_en) if department else name
        return _("department {name}").format(name=label)
    if kind == "profile":
        return _("profile {name}").format(name=name)
    if kind in {"person", "login"}:
        person = inventory.people.get(name)
        return _("{name} ({login})").format(name=person.name if person else name, login=name)
    return _("host {name}").format(name=name)


def render_text(result: DiffResult, inventory) -> list[str]:
    """The changes as sentences in the language selected now."""
    uz = i18n.language() == "uz"

    def named(key: str) -> str:
        if key == "internet":
            return _("the internet (other sites)")
        if key in result.names:
            return result.names[key][0 if uz else 1]
        return key

    lines = []
    for change in result.changes:
        when = (
            ""
            if change.when == "always"
            else (
                _("outside the schedules")
                if change.when == "outside"
                else _("during {schedule}").format(schedule=named(change.when))
            )
        )
        whole = change.units == change.total or change.total == 1
        part = "" if whole else _("{units} of {total} computers").format(units=change.units, total=change.total)
        subject = _describe_who(change.who, inventory)
        if change.who.startswith("login:"):
            subject = (
                _("{who}, with their personal login on any staff computer,")
                if whole
                else _("{who}, with their personal login on {units} of {total} staff computers,")
            ).format(who=subject, units=change.units, total=change.total)
        elif part:
            subject += f" ({part})"
        if change.after == "allow":
            text = _("{who} gains access to {what}").format(who=subject, what=named(change.target))
        else:
            text = _("{who} loses access to {what}").format(who=subject, what=named(change.target))
        lines.append("- " + text + (f" — {when}" if when else ""))
    if result.staff_login is not None:
        lines.append(
            "- "
            + (
                _("the staff now log in to the proxy with their personal login (settings.staff_login: required)")
                if result.staff_login == "required"
                else _("the staff no longer log in to the proxy (settings.staff_login: anonymous)")
            )
        )
    for grant_id, status, expires in result.grants:
        message = {
            "new": _("grant {id} is new (until {date})"),
            "removed": _("grant {id} is removed"),
            "renewed": _("grant {id} is renewed until {date}"),
            "changed": _("grant {id} is changed"),
            "expired": _("grant {id} has expired ({date}) and is left out"),
        }[status]
        text = message.format(id=grant_id, date=expires)
        if status != "expired" and grant_id in (result.followers or {}):
            text += "; " + _("it follows {login}'s personal login to any staff computer").format(
                login=result.followers[grant_id]
            )
        lines.append("- " + text)
    if not lines:
        lines.append("- " + _("no change in who may reach what"))
    return lines


def diff_revisions(policy_dir: Path, inventory, rev1: str, rev2: str, at: datetime | None) -> tuple[DiffResult, list]:
    """Compile the policy at *rev1* and *rev2* and compare them; also return the errors of either."""
    with tempfile.TemporaryDirectory(prefix="akm-policy-diff-") as temp:
        compiled = []
        for number, revision in enumerate((rev1, rev2)):
            exported = export_revision(policy_dir, revision, Path(temp) / str(number))
            compiled.append(compile_policy(load_policy(exported), inventory, at))
    errors = [p for c in compiled for p in c.errors]
    return compare(compiled[0], compiled[1]), errors
