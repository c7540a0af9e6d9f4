"""Alerts that reach a person: one message to the IT staff, by Telegram and by e-mail.

What is wrong comes from the evidence the management host holds (its own and what it collected): the
newest record of each *problem* — a duty (or, for work done by hand, a kind of record) on a host, for
one subject such as a data class — decides whether that problem is failing. ``unit.failed`` records
(written by ``akm-alert@.service`` when a unit of ours fails) count for the duty whose service failed.
Grants that expire within the policy's warning period are problems too.

A state file remembers what was already told, so a failing problem is told once, not at every run, and
once more as "recovered" when its newest record is a success again. Everything new in one run goes into
ONE message: a dead backup server whose clients all fail is one message naming each host.

Messages are in Uzbek (English with ``--lang en``): the host, the duty's name, the record's summary and
what to do (the duty's ``remedy`` in ``policies/duties.yml``).
"""

from __future__ import annotations

import json
import smtplib
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import date, datetime
from email.message import EmailMessage
from pathlib import Path

from akm import evidence, i18n
from akm.duties import INSTANCE, Duty
from akm.errors import Error, Problem
from akm.i18n import _

TELEGRAM_LIMIT = 4000
"""Characters of one Telegram message we send (the Bot API takes 4096)."""


class AlertError(Error):
    """An alert could not be delivered by any channel, or its settings are wrong."""


@dataclass(frozen=True)
class Finding:
    """The newest record of one problem: what failed (or works again) where."""

    key: str
    host: str
    title: str
    subject: str
    summary: str
    remedy: str
    failed: bool
    time: str


@dataclass
class Channels:
    """Where messages go: the Telegram Bot API and an SMTP relay, each optional."""

    telegram_url: str = ""
    telegram_token: str = ""
    telegram_chats: list[str] = field(default_factory=list)
    cafile: Path | None = None
    smtp_host: str = ""
    smtp_port: int = 25
    starttls: bool = False
    smtp_user: str = ""
    smtp_password: str = ""
    mail_from: str = ""
    mail_to: list[str] = field(default_factory=list)
    timeout: float = 20.0


def _duty_of_unit(duties: list[Duty], unit: str) -> tuple[Duty | None, str]:
    """The duty whose service (or timer) is *unit*, and the instance (data class) it ran for."""
    for duty in duties:
        for template in (duty.service, duty.timer):
            head, _sep, tail = template.partition(INSTANCE)
            if unit == template or (_sep and unit.startswith(head) and unit.endswith(tail)):
                return duty, unit[len(head) : len(unit) - len(tail)] if _sep else ""
    return None, ""


def findings(records: list[dict], duties: list[Duty]) -> dict[str, Finding]:
    """The newest finding of each problem among *records* (evidence of the schema). Alert records
    are left out: the failed record that raised each one is there too."""
    by_id = {d.id: d for d in duties}
    english = i18n.language() == "en"
    newest: dict[str, Finding] = {}
    for record in sorted(records, key=lambda r: datetime.fromisoformat(r["time"])):
        if record["kind"].endswith(".alert"):
            continue
        duty, subject = by_id.get(record.get("duty", "")), record.get("subject", "")
        if record["kind"] == "unit.failed":
            duty, subject = _duty_of_unit(duties, record["unit"])
        name = duty.id if duty else record.get("unit") or record["kind"]
        key = "|".join((name, record["host"], subject))
        summary = record.get("summary", "") or record.get("reason", "")
        earlier = newest.get(key)
        if record["kind"] == "unit.failed" and earlier is not None and earlier.failed:
            # The unit's own failed record says why; the OnFailure record after it only that it failed.
            summary = earlier.summary
        newest[key] = Finding(
            key=key,
            host=record["host"],
            title=(duty.name_en if english else duty.name) if duty else name,
            subject=subject,
            summary=summary,
            remedy=(duty.remedy_en if english else duty.remedy) if duty else "",
            failed=record["result"] == "failed",
            time=record["time"],
        )
    return newest


def grant_findings(policy, warn: list[Duty]) -> dict[str, Finding]:
    """A finding for each grant of *policy* (a compiled access policy) that expires within its warning
    period; *warn* is the grant-expiry duty, whose remedy the message gives."""
    english = i18n.language() == "en"
    remedy = (warn[0].remedy_en if english else warn[0].remedy) if warn else ""
    found = {}
    for located in policy.expiring_grants:
        grant = located.record
        key = f"grant|{grant.id}"
        found[key] = Finding(
            key=key,
            host="",
            title=_("grant {grant} ({who}) expires on {date}").format(
                grant=grant.id, who=grant.who, date=i18n.format_date(grant.expires_on)
            ),
            subject="",
            summary=grant.why,
            remedy=remedy,
            failed=True,
            time=grant.expires_on.isoformat(),
        )
    return found


def plan(current: dict[str, Finding], state: dict) -> tuple[list[Finding], list[Finding]]:
    """What to tell now: problems failing and not yet told, and told problems that work again."""
    told = state.get("told", {})
    new = [f for key, f in sorted(current.items()) if f.failed and key not in told]
    recovered = [f for key, f in sorted(current.items()) if not f.failed and key in told]
    return new, recovered


