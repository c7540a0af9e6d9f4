"""Small, careful wrappers around the host: commands, processes the lab started, its state file, a lock.

A process is remembered as a :class:`ProcessRef`: PID, kernel start time and a marker string its
command line must contain. The lab only ever signals a PID whose start time and command line still
match, so a PID reused by somebody else's process after a crash or a reboot is never touched.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from pathlib import Path

from akm.i18n import _
from akm.lab.plan import LabError

RUN_DIR = Path(os.environ.get("AKM_LAB_RUN_DIR", "/run/akm-lab"))


def run(
    args: Sequence[str],
    *,
    netns: str | None = None,
    check: bool = True,
    timeout: float = 120,
    input: str | None = None,
) -> subprocess.CompletedProcess:
    """Run *args* (inside network namespace *netns* if given) and return the finished process.

    A failure raises :class:`LabError` ``lab.command-failed`` with the command and its error output.
    """
    argv = ["ip", "netns", "exec", netns, *args] if netns else list(args)
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, input=input, check=False)
    except subprocess.TimeoutExpired as exc:
        raise LabError.one(
            "lab.command-timeout",
            _("{command} did not finish within {seconds} s").format(command=" ".join(argv), seconds=timeout),
            _("see the lab logs under the state directory"),
        ) from exc
    if check and done.returncode != 0:
        raise LabError.one(
            "lab.command-failed",
            _("{command} failed: {error}").format(
                command=" ".join(argv), error=(done.stderr or done.stdout).strip()[-800:]
            ),
            _("see the lab logs under the state directory"),
        )
    return done


def which(tool: str) -> str | None:
    """Return the path of *tool*, also looking in the sbin directories root's PATH usually has."""
    extra = os.pathsep.join(["/usr/local/sbin", "/usr/sbin", "/sbin"])
    return shutil.which(tool, path=os.environ.get("PATH", "") + os.pathsep + extra)


@dataclass(frozen=True)
class ProcessRef:
    """A process the lab started: PID, kernel start time (jiffies) and a command-line marker."""

    pid: int
    start: int
    marker: str

    @classmethod
    def of(cls, pid: int, marker: str) -> ProcessRef:
        """Remember the running process *pid*."""
        return cls(pid, start_time(pid) or 0, marker)

    def alive(self) -> bool:
        """True while the same process (same start time, marker in its command line) runs."""
        return self.start != 0 and start_time(self.pid) == self.start and self.marker in cmdline(self.pid)

    def signal(self, sig: int) -> bool:
        """Send *sig* if the process is still the one started; return whether it was sent."""
        if not self.alive():
            return False
        try:
            os.kill(self.pid, sig)
        except ProcessLookupError:
            return False
        return True


def start_time(pid: int) -> int | None:
    """Return the start time of *pid* from ``/proc``, or ``None`` when it does not exist."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":
        return None
    return int(fields[19])


def cmdline(pid: int) -> str:
    """Return the command line of *pid* with spaces between arguments ('' when gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def stop(refs: Sequence[ProcessRef], first: int = signal.SIGTERM, wait: float = 10.0) -> None:
    """Send *first* to every live process of *refs*, wait up to *wait* seconds, then SIGKILL the rest."""
    for ref in refs:
        ref.signal(first)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and any(r.alive() for r in refs):
        time.sleep(0.2)
    for ref in refs:
        ref.signal(signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(r.alive() for r in refs):
        time.sleep(0.1)


def reap(ref: ProcessRef) -> None:
    """Collect *ref*'s exit status if this process started it, so no zombie is left behind."""
    with suppress(ChildProcessError):
        os.waitpid(ref.pid, os.WNOHANG)


def all_pids() -> Iterator[int]:
    """Every PID visible in ``/proc``."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            yield int(entry)


def children(pid: int) -> list[int]:
    """Direct children of *pid*."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


@dataclass
class State:
    """What the running lab is made of, kept in ``/run/akm-lab/state.json`` (gone after a reboot)."""

    inventory: str = ""
    state_dir: str = ""
    processes: dict[str, ProcessRef] | None = None
    plan_id: str = ""

    @classmethod
    def load(cls) -> State | None:
        """Return the saved state, or ``None`` if there is none (or it cannot be read)."""
        try:
            raw = json.loads((RUN_DIR / "state.json").read_text())
        except (OSError, ValueError):
            return None
        procs = {k: ProcessRef(**v) for k, v in (raw.get("processes") or {}).items()}
        return cls(raw.get("inventory", ""), raw.get("state_dir", ""), procs, raw.get("plan_id", ""))

    def save(self) -> None:
        """Write the state atomically."""
        RUN_DIR.mkdir(parents=True, exist_ok=True)
        data = {
            "inventory": self.inventory,
            "state_dir": self.state_dir,
            "plan_id": self.plan_id,
            "processes": {k: asdict(v) for k, v in sorted((self.processes or {}).items())},
        }
        tmp = RUN_DIR / "state.json.tmp"
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        tmp.replace(RUN_DIR / "state.json")

    def remember(self, name: str, ref: ProcessRef) -> None:
        """Record *ref* under *name* and save at once, so a crash right after still knows it."""
        if self.processes is None:
            self.processes = {}
        self.processes[name] = ref
        self.save()

    def forget(self, name: str) -> None:
        """Drop *name* and save."""
        (self.processes or {}).pop(name, None)
        self.save()

    @staticmethod
    def clear() -> None:
        """Remove the state file."""
        (RUN_DIR / "state.json").unlink(missing_ok=True)


@contextmanager
def lab_lock(timeout: float = 300) -> Iterator[None]:
    """Hold the lab's lock so two ``akm lab`` commands never change the lab at once."""
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    with open(RUN_DIR / "lock", "w") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise LabError.one(
                        "lab.busy",
                        _("another akm lab command is still running"),
                        _("wait for it to finish"),
                        file=str(RUN_DIR / "lock"),
                    ) from None
                time.sleep(0.5)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
