"""``akm net backup``: every device's configuration, in parallel, into a folder with its own git history.

Each device's configuration (RouterOS ``/export terse``, which hides secrets since v7; IOS
``show running-config``) is cleaned by its platform — volatile lines dropped, secrets redacted — and
written to ``<folder>/<hostname>.<rsc|cfg>``. The folder is its own git repository: a run that changed
something makes exactly one commit whose message names the changed devices; a run that changed nothing
makes none. A device that could not be read keeps its last stored file. The per-device outcome
(``ok``, ``changed``, ``unreachable``, ``auth_failed``, ``timeout``, ``error``) is written as an
evidence record for the reports.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from akm import evidence
from akm.i18n import _
from akm.net.common import DeviceResult, Target, Timeouts, open_session, run_parallel, send
from akm.net.platforms import PLATFORMS
from akm.net.vault import Login

GIT_IDENTITY = ("-c", "user.name=akm net backup", "-c", "user.email=akm-net-backup@localhost")


@dataclass
class BackupRun:
    """The outcome of one backup run."""

    results: list[DeviceResult]
    commit: str | None
    folder: Path
    started: str

    @property
    def all_ok(self) -> bool:
        return all(r.ok for r in self.results)


def _git(folder: Path, *args: str) -> str:
    done = subprocess.run(["git", *GIT_IDENTITY, *args], cwd=folder, check=True, capture_output=True, text=True)
    return done.stdout


def ensure_repository(folder: Path) -> None:
    """Make *folder* a git repository if it is not one yet."""
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / ".git").exists():
        _git(folder, "init", "-q", "-b", "main")


def fetch_config(target: Target, login: Login, timeouts: Timeouts) -> str:
    """Read one device's configuration, cleaned for storage."""
    platform = PLATFORMS[target.platform]
    connection = open_session(target, login, timeouts)
    try:
        raw = send(connection, platform.backup_command, timeouts)
    finally:
        connection.disconnect()
    return platform.clean(raw)


def _message(results: list[DeviceResult]) -> str:
    changed = [r.device for r in results if r.status == "changed"]
    failed = [r for r in results if not r.ok]
    subject = "Config backup: {n} changed ({names})".format(n=len(changed), names=", ".join(changed))
    body = [f"{r.device}: {r.status}" + (f" ({r.detail})" if r.detail else "") for r in results]
    if failed:
        subject += f"; {len(failed)} not read"
    return subject + "\n\n" + "\n".join(body) + "\n"


def backup(
    targets: list[Target],
    logins: dict[str, Login],
    folder: Path,
    timeouts: Timeouts | None = None,
    workers: int = 32,
) -> BackupRun:
    """Back up *targets* into *folder*; commit once if anything changed."""
    timeouts = timeouts or Timeouts()
    started = evidence.iso(evidence.now())
    ensure_repository(folder)

    def work(target: Target) -> DeviceResult:
        text = fetch_config(target, logins[target.name], timeouts)
        path = folder / (target.name + PLATFORMS[target.platform].suffix)
        old = path.read_text(encoding="utf-8") if path.exists() else None
        if old == text:
            return DeviceResult(target.name, target.platform, "ok", data={"file": path.name})
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
        detail = _("first backup") if old is None else _("configuration changed")
        return DeviceResult(target.name, target.platform, "changed", detail, data={"file": path.name})

    results = run_parallel(targets, work, workers)
    commit = None
    changed_files = [r.data["file"] for r in results if r.status == "changed"]
    if changed_files:
        _git(folder, "add", "--", *changed_files)
        if subprocess.run(["git", "diff", "--cached", "--quiet"], cwd=folder).returncode != 0:
            _git(folder, "commit", "-q", "-m", _message(results))
            commit = _git(folder, "rev-parse", "HEAD").strip()
    return BackupRun(results, commit, folder, started)