def message(new: list[Finding], recovered: list[Finding]) -> tuple[str, str]:
    """The subject and the text of the one message of a run."""
    subject = _("AKM: {new} problems, {recovered} recovered").format(
        new=i18n.format_number(len(new)), recovered=i18n.format_number(len(recovered))
    )
    lines = [subject, ""]
    for finding in new:
        where = " — ".join(filter(None, (finding.host, finding.title, finding.subject)))
        lines.append(_("FAILED: {where}").format(where=where))
        if finding.summary:
            lines.append("  " + finding.summary)
        if finding.remedy:
            lines.append("  " + _("What to do: {remedy}").format(remedy=finding.remedy))
    for finding in recovered:
        where = " — ".join(filter(None, (finding.host, finding.title, finding.subject)))
        lines.append(_("RECOVERED: {where}").format(where=where))
    return subject, "\n".join(lines)


def _shorten(text: str) -> str:
    if len(text) <= TELEGRAM_LIMIT:
        return text
    cut = text[: TELEGRAM_LIMIT - 80].rsplit("\n", 1)[0]
    rest = text.count("\n") - cut.count("\n")
    return cut + "\n" + _("… and {lines} more lines in the e-mail").format(lines=rest)


def send_telegram(channels: Channels, text: str) -> None:
    """POST *text* to every chat through the Bot API's ``sendMessage``; raise :class:`AlertError`."""
    context = ssl.create_default_context(cafile=str(channels.cafile) if channels.cafile else None)
    url = f"{channels.telegram_url.rstrip('/')}/bot{channels.telegram_token}/sendMessage"
    for chat in channels.telegram_chats:
        body = json.dumps({"chat_id": chat, "text": _shorten(text)}).encode()
        request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=channels.timeout, context=context) as answer:
                reply = json.loads(answer.read() or b"{}")
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise AlertError.one(
                "alert.telegram",
                _("Telegram did not take the message for chat {chat}: {reason}").format(chat=chat, reason=reason),
                _("check the bot token in the vault, the chat id and that the Bot API is reachable"),
                field="telegram",
            ) from exc
        if not reply.get("ok"):
            raise AlertError.one(
                "alert.telegram",
                _("Telegram did not take the message for chat {chat}: {reason}").format(
                    chat=chat, reason=reply.get("description", "")
                ),
                _("check the bot token in the vault, the chat id and that the Bot API is reachable"),
                field="telegram",
            )


def send_mail(channels: Channels, subject: str, text: str) -> None:
    """Send one e-mail to every recipient through the SMTP relay; raise :class:`AlertError`."""
    mail = EmailMessage()
    mail["Subject"] = subject
    mail["From"] = channels.mail_from
    mail["To"] = ", ".join(channels.mail_to)
    mail.set_content(text)
    try:
        with smtplib.SMTP(channels.smtp_host, channels.smtp_port, timeout=channels.timeout) as relay:
            if channels.starttls:
                relay.starttls(
                    context=ssl.create_default_context(cafile=str(channels.cafile) if channels.cafile else None)
                )
            if channels.smtp_user:
                relay.login(channels.smtp_user, channels.smtp_password)
            relay.send_message(mail)
    except (smtplib.SMTPException, OSError) as exc:
        raise AlertError.one(
            "alert.mail",
            _("the mail relay {relay} did not take the message: {reason}").format(
                relay=f"{channels.smtp_host}:{channels.smtp_port}", reason=exc
            ),
            _("check the relay's address, its login and that it answers"),
            field="smtp",
        ) from exc


def deliver(channels: Channels, subject: str, text: str) -> list[Problem]:
    """Send by every configured channel; return the problems of those that failed. Raise
    :class:`AlertError` when no channel delivered the message (the state then stays as it was)."""
    problems: list[Problem] = []
    delivered = 0
    if channels.telegram_chats:
        try:
            send_telegram(channels, text)
            delivered += 1
        except AlertError as exc:
            problems.extend(exc.problems)
    if channels.mail_to:
        try:
            send_mail(channels, subject, text)
            delivered += 1
        except AlertError as exc:
            problems.extend(exc.problems)
    if not delivered:
        raise AlertError(
            problems
            or [
                Problem(
                    "",
                    None,
                    "",
                    "alert.no-channel",
                    _("no one to tell: no Telegram chat and no e-mail address"),
                    _("give the IT staff telegram: and email: in the inventory's people, or --telegram-chat/--mail-to"),
                )
            ]
        )
    return problems


def read_state(path: Path) -> dict:
    """The state of earlier runs (``{"told": {key: {...}}}``); empty when there is none yet."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"told": {}}
    except (OSError, ValueError) as exc:
        raise AlertError.one(
            "alert.state",
            _("the alert state cannot be read: {reason}").format(reason=exc),
            _("remove the file: the next run tells every current problem once again"),
            file=str(path),
        ) from exc
    return data if isinstance(data.get("told"), dict) else {"told": {}}


def run(
    current: dict[str, Finding], state_file: Path, channels: Channels, today: date | None = None
) -> tuple[int, int]:
    """Tell what is new since the state in *state_file*, by every channel, then remember it. Returns how
    many problems and recoveries were told (0, 0 when there was nothing to say: no message is sent)."""
    state = read_state(state_file)
    new, recovered = plan(current, state)
    if not new and not recovered:
        return 0, 0
    subject, text = message(new, recovered)
    problems = deliver(channels, subject, text)
    told = dict(state["told"])
    for finding in new:
        told[finding.key] = {"since": finding.time, "told": (today or date.today()).isoformat()}
    for finding in recovered:
        told.pop(finding.key, None)
    evidence.write_json(state_file, {"told": told}, mode=0o600)
    if problems:
        raise AlertError(problems)
    return len(new), len(recovered)
