"""The collection through real OpenSSH servers on loopback, each one host: the key is authorised with
``restrict,from=...,command=...`` as the management role writes it, so whatever the collector asks,
sshd runs only the read-only program. A host stopped through one collection is a failure in that run's
record, and the next run brings everything it missed, once.

Each server is the test's own ``sshd`` on a free port (as tests/inventory/test_hostkeys_sshd.py starts
one); the hosts are ``127.0.0.1`` on their ports, trusted by a known_hosts file of their keys only.
"""

from __future__ import annotations

import getpass
import json
import subprocess
import sys
from pathlib import Path

import pytest

from akm import collect, evidence
from akm.inventory.hostkeys import known_names
from tests.collect.local import SERVE, Host
from tests.collect.test_collect import append, collected_lines, line, record, rotate
from tests.inventory import test_hostkeys_sshd as loopback

pytestmark = pytest.mark.needs("sshd", "ssh", "ssh-keygen")


class Server(loopback.Sshd):
    """One host: an sshd whose only authorised key is the collection key, restricted to the program."""

    def __init__(self, tmp: Path, host: Host, client: Path) -> None:
        tmp.mkdir()
        super().__init__(tmp)
        command = " ".join([sys.executable, "-I", str(SERVE), *host.arguments()])
        options = f'restrict,from="127.0.0.1,::1",command="{command}"'
        (tmp / "authorized_keys").write_text(f"{options} {(client.parent / (client.name + '.pub')).read_text()}")
        self.host_key = loopback.keygen(tmp / "host_key")
        self.start(self.host_key)


@pytest.fixture
def centre(tmp_path):
    client = loopback.keygen(tmp_path / "collect_ed25519")
    hosts = {"gw": Host(tmp_path / "gw", gateway=True), "pc": Host(tmp_path / "pc", gateway=False)}
    servers = {name: Server(tmp_path / f"sshd-{name}", host, client) for name, host in hosts.items()}
    known = tmp_path / "known_hosts"
    known.write_text(
        "".join(
            f"{','.join(known_names(name, '127.0.0.1', s.port))} {(s.tmp / 'host_key.pub').read_text()}"
            for name, s in servers.items()
        )
    )
    places = collect.Places(tmp_path / "mgmt" / "evidence", tmp_path / "mgmt" / "logs", tmp_path / "mgmt" / "state")
    for folder in (places.evidence, places.logs, places.state):
        folder.mkdir(parents=True)
    user = getpass.getuser()
    targets = {
        name: {"ssh_hostname": "127.0.0.1", "ssh_port": s.port, "ssh_user": user, "ssh_key": str(client)}
        for name, s in servers.items()
    }
    transport = collect.Ssh(client, known, connect_timeout=5)
    yield hosts, servers, places, transport, targets
    for server in servers.values():
        server.stop()


def test_a_host_stopped_through_one_collection_is_a_failure_then_caught_up_once(centre):
    hosts, servers, places, transport, targets = centre
    gw, pc = hosts["gw"], hosts["pc"]
    append(gw.log, 1, 2)
    record(pc, "first")
    first = collect.collect(targets, transport, places)
    assert first["result"] == "ok", first
    assert first["records"] == 1

    servers["pc"].stop()
    record(pc, "while-off")
    append(gw.log, 3)
    rotate(gw, "20261125")
    append(gw.log, 4)
    second = collect.collect(targets, transport, places)
    path = collect.write_record(second, places.evidence)
    assert evidence.load(path)[1] == [], "the run's record fits the schema"
    assert second["result"] == "failed"
    assert second["hosts"]["pc"]["result"] == "failed" and "refused" in second["hosts"]["pc"]["reason"].lower()
    assert second["hosts"]["gw"]["result"] == "ok"

    servers["pc"].start(servers["pc"].host_key)
    append(gw.log, 5)
    third = collect.collect(targets, transport, places)
    assert third["result"] == "ok" and third["hosts"]["pc"]["evidence"] == 1
    copies = sorted(p.name for p in (places.evidence / "hosts" / "pc").rglob("*.json"))
    assert copies == ["first.json", "while-off.json"]
    assert collected_lines(places) == [line(n) for n in range(1, 6)]


def test_the_key_runs_nothing_but_the_program(centre):
    _hosts, _servers, _places, transport, targets = centre
    target = targets["gw"]
    done = subprocess.run(
        [*transport.command(target, ["cat", "/etc/passwd"])[:-1], "cat /etc/passwd; id"],
        capture_output=True,
        check=False,
    )
    assert done.returncode == 2 and b"root:" not in done.stdout
    assert json.loads(done.stderr.splitlines()[-1]) == {"error": "unknown-request"}
