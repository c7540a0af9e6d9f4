"""Backups of Windows PCs' shared folders, pulled over SMB by the backup machine (issue 16).

No agent runs on a Windows PC. The inventory places a data class in one of its shares
(``data: [{data_class: accounting, path: /, smb: {share: buxgalteriya}}]``); the backup machine reads
each such share with Samba's user-space client ``smbclient`` (the lab's kernel has no CIFS module, and a
mount would hang the job when the PC is off), mirrors it into ``<staging>/<host>/<share>/<path>``, then
backs the mirror up with restic into the PC's own repository under the PC's name: the evidence record's
host is the PC, so the report lists it like any other host.

The mirror is exact. smbclient's tar mode streams the share with each file's time; a file whose size and
time did not change is not written again (restic then sees it unchanged), and a file or folder that is
no longer on the PC is deleted from the mirror, so the next snapshot lacks it (older snapshots keep it).
Only plain files and folders under the placement's path are taken from the stream: a name that would leave
the mirror, or a link or device, fails the pull.

smbclient leaves out of the stream, without an error, a file it cannot open (a database the accounting
program holds open, a file the backup login may not read). So the share is listed first: a file that is
listed but missing from the stream is *unreadable*; its last good copy stays in the mirror and the run is
a warning that names it.

Everything here runs on the backup machine with Debian's python3 alone (standard library and Babel).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from akm import evidence
from akm.backup import BackupError, jobs
from akm.backup import restic as r
from akm.errors import Problem
from akm.i18n import _

SMBCLIENT = os.environ.get("AKM_SMBCLIENT", "smbclient")
DEFAULT_STAGING = jobs.DEFAULT_STATE_DIR / "smb-staging"
PORT = 445
PART_PREFIX = ".akm-part-"


class PullError(BackupError):
    """A share could not be read; its problem's code says why (login, share, path, PC unreachable ...)."""


@dataclass(frozen=True)
class Share:
    """One placement of a data class in a Windows PC's share: where the share answers and which folder
    of it (``/`` for all of it) holds the class."""

    data_class: str
    address: str
    share: str
    path: str = "/"
    port: int = PORT

    @property
    def folder(self) -> PurePosixPath:
        """The placement's folder inside the share, relative (empty for the whole share)."""
        return PurePosixPath(self.path.strip("/"))

    def command(self, auth_file: Path, *action: str) -> list[str]:
        """The smbclient command running *action* on this share with the login of *auth_file*.

        ``-s /dev/null``: the backup machine's own smb.conf (if any) has no say in how it reads a PC.
        """
        folder = str(self.folder)
        cmd = [SMBCLIENT, "-s", "/dev/null", f"//{self.address}/{self.share}", "-p", str(self.port)]
        cmd += ["-A", str(auth_file)]
        if folder != ".":
            cmd += ["-D", folder]
        return [*cmd, *action]


@dataclass
class Mirrored:
    """What one pull did to the mirror of one share."""

    files: int = 0
    bytes: int = 0
    written: int = 0
    deleted: int = 0
    unreadable: list[str] = field(default_factory=list)


# --- smbclient's failures ----------------------------------------------------------------------------

_STATUS = [
    ("backup.smb-login", re.compile(r"NT_STATUS_(LOGON_FAILURE|ACCOUNT_\w+|WRONG_PASSWORD|PASSWORD_\w+)")),
    ("backup.smb-no-share", re.compile(r"NT_STATUS_BAD_NETWORK_NAME")),
    ("backup.smb-no-path", re.compile(r"NT_STATUS_(OBJECT_NAME_NOT_FOUND|OBJECT_PATH_NOT_FOUND|NOT_A_DIRECTORY)")),
    (
        "backup.smb-unreachable",
        re.compile(
            r"NT_STATUS_(CONNECTION_REFUSED|IO_TIMEOUT|HOST_UNREACHABLE|NETWORK_UNREACHABLE|CONNECTION_RESET"
            r"|CONNECTION_DISCONNECTED|NO_MEMORY)|Connection to \S+ failed"
        ),
    ),
    ("backup.smb-denied", re.compile(r"NT_STATUS_ACCESS_DENIED")),
]


