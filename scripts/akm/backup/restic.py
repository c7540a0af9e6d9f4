"""Running restic, and turning its failures into problems a person can act on.

Two restic releases are in use: 0.14 (Debian 12) and 0.18 (Debian 13). :func:`version` asks the installed
one, and :func:`supports` says whether it has a feature the jobs use when it is there (read concurrency,
``--skip-if-unchanged``, ``check --json``): the host's package decides, not a setting that could disagree
with it. restic 0.14 has only exit codes 0, 1 (fatal) and 3 (snapshot saved but some files were
unreadable), so the cause of a failure is read from its messages; 0.17 and later also exit 10 (no
repository), 11 (locked) and 12 (wrong password), which name the cause first. restic also retries a failing upload
about ten times over most of a minute; when the disk is full (the REST server answers ``507``, a local
repository such as the removable disk's fails with ``no space left on device``) that only delays the bad
news, so :func:`run` interrupts restic at the first such message (SIGINT: restic removes its own lock)
and reports the full disk at once.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import signal
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

from akm.backup import BackupError
from akm.errors import Problem
from akm.i18n import _

RESTIC = os.environ.get("AKM_RESTIC", "restic")


class ResticError(BackupError):
    """restic failed; the problem's code says why (wrong password, full disk, unreachable ...)."""


@dataclass(frozen=True)
class Repo:
    """Where a repository is and how to open it. The password is only ever read from a file."""

    url: str
    password_file: Path
    cache_dir: Path | None = None
    cacert: Path | None = None

    def global_args(self) -> list[str]:
        """Options every restic command on this repository needs (the server's CA for HTTPS)."""
        return ["--cacert", str(self.cacert)] if self.cacert else []

    def env(self) -> dict[str, str]:
        """The environment for a restic process on this repository (no password in argv or env)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("RESTIC_")}
        env["RESTIC_REPOSITORY"] = self.url
        env["RESTIC_PASSWORD_FILE"] = str(self.password_file)
        if self.cache_dir:
            env["RESTIC_CACHE_DIR"] = str(self.cache_dir)
        env.setdefault("LC_ALL", "C")
        return env


@dataclass
class Result:
    """A finished restic process."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    interrupted_for: str | None = None
    lines: list[dict] = field(default_factory=list)

    def json_messages(self) -> list[dict]:
        """The JSON objects restic printed one per line with ``--json``."""
        out = []
        for line in self.stdout.splitlines():
            line = line.strip()
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    continue
        return out


# Features the jobs use, and the first restic release that has each.
FEATURES: dict[str, tuple[int, int]] = {
    "read-concurrency": (0, 17),
    "skip-if-unchanged": (0, 17),
    "check-json": (0, 18),
}


