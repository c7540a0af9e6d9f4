"""``akm alert evidence|grants``: tell the IT staff, once, what failed or expires (and what recovered).

Both commands read the same settings: the Telegram Bot API's address and the chats, the SMTP relay and
the addresses, and the vault the bot's token and the relay's password come from. The chats and the
addresses default to the ``telegram`` and ``email`` of the inventory's people who hold the duties the
failing work names (``alert:`` in ``policies/duties.yml``; the IT staff).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from akm import alert, evidence
from akm.duties import DEFAULT_FILE as DUTIES_FILE
from akm.duties import load as load_duties
from akm.i18n import _, format_number

DEFAULT_STATE = Path("/var/lib/akm/alert/state.json")
GRANT_DUTY = "grant-expiry-warning"
TOKEN = "vault_alert_telegram_token"  # pragma: allowlist secret (the name of a vault variable)
SMTP_PASSWORD = "vault_alert_smtp_password"  # pragma: allowlist secret (the name of a vault variable)


def _channels(args: argparse.Namespace, inventory, duties) -> alert.Channels:
    from akm.net.vault import default_password_file, default_vault_file, read_vault

    wanted = {person_duty for duty in duties for person_duty in duty.alert} or {"it_staff"}
    people = [p for p in inventory.people.values() if wanted & set(p.duties)]
    channels = alert.Channels(
        telegram_url=args.telegram_url,
        telegram_chats=args.telegram_chat or [str(p.telegram) for p in people if p.telegram is not None],
        cafile=args.cafile,
        smtp_host=args.smtp_host,
        smtp_port=args.smtp_port,
        starttls=args.starttls,
        smtp_user=args.smtp_user,
        mail_from=args.mail_from,
        mail_to=(args.mail_to or [p.email for p in people if p.email]) if args.smtp_host else [],
    )
    if not args.telegram_url:
        channels.telegram_chats = []
    if channels.telegram_chats or channels.smtp_user:
        vault_file = args.vault or default_vault_file(Path(inventory.root))
        variables = read_vault(vault_file, args.vault_password_file or default_password_file())
        channels.telegram_token = str(variables.get(TOKEN) or "")
        channels.smtp_password = str(variables.get(SMTP_PASSWORD) or "")
        if channels.telegram_chats and not channels.telegram_token:
            raise alert.AlertError.one(
                "alert.no-token",
                _("the vault has no {name}").format(name=TOKEN),
                _("add the bot's token with ansible-vault edit; akm vault check lists what is missing"),
                file=str(vault_file),
                field=TOKEN,
            )
    return channels


def _report(told: tuple[int, int]) -> int:
    new, recovered = told
    print(
        _("told: {new} problems, {recovered} recovered").format(
            new=format_number(new), recovered=format_number(recovered)
        )
    )
    return 0


def _evidence(args: argparse.Namespace) -> int:
    from akm.inventory import load_inventory

    duties = load_duties(args.duties)
    records = []
    for folder in args.evidence or [evidence.directory()]:
        for path in evidence.files(folder):
            found, _problems = evidence.load(path)
            records.extend(data for _where, data in found)
    current = alert.findings(records, duties)
    failing = {f.key.split("|", 1)[0] for f in current.values() if f.failed}
    inventory = load_inventory(args.inventory)
    channels = _channels(args, inventory, [d for d in duties if d.id in failing])
    return _report(alert.run(current, args.state, channels))


def _grants(args: argparse.Namespace) -> int:
    from akm.inventory import load_inventory
    from akm.policy.cli import compile_args

    duties = [d for d in load_duties(args.duties) if d.id == GRANT_DUTY]
    current = alert.grant_findings(compile_args(args), duties)
    channels = _channels(args, load_inventory(args.inventory), duties)
    return _report(alert.run(current, args.state, channels))


def _settings(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--state", type=Path, default=DEFAULT_STATE, help=_("what was already told (a JSON file)"))
    parser.add_argument("--duties", type=Path, default=DUTIES_FILE, help=_("the list of duties"))
    parser.add_argument(
        "--telegram-url",
        default=os.environ.get("AKM_TELEGRAM_URL", ""),
        help=_("the Telegram Bot API's address (empty: no Telegram); AKM_TELEGRAM_URL"),
    )
    parser.add_argument("--telegram-chat", action="append", help=_("a chat id (default: the people's telegram)"))
    parser.add_argument("--cafile", type=Path, help=_("CA certificates to trust for HTTPS and STARTTLS"))
    parser.add_argument("--smtp-host", default="", help=_("the mail relay (empty: no e-mail)"))
    parser.add_argument("--smtp-port", type=int, default=25)
    parser.add_argument("--starttls", action="store_true", help=_("encrypt the relay connection with STARTTLS"))
    parser.add_argument("--smtp-user", default="", help=_("login at the relay (its password is in the vault)"))
    parser.add_argument("--mail-from", default="akm@localhost", help=_("the sender's address"))
    parser.add_argument("--mail-to", action="append", help=_("an address (default: the people's email)"))
    parser.add_argument("--vault", type=Path, help=_("the vault file (default: <inventory>/group_vars/all/vault.yml)"))
    parser.add_argument("--vault-password-file", type=Path, help=_("file with the vault password"))


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``akm alert`` and its subcommands."""
    from akm.policy.cli import policy_arguments

    parser = subparsers.add_parser("alert", help=_("tell the IT staff what failed, once, by Telegram and e-mail"))
    commands = parser.add_subparsers(dest="command", metavar=_("COMMAND"), required=True)
    records = commands.add_parser("evidence", help=_("failed work in the evidence records, and what recovered"))
    records.add_argument(
        "-i",
        "--inventory",
        default="inventory/production",
        help=_("inventory directory (default: inventory/production)"),
    )
    records.add_argument(
        "--evidence", type=Path, action="append", help=_("evidence directory (repeatable; default: AKM_EVIDENCE_DIR)")
    )
    _settings(records)
    records.set_defaults(handler=_evidence)
    grants = commands.add_parser("grants", help=_("grants that expire within the policy's warning period"))
    policy_arguments(grants)
    _settings(grants)
    grants.set_defaults(handler=_grants)
