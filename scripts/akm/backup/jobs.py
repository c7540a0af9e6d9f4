"""Backup runs, tiered checks, restores and server-side retention, each leaving an evidence record.

What a host backs up comes from the inventory: every ``Asset.data`` placement ``(data_class, path)``
of the host. Each data class becomes one restic snapshot per run, tagged ``akm`` and
``class:<data class>`` and stamped with the host name, so the backup machine can apply each class's
retention to its own snapshots. Each client host has its own repository on the backup machine
(``rest:https://<backup machine>:<port>/<host>/``), so one client cannot read another's data.

Forgetting and pruning never go through the REST server (it is append-only); :func:`prune` runs on the
backup machine against the repository directories themselves.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from akm import evidence
from akm.backup import BackupError
from akm.backup import restic as r
from akm.errors import Problem
from akm.i18n import _

DEFAULT_PORT = 8000
DEFAULT_SUBSETS = 30
DEFAULT_STATE_DIR = Path("/var/lib/akm/backup")
TAG = "akm"


@dataclass
class Source:
    """One data class of a host and the paths that hold it."""

    data_class: str
    paths: list[str] = field(default_factory=list)


def class_tag(data_class: str) -> str:
    """The snapshot tag of a data class."""
    return f"class:{data_class}"


# --- the inventory side -------------------------------------------------------------------------


def sources_for_host(inv, hostname: str) -> list[Source]:
    """The data classes placed on *hostname* in the inventory, with their paths (sorted)."""
    try:
        asset = inv.asset(hostname)
    except KeyError as exc:
        raise BackupError.one(
            "backup.unknown-host",
            _("no asset {host!r} in the inventory").format(host=hostname),
            _("use a hostname or inventory number from the inventory"),
            file=str(getattr(inv, "root", "")),
            field="host",
        ) from exc
    by_class: dict[str, list[str]] = {}
    for placement in asset.data or []:
        by_class.setdefault(placement.data_class, []).append(str(placement.path))
    return [Source(dc, sorted(set(paths))) for dc, paths in sorted(by_class.items())]


def backup_server(inv):
    """The asset whose profiles include ``backup_server`` (exactly one is expected)."""
    servers = [a for a in inv.assets if "backup_server" in (a.profiles or [])]
    if len(servers) != 1:
        raise BackupError.one(
            "backup.no-backup-server",
            _("the inventory must have exactly one asset with the backup_server profile, it has {count}").format(
                count=len(servers)
            ),
            _("give the backup machine the profile backup_server"),
            file=str(getattr(inv, "root", "")),
            field="profiles",
        )
    return servers[0]


def server_address(inv, server) -> str:
    """The backup machine's address as clients reach it: on a ``servers`` segment, else its address."""
    segments = getattr(inv, "segments", {}) or {}
    for interface in server.interfaces or []:
        segment = segments.get(interface.segment)
        if interface.ip is not None and segment is not None and segment.purpose == "servers":
            return str(interface.ip)
    return str(server.address)


def server_port(server) -> int:
    """The TCP port of the REST server on the backup machine *server*: its asset variable
    ``backup_server_port`` (as in the ``backup_server`` role), else :data:`DEFAULT_PORT`."""
    return int((server.vars or {}).get("backup_server_port", DEFAULT_PORT))


def repository_url(inv, hostname: str) -> str:
    """The REST repository URL of *hostname* on the inventory's backup machine: HTTPS unless the
    backup machine's asset variable ``backup_server_tls`` is false (as in the ``backup_server`` role)."""
    server = backup_server(inv)
    port = server_port(server)
    scheme = "https" if (server.vars or {}).get("backup_server_tls", True) else "http"
    return f"rest:{scheme}://{server_address(inv, server)}:{port}/{hostname}/"


# --- helpers --------------------------------------------------------------------------------------


def problem_dict(problem: Problem) -> dict:
    return {"code": problem.code, "message": problem.message, "hint": problem.hint}


