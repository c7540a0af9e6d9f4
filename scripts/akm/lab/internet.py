"""The fake internet: a certificate authority made at run time, site certificates, web, DNS and time units.

The CA (``<state_dir>/ca/ca.{key,crt}``) is generated once per state directory with ``openssl`` and
trusted by every lab machine; it signs one certificate for all sites of the inventory (regenerated
when the site list changes). The internet machine runs three units written into its layer:

- ``akm-fake-internet.service`` — :mod:`akm.lab.files.fake_internet` on ports 80 and 443;
- ``akm-fake-dns.service`` — dnsmasq answering only for the sites (every name of a site and its
  subdomains resolves to the internet machine; any other name is refused);
- ``akm-fake-time.service`` — chronyd serving the lab range from the host's clock (``local``), as a
  public time server does; it never sets the clock (``-x``): the machines share the host's.
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
    names = sorted({n for s in plan.sites for n in (s.domain, f"*.{s.domain}")})
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


def unit_files(plan: Plan, machine: Machine) -> dict[str, str]:
    """Files (path inside the machine -> content) that make *machine* the fake internet."""
    ip = str(plan.dns_server)
    sites = [{"domain": s.domain, "category": s.category, "https": s.https} for s in plan.sites]
    dns = " ".join(f"--address=/{s.domain}/{ip}" for s in plan.sites)
    web_unit = (
        "[Unit]\nDescription=AKM lab fake internet: test sites over HTTP and HTTPS\nAfter=network.target\n\n"
        "[Service]\nExecStart=/usr/bin/python3 /usr/local/sbin/akm-fake-internet\nRestart=always\n\n"
        "[Install]\nWantedBy=multi-user.target\n"
    )
    dns_unit = (
        "[Unit]\nDescription=AKM lab fake internet: DNS only for the test sites\nAfter=network.target\n\n"
        "[Service]\nExecStart=/usr/sbin/dnsmasq --keep-in-foreground --no-resolv --no-hosts --no-poll "
        f"--bind-interfaces --listen-address={ip},127.0.0.1 --user=nobody --group=nogroup {dns}\n"
        "Restart=always\n\n[Install]\nWantedBy=multi-user.target\n"
    )
    time_unit = (
        "[Unit]\nDescription=AKM lab fake internet: a public time server\nAfter=network.target\n\n"
        "[Service]\nRuntimeDirectory=chrony\n"
        "ExecStart=/usr/sbin/chronyd -d -x -f /etc/akm-lab/chrony.conf\nRestart=always\n\n"
        "[Install]\nWantedBy=multi-user.target\n"
    )
    time_conf = f"local stratum 2\nallow {LAB_RANGE}\ncmdport 0\n"
    key_dir = plan.state_dir / "ca"
    return {
        "etc/akm-lab/chrony.conf": time_conf,
        "etc/systemd/system/akm-fake-time.service": time_unit,
        "etc/akm-lab/sites.json": json.dumps(sites, indent=1, sort_keys=True) + "\n",
        "etc/akm-lab/sites.crt": (key_dir / "sites.crt").read_text(),
        "etc/akm-lab/sites.key": (key_dir / "sites.key").read_text(),
        "usr/local/sbin/akm-fake-internet": (FILES / "fake_internet.py").read_text(),
        "etc/systemd/system/akm-fake-internet.service": web_unit,
        "etc/systemd/system/akm-fake-dns.service": dns_unit,
    }


INTERNET_UNITS = ("akm-fake-internet.service", "akm-fake-dns.service", "akm-fake-time.service")