@functools.cache
def version() -> tuple[int, int]:
    """(major, minor) of the installed restic (``restic version``); (0, 0) if it cannot be told."""
    try:
        done = subprocess.run([RESTIC, "version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return (0, 0)
    match = re.match(r"restic (\d+)\.(\d+)", done.stdout)
    return (int(match[1]), int(match[2])) if match else (0, 0)


def supports(feature: str) -> bool:
    """True when the installed restic has *feature* (a key of :data:`FEATURES`)."""
    return version() >= FEATURES[feature]


# Exit codes of restic 0.17 and later that name the cause (0.14 exits 1 for all of them).
_EXIT_CODES = {10: "backup.no-repository", 11: "backup.locked", 12: "backup.wrong-password"}

# Messages that mean "give up now": (code, pattern).
_FAST_FAIL = [
    ("backup.target-full", re.compile(r"\b507\b|Insufficient Storage|no space left on device", re.I)),
]

# Ordered: the first match names the cause.
_CAUSES = [
    ("backup.wrong-password", re.compile(r"wrong password or no key found", re.I)),
    ("backup.target-full", re.compile(r"\b507\b|Insufficient Storage|no space left on device", re.I)),
    # Before "no repository": restic 0.14 asks "Is there a repository ...?" when the server does not answer.
    ("backup.unreachable", re.compile(r"connection refused|no route to host|i/o timeout|no such host", re.I)),
    (
        "backup.no-repository",
        re.compile(
            r"Is there a repository at the following location|unable to open "
            r"config file|repository does not exist",
            re.I,
        ),
    ),
    ("backup.locked", re.compile(r"repository is already locked", re.I)),
    ("backup.forbidden", re.compile(r"403 Forbidden", re.I)),
    ("backup.password-file", re.compile(r"(Reading|reading) password from file|resolving password", re.I)),
    ("backup.source-missing", re.compile(r"all source directories/files do not exist|does not exist", re.I)),
    (
        "backup.check-failed",
        re.compile(
            r"Fatal: repository contains errors|error for tree|pack .* "
            r"(contains|shrunk|has)|errors were found|ciphertext verification "
            r"failed",
            re.I,
        ),
    ),
]


def _messages() -> dict[str, tuple[str, str]]:
    return {
        "backup.wrong-password": (
            _("restic cannot open the repository: wrong password"),
            _("check the password file; in the lab and production it comes from ansible-vault"),
        ),
        "backup.target-full": (
            _("the backup target's disk is full"),
            _(
                "free space on the backup machine (prune old snapshots there) or add a disk; nothing was "
                "deleted from the repository"
            ),
        ),
        "backup.no-repository": (
            _("there is no restic repository at this address"),
            _("initialise it once with 'akm backup init' or check the repository address"),
        ),
        "backup.locked": (
            _("the repository is locked by another restic process"),
            _("wait for it to finish; a lock left by a dead process is removed by 'akm backup run'"),
        ),
        "backup.unreachable": (
            _("the backup server does not answer"),
            _("check that the backup machine is up and its REST server is running"),
        ),
        "backup.forbidden": (
            _("the backup server refused the change (append-only repository)"),
            _("forget and prune run only on the backup machine with 'akm backup prune'"),
        ),
        "backup.password-file": (
            _("the password file cannot be read"),
            _("check --password-file and its permissions"),
        ),
        "backup.source-missing": (
            _("a path to back up does not exist"),
            _("check the data placements of this host in the inventory"),
        ),
        "backup.check-failed": (
            _("the repository check found damaged data"),
            _("keep the damaged repository as it is, make a new backup and restore from the second copy"),
        ),
        "backup.restic-failed": (
            _("restic failed"),
            _("read restic's message above"),
        ),
    }


def classify(result: Result) -> str | None:
    """Return the problem code of a failed restic run, or None if it did not fail."""
    if result.interrupted_for:
        return result.interrupted_for
    if result.returncode == 0:
        return None
    if result.returncode in _EXIT_CODES:
        return _EXIT_CODES[result.returncode]
    text = result.stderr + "\n" + result.stdout
    for code, pattern in _CAUSES:
        if pattern.search(text):
            return code
    return "backup.restic-failed"


def last_lines(text: str, count: int = 5) -> str:
    """The last meaningful lines of restic's output, without Go stack traces."""
    lines = [
        ln for ln in text.splitlines() if ln.strip() and not ln.startswith(("\t", "github.com/", "runtime.", "main."))
    ]
    return " | ".join(lines[-count:])


def problem_for(code: str, result: Result | None = None, where: str = "") -> Problem:
    """A :class:`Problem` for *code*, with restic's last words appended to the message."""
    message, hint = _messages().get(code, _messages()["backup.restic-failed"])
    if result is not None and code == "backup.restic-failed":
        message = message + ": " + last_lines(result.stderr)
    return Problem(file=where, line=None, field="restic", code=code, message=message, hint=hint)


def run(
    repo: Repo,
    args: list[str],
    fast_fail: bool = True,
    timeout: float | None = None,
    on_start=None,
    cwd: Path | None = None,
) -> Result:
    """Run ``restic ARGS`` on *repo* (in *cwd*, where a command writes files) and return its result;
    never raises for restic's own failures."""
    cmd = [RESTIC, *repo.global_args(), *args]
    try:
        proc = subprocess.Popen(
            cmd,
            env=repo.env(),
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
        )
    except FileNotFoundError as exc:
        raise ResticError.one(
            "backup.no-restic",
            _("restic is not installed"),
            _("install the Debian package 'restic' (make deps)"),
            field="restic",
        ) from exc
    if on_start is not None:
        on_start(proc)
    out_parts: list[str] = []
    err_parts: list[str] = []
    reason: list[str] = []

    def read_out() -> None:
        for line in proc.stdout:
            out_parts.append(line)

    def read_err() -> None:
        for line in proc.stderr:
            err_parts.append(line)
            if fast_fail and not reason:
                for code, pattern in _FAST_FAIL:
                    if pattern.search(line):
                        reason.append(code)
                        with contextlib.suppress(ProcessLookupError):
                            proc.send_signal(signal.SIGINT)
                        break

    readers = [threading.Thread(target=read_out, daemon=True), threading.Thread(target=read_err, daemon=True)]
    for thread in readers:
        thread.start()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        reason.append("backup.timeout")
    if reason:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for thread in readers:
        thread.join(timeout=10)
    return Result(cmd, proc.returncode, "".join(out_parts), "".join(err_parts), reason[0] if reason else None)


def ensure(result: Result, where: str = "") -> Result:
    """Return *result* if restic succeeded, else raise :class:`ResticError` with the classified cause."""
    code = classify(result)
    if code is None:
        return result
    raise ResticError([problem_for(code, result, where)])
