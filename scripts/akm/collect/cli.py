"""``akm collect``: gather what the reports need from every Debian host onto this (the management) host.

    akm collect --inventory inventory/production --evidence /var/lib/akm/evidence \\
        --logs /var/lib/akm/proxy-logs --state /var/lib/akm/collect \\
        --ssh-key /etc/akm/ssh/collect_ed25519 --known-hosts /etc/akm/ssh/known_hosts

Prints where the run's ``collect.run`` record is, its summary, and one line per host that failed or
has something to look at. The exit code is 0 whenever the record is written: a host that is off is a
failure in the record (the evidence alert tells the IT staff), and the next run takes what it missed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from akm.i18n import _


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``akm collect``."""
    parser = subparsers.add_parser(
        "collect", help=_("gather the hosts' evidence, proxy logs and network presence onto this host")
    )
    parser.add_argument(
        "--inventory",
        type=Path,
        default=Path("inventory/production"),
        help=_("inventory directory (default: inventory/production)"),
    )
    parser.add_argument(
        "--evidence",
        type=Path,
        required=True,
        help=_("directory of evidence records: the hosts' records go into hosts/, the run's into collect/"),
    )
    parser.add_argument("--logs", type=Path, required=True, help=_("folder of the collected proxy logs"))
    parser.add_argument(
        "--state", type=Path, required=True, help=_("folder of what was collected so far (one file per host)")
    )
    parser.add_argument("--ssh-key", type=Path, help=_("private SSH key of the collection"))
    parser.add_argument(
        "--known-hosts",
        type=Path,
        help=_("known_hosts file of the pinned host keys (default: the inventory's, made from its host_keys)"),
    )
    parser.add_argument(
        "--timeout", type=int, default=10, help=_("seconds to wait for each host's SSH connection (default: 10)")
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from akm import collect
    from akm.inventory import load_inventory
    from akm.inventory.hostkeys import write_known_hosts
    from akm.report.facts import targets

    inventory = load_inventory(args.inventory)
    known_hosts = args.known_hosts or write_known_hosts(inventory)
    transport = collect.Ssh(args.ssh_key, known_hosts, connect_timeout=args.timeout)
    places = collect.Places(args.evidence, args.logs, args.state)
    record = collect.collect(targets(inventory, args.ssh_key, known_hosts), transport, places)
    print(collect.write_record(record, args.evidence))
    print(record["summary"])
    for name, host in record["hosts"].items():
        if host["result"] == "failed":
            print(_("not collected: {host}: {reason}").format(host=name, reason=host["reason"]))
        for problem in host["problems"]:
            print(_("{host}: {item}: {message}").format(host=name, **problem))
    return 0