def public_url(url: str) -> str:
    """The repository address as evidence records it: a URL (``rest:https://…``) without the
    ``user:password@`` part of its authority; a local directory as it was given."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    authority, slash, path = rest.partition("/")
    return scheme + sep + authority.rpartition("@")[2] + slash + path


def write_record(base: Path, short: str, data: dict, suffix: str = "") -> Path:
    """Write *data*, an evidence record, as ``base/backup/<short>-<suffix>-<UTC stamp of its time>.json``."""
    moment = datetime.fromisoformat(data["time"])
    return evidence.write(Path(base) / "backup", "-".join(filter(None, (short, suffix, evidence.stamp(moment)))), data)


def raise_alert(base: Path, code: str, message: str, moment: datetime, host: str, record: Path, **details) -> Path:
    """Write an alert (something a person must look at) under ``base/alerts/``: kind ``<area>.alert``
    for the area of *code* (``backup.target-full`` is the backup area's), beside *record* that found it."""
    area = code.split(".", 1)[0]
    data = evidence.record(
        f"{area}.alert",
        "failed",
        time=moment,
        host=host,
        code=code,
        summary=message,
        record=str(record),
        details={k: str(v) for k, v in details.items()},
    )
    return evidence.write(Path(base) / "alerts", f"alert-{code.replace('.', '-')}-{evidence.stamp(moment)}", data)


def list_locks(repo: r.Repo) -> list[str]:
    """IDs of the lock files in the repository (without taking a lock)."""
    result = r.ensure(r.run(repo, ["list", "locks", "--no-lock"]))
    return sorted(line.strip() for line in result.stdout.splitlines() if line.strip())


def remove_stale_locks(repo: r.Repo) -> list[str]:
    """Remove locks whose owner is gone and return their IDs.

    ``restic unlock`` (without ``--remove-all``) removes only the locks restic itself considers stale:
    older than 30 minutes, or made on this host by a process that no longer exists — exactly the lock a
    killed backup leaves behind. A lock of a live process is kept.
    """
    before = list_locks(repo)
    if not before:
        return []
    r.ensure(r.run(repo, ["unlock"]))
    after = set(list_locks(repo))
    return [lock for lock in before if lock not in after]


def init_repository(repo: r.Repo) -> bool:
    """Create the repository (format 2, so configs and shares are compressed); False if it existed."""
    probe = r.run(repo, ["cat", "config"])
    if probe.returncode == 0:
        return False
    code = r.classify(probe)
    if code not in ("backup.no-repository", "backup.restic-failed"):
        r.ensure(probe)
    r.ensure(r.run(repo, ["init", "--repository-version", "2"]))
    return True


# --- backup run ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tuning:
    """How restic reads and stores a backup; each setting is used only where the installed restic has it.

    *pack_size* is restic's target pack size in MiB (``None``: restic's 16); *read_concurrency* how many
    files restic reads at once (``None``: restic's 2; restic 0.17+); *skip_if_unchanged* makes no new
    snapshot when nothing changed since the last one (restic 0.17+), so an unchanged class costs one
    small run and no snapshot to forget later; *reread* reads every file again instead of trusting the
    last snapshot (``--force``): what puts data lost from a damaged repository back (:func:`reread_pending`).
    """

    pack_size: int | None = None
    read_concurrency: int | None = None
    skip_if_unchanged: bool = True
    reread: bool = False

    def backup_args(self) -> list[str]:
        args = ["--pack-size", str(self.pack_size)] if self.pack_size else []
        if self.reread:
            args.append("--force")
        if self.read_concurrency and r.supports("read-concurrency"):
            args += ["--read-concurrency", str(self.read_concurrency)]
        if self.skip_if_unchanged and r.supports("skip-if-unchanged"):
            args.append("--skip-if-unchanged")
        return args


def _backup_class(repo: r.Repo, host: str, source: Source, compression: str, on_start, tuning: Tuning) -> dict:
    entry: dict = {
        "data_class": source.data_class,
        "paths": source.paths,
        "compression": compression,
        "result": "ok",
        "errors": [],
    }
    missing = [p for p in source.paths if not os.path.exists(p)]
    if missing:
        entry["result"] = "error"
        entry["errors"].append({**problem_dict(r.problem_for("backup.source-missing")), "paths": missing})
        return entry
    args = [
        "backup",
        "--json",
        "--host",
        host,
        "--tag",
        TAG,
        "--tag",
        class_tag(source.data_class),
        "--compression",
        compression,
        *tuning.backup_args(),
        *source.paths,
    ]
    started = time.monotonic()
    result = r.run(repo, args, on_start=on_start)
    elapsed = time.monotonic() - started
    messages = result.json_messages()
    summary = next((m for m in messages if m.get("message_type") == "summary"), None)
    for message in messages:
        if message.get("message_type") == "error":
            entry["errors"].append(
                {
                    "code": "backup.file-unreadable",
                    "item": message.get("item", ""),
                    "message": str((message.get("error") or {}).get("message", "")),
                }
            )
    if summary:
        # With --skip-if-unchanged restic makes no snapshot when nothing changed: no snapshot_id, and a
        # meaningless total_duration (restic 0.18), so the run's own time is recorded.
        duration = summary.get("total_duration", 0)
        entry.update(
            {
                "snapshot_id": summary.get("snapshot_id", ""),
                "unchanged": not summary.get("snapshot_id"),
                "files_new": summary.get("files_new", 0),
                "files_changed": summary.get("files_changed", 0),
                "files_unmodified": summary.get("files_unmodified", 0),
                "files": summary.get("total_files_processed", 0),
                "bytes_processed": summary.get("total_bytes_processed", 0),
                "bytes_added": summary.get("data_added", 0),
                "duration_seconds": duration if duration >= 0 and summary.get("snapshot_id") else elapsed,
            }
        )
    code = r.classify(result)
    if result.returncode == 3 and summary:
        entry["result"] = "partial"
    elif code is not None:
        entry["result"] = "error"
        entry["errors"].append(problem_dict(r.problem_for(code, result)))
    return entry


def copy_to_removable(repo: r.Repo, host: str, mount: Path | None) -> dict:
    """Copy the host's snapshots to the removable disk at *mount* (3-2-1's second copy).

    A disk that is not mounted is a *soft failure*: recorded, reported, but the run stays green —
    the removable disk is often taken off-site on purpose.
    """
    if mount is None:
        return {"result": "skipped", "reason": _("no removable disk is configured for this host")}
    mount = Path(mount)
    if not os.path.ismount(mount):
        return {
            "result": "soft-failure",
            "target": str(mount),
            "reason": _("the removable disk is not mounted at {path}; the second copy was skipped").format(path=mount),
        }
    dest = r.Repo(str(mount / "akm-restic" / host), repo.password_file, repo.cache_dir)
    source_env = ["--from-repo", repo.url, "--from-password-file", str(repo.password_file)]
    try:
        if not (mount / "akm-restic" / host / "config").exists():
            r.ensure(r.run(dest, ["init", "--repository-version", "2", *source_env, "--copy-chunker-params"]))
        else:
            remove_stale_locks(dest)
        r.ensure(r.run(dest, ["copy", *source_env, "--host", host]))
    except r.ResticError as exc:
        return {
            "result": "error",
            "target": str(dest.url),
            "errors": [problem_dict(p) for p in exc.problems],
        }
    return {"result": "ok", "target": str(dest.url)}


def run_backup(
    repo: r.Repo,
    host: str,
    sources: list[Source],
    evidence_base: Path,
    removable: Path | None = None,
    compression: str = "auto",
    on_start=None,
    clock=evidence.now,
    class_compression: dict[str, str] | None = None,
    tuning: Tuning = Tuning(),
    pull: dict | None = None,
) -> tuple[dict, Path]:
    """Back up every source of *host*, copy to the removable disk, write the status record.

    *compression* is restic's mode for every data class unless *class_compression* names one for the
    class (``off`` for media masters, which do not compress: see the bench); *tuning* how restic reads
    and packs (:class:`Tuning`). *pull* is the record's ``pull`` part when the backup machine pulled the
    sources from the host first (:mod:`akm.backup.smb`): a share that could not be read fails the run,
    an unreadable file makes it a warning.

    Returns the record and its path. The record's ``result`` is ``ok``, ``warning`` (some files could
    not be read, or the second copy failed) or ``failed``; a missing removable disk leaves it ``ok`` with
    ``copy.result`` set to ``soft-failure``. A full target, a wrong password or a damaged repository
    also raises an alert.
    """
    started: datetime = clock()
    record: dict = {
        "repository": public_url(repo.url),
        "started": evidence.iso(started),
        "classes": [],
        "errors": [],
        "locks_removed": [],
    }
    try:
        record["locks_removed"] = remove_stale_locks(repo)
    except r.ResticError as exc:
        record["errors"].extend(problem_dict(p) for p in exc.problems)
    if not record["errors"]:
        for source in sources:
            mode = (class_compression or {}).get(source.data_class, compression)
            entry = _backup_class(repo, host, source, mode, on_start, tuning)
            record["classes"].append(entry)
            if any(e.get("code") == "backup.target-full" for e in entry["errors"]):
                break
    pulled = (pull or {}).get("shares", [])
    failed = record["errors"] + [e for c in record["classes"] for e in c["errors"] if c["result"] == "error"]
    failed += [e for share in pulled for e in share["errors"]]
    if not failed:
        record["copy"] = copy_to_removable(repo, host, removable)
    else:
        record["copy"] = {"result": "skipped", "reason": _("the backup failed; no copy was made")}
    if failed:
        result = "failed"
    elif (
        any(c["result"] == "partial" for c in record["classes"])
        or record["copy"]["result"] == "error"
        or any(share.get("unreadable") for share in pulled)
    ):
        result = "warning"
    else:
        result = "ok"
    record["reread"] = tuning.reread
    record["files"] = sum(c.get("files", 0) for c in record["classes"])
    record["bytes_added"] = sum(c.get("bytes_added", 0) for c in record["classes"])
    record["snapshot_ids"] = [c["snapshot_id"] for c in record["classes"] if c.get("snapshot_id")]
    if pull is not None:
        record["pull"] = pull
    if failed:
        # What the alert tells a person: the classes this run did not back up, and the first reason.
        backed_up = {c["data_class"] for c in record["classes"] if c["result"] != "error"}
        missed = [s.data_class for s in sources if s.data_class not in backed_up]
        record["summary"] = _("not backed up: {classes} ({reason})").format(
            classes=", ".join(missed) or "—", reason=failed[0].get("message", "")
        )
    finished = clock()
    record = evidence.record("backup.run", result, time=finished, host=host, **record)
    path = write_record(evidence_base, "run", record, suffix=host)
    for error in failed:
        if error.get("code") in ("backup.target-full", "backup.wrong-password", "backup.check-failed"):
            raise_alert(
                evidence_base, error["code"], error["message"], finished, host, path, repository=record["repository"]
            )
    return record, path


# --- checks ------------------------------------------------------------------------------------


def _reread_marker(state_dir: Path, host: str) -> Path:
    return Path(state_dir) / f"reread-{host or 'repository'}.json"


def reread_pending(state_dir: Path, host: str) -> bool:
    """True while the last check of *host*'s repository found damage and no check has been clean since.

    restic 0.14 (Debian 12) trusts its last snapshot for a file whose size and time did not change, even
    when the repository lost that file's data (a damaged pack removed by ``akm backup repair``); only a
    backup that reads every file again (``--force``) adds it back. So a failed check leaves this marker,
    every backup reads everything while it is there, and the next clean check removes it.
    """
    return _reread_marker(state_dir, host).is_file()


def next_subset(state_dir: Path, key: str, total: int) -> int:
    """Return the subset (1..total) to read this time and advance the rotation kept in *state_dir*."""
    path = state_dir / f"check-rotation-{key}.json"
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        state = {}
    current = int(state.get("next", 1))
    if state.get("total") != total or not 1 <= current <= total:
        current = 1
    evidence.write_json(path, {"next": current % total + 1, "total": total})
    return current


def run_check(
    repo: r.Repo,
    host: str,
    tier: str,
    evidence_base: Path,
    state_dir: Path,
    subsets: int = DEFAULT_SUBSETS,
    clock=evidence.now,
) -> tuple[dict, Path]:
    """Check the repository in one of three tiers and record what was verified.

    * ``structure`` — indexes, snapshots and trees (no pack data read); cheap, run often;
    * ``subset`` — structure plus pack data subset ``n/N``, rotating so all data is read every N runs;
    * ``full`` — structure plus every byte of pack data.
    """
    started = clock()
    record: dict = {
        "repository": public_url(repo.url),
        "tier": tier,
        "started": evidence.iso(started),
        "errors": [],
    }
    args = ["check"]
    if tier == "subset":
        n = next_subset(state_dir, host, subsets)
        record["subset"] = f"{n}/{subsets}"
        args.append(f"--read-data-subset={n}/{subsets}")
    elif tier == "full":
        args.append("--read-data")
        record["subset"] = "all"
    try:
        record["locks_removed"] = remove_stale_locks(repo)
        result = r.run(repo, args)
        code = r.classify(result)
        record["output"] = r.last_lines(result.stdout + "\n" + result.stderr, 8)
        if code is not None:
            record["errors"].append(problem_dict(r.problem_for(code, result)))
    except r.ResticError as exc:
        record["errors"].extend(problem_dict(p) for p in exc.problems)
    marker = _reread_marker(state_dir, host)
    if any(e["code"] == "backup.check-failed" for e in record["errors"]):
        evidence.write_json(marker, {"since": record["started"]})
    elif not record["errors"]:
        marker.unlink(missing_ok=True)
    record["reread_next"] = marker.is_file()
    finished = clock()
    record = evidence.record("backup.check", "failed" if record["errors"] else "ok", time=finished, host=host, **record)
    path = write_record(evidence_base, "check", record, suffix=host)
    if record["errors"]:
        first = record["errors"][0]
        raise_alert(evidence_base, first["code"], first["message"], finished, host, path)
    return record, path


# --- restore ---------------------------------------------------------------------------------------


def find_snapshot(repo: r.Repo, snapshot: str, host: str | None, data_class: str | None) -> dict:
    """Resolve *snapshot* (an ID or ``latest``) to the snapshot's JSON, filtered by host and class."""
    args = ["snapshots", "--json", "--no-lock"]
    if host:
        args += ["--host", host]
    if data_class:
        args += ["--tag", class_tag(data_class)]
    result = r.ensure(r.run(repo, args))
    try:
        snaps = json.loads(result.stdout or "[]") or []
    except ValueError:
        snaps = []
    if snapshot != "latest":
        snaps = [s for s in snaps if s.get("id", "").startswith(snapshot) or s.get("short_id") == snapshot]
    if not snaps:
        raise BackupError.one(
            "backup.no-snapshot",
            _("no snapshot {snapshot!r} matches").format(snapshot=snapshot),
            _("list them with 'restic snapshots' or 'akm backup status'"),
            field="snapshot",
        )
    return max(snaps, key=lambda s: s.get("time", ""))


def restore(
    repo: r.Repo,
    evidence_base: Path,
    snapshot: str = "latest",
    host: str | None = None,
    data_class: str | None = None,
    include: list[str] | None = None,
    target: Path | None = None,
    in_place: bool = False,
    clock=evidence.now,
) -> tuple[dict, Path]:
    """Restore from a snapshot to an alternate directory, or to the original place if *in_place*.

    The alternate *target* must be empty or not exist yet, so nothing is overwritten silently; the
    original place is written only when the caller asked for it explicitly.
    """
    if in_place and target is not None:
        raise BackupError.one(
            "backup.restore-both", _("choose either --target or --in-place, not both"), field="target"
        )
    if not in_place:
        if target is None:
            raise BackupError.one(
                "backup.restore-no-target",
                _("no restore target given"),
                _("give --target DIR (an empty directory), or --in-place to write back to the original paths"),
                field="target",
            )
        target = Path(target)
        if target.exists() and any(target.iterdir()):
            raise BackupError.one(
                "backup.restore-target-not-empty",
                _("the restore target is not empty; nothing was restored"),
                _("restore into a new or empty directory"),
                file=str(target),
                field="target",
            )
    started = clock()
    snap = find_snapshot(repo, snapshot, host, data_class)
    dest = Path("/") if in_place else target
    args = ["restore", snap["id"], "--target", str(dest)]
    for path in include or []:
        args += ["--include", path]
    result = r.ensure(r.run(repo, args))
    restored = 0
    if not in_place:
        restored = sum(len(files) for _root, _dirs, files in os.walk(dest))
    record = evidence.record(
        "restore.run",
        "ok",
        time=clock(),
        started=evidence.iso(started),
        subject=snap.get("hostname") or "",
        snapshot_id=snap["id"],
        snapshot_time=snap.get("time", ""),
        data_class=data_class,
        include=include or [],
        target=str(dest),
        in_place=in_place,
        files=restored,
        output=r.last_lines(result.stdout, 3),
    )
    return record, write_record(evidence_base, "restore", record, suffix=snap.get("hostname") or "")


# --- retention on the backup machine ----------------------------------------------------------------


def retention_args(retention) -> list[str] | None:
    """restic forget flags for a data class's retention; None when everything is kept."""
    if getattr(retention, "keep_all", False):
        return None
    args = []
    for name in ("daily", "weekly", "monthly", "yearly"):
        value = getattr(retention, name, None)
        if value:
            args += [f"--keep-{name}", str(int(value))]
    return args or None


def repositories_under(root: Path) -> list[Path]:
    """Repository directories (those with a ``config``) at or under *root*, sorted."""
    root = Path(root)
    if (root / "config").is_file():
        return [root]
    return sorted(p.parent for p in root.glob("*/config") if p.is_file())


def prune(
    root: Path,
    password_file: Path,
    data_classes: dict,
    evidence_base: Path,
    dry_run: bool = False,
    clock=evidence.now,
) -> tuple[dict, Path]:
    """Apply each data class's retention to every repository under *root*, then prune what is unused.

    Runs on the backup machine only, directly on the directories the REST server serves.
    """
    started = clock()
    record: dict = {
        "root": str(root),
        "dry_run": dry_run,
        "started": evidence.iso(started),
        "repositories": [],
        "errors": [],
    }
    for repo_dir in repositories_under(root):
        repo = r.Repo(str(repo_dir), Path(password_file))
        entry: dict = {"repository": str(repo_dir), "classes": []}
        forgot = False
        try:
            remove_stale_locks(repo)
            for class_id in sorted(data_classes):
                flags = retention_args(data_classes[class_id].retention)
                if flags is None:
                    entry["classes"].append({"data_class": class_id, "policy": "keep-all", "removed": 0})
                    continue
                args = ["forget", "--json", "--tag", class_tag(class_id), "--group-by", "host,tags", *flags]
                if dry_run:
                    args.append("--dry-run")
                result = r.ensure(r.run(repo, args))
                removed = 0
                try:
                    for group in json.loads(result.stdout or "[]") or []:
                        removed += len(group.get("remove") or [])
                except ValueError:
                    pass
                forgot = forgot or removed > 0
                entry["classes"].append({"data_class": class_id, "policy": " ".join(flags), "removed": removed})
            if forgot and not dry_run:
                r.ensure(r.run(repo, ["prune"]))
                entry["pruned"] = True
        except r.ResticError as exc:
            entry["errors"] = [problem_dict(p) for p in exc.problems]
            record["errors"].extend(entry["errors"])
        record["repositories"].append(entry)
    record = evidence.record("backup.prune", "failed" if record["errors"] else "ok", time=clock(), **record)
    return record, write_record(evidence_base, "prune", record)


# --- repair of a damaged repository on the backup machine ---------------------------------------------


def _check_summary(repo: r.Repo, read_data: bool) -> dict:
    """restic's ``check --json`` summary: ``num_errors``, ``broken_packs``, ``suggest_repair_index``."""
    result = r.run(repo, ["check", "--json", *(["--read-data"] if read_data else [])])
    found = next((m for m in result.json_messages() if m.get("message_type") == "summary"), None)
    if found is None:
        r.ensure(result)
        raise r.ResticError([r.problem_for("backup.restic-failed", result)])
    return found


def repair(
    root: Path,
    password_file: Path,
    evidence_base: Path,
    quarantine: Path,
    snapshots: bool = False,
    clock=evidence.now,
) -> tuple[dict, Path]:
    """Repair each damaged repository under *root* the way restic's troubleshooting guide does, on the
    backup machine (the REST server is append-only, so nothing can be removed through it).

    All data is read (``check --read-data``); a pack that does not decrypt is salvaged with ``repair
    packs`` (its intact blobs are kept, the pack removed, the index rebuilt); an index that does not match
    the packs is rebuilt with ``repair index``. restic keeps a copy of each damaged pack it removes in
    ``<quarantine>/<repository>-<time>/`` (the record names it), for whoever wants to look at the damage.
    What was lost is then still named by snapshots: the clients' next backups add it again from the files
    still on the hosts (restic heals a snapshot when the same data is backed up again), after which the
    repository checks clean. Only with *snapshots*
    (``--snapshots``) are snapshots whose data is lost for good rewritten without it (``repair snapshots
    --forget``): that deletes the damaged files from the history, so it is the operator's explicit choice.

    The record's result per repository: ``ok`` (checks clean), ``warning`` (repaired, data still missing:
    run the backups, then check again), ``failed`` (restic failed). Needs restic 0.18 (Debian 13).
    """
    if not r.supports("check-json"):
        raise BackupError.one(
            "backup.repair-needs-restic-0.18",
            _("repairing a repository needs restic 0.18 or later (Debian 13)"),
            _("run the repair on the backup machine, which runs Debian 13"),
            field="restic",
        )
    started = clock()
    record: dict = {"root": str(root), "snapshots": snapshots, "started": evidence.iso(started)}
    record["repositories"] = []
    record["errors"] = []
    for repo_dir in repositories_under(root):
        repo = r.Repo(str(repo_dir), Path(password_file))
        entry: dict = {"repository": str(repo_dir), "actions": []}
        try:
            remove_stale_locks(repo)
            found = _check_summary(repo, read_data=True)
            entry["errors_found"] = int(found.get("num_errors") or 0)
            entry["broken_packs"] = sorted(found.get("broken_packs") or [])
            if entry["broken_packs"]:
                kept = Path(quarantine) / f"{repo_dir.name}-{evidence.stamp(started)}"
                kept.mkdir(parents=True, exist_ok=True)
                r.ensure(r.run(repo, ["repair", "packs", *entry["broken_packs"]], cwd=kept))
                entry["actions"].append("repair packs")
                entry["damaged_copies"] = str(kept)
            elif found.get("suggest_repair_index"):
                r.ensure(r.run(repo, ["repair", "index"]))
                entry["actions"].append("repair index")
            after = _check_summary(repo, read_data=False)
            if after.get("num_errors") and snapshots:
                r.ensure(r.run(repo, ["repair", "snapshots", "--forget"]))
                entry["actions"].append("repair snapshots --forget")
                after = _check_summary(repo, read_data=False)
            entry["errors_left"] = int(after.get("num_errors") or 0)
            entry["result"] = "warning" if entry["errors_left"] else "ok"
        except r.ResticError as exc:
            entry["result"] = "failed"
            entry["errors"] = [problem_dict(p) for p in exc.problems]
            record["errors"].extend(entry["errors"])
        record["repositories"].append(entry)
    results = {e["result"] for e in record["repositories"]}
    result = "failed" if "failed" in results else "warning" if "warning" in results else "ok"
    record = evidence.record("backup.repair", result, time=clock(), **record)
    return record, write_record(evidence_base, "repair", record)


# --- status ------------------------------------------------------------------------------------------


def latest_runs(evidence_base: Path, host: str | None = None) -> list[dict]:
    """The newest run record of each host (or of *host*), sorted by host."""
    newest: dict[str, tuple[str, dict]] = {}
    for path in sorted((Path(evidence_base) / "backup").glob("run-*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        name = record.get("host", "")
        if host and name != host:
            continue
        finished = record.get("time", "")
        if name not in newest or finished >= newest[name][0]:
            newest[name] = (finished, {**record, "_path": str(path)})
    return [newest[k][1] for k in sorted(newest)]


# --- restore drill -------------------------------------------------------------------------------------


def _snapshot_files(repo: r.Repo, snapshot_id: str) -> list[dict]:
    result = r.ensure(r.run(repo, ["ls", "--json", "--no-lock", snapshot_id]))
    files = []
    for message in result.json_messages():
        if message.get("struct_type") == "node" and message.get("type") == "file":
            files.append({"path": message["path"], "size": int(message.get("size", 0))})
    return sorted(files, key=lambda f: f["path"])


def _manifest_of(path: str, files: list[dict]) -> str | None:
    """The fixity manifest in the snapshot that covers *path* (the nearest ``.akm-fixity`` above it)."""
    from akm.backup.fixity import MANIFEST, MANIFEST_DIR_NAME

    names = {f["path"] for f in files}
    parent = Path(path).parent
    while True:
        candidate = str(parent / MANIFEST_DIR_NAME / MANIFEST)
        if candidate in names:
            return candidate
        if parent == parent.parent:
            return None
        parent = parent.parent


def _drill_outcome(payload: list, results: list[dict]) -> str:
    """``verified``; ``damaged`` when a restored file did not verify; ``empty`` when the snapshot holds
    no files at all (a new share): nothing could be drilled, which is recorded but is no failure."""
    if not payload:
        return "empty"
    return "verified" if results and all(f["result"] == "ok" for f in results) else "damaged"


def drill(
    repo: r.Repo,
    host: str,
    data_class: str,
    scratch: Path,
    evidence_base: Path,
    sample: int = 5,
    keep: bool = False,
    clock=evidence.now,
) -> tuple[dict, Path]:
    """Restore a sample of the latest snapshot of *data_class* into *scratch* and verify it.

    The sample is drawn from the day's date (reproducible on the same day, different each month).
    Each restored file is checked against the snapshot (size; restic verifies every blob's hash on
    restore) and, for data classes under fixity, against the manifest restored from the same snapshot:
    a mismatch there means a damaged master was backed up. The record lists every file with its hash.
    """
    import random
    import shutil

    from akm.backup.fixity import MANIFEST_DIR_NAME, hash_file, read_manifest

    started = clock()
    snap = find_snapshot(repo, "latest", host, data_class)
    files = _snapshot_files(repo, snap["id"])
    payload = [f for f in files if f"/{MANIFEST_DIR_NAME}/" not in f["path"]]
    rng = random.Random(started.date().isoformat())
    chosen = sorted(rng.sample(payload, min(sample, len(payload))), key=lambda f: f["path"])
    manifests = sorted({m for m in (_manifest_of(f["path"], files) for f in chosen) if m})
    target = Path(scratch) / f"drill-{evidence.stamp(started)}"
    if target.exists():
        raise BackupError.one(
            "backup.restore-target-not-empty",
            _("the restore target is not empty; nothing was restored"),
            _("restore into a new or empty directory"),
            file=str(target),
            field="scratch",
        )
    args = ["restore", snap["id"], "--target", str(target)]
    for item in [*(f["path"] for f in chosen), *manifests]:
        args += ["--include", item]
    r.ensure(r.run(repo, args))
    recorded: dict[str, dict[str, str]] = {}
    for manifest in manifests:
        mdir = target / manifest.lstrip("/")
        recorded[manifest] = read_manifest(mdir.parent)
    results = []
    for item in chosen:
        restored = target / item["path"].lstrip("/")
        entry: dict = {"path": item["path"], "size": item["size"]}
        if not restored.is_file():
            entry.update(result="missing")
            results.append(entry)
            continue
        digest, size = hash_file(restored)
        entry.update(sha256=digest, snapshot="match" if size == item["size"] else "size-mismatch")
        manifest = _manifest_of(item["path"], files)
        if manifest:
            archive_root = Path(manifest).parent.parent
            rel = Path(item["path"]).relative_to(archive_root).as_posix()
            expected = recorded[manifest].get(rel)
            entry["fixity"] = "absent" if expected is None else ("match" if expected == digest else "mismatch")
        entry["result"] = "ok" if entry["snapshot"] == "match" and entry.get("fixity") != "mismatch" else "failed"
        results.append(entry)
    if not keep:
        shutil.rmtree(target, ignore_errors=True)
    outcome = _drill_outcome(payload, results)
    finished = clock()
    record = evidence.record(
        "restore.drill",
        "failed" if outcome == "damaged" else "ok",
        time=finished,
        host=host,
        started=evidence.iso(started),
        subject=data_class,
        outcome=outcome,
        data_class=data_class,
        snapshot_id=snap["id"],
        snapshot_time=snap.get("time", ""),
        scratch=str(target),
        kept=keep,
        sample=results,
    )
    path = write_record(evidence_base, "drill", record, suffix=host)
    if outcome == "damaged":
        raise_alert(
            evidence_base, "backup.drill-failed", _("the restore drill found a damaged file"), finished, host, path
        )
    return record, path
