"""``akm alert`` against a real HTTPS server that answers like the Telegram Bot API and a real SMTP server
(aiosmtpd, with STARTTLS and a login), both on 127.0.0.1: one message per run, none while nothing
changed, one "recovered" when the failing work succeeds again; a channel that is down is said."""

from __future__ import annotations

import json
import socket
import ssl
import threading
from datetime import UTC, datetime
from email import message_from_bytes
from email.policy import default
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from akm import evidence
from akm.cli import main as akm
from akm.net.vault import write_vault

REPO = Path(__file__).resolve().parents[2]
LAB = REPO / "inventory" / "lab"
TOKEN = "123456789:a-throwaway-test-token"
SMTP_PASSWORD = "a-throwaway-relay-password"  # pragma: allowlist secret (a test value)


class FakeBotApi(BaseHTTPRequestHandler):
    """Answers ``POST /bot<token>/sendMessage`` as the Bot API does; remembers each message."""

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        server = self.server
        server.received.append((self.path, body))
        ok = self.path == f"/bot{TOKEN}/sendMessage" and not server.broken
        answer = (
            {"ok": True, "result": {"message_id": len(server.received)}}
            if ok
            else {"ok": False, "description": "Unauthorized"}
        )
        data = json.dumps(answer).encode()
        self.send_response(200 if ok else 401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def telegram(loopback_certificate):
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeBotApi)
    server.received, server.broken, server.cafile = [], False, loopback_certificate[0]
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*loopback_certificate)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


