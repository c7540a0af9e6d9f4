"""The hosts of the collection tests: folders in tmp_path, each answered by the real forced-command
program (:mod:`akm.collect.serve`, run as its own process exactly as sshd runs it, with the request in
``SSH_ORIGINAL_COMMAND``), so the tests need no SSH server."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

from akm import collect

SERVE = Path(collect.__file__).with_name("serve.py")


class Host:
    """One host's folders: its evidence, its Squid log folder, its Kea leases."""

    def __init__(self, root: Path, gateway: bool) -> None:
        self.evidence = root / "evidence"
        self.squid = root / "squid"
        self.kea = root / "kea"
        for folder in (self.evidence, self.squid, self.kea):
            folder.mkdir(parents=True)
        self.gateway = gateway

    @property
    def log(self) -> Path:
        return self.squid / "access.log"

    def arguments(self) -> list[str]:
        """The forced command's arguments, as the management role writes them."""
        found = ["--evidence", str(self.evidence)]
        if self.gateway:
            found += ["--log", f"proxy={self.log}", "--file", f"leases={self.kea / 'kea-leases4.csv'}"]
        return found


class Local:
    """The transport of :func:`akm.collect.collect` to :class:`Host` folders on this machine."""

    def __init__(self, hosts: dict[str, Host]) -> None:
        self.hosts = hosts

    def __call__(self, target: dict, words: list[str], request: bytes = b"") -> bytes:
        host = self.hosts[target["ssh_hostname"]]
        done = subprocess.run(
            [sys.executable, "-I", str(SERVE), *host.arguments()],
            input=request,
            capture_output=True,
            env={**os.environ, "SSH_ORIGINAL_COMMAND": shlex.join(words)},
            check=False,
        )
        if done.returncode != 0:
            raise collect.Failed(collect.answer_error(done.returncode, done.stderr))
        return done.stdout
