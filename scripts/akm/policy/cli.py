"""``akm policy``: check, build, diff, query and approve the access policy (Nizom F4).

Every subcommand reads the inventory (``--inventory``, default ``inventory/production``) and the policy
that belongs to it (``--policy``, default ``policies/access/<inventory folder name>``). ``--at`` moves the
clock of the check (grants' expiry, "now" of a query); the system clock is never changed.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from ipaddress import IPv4Network
from pathlib import Path
from zoneinfo import ZoneInfo

from akm import i18n
from akm.i18n import _
from akm.policy.build import render, write_tree
from akm.policy.compile import CompiledPolicy, compile_policy, covers, policy_dir_for
from akm.policy.generators import GENERATORS, Options
from akm.policy.load import PolicyError, load_policy


def _parse_at(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError as exc:
        raise PolicyError.one(
            "policy.bad-at",
            _("{value!r} is not a date and time").format(value=text),
            _("write it like 2026-12-01T10:30 (the centre's time zone) or 2026-12-01"),
            file="--at",
            field="--at",
        ) from exc


def _inventory(path: Path, at: datetime | None):
    from akm.inventory import load_inventory

    today = at.date() if at is not None else None
    return load_inventory(path, today=today)


def compile_args(args: argparse.Namespace, extra: tuple[str, ...] = ()) -> CompiledPolicy:
    """The policy of ``--inventory`` (``--policy``) compiled at ``--at``, as every policy command reads it."""
    at = _parse_at(args.at)
    inventory = _inventory(Path(args.inventory), at)
    if at is not None and at.tzinfo is None:
        at = at.replace(tzinfo=ZoneInfo(inventory.centre.timezone))
    policy_path = Path(args.policy) if args.policy else policy_dir_for(Path(args.inventory))
    return compile_policy(load_policy(policy_path), inventory, at, extra_selectors=extra)


def _report(policy: CompiledPolicy) -> None:
    for problem in policy.problems:
        label = _("warning") if problem.severity != "error" else _("error")
        print(f"{label}: {problem.render()}", file=sys.stderr)


def _fail_on_errors(policy: CompiledPolicy) -> None:
    if policy.errors:
        raise PolicyError(policy.errors)


def _rules_problems(policy: CompiledPolicy) -> list:
    """The problems of the rules documents of the policy's repository (``policies/rules``, if it has
    them): every clause's control must be in the repository (a role, a part of this access policy, a
    duty, a procedure), and the register of signed "Tanishdim" sheets of the inventory must be right."""
    from akm.report import rules

    inventory = policy.inventory
    repository = Path(inventory.root).resolve().parent.parent
    rules_dir = repository / "policies" / "rules"
    if not rules_dir.is_dir():
        return []
    documents = rules.load_all(rules_dir)
    known, problems = rules.controls(repository, Path(inventory.root).resolve().name, policy)
    problems += known.problems(documents)
    today = policy.at.astimezone(policy.zone).date()
    register = rules.acknowledgements_file(rules_dir, inventory)
    return problems + rules.load_acknowledgements(register, documents, inventory, today)[1]


def cmd_check(args: argparse.Namespace) -> int:
    policy = compile_args(args)
    for problem in policy.warnings:
        print(_("warning") + f": {problem.render()}", file=sys.stderr)
    documents = _rules_problems(policy)
    if policy.errors or documents:
        raise PolicyError(policy.errors + documents)
    if policy.expiring_grants:
        print(_("Grants expiring within {days} days:").format(days=policy.settings.expiry_warning_days))
        for located in policy.expiring_grants:
            grant = located.record
            print(f"  {grant.id}: {grant.who} — {i18n.format_date(grant.expires_on)}")
    rules = sum(1 for d in policy.decisions if d.kind == "rule")
    print(
        _(
            "policy is valid: {rules} rules, {grants} active grants ({expired} expired), "
            "{categories} categories, "
            "{domains} domains, {services} services"
        ).format(
            rules=i18n.format_number(rules),
            grants=i18n.format_number(len(policy.active_grants)),
            expired=i18n.format_number(len(policy.expired_grants)),
            categories=i18n.format_number(len(policy.categories)),
            domains=i18n.format_number(sum(len(c.domains) for c in policy.categories.values())),
            services=i18n.format_number(len(policy.services)),
        )
    )
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    policy = compile_args(args)
    for problem in policy.warnings:
        print(_("warning") + f": {problem.render()}", file=sys.stderr)
    _fail_on_errors(policy)
    platforms = [p for p in (args.only or "").split(",") if p]
    unknown = [p for p in platforms if p not in GENERATORS]
    if unknown:
        raise PolicyError.one(
            "policy.unknown-platform",
            _("unknown platform {name!r}").format(name=unknown[0]),
            _("use one of: {choices}").format(choices=", ".join(sorted(GENERATORS))),
            file="--only",
            field="--only",
        )
    defaults = Options()
    options = Options(
        squid_dir=Path(args.squid_dir) if args.squid_dir else defaults.squid_dir,
        squid_log_dir=Path(args.squid_log_dir) if args.squid_log_dir else defaults.squid_log_dir,
        squid_password_file=(
            Path(args.squid_password_file) if args.squid_password_file else defaults.squid_password_file
        ),
    )
    files = render(policy, platforms, options)
    write_tree(files, Path(args.out))
    print(_("wrote {count} files to {out}").format(count=i18n.format_number(len(files)), out=args.out))
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    from akm.policy.diff import diff_revisions, render_text

    at = _parse_at(args.at)
    inventory = _inventory(Path(args.inventory), at)
    if at is not None and at.tzinfo is None:
        at = at.replace(tzinfo=ZoneInfo(inventory.centre.timezone))
    policy_path = Path(args.policy) if args.policy else policy_dir_for(Path(args.inventory))
    result, errors = diff_revisions(policy_path, inventory, args.rev1, args.rev2, at)
    current = i18n.language()
    for language, title in (("uz", "Oʻzbekcha"), ("en", "English")):
        i18n.setup(language)
        print(f"## {title}: {args.rev1} → {args.rev2}")
        print("\n".join(render_text(result, inventory)))
        print()
    i18n.setup(current)
    if errors:
        print(_("the policy at one of the revisions has errors:"), file=sys.stderr)
        for problem in errors:
            print(problem.render(), file=sys.stderr)
        return 1
    return 0


def cmd_approve(args: argparse.Namespace) -> int:
    from akm.policy.approve import approve

    policy = compile_args(args)
    key = Path(args.key).expanduser() if args.key else Path.home() / ".ssh" / "id_ed25519"
    done = approve(policy, args.grant, key, policy.at.astimezone(policy.zone).date())
    person = policy.inventory.people[done.by]
    print(
        _("{grant} is signed by {name} ({login}) with the key {fingerprint}; written to {file}:{line}").format(
            grant=done.grant,
            name=person.name,
            login=done.by,
            fingerprint=done.key.fingerprint,
            file=done.file,
            line=done.line,
        )
    )
    print(_("check it with git diff and commit it; akm policy check verifies the signature"))
    return 0


def _query_selector(who: str, inventory) -> str:
    if who == "all" or ":" in who:
        return who
    if who in inventory.people:
        return f"person:{who}"
    return f"host:{who}"


def _query_target(what: str) -> str:
    if what == "internet" or what.startswith(("service:", "category:")):
        return what
    return f"site:{what}"


def _query_login(login: str, policy: CompiledPolicy, selector: str, asked: list) -> None:
    """Refuse ``--as LOGIN`` where the generated Squid configuration would never see that login: logins not
    required, a login the inventory does not know, a person as WHO, a computer off the staff's segments."""
    from akm.names import explain_foreign

    inventory = policy.inventory
    if not policy.login_networks:
        raise PolicyError.one(
            "policy.query-no-logins",
            _("the staff do not log in to the proxy in this policy (settings.staff_login: anonymous)"),
            _("leave out --as: every computer is decided by its address"),
            file="--as",
            field="--as",
        )
    if login not in inventory.people:
        foreign = explain_foreign(login)
        message, hint = foreign or (
            _("there is no person {name!r} in the inventory").format(name=login),
            _("give the personal login of one of the inventory's people, e.g. {example}").format(
                example=min(inventory.people)
            ),
        )
        raise PolicyError.one("policy.query-unknown-login", message, hint, file="--as", field="--as")
    if selector.startswith("person:"):
        raise PolicyError.one(
            "policy.query-login-person",
            _("WHO is already a person ({who}); --as says who logs in on the computer WHO names").format(
                who=selector[7:]
            ),
            _(
                "ask akm policy query {who} WHAT for the person on every staff computer, or name a computer as WHO"
            ).format(who=selector[7:]),
            file="--as",
            field="who",
        )
    for name, unit, _login in asked:
        if covers(policy.login_networks, unit):
            continue
        asset = next((a for a in inventory.assets if a.hostname == name), None)
        if asset is not None and "reader" in asset.profiles:
            message = _("{host} is a readers' kiosk; readers never log in to the proxy").format(host=name)
        else:
            message = _("{host} is not on a staff segment; the proxy asks no login there").format(host=name)
        raise PolicyError.one(
            "policy.query-login-not-asked",
            message,
            _("leave out --as, or name a computer on a staff segment as WHO"),
            file="WHO",
            field="who",
        )


