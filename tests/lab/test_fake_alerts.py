"""The fake internet's alert endpoints, run on loopback with the command lines of their units: the Bot API
stand-in takes akm's own ``sendMessage`` with the lab vault's token and records it, refuses another
token; the mail sink (aiosmtpd's Maildir handler, as Debian's python3-aiosmtpd runs it) takes akm's own
e-mail over STARTTLS and stores it as one file. The lab CA's certificate names both endpoints."""

from __future__ import annotations

import json
import shlex
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import replace
from email import message_from_bytes
from email.policy import default
from pathlib import Path

import pytest

from akm import alert
from akm.alert.cli import TOKEN
from akm.inventory import load_inventory
from akm.lab import internet, lab
from akm.lab.plan import LabError, plan_lab
from akm.net.vault import write_vault
from tests.conftest import LAB_INVENTORY

LAB_TOKEN = "987654:the-lab-vault-token"  # pragma: allowlist secret (a test value)


@pytest.fixture(scope="module")
def lab_files(tmp_path_factory):
    """The plan of the lab inventory on a state directory of its own (a vault with a bot token, the lab
    CA and its sites' certificate), and the fake internet's files made from it."""
    state = tmp_path_factory.mktemp("state")
    plan = replace(lab.load_plan(LAB_INVENTORY), state_dir=state)
    files = lab.simulator_files(state)
    files["vault_password"].write_text("a throwaway lab vault password\n")
    write_vault(files["vault"], files["vault_password"], {TOKEN: LAB_TOKEN})
    internet.ensure_ca(plan)
    return plan, internet.unit_files(plan, plan.machine(plan.internet))


def _exec_start(unit: str) -> list[str]:
    (line,) = [line for line in unit.splitlines() if line.startswith("ExecStart=")]
    return shlex.split(line.removeprefix("ExecStart="))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for(path: Path, child: subprocess.Popen) -> None:
    for _try in range(100):
        if (path.exists() and path.read_text().strip()) or child.poll() is not None:
            break
        time.sleep(0.1)
    assert child.poll() is None, child.communicate()


def test_the_certificate_of_the_lab_ca_names_the_bot_api_and_the_relay(lab_files):
    plan, _files = lab_files
    ca = internet.ca_paths(plan.state_dir)[1]
    sites = ca.parent / "sites.crt"
    subprocess.run(["openssl", "verify", "-CAfile", str(ca), str(sites)], check=True, capture_output=True)
    text = subprocess.run(["openssl", "x509", "-noout", "-ext", "subjectAltName", "-in", str(sites)],
                          check=True, capture_output=True, text=True).stdout  # fmt: skip
    assert "DNS:api.telegram.org" in text and "DNS:mail.akm-lab.uz" in text and "DNS:kun.uz" in text


def test_the_fake_dns_answers_the_alerts_names_and_the_units_are_enabled(lab_files):
    plan, files = lab_files
    dns = files["etc/systemd/system/akm-fake-dns.service"]
    assert "--address=/api.telegram.org/198.18.0.3" in dns and "--address=/mail.akm-lab.uz/198.18.0.1" in dns
    telegram = files["etc/systemd/system/akm-fake-telegram.service"]
    assert "ExecStartPre=ip address replace 198.18.0.3/24 dev wan" in telegram
    assert files["etc/akm-lab/telegram-token"] == LAB_TOKEN + "\n"
    assert "akm-fake-internet 198.18.0.1\n" in files["etc/systemd/system/akm-fake-internet.service"]
    assert {"akm-fake-telegram.service", "akm-fake-mail.service"} <= set(internet.units(plan))


