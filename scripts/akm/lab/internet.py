"""The fake internet: a certificate authority made at run time, site certificates, web, DNS and time units.

The CA (``<state_dir>/ca/ca.{key,crt}``) is generated once per state directory with ``openssl`` and
trusted by every lab machine; it signs one certificate for all sites of the inventory and the names
the alerts go to (regenerated when the list changes). The internet machine runs units written into its
layer:

- ``akm-fake-internet.service`` — :mod:`akm.lab.files.fake_internet` on ports 80 and 443 of its
  first address;
- ``akm-fake-dns.service`` — dnsmasq answering only for the sites (every name of a site and its
  subdomains resolves to the internet machine; any other name is refused) and the alerts' names;
- ``akm-fake-time.service`` — chronyd serving the lab range from the host's clock (``local``), as a
  public time server does; it never sets the clock (``-x``): the machines share the host's;
- ``akm-fake-telegram.service`` — :mod:`akm.lab.files.fake_telegram`, the Bot API under
  ``centre.upstream.telegram`` on port 443 of its own address, taking the lab vault's bot token and
  recording each message it takes in ``/var/lib/akm-lab/telegram.jsonl``;
- ``akm-fake-mail.service`` — the mail relay ``centre.upstream.mail_relay``: aiosmtpd (Debian's
  python3-aiosmtpd, in the image) with STARTTLS under the lab CA, storing each message as one file of
  the Maildir ``/var/lib/akm-lab/mail`` (``new/``).

Both alert units exist only when the inventory names their endpoint.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from akm.lab.plan import LAB_RANGE, Machine, Plan
from akm.lab.system import run

FILES = Path(__file__).parent / "files"


def ca_paths(state_dir: Path) -> tuple[Path, Path]:
    """The CA's key and certificate."""
    return state_dir / "ca" / "ca.key", state_dir / "ca" / "ca.crt"


def ensure_ca(plan: Plan) -> Path:
    """Create the lab CA and the sites' certificate if missing or stale; return the CA certificate."""
    key, cert = ca_paths(plan.state_dir)
    key.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not (key.exists() and cert.exists()):
        run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                str(key),
                "-out",
                str(cert),
                "-days",
                "3650",
                "-subj",
                "/CN=AKM lab CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ]
        )
        key.chmod(0o600)
    names = sorted({n for s in plan.sites for n in (s.domain, f"*.{s.domain}")} | set(plan.alerts.names))
    digest = hashlib.sha256(("\n".join(names) + cert.read_text()).encode()).hexdigest()
    site_key, site_cert, marker = (
        key.parent / "sites.key",
        key.parent / "sites.crt",
        key.parent / "sites.id",
    )
    if site_cert.exists() and marker.exists() and marker.read_text() == digest:
        return cert
    ext = key.parent / "sites.ext"
    ext.write_text(
        "subjectAltName=" + ",".join(f"DNS:{n}" for n in names) + "\n"
        "extendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n"
    )
    csr = key.parent / "sites.csr"
    run(
        [
            "openssl",
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(site_key),
            "-out",
            str(csr),
            "-subj",
            "/CN=akm-lab-sites",
        ]
    )
    run(
        [
            "openssl",
            "x509",
            "-req",
            "-in",
            str(csr),
            "-CA",
            str(cert),
            "-CAkey",
            str(key),
            "-CAcreateserial",
            "-days",
            "825",
            "-extfile",
            str(ext),
            "-out",
            str(site_cert),
        ]
    )
    site_key.chmod(0o600)
    marker.write_text(digest)
    return cert


TELEGRAM_RECORD = "/var/lib/akm-lab/telegram.jsonl"
"""Where the Bot API stand-in appends each message it took, one JSON object a line."""
MAIL_DIR = "/var/lib/akm-lab/mail"
"""The mail sink's Maildir: each message one file under ``new/``."""


def _unit(description: str, service: str) -> str:
    return (
        f"[Unit]\nDescription=AKM lab fake internet: {description}\nAfter=network.target\n\n"
        f"[Service]\n{service}Restart=always\n\n[Install]\nWantedBy=multi-user.target\n"
    )