class Sink:
    """Keeps every message the relay accepts."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, _server, _session, envelope):
        self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content, policy=default)))
        return "250 OK"


@pytest.fixture
def smtp(loopback_certificate):
    def login(_server, _session, _envelope, mechanism, data):
        ok = isinstance(data, LoginPassword) and data.login == b"akm-alert" and data.password == SMTP_PASSWORD.encode()
        return AuthResult(success=ok)

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*loopback_certificate)
    sink = Sink()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        sink.port = probe.getsockname()[1]
    controller = Controller(
        sink, hostname="127.0.0.1", port=sink.port, tls_context=context, require_starttls=True, authenticator=login,
        auth_require_tls=True,
    )  # fmt: skip
    controller.start()
    yield sink
    controller.stop()


@pytest.fixture
def vault_files(tmp_path):
    password = tmp_path / "vault-password"
    password.write_text("a throwaway test password\n")
    vault_file = tmp_path / "vault.yml"
    write_vault(vault_file, password, {"vault_alert_telegram_token": TOKEN, "vault_alert_smtp_password": SMTP_PASSWORD})
    return vault_file, password


def _backup(folder: Path, host: str, result: str, hour: int) -> None:
    moment = datetime(2026, 11, 24, hour, 30, tzinfo=UTC)
    record = evidence.record(
        "backup.run",
        result,
        time=moment,
        host=host,
        duty="backup-run",
        started=evidence.iso(moment),
        summary="backup.unreachable: the backup server does not answer" if result == "failed" else "",
        repository=f"rest:https://198.18.0.20:8000/{host}/",
        classes=[],
        errors=[],
        copy={"result": "skipped"},
    )
    evidence.write(folder / host / "backup", f"run-{host}-{evidence.stamp(moment)}", record)


def _alert(kind, tmp_path, telegram, smtp, vault_files, capsys, *extra: str) -> tuple[int, str, str]:
    vault_file, password = vault_files
    code = akm(
        [*extra, "alert", kind, "-i", str(LAB), "--state", str(tmp_path / "state.json"),
         "--telegram-url", f"https://127.0.0.1:{telegram.server_address[1]}",
         "--cafile", str(telegram.cafile),
         "--smtp-host", "127.0.0.1", "--smtp-port", str(smtp.port), "--starttls", "--smtp-user", "akm-alert",
         "--mail-from", "akm@lab.akm.lan", "--vault", str(vault_file), "--vault-password-file", str(password),
         *(["--evidence", str(tmp_path / "evidence")] if kind == "evidence" else ["--at", "2027-06-20T09:00"])]
    )  # fmt: skip
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_one_message_per_run_none_while_nothing_changes_and_one_when_it_recovers(
    tmp_path, telegram, smtp, vault_files, capsys
):
    folder = tmp_path / "evidence"
    _backup(folder, "gw", "failed", 1)
    _backup(folder, "srv", "failed", 1)

    code, out, _err = _alert("evidence", tmp_path, telegram, smtp, vault_files, capsys)
    assert code == 0 and out.strip() == "aytildi: 2 ta muammo, 0 ta tiklangan"
    ((path, sent),) = telegram.received
    assert path == f"/bot{TOKEN}/sendMessage" and sent["chat_id"] == "100001"
    text = sent["text"]
    assert text.splitlines()[0] == "AKM: 2 ta muammo, 0 ta tiklandi"
    assert "gw — Maʼlumot sinflarining kunlik zaxira nusxasi" in text and "srv — " in text
    assert "backup server does not answer" in text and "Nima qilish kerak: Zaxira serveri" in text
    ((recipients, mail),) = smtp.messages
    assert recipients == ["n.toshmatova@lab.akm.lan"] and mail["Subject"] == "AKM: 2 ta muammo, 0 ta tiklandi"
    assert mail.get_content().replace("\r\n", "\n").strip() == text.strip()

    _backup(folder, "srv", "failed", 2)
    assert _alert("evidence", tmp_path, telegram, smtp, vault_files, capsys)[0] == 0
    assert len(telegram.received) == 1 and len(smtp.messages) == 1

    _backup(folder, "gw", "ok", 3)
    code, out, _err = _alert("evidence", tmp_path, telegram, smtp, vault_files, capsys, "--lang", "en")
    assert code == 0 and out.strip() == "told: 0 problems, 1 recovered"
    text = telegram.received[-1][1]["text"]
    assert text.splitlines() == [
        "AKM: 0 problems, 1 recovered",
        "",
        "RECOVERED: gw — Daily backup of the host's data classes",
    ]
    assert len(smtp.messages) == 2


def test_a_failed_unit_counts_for_its_duty_and_instance(tmp_path, telegram, smtp, vault_files, capsys):
    record = evidence.record("unit.failed", "failed", host="srv", unit="akm-backup-drill@av_masters.service")
    evidence.write(tmp_path / "evidence" / "srv" / "units", "unit-failed", record)
    assert _alert("evidence", tmp_path, telegram, smtp, vault_files, capsys, "--lang", "en")[0] == 0
    text = telegram.received[-1][1]["text"]
    assert "FAILED: srv — Monthly restore drill of each data class — av_masters" in text
    state = json.loads((tmp_path / "state.json").read_text())
    assert list(state["told"]) == ["restore-drill|srv|av_masters"]


def test_a_failed_units_message_says_why_from_its_own_record(tmp_path, telegram, smtp, vault_files, capsys):
    """The backup's own failed record (its summary names the classes) is followed by the unit.failed
    record of OnFailure=; the message keeps the reason the first one gave."""
    folder = tmp_path / "evidence" / "srv"
    run = evidence.record(
        "backup.run", "failed", time="2026-12-07T01:30:05+05:00", host="srv", duty="backup-run",
        repository="rest:https://bak:8000/srv/", started="2026-12-07T01:30:00+05:00", classes=[],
        errors=[{"code": "backup.unreachable", "message": "the backup machine does not answer"}],
        locks_removed=[], copy={"result": "skipped", "reason": "the backup failed"}, reread=False,
        files=0, bytes_added=0, snapshot_ids=[], summary="not backed up: shares, configs (no answer)",
    )  # fmt: skip
    evidence.write(folder / "backup", "run-srv", run)
    failed = evidence.record(
        "unit.failed", "failed", time="2026-12-07T01:30:06+05:00", host="srv", unit="akm-backup.service"
    )
    evidence.write(folder / "units", "unit-failed", failed)
    assert _alert("evidence", tmp_path, telegram, smtp, vault_files, capsys, "--lang", "en")[0] == 0
    assert "not backed up: shares, configs (no answer)" in telegram.received[-1][1]["text"]


def test_a_channel_that_is_down_is_said_and_the_other_still_tells(tmp_path, telegram, smtp, vault_files, capsys):
    _backup(tmp_path / "evidence", "gw", "failed", 1)
    telegram.broken = True
    code, _out, err = _alert("evidence", tmp_path, telegram, smtp, vault_files, capsys, "--lang", "en")
    assert code == 2
    assert "telegram: Telegram did not take the message for chat 100001: Unauthorized" in err
    assert len(smtp.messages) == 1
    telegram.broken = False
    assert _alert("evidence", tmp_path, telegram, smtp, vault_files, capsys)[0] == 0
    assert len(smtp.messages) == 1, "told once by e-mail: not told again"


def test_nothing_delivered_keeps_the_state_so_the_next_run_tells_it(tmp_path, telegram, smtp, vault_files, capsys):
    _backup(tmp_path / "evidence", "gw", "failed", 1)
    telegram.broken = True
    relay = smtp.port
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        smtp.port = probe.getsockname()[1]  # nothing listens there once the probe is closed
    code, _out, err = _alert("evidence", tmp_path, telegram, smtp, vault_files, capsys, "--lang", "en")
    assert code == 2 and "smtp: the mail relay 127.0.0.1:" in err and "Unauthorized" in err
    assert not (tmp_path / "state.json").exists()
    telegram.broken, smtp.port = False, relay
    assert _alert("evidence", tmp_path, telegram, smtp, vault_files, capsys, "--lang", "en")[0] == 0
    assert len(telegram.received) == 2 and len(smtp.messages) == 1 and (tmp_path / "state.json").exists()


def test_grants_that_expire_soon_are_told_once(tmp_path, telegram, smtp, vault_files, capsys):
    code, out, _err = _alert("grants", tmp_path, telegram, smtp, vault_files, capsys, "--lang", "en")
    assert code == 0 and out.strip() == "told: 2 problems, 0 recovered"
    text = telegram.received[-1][1]["text"]
    assert "G-LAB-001 (person:n.toshmatova) expires on June 30, 2027" in text
    assert "G-LAB-002" in text and "What to do: " in text
    assert _alert("grants", tmp_path, telegram, smtp, vault_files, capsys)[0] == 0
    assert len(telegram.received) == 1 and len(smtp.messages) == 1