def _reason(answer) -> str:
    if answer.login_required:
        return _("the proxy asks for a personal login here (settings.staff_login: required); ask with --as LOGIN")
    if answer.decision is None:
        return _("no rule names it; internal services are closed by default")
    reason = f"{answer.decision.label} ({answer.decision.file}:{answer.decision.line})"
    if answer.decision.expires is not None:
        reason += " " + _("until {date}").format(date=i18n.format_date(answer.decision.expires.date()))
    return reason


def cmd_query(args: argparse.Namespace) -> int:
    from akm.policy.evaluate import asks_login, category_of, decide, staff_computers

    at = _parse_at(args.at)
    inventory = _inventory(Path(args.inventory), at)
    selector = _query_selector(args.who, inventory)
    policy = compile_args(args, extra=(selector,))
    _fail_on_errors(policy)
    target = _query_target(args.what)
    if target.startswith("service:") and target[8:] not in policy.services:
        raise PolicyError.one(
            "policy.unknown-service",
            _("there is no service {name!r} in the policy").format(name=target[8:]),
            _("use one of: {choices}").format(choices=", ".join(sorted(policy.services))),
            file="WHAT",
            field="what",
        )
    nets = policy.selectors.get(selector, ())
    hosts = {}
    for asset in inventory.assets:
        for interface in asset.interfaces:
            if interface.ip is not None:
                hosts[IPv4Network(interface.ip)] = asset.hostname
    whole = selector.startswith(("segment:", "all"))
    units = [nets] if whole else [(IPv4Network(a),) for n in nets for a in n]
    # With logins, a person is their login on every staff computer and their address elsewhere.
    person = (
        selector[7:] if selector.startswith("person:") and asks_login(policy, policy.login_networks, target) else None
    )
    asked = [(args.who if whole else hosts.get(u[0], str(u[0])), u, args.login) for u in units]
    if args.login is not None:
        _query_login(args.login, policy, selector, asked)
    if person is not None:
        asked = [(name, unit, None) for name, unit, _login in asked if not covers(policy.login_networks, unit)]
    staff = staff_computers(policy) if person is not None else []
    if not asked and not staff:
        print(_("{who} has no computer with an address in the inventory").format(who=args.who))
        return 1
    if target.startswith("site:"):
        found = category_of(policy, target[5:])
        print(
            _("{site}: category {categories}").format(
                site=target[5:], categories=", ".join(found) if found else _("none")
            )
        )
    allowed_all = True
    for name, unit, login in asked:
        answer = decide(policy, unit, target, policy.at, login)
        if login is not None:
            name = _("{host}, logged in as {login}").format(host=name, login=login)
        verdict = _("allowed") if answer.action == "allow" else _("denied")
        print(f"{name}: {verdict} — {_reason(answer)}")
        allowed_all &= answer.action == "allow"
    groups: dict[tuple, list[str]] = {}
    for name, unit in staff:
        answer = decide(policy, unit, target, policy.at, person)
        groups.setdefault((answer.action, _reason(answer)), []).append(name)
    for (action, reason), names in groups.items():
        where = (
            _("{login} logged in on any staff computer").format(login=person)
            if len(groups) == 1
            else _("{login} logged in on {hosts}").format(login=person, hosts=", ".join(names))
        )
        verdict = _("allowed") if action == "allow" else _("denied")
        print(f"{where}: {verdict} — {reason}")
        allowed_all &= action == "allow"
    return 0 if allowed_all else 3