def telegram_token(plan: Plan) -> str:
    """The bot token of the lab vault (``vault_alert_telegram_token``): the one the stand-in takes."""
    from akm.alert.cli import TOKEN
    from akm.lab.lab import simulator_files
    from akm.net.vault import read_vault

    files = simulator_files(plan.state_dir)
    if not files["vault"].exists():
        return ""
    return str(read_vault(files["vault"], files["vault_password"]).get(TOKEN) or "")


def unit_files(plan: Plan, machine: Machine) -> dict[str, str]:
    """Files (path inside the machine -> content) that make *machine* the fake internet."""
    ip = str(plan.dns_server)
    alerts = plan.alerts
    sites = [{"domain": s.domain, "category": s.category, "https": s.https} for s in plan.sites]
    answers = [(s.domain, ip) for s in plan.sites]
    if alerts.telegram_address is not None:
        answers.append((alerts.telegram, str(alerts.telegram_address.ip)))
    if alerts.mail_relay:
        answers.append((alerts.mail_relay, ip))
    dns = " ".join(f"--address=/{name}/{address}" for name, address in answers)
    key_dir = plan.state_dir / "ca"
    files = {
        "etc/akm-lab/chrony.conf": f"local stratum 2\nallow {LAB_RANGE}\ncmdport 0\n",
        "etc/systemd/system/akm-fake-time.service": _unit(
            "a public time server",
            "RuntimeDirectory=chrony\nExecStart=/usr/sbin/chronyd -d -x -f /etc/akm-lab/chrony.conf\n",
        ),
        "etc/akm-lab/sites.json": json.dumps(sites, indent=1, sort_keys=True) + "\n",
        "etc/akm-lab/sites.crt": (key_dir / "sites.crt").read_text(),
        "etc/akm-lab/sites.key": (key_dir / "sites.key").read_text(),
        "usr/local/sbin/akm-fake-internet": (FILES / "fake_internet.py").read_text(),
        "etc/systemd/system/akm-fake-internet.service": _unit(
            "test sites over HTTP and HTTPS", f"ExecStart=/usr/bin/python3 /usr/local/sbin/akm-fake-internet {ip}\n"
        ),
        "etc/systemd/system/akm-fake-dns.service": _unit(
            "DNS only for the test sites and the alerts' endpoints",
            "ExecStart=/usr/sbin/dnsmasq --keep-in-foreground --no-resolv --no-hosts --no-poll "
            f"--bind-interfaces --listen-address={ip},127.0.0.1 --user=nobody --group=nogroup {dns}\n",
        ),
    }
    if alerts.telegram_address is not None:
        address, leg = alerts.telegram_address, machine.ports[0].inner
        files["etc/akm-lab/telegram-token"] = telegram_token(plan) + "\n"
        files["usr/local/sbin/akm-fake-telegram"] = (FILES / "fake_telegram.py").read_text()
        files["etc/systemd/system/akm-fake-telegram.service"] = _unit(
            f"the Telegram Bot API {alerts.telegram}",
            "StateDirectory=akm-lab\n"
            f"ExecStartPre=ip address replace {address} dev {leg}\n"
            f"ExecStart=/usr/bin/python3 /usr/local/sbin/akm-fake-telegram --listen {address.ip}:443 "
            "--cert /etc/akm-lab/sites.crt --key /etc/akm-lab/sites.key "
            f"--token-file /etc/akm-lab/telegram-token --record {TELEGRAM_RECORD}\n",
        )
    if alerts.mail_relay:
        files["etc/systemd/system/akm-fake-mail.service"] = _unit(
            f"the mail relay {alerts.mail_relay}",
            "StateDirectory=akm-lab\n"
            f"ExecStart=/usr/bin/python3 -m aiosmtpd --nosetuid --listen {ip}:{alerts.mail_port} "
            "--tlscert /etc/akm-lab/sites.crt --tlskey /etc/akm-lab/sites.key "
            f"--class aiosmtpd.handlers.Mailbox {MAIL_DIR}\n",
        )
    return files


def units(plan: Plan) -> tuple[str, ...]:
    """The units of the fake internet (enabled in its layer)."""
    found = ["akm-fake-internet.service", "akm-fake-dns.service", "akm-fake-time.service"]
    if plan.alerts.telegram_address is not None:
        found.append("akm-fake-telegram.service")
    if plan.alerts.mail_relay:
        found.append("akm-fake-mail.service")
    return tuple(found)