def _messages() -> dict[str, tuple[str, str]]:
    return {
        "backup.smb-login": (
            _("the PC refused the backup login"),
            _("check that the PC has the local user of vault_backup_smb_login with that password (docs/windows.md)"),
        ),
        "backup.smb-no-share": (
            _("the PC has no share of this name"),
            _("share the folder under the name the inventory gives (smb.share), or correct the inventory"),
        ),
        "backup.smb-no-path": (
            _("the share has no folder at the placement's path"),
            _("correct the path of the placement in the inventory (a folder inside the share, / for all of it)"),
        ),
        "backup.smb-unreachable": (
            _("the PC does not answer on the SMB port"),
            _(
                "the PC must be switched on at the time of the pull, with file sharing on and its firewall "
                "open to the backup machine (docs/windows.md)"
            ),
        ),
        "backup.smb-denied": (
            _("the backup login may not read the share"),
            _("give the backup user read permission on the share and on its folders (docs/windows.md)"),
        ),
        "backup.smb-failed": (_("reading the share failed"), _("read smbclient's message above")),
        "backup.smb-bad-entry": (
            _("the share sent an entry that is not a plain file or folder inside the placement"),
            _("look at the named entry on the PC; links and devices are not backed up from a share"),
        ),
    }


def problem_for(code: str, share: Share, detail: str = "") -> Problem:
    """A :class:`Problem` for *code* on *share*; *detail* (smbclient's words, an entry's name) is
    appended to the message."""
    message, hint = _messages().get(code, _messages()["backup.smb-failed"])
    if detail:
        message = f"{message}: {detail}"
    return Problem(f"//{share.address}/{share.share}", None, share.path, code, message, hint)


def classify(text: str) -> str:
    """The problem code of smbclient's failure told by *text* (its output)."""
    for code, pattern in _STATUS:
        if pattern.search(text):
            return code
    return "backup.smb-failed"


def _last_words(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " | ".join(lines[-3:])


def _fail(share: Share, text: str) -> PullError:
    return PullError([problem_for(classify(text), share, _last_words(text))])


def _start(cmd: list[str], **kwargs) -> subprocess.Popen:
    try:
        return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, env={**os.environ, "LC_ALL": "C"}, **kwargs)
    except FileNotFoundError as exc:
        raise BackupError.one(
            "backup.no-smbclient",
            _("smbclient is not installed"),
            _("install the Debian package 'smbclient' (the backup_server role does)"),
            field="smbclient",
        ) from exc


# --- listing -------------------------------------------------------------------------------------------

_ENTRY = re.compile(r"^  (?P<name>.+?)\s+(?P<attrs>[ADHNRS]+)\s+\d+\s+\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}$")


def parse_listing(text: str, folder: PurePosixPath) -> tuple[set[str], set[str]]:
    """The files and the folders of smbclient's ``recurse; ls`` output, as paths inside the share.

    The first block lists *folder* itself (the ``-D`` folder); each further block starts with the
    folder's full path in the share, written with backslashes.
    """
    files: set[str] = set()
    folders: set[str] = set()
    current = folder
    for line in text.splitlines():
        if line.startswith("\\"):
            current = PurePosixPath(line.strip("\\").replace("\\", "/"))
            continue
        match = _ENTRY.match(line)
        if match is None or match["name"] in (".", ".."):
            continue
        path = (current / match["name"]).as_posix()
        (folders if "D" in match["attrs"] else files).add(path)
    return files, folders