def policy_arguments(sub: argparse.ArgumentParser) -> None:
    """The options that say which policy, of which inventory, at which moment (:func:`compile_args`)."""
    sub.add_argument(
        "-i",
        "--inventory",
        default="inventory/production",
        help=_("inventory directory (default: inventory/production)"),
    )
    sub.add_argument("-p", "--policy", help=_("policy directory (default: policies/access/<inventory name>)"))
    sub.add_argument(
        "--at",
        metavar=_("DATETIME"),
        help=_("check as of this moment instead of now, e.g. 2026-12-01T10:30"),
    )


def register(subparsers) -> None:
    """Add ``akm policy`` and its subcommands."""
    parser = subparsers.add_parser(
        "policy",
        help=_("access policy: check, build, diff, query, approve"),
        description=_("The access policy as code (Nizom F4)."),
    )
    commands = parser.add_subparsers(dest="policy_command", metavar=_("COMMAND"), required=True)

    check = commands.add_parser("check", help=_("validate the policy against the inventory"))
    policy_arguments(check)
    check.set_defaults(handler=cmd_check)

    build = commands.add_parser("build", help=_("generate the configuration of every platform"))
    policy_arguments(build)
    build.add_argument("--out", required=True, metavar=_("DIR"), help=_("output directory"))
    build.add_argument(
        "--only",
        metavar=_("PLATFORMS"),
        help=_("comma-separated platforms: {choices}").format(choices=", ".join(sorted(GENERATORS))),
    )
    build.add_argument(
        "--squid-dir",
        metavar=_("DIR"),
        help=_("where the Squid files will live on the gateway (default: /etc/squid/akm)"),
    )
    build.add_argument(
        "--squid-log-dir",
        metavar=_("DIR"),
        help=_("where Squid writes the access log on the gateway (default: /var/log/squid/akm)"),
    )
    build.add_argument(
        "--squid-password-file",
        metavar=_("FILE"),
        help=_(
            "the staff's proxy logins on the gateway, when staff_login is required (default: /etc/squid/akm-passwords)"
        ),
    )
    build.set_defaults(handler=cmd_build)

    diff = commands.add_parser("diff", help=_("what a change of the policy does, in plain words"))
    policy_arguments(diff)
    diff.add_argument("rev1", metavar="REV1")
    diff.add_argument("rev2", metavar="REV2")
    diff.set_defaults(handler=cmd_diff)

    query = commands.add_parser("query", help=_("can a host or person reach a site or service now?"))
    policy_arguments(query)
    query.add_argument("who", metavar=_("WHO"), help=_("host, person login, or selector like department:akt"))
    query.add_argument("what", metavar=_("WHAT"), help=_("a domain, category:ID, service:ID or internet"))
    query.add_argument(
        "--as",
        dest="login",
        metavar=_("LOGIN"),
        help=_("the personal login the request from a staff computer carries (settings.staff_login: required)"),
    )
    query.set_defaults(handler=cmd_query)

    approve = commands.add_parser(
        "approve", help=_("sign a grant with the approver's SSH key (the director or an allowed deputy)")
    )
    policy_arguments(approve)
    approve.add_argument("grant", metavar="GRANT-ID", help=_("the id of the grant, e.g. G-2026-011"))
    approve.add_argument(
        "--key",
        metavar=_("PATH"),
        help=_("the approver's private key, or a .pub whose key is in ssh-agent (default: ~/.ssh/id_ed25519)"),
    )
    approve.set_defaults(handler=cmd_approve)

    docs = commands.add_parser(
        "docs", help=_("render the rules documents as DOCX with an acknowledgement sheet for every staff member")
    )
    _report_cli().common_options(docs)
    docs.add_argument(
        "--rules",
        type=Path,
        default=Path("policies/rules"),
        help=_("directory of the rules documents (default: policies/rules)"),
    )
    docs.set_defaults(handler=lambda args: _report_cli().run_rules(args))


def _report_cli():
    """The report area renders the rules documents; ``akm policy docs`` is where users look for it."""
    from akm.report import cli as report_cli

    return report_cli


def main(argv: list[str] | None = None) -> int:
    """Run ``akm policy`` alone (used by tests and by ``python -m akm.policy``)."""
    from akm.cli import run_handler

    i18n.setup(None)
    parser = argparse.ArgumentParser(prog="akm")
    parser.add_argument("--lang", choices=i18n.LANGUAGES)
    register(parser.add_subparsers(dest="area", required=True))
    args = parser.parse_args(argv)
    if args.lang:
        i18n.setup(args.lang)
    return run_handler(args)