def test_the_bot_api_stand_in_takes_akms_message_and_records_it(lab_files, loopback_certificate, tmp_path):
    _plan, files = lab_files
    cert, key = loopback_certificate
    token = tmp_path / "token"
    token.write_text(files["etc/akm-lab/telegram-token"])
    record, ready = tmp_path / "telegram.jsonl", tmp_path / "ready"
    script = tmp_path / "akm-fake-telegram"
    script.write_text(files["usr/local/sbin/akm-fake-telegram"])
    local = {
        "/usr/bin/python3": sys.executable,
        "/usr/local/sbin/akm-fake-telegram": str(script),
        "198.18.0.3:443": "127.0.0.1:0",
        "/etc/akm-lab/sites.crt": str(cert),
        "/etc/akm-lab/sites.key": str(key),
        "/etc/akm-lab/telegram-token": str(token),
        internet.TELEGRAM_RECORD: str(record),
    }
    argv = [local.get(word, word) for word in _exec_start(files["etc/systemd/system/akm-fake-telegram.service"])]
    child = subprocess.Popen([*argv, "--ready", str(ready)], stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(ready, child)
        url = f"https://127.0.0.1:{ready.read_text().strip()}"
        channels = alert.Channels(telegram_url=url, telegram_token=LAB_TOKEN, telegram_chats=["100001"], cafile=cert)
        alert.send_telegram(channels, "AKM: 1 muammo\nsrv — zaxira")
        ((taken,),) = [[json.loads(line) for line in record.read_text().splitlines()]]
        assert taken["chat"] == {"id": 100001, "type": "private"} and taken["text"] == "AKM: 1 muammo\nsrv — zaxira"
        assert taken["message_id"] == 1 and taken["from"]["is_bot"] is True

        wrong = replace(channels, telegram_token="123:not-the-lab-token")
        with pytest.raises(alert.AlertError) as refused:
            alert.send_telegram(wrong, "never recorded")
        assert "Unauthorized" in str(refused.value)
        assert len(record.read_text().splitlines()) == 1
    finally:
        child.terminate()
        _out, log = child.communicate(timeout=10)
    assert LAB_TOKEN not in log and "sendMessage" in log


def test_the_mail_sink_takes_akms_mail_over_starttls_and_stores_one_file(lab_files, loopback_certificate, tmp_path):
    _plan, files = lab_files
    cert, key = loopback_certificate
    port, maildir = _free_port(), tmp_path / "mail"
    local = {
        "/usr/bin/python3": sys.executable,
        "198.18.0.1:587": f"127.0.0.1:{port}",
        "/etc/akm-lab/sites.crt": str(cert),
        "/etc/akm-lab/sites.key": str(key),
        internet.MAIL_DIR: str(maildir),
    }
    argv = [local.get(word, word) for word in _exec_start(files["etc/systemd/system/akm-fake-mail.service"])]
    child = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True)
    try:
        for _try in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert child.poll() is None, child.communicate()
                time.sleep(0.1)
        channels = alert.Channels(
            smtp_host="127.0.0.1", smtp_port=port, starttls=True, cafile=cert,
            mail_from="akm@lab.akm.lan", mail_to=["n.toshmatova@lab.akm.lan"],
        )  # fmt: skip
        alert.send_mail(channels, "AKM: 1 muammo", "srv — zaxira")
        plain = replace(channels, starttls=False)
        with pytest.raises(alert.AlertError):
            alert.send_mail(plain, "AKM: without TLS", "refused: the sink wants STARTTLS first")
    finally:
        child.terminate()
        child.communicate(timeout=10)
    (stored,) = (maildir / "new").iterdir()
    mail = message_from_bytes(stored.read_bytes(), policy=default)
    assert mail["Subject"] == "AKM: 1 muammo" and mail["To"] == "n.toshmatova@lab.akm.lan"
    assert mail.get_content().strip() == "srv — zaxira"


def test_a_bot_api_name_without_an_address_for_its_stand_in_is_refused(tmp_path):
    copy = tmp_path / "lab"
    shutil.copytree(LAB_INVENTORY, copy)
    text = (copy / "lab.yml").read_text()
    assert "    telegram_ip: 198.18.0.3\n" in text
    (copy / "lab.yml").write_text(text.replace("    telegram_ip: 198.18.0.3\n", ""))
    with pytest.raises(LabError) as refused:
        plan_lab(load_inventory(copy))
    (problem,) = refused.value.problems
    assert (problem.code, problem.field) == ("lab.no-telegram-address", "lab.internet.telegram_ip")
    assert "api.telegram.org" in problem.message