def list_share(share: Share, auth_file: Path) -> set[str]:
    """The files under the placement's folder of *share* (paths inside the share)."""
    proc = _start(share.command(auth_file, "-c", "recurse; ls"), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out, _err = proc.communicate()
    text = out.decode("utf-8", errors="replace")
    if proc.returncode != 0:
        raise _fail(share, text)
    return parse_listing(text, share.folder)[0]


# --- the mirror ------------------------------------------------------------------------------------------


def _inside(name: str, folder: PurePosixPath) -> PurePosixPath | None:
    """The path of tar member *name* inside the share, or ``None`` if it is absolute, climbs with
    ``..`` or lies outside the placement's *folder*."""
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts:
        return None
    if str(folder) != "." and path.parts[: len(folder.parts)] != folder.parts:
        return None
    return path


def _mtime_ns(member: tarfile.TarInfo) -> int:
    """The member's time in nanoseconds, to the microsecond (a pax header's fraction is a float)."""
    return round(member.mtime * 1_000_000) * 1000


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def _same(dest: Path, member: tarfile.TarInfo) -> bool:
    """Whether the mirror already holds *member* at *dest*: a plain file of its size and time."""
    try:
        stat = dest.lstat()
    except FileNotFoundError:
        return False
    return dest.is_file() and stat.st_size == member.size and stat.st_mtime_ns == _mtime_ns(member)


def _write_file(stream: tarfile.TarFile, member: tarfile.TarInfo, dest: Path) -> None:
    """Write *member* to *dest* through a temporary file beside it, so *dest* is never half written."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    source = stream.extractfile(member)
    handle, temporary = tempfile.mkstemp(prefix=PART_PREFIX, dir=dest.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            shutil.copyfileobj(source, out, 1 << 20)
        os.chmod(temporary, 0o640)
        os.utime(temporary, ns=(_mtime_ns(member), _mtime_ns(member)))
        if dest.is_dir() and not dest.is_symlink():
            shutil.rmtree(dest)
        os.replace(temporary, dest)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def mirror_stream(share: Share, stream: tarfile.TarFile | None, root: Path, listed: set[str]) -> Mirrored:
    """Make the mirror of *share* under *root* (the share's folder in the staging area) equal to the tar
    *stream* (``None``: an empty share); *listed* are the files the share's listing named (those missing
    from the stream are unreadable: their last copy is kept). Raises :class:`PullError` for an entry it
    refuses; nothing is deleted then."""
    done = Mirrored()
    seen: set[str] = set()
    folder_times: dict[Path, int] = {}
    for member in stream or ():
        path = _inside(member.name, share.folder)
        if path is None or not (member.isfile() or member.isdir()):
            raise PullError([problem_for("backup.smb-bad-entry", share, member.name)])
        if not path.parts:
            continue
        dest = root / path
        seen.add(path.as_posix())
        if member.isdir():
            if dest.exists() and not dest.is_dir():
                dest.unlink()
            dest.mkdir(parents=True, exist_ok=True)
            folder_times[dest] = _mtime_ns(member)
            continue
        done.files += 1
        done.bytes += member.size
        if _same(dest, member):
            continue
        _write_file(stream, member, dest)
        done.written += 1
    done.unreadable = sorted(listed - seen)
    kept = seen | set(done.unreadable)
    kept.update(parent.as_posix() for path in list(kept) for parent in PurePosixPath(path).parents)
    top = root / share.folder
    top.mkdir(parents=True, exist_ok=True)
    for here, folders, files in os.walk(top, topdown=False):
        for name in [*files, *folders]:
            local = Path(here) / name
            if local.relative_to(root).as_posix() not in kept:
                _remove(local)
                done.deleted += 1
    for path, moment in sorted(folder_times.items(), key=lambda item: -len(item[0].parts)):
        os.utime(path, ns=(moment, moment))
    return done


def pull(share: Share, auth_file: Path, staging: Path) -> Mirrored:
    """Mirror *share* into *staging* (``<staging>/<share>/<path>``): list it, stream it with smbclient's
    tar mode, update the mirror. Raises :class:`PullError` when the share cannot be read."""
    listed = list_share(share, auth_file)
    root = staging / share.share
    with tempfile.TemporaryFile() as errors:
        proc = _start(share.command(auth_file, "-Tc", "-"), stdout=subprocess.PIPE, stderr=errors)
        head = proc.stdout.peek(512)[:512]
        try:
            if head:
                with tarfile.open(fileobj=proc.stdout, mode="r|") as stream:
                    done = mirror_stream(share, stream, root, listed)
            elif proc.wait() == 0:
                done = mirror_stream(share, None, root, listed)
        except tarfile.ReadError:
            proc.kill()
            proc.wait()
            errors.seek(0)
            raise _fail(
                share, head.decode("utf-8", errors="replace") + errors.read().decode(errors="replace")
            ) from None
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        while proc.stdout.read(1 << 16):
            pass  # the padding after the end of the archive: smbclient fails if nobody reads it
        proc.stdout.close()
        if proc.wait() != 0:
            errors.seek(0)
            raise _fail(share, errors.read().decode("utf-8", errors="replace"))
    return done


# --- one PC: pull its shares, back up the mirror ------------------------------------------------------------


def pull_and_back_up(
    repo: r.Repo,
    host: str,
    shares: list[Share],
    auth_file: Path,
    staging: Path,
    evidence_base: Path,
) -> tuple[dict, Path]:
    """Pull every share of *host* into ``<staging>/<host>/``, then back up the mirror of each data class
    whose shares were all read, as *host*. A class with a share that could not be read is not backed
    up (its snapshot would lack that share) and fails the run; an unreadable file makes it a warning.

    Returns the ``backup.run`` record (with its ``pull`` part) and its path."""
    mirrors = staging / host
    done: list[dict] = []
    paths: dict[str, list[str]] = {}
    failed_classes: set[str] = set()
    for share in sorted(shares, key=lambda s: (s.data_class, s.share, s.path)):
        entry: dict = {"data_class": share.data_class, "share": share.share, "path": share.path}
        entry["address"] = share.address
        try:
            result = pull(share, auth_file, mirrors)
        except PullError as exc:
            entry.update(result="failed", errors=[jobs.problem_dict(p) for p in exc.problems])
            failed_classes.add(share.data_class)
        else:
            entry.update(
                result="warning" if result.unreadable else "ok",
                files=result.files,
                bytes=result.bytes,
                written=result.written,
                deleted=result.deleted,
                unreadable=result.unreadable,
                errors=[],
            )
            paths.setdefault(share.data_class, []).append(str(mirrors / share.share / share.folder))
        done.append(entry)
    sources = [
        jobs.Source(data_class, sorted(found))
        for data_class, found in sorted(paths.items())
        if data_class not in failed_classes
    ]
    part = {"protocol": "smb", "by": evidence.this_host(), "staging": str(mirrors), "shares": done}
    return jobs.run_backup(repo, host, sources, evidence_base, pull=part)


# --- the pulls file the backup_server role writes -------------------------------------------------------------


@dataclass(frozen=True)
class PulledHost:
    """A Windows PC the backup machine pulls: its repository (with its REST login) and its shares."""

    host: str
    repository: str
    shares: list[Share]


def read_pulls(path: Path) -> list[PulledHost]:
    """The PCs of the pulls file at *path* (JSON written by the backup_server role from the inventory):
    ``{"hosts": {HOST: {"repository": URL, "shares": [{data_class, address, share, path}]}}}``."""

    def bad(reason: str, where: str = "hosts") -> BackupError:
        return BackupError.one(
            "backup.bad-pulls-file",
            _("the pulls file cannot be used: {reason}").format(reason=reason),
            _("it is written by the backup_server role from the inventory's SMB placements; converge it again"),
            file=str(path),
            field=where,
        )

    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise bad(str(exc), "") from exc
    hosts = raw.get("hosts") if isinstance(raw, dict) else None
    if not isinstance(hosts, dict):
        raise bad(_("no mapping hosts"))
    found = []
    for host, spec in sorted(hosts.items()):
        where = f"hosts.{host}"
        if not isinstance(spec, dict) or not isinstance(spec.get("repository"), str):
            raise bad(_("no repository"), where)
        shares = []
        for index, item in enumerate(spec.get("shares") or []):
            try:
                shares.append(
                    Share(
                        str(item["data_class"]),
                        str(item["address"]),
                        str(item["share"]),
                        str(item.get("path", "/")),
                        int(item.get("port", PORT)),
                    )
                )
            except (KeyError, TypeError, ValueError) as exc:
                raise bad(_("a share is incomplete ({reason})").format(reason=exc), f"{where}.shares[{index}]") from exc
        found.append(PulledHost(host, spec["repository"], shares))
    return found
