"""``akm report``: the periodic reports (weekly, monthly, quarterly, annual) and the rules documents.

    akm report monthly --period 2026-11 --inventory inventory/production \\
        --access-log /var/log/squid/access.log --evidence /var/lib/akm/evidence --out reports/
    akm report rules --inventory inventory/production --out reports/

Writes ``<kind>-<period>.docx``, ``.xlsx`` and ``.html`` into ``--out``. Files are written under a
temporary name and renamed only when all three are complete, so a failed run leaves nothing half-done.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import date
from pathlib import Path

from akm import i18n
from akm.i18n import _
from akm.report.periods import KINDS


def common_options(parser: argparse.ArgumentParser) -> None:
    """Add the options every report command takes: inventory, output folder, language."""
    parser.add_argument(
        "--inventory",
        type=Path,
        default=Path("inventory/production"),
        help=_("inventory directory (default: inventory/production)"),
    )
    parser.add_argument("--out", type=Path, default=Path("reports"), help=_("output folder (default: reports)"))
    parser.add_argument(
        "--lang",
        choices=i18n.LANGUAGES,
        dest="report_lang",
        help=_("language of the documents (default: uz)"),
    )


def register(subparsers) -> None:
    """Add ``akm report`` and its subcommands."""
    parser = subparsers.add_parser("report", help=_("generate reports and rules documents"))
    kinds = parser.add_subparsers(dest="report_kind", metavar=_("KIND"), required=True)
    for kind in KINDS:
        sub = kinds.add_parser(kind, help=_("the {kind} report").format(kind=kind))
        common_options(sub)
        sub.add_argument("--period", help=_("2026-W47, 2026-11, 2026-Q4 or 2026 (default: the last complete one)"))
        sub.add_argument(
            "--access-log",
            type=Path,
            action="append",
            default=[],
            help=_("Squid access log (native format), or a folder of them; may be repeated"),
        )
        sub.add_argument("--evidence", type=Path, help=_("directory of evidence records (JSON)"))
        sub.add_argument("--policy-view", type=Path, help=_("categories and grants for the users' history (YAML)"))
        sub.add_argument(
            "--access-policy", type=Path, help=_("access policy directory, e.g. policies/access/production")
        )
        sub.add_argument("--register", type=Path, help=_("register of digitised resources (CSV)"))
        sub.add_argument("--plan", type=Path, help=_("digitisation plan (YAML)"))
        sub.add_argument(
            "--rules",
            type=Path,
            default=Path("policies/rules"),
            help=_("directory of the rules documents (default: policies/rules)"),
        )
        sub.add_argument(
            "--for-director",
            action="store_true",
            help=_("include per-person figures (personal data): the director's copy only"),
        )
        sub.add_argument("--today", type=date.fromisoformat, help=argparse.SUPPRESS)
        sub.set_defaults(handler=run_periodic)
    facts = kinds.add_parser(
        "facts", help=_("collect live facts from the Debian hosts over SSH (pyinfra) for the Drift section")
    )
    facts.add_argument(
        "--inventory",
        type=Path,
        default=Path("inventory/production"),
        help=_("inventory directory (default: inventory/production)"),
    )
    facts.add_argument(
        "--evidence", type=Path, required=True, help=_("directory of evidence records (JSON); written into drift/")
    )
    facts.add_argument(
        "--timeout", type=int, default=10, help=_("seconds to wait for each host's SSH connection (default: 10)")
    )
    facts.add_argument(
        "--ssh-key", type=Path, help=_("private SSH key to log in with, instead of the one the inventory names")
    )
    facts.add_argument(
        "--known-hosts",
        type=Path,
        help=_("known_hosts file of the pinned host keys (default: the inventory's, made from its host_keys)"),
    )
    facts.set_defaults(handler=run_facts)
    retention = kinds.add_parser(
        "retention", help=_("remove collected proxy logs older than the access policy's log_retention_days")
    )
    retention.add_argument(
        "--logs", type=Path, required=True, help=_("folder of the proxy logs collected onto this host")
    )
    retention.add_argument(
        "--access-policy",
        type=Path,
        required=True,
        help=_("access policy directory whose settings.log_retention_days applies"),
    )
    retention.add_argument(
        "--evidence", type=Path, required=True, help=_("directory of evidence records (JSON); written into proxylog/")
    )
    retention.set_defaults(handler=run_retention)
    rules = kinds.add_parser("rules", help=_("render the rules documents with acknowledgement sheets"))
    common_options(rules)
    rules.add_argument(
        "--rules",
        type=Path,
        default=Path("policies/rules"),
        help=_("directory of the rules documents (default: policies/rules)"),
    )
    rules.set_defaults(handler=run_rules)


def _publish(files: dict[Path, Path]) -> None:
    for temporary, final in files.items():
        os.replace(temporary, final)


def run_periodic(args) -> int:
    from akm.inventory import load_inventory
    from akm.report import periods, render
    from akm.report.build import Sources, build

    inventory = load_inventory(args.inventory)
    today = args.today or date.today()
    period = periods.parse(args.report_kind, args.period, today)
    sources = Sources(
        inventory,
        access_logs=args.access_log,
        evidence_dir=args.evidence,
        policy_view=args.policy_view,
        access_policy=args.access_policy,
        register=args.register,
        plan=args.plan,
        rules_dir=args.rules,
        director=args.for_director,
    )
    report = build(sources, period, made_on=today)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"{period.kind}-{period.label}" + ("-director" if args.for_director else "")
    files = {}
    for suffix, writer in (
        (".docx", render.write_docx),
        (".xlsx", render.write_xlsx),
        (".html", render.write_html),
    ):
        final = args.out / f"{stem}{suffix}"
        temporary = args.out / f".{stem}{suffix}.part"
        writer(report, temporary)
        files[temporary] = final
    _publish(files)
    for problem in report.problems:
        print(_("warning: {problem}").format(problem=problem))
    for final in files.values():
        print(final)
    return 0


def run_rules(args) -> int:
    from akm.inventory import load_inventory
    from akm.report import rules

    inventory = load_inventory(args.inventory)
    documents = rules.load_all(args.rules)
    args.out.mkdir(parents=True, exist_ok=True)
    final = args.out / "rules.docx"
    temporary = args.out / ".rules.docx.part"
    rules.write_docx(documents, inventory, temporary)
    _publish({temporary: final})
    print(final)
    return 0


def run_facts(args) -> int:
    """Collect the facts, write one record, print where and every difference with the inventory."""
    # pyinfra reaches the hosts concurrently only on gevent's cooperative sockets and threads; this
    # process does nothing else, so it is patched before pyinfra (and paramiko) are imported.
    from gevent import monkey

    monkey.patch_all()

    from akm.inventory import load_inventory
    from akm.inventory.hostkeys import advice
    from akm.report import drift, evidence, facts

    inventory = load_inventory(args.inventory)
    record = facts.collect(inventory, connect_timeout=args.timeout, ssh_key=args.ssh_key, known_hosts=args.known_hosts)
    path = facts.write_record(record, args.evidence)
    parsed, _problems = evidence.read(path.parent)
    mine = next(r for r in parsed if r.file == str(path))
    earlier = [r for r in parsed if r.kind == facts.KIND and r.time < mine.time]
    differences, _not_collected = drift.compare(inventory, mine, earlier)
    print(path)
    print(record["summary"])
    refused = facts.host_key_reasons()
    for name, item in record["unreachable"].items():
        print(_("unreachable: {host} ({address}): {reason}").format(host=name, **item))
        if item["reason"] in refused:
            print(advice(inventory.root, name, changed=item["reason"] == refused[0]), file=sys.stderr)
    for d in differences:
        print(
            _("difference: {host}: {field}: expected {expected}, live {live}").format(
                host=d.host, field=d.field, expected=d.expected, live=d.live
            )
        )
    # A host refused for its key fails the run (its unit alerts the IT staff); an unreachable one does not.
    return 1 if any(item["reason"] in refused for item in record["unreachable"].values()) else 0


def run_retention(args) -> int:
    """Apply the policy's retention to the collected logs, write the record, print what was removed."""
    from akm.report import retention

    record = retention.apply(args.logs, retention.retention_days(args.access_policy))
    path = retention.write_record(record, args.evidence)
    print(path)
    print(record["summary"])
    for name in record["removed"]:
        print(_("removed: {path}").format(path=name))
    for error in record["errors"]:
        print(_("not removed: {path}: {reason}").format(path=error["paths"][0], reason=error["message"]))
    return 1 if record["errors"] else 0
