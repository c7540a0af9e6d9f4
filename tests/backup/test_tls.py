"""HTTPS on the REST server: restic trusts only the CA it is given, and plain HTTP is not served.

The CA and the server certificate are made at run time with ``openssl`` in pytest's tmp directory.
"""

from __future__ import annotations

import http.client
import json
import secrets
import ssl
import subprocess
from pathlib import Path

import pytest
from backup_helpers import needs_restic, write_random

from akm.backup import jobs
from akm.backup import restic as r
from akm.backup.restserver import RestServer, tls_context

pytestmark = [needs_restic, pytest.mark.needs("openssl")]


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def pki(tmp_path) -> Path:
    """A CA and a certificate for 127.0.0.1 signed by it (``ca.pem``, ``server.pem``, ``server.key``)."""
    d = tmp_path / "pki"
    d.mkdir()
    _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ca.key", cwd=d)
    _openssl(
        "req", "-x509", "-new", "-key", "ca.key", "-subj", "/CN=test backup CA", "-days", "2", "-out", "ca.pem", cwd=d
    )
    _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "server.key", cwd=d)
    _openssl("req", "-new", "-key", "server.key", "-subj", "/CN=127.0.0.1", "-out", "server.csr", cwd=d)
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    _openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-days", "2", "-extfile", "ext.cnf", "-out", "server.pem", cwd=d,
    )  # fmt: skip
    return d


@pytest.fixture
def https_server(tmp_path, pki):
    root = tmp_path / "srv"
    root.mkdir()
    server = RestServer(root, "127.0.0.1", 0, tls=tls_context(pki / "server.pem", pki / "server.key"))
    server.start_thread()
    yield server
    server.shutdown()
    server.server_close()


def test_backup_over_https_with_the_ca_and_refused_without_it(https_server, pki, tmp_path):
    assert https_server.url.startswith("rest:https://127.0.0.1:")
    password = tmp_path / "password"
    password.write_text(secrets.token_urlsafe(24) + "\n")
    source = tmp_path / "data"
    write_random(source / "master.wav", 300_000)

    untrusted = r.Repo(https_server.url + "ws1/", password, tmp_path / "cache")
    code = r.classify(r.run(untrusted, ["init"]))
    assert code is not None
    assert not (tmp_path / "srv" / "ws1" / "config").exists()

    trusted = r.Repo(https_server.url + "ws1/", password, tmp_path / "cache", pki / "ca.pem")
    assert jobs.init_repository(trusted) is True
    r.ensure(r.run(trusted, ["backup", str(source), "--tag", "class:av_masters"]))
    snapshots = json.loads(r.ensure(r.run(trusted, ["snapshots", "--json"])).stdout)
    assert [s["tags"] for s in snapshots] == [["class:av_masters"]]


def test_plain_http_gets_no_http_answer(https_server, pki):
    host, port = https_server.server_address[:2]
    plain = http.client.HTTPConnection(host, port, timeout=10)
    with pytest.raises((http.client.HTTPException, ConnectionError)):
        plain.request("GET", "/ws1/config")
        plain.getresponse()
    plain.close()
    secure = http.client.HTTPSConnection(
        host, port, timeout=10, context=ssl.create_default_context(cafile=str(pki / "ca.pem"))
    )
    secure.request("GET", "/ws1/config")
    assert secure.getresponse().status == 404
    secure.close()
