"""``akm fixity build|verify`` and ``akm backup init|run|pull|check|restore|drill|status|prune|repair``.

Exit codes: 0 all good (a missing removable disk is a soft failure and still 0); 1 a finding — fixity
found changed or missing files, a backup was partial, a check found damage; 2 the operation could not
run (bad input, wrong password, full disk ...), with the problems printed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from types import SimpleNamespace

from akm import evidence
from akm.backup import BackupError, fixity, jobs
from akm.backup import restic as r
from akm.i18n import _, format_number


def _load_inventory(path: str | None):
    from akm.inventory import load_inventory

    target = path or os.environ.get("AKM_INVENTORY")
    if not target:
        raise BackupError.one(
            "backup.no-inventory",
            _("no inventory given"),
            _("give --inventory DIR or set AKM_INVENTORY"),
            field="inventory",
        )
    return load_inventory(Path(target))


def _password_file(args) -> Path:
    value = args.password_file or os.environ.get("RESTIC_PASSWORD_FILE")
    if not value or not Path(value).is_file():
        raise BackupError.one(
            "backup.password-file",
            _("the repository password file does not exist"),
            _("give --password-file (deployed from ansible-vault)"),
            file=str(value or ""),
            field="password-file",
        )
    return Path(value)


def _state_dir(args) -> Path:
    return Path(args.state_dir or os.environ.get("AKM_BACKUP_STATE_DIR") or jobs.DEFAULT_STATE_DIR)


def _repo(args, host: str | None) -> r.Repo:
    url = args.repo or os.environ.get("AKM_BACKUP_REPO")
    if not url:
        if not host:
            raise BackupError.one(
                "backup.no-repo", _("no repository given"), _("give --repo, or --host with --inventory"), field="repo"
            )
        url = jobs.repository_url(_load_inventory(args.inventory), host)
    cacert = getattr(args, "cacert", None) or os.environ.get("AKM_BACKUP_CACERT") or None
    if cacert and not Path(cacert).is_file():
        raise BackupError.one(
            "backup.no-cacert",
            _("the CA certificate of the backup server does not exist"),
            _("give --cacert (the backup_client role installs it as /etc/akm/backup/ca.pem)"),
            file=str(cacert),
            field="cacert",
        )
    return r.Repo(url, _password_file(args), _state_dir(args) / "cache", Path(cacert) if cacert else None)


def _parse_sources(values: list[str]) -> list[jobs.Source]:
    by_class: dict[str, list[str]] = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not name or not path:
            raise BackupError.one(
                "backup.bad-source",
                _("{value!r} is not CLASS=PATH").format(value=value),
                _("for example --source audio_video=/srv/archive/av"),
                field="source",
            )
        by_class.setdefault(name, []).append(path)
    return [jobs.Source(k, sorted(v)) for k, v in sorted(by_class.items())]


def _positive(text: str) -> int:
    """An argparse type: a whole number of 1 or more (threads, files, MiB)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(_("{value!r} is not a whole number of 1 or more").format(value=text))
    return value


COMPRESSION_MODES = ("auto", "off", "max")


def _parse_class_compression(values: list[str]) -> dict[str, str]:
    """``CLASS=MODE`` pairs of ``--class-compression``."""
    out: dict[str, str] = {}
    for value in values:
        name, sep, mode = value.partition("=")
        if not sep or not name or mode not in COMPRESSION_MODES:
            raise BackupError.one(
                "backup.bad-compression",
                _("'{value}' is not CLASS=MODE").format(value=value),
                _("MODE is one of auto, off, max, e.g. --class-compression av_masters=off"),
                field="class-compression",
            )
        out[name] = mode
    return out


def _size(value: int) -> str:
    units = ["B", "KiB", "MiB", "GiB", "TiB"]
    amount = float(value)
    for unit in units:
        if amount < 1024 or unit == units[-1]:
            return f"{format_number(round(amount, 1))} {unit}"
        amount /= 1024
    return str(value)


# --- fixity -------------------------------------------------------------------------------------


def _fixity_build(args) -> int:
    moment = evidence.now()
    result = fixity.build(Path(args.path), args.manifest, args.workers, date_text=moment.date().isoformat())
    record = evidence.record(
        "fixity.build",
        "ok",
        time=moment,
        subject=args.data_class or "",
        archive=str(Path(args.path).resolve()),
        manifest=str(fixity.manifest_dir_for(Path(args.path), args.manifest).resolve()),
        added=[e.path for e in result.added],
        kept=result.kept,
        missing=result.missing,
        bytes_hashed=result.bytes_hashed,
    )
    path = jobs.write_record(evidence.directory(args.evidence_dir), "fixity-build", record)
    print(
        _("fixity manifest: {added} added, {kept} kept, {missing} missing").format(
            added=format_number(len(result.added)),
            kept=format_number(result.kept),
            missing=format_number(len(result.missing)),
        )
    )
    for rel in result.missing:
        print("  " + _("missing: {path}").format(path=rel))
    print(_("evidence: {path}").format(path=path))
    return 0


def _fixity_verify(args) -> int:
    started = evidence.now()
    result = fixity.verify(Path(args.path), args.manifest, args.workers)
    finished = evidence.now()
    record = evidence.record(
        "fixity.verify",
        "ok" if result.ok else "failed",
        time=finished,
        started=evidence.iso(started),
        subject=args.data_class or "",
        archive=str(Path(args.path).resolve()),
        unchanged=len(result.unchanged),
        changed=[{"path": c.path, "expected": c.expected, "actual": c.actual} for c in result.changed],
        missing=result.missing,
        new=result.new,
        bytes_hashed=result.bytes_hashed,
    )
    path = jobs.write_record(evidence.directory(args.evidence_dir), "fixity-verify", record)
    print(
        _("fixity: {unchanged} unchanged, {changed} changed, {missing} missing, {new} new").format(
            unchanged=format_number(len(result.unchanged)),
            changed=format_number(len(result.changed)),
            missing=format_number(len(result.missing)),
            new=format_number(len(result.new)),
        )
    )
    for change in result.changed:
        print("  " + _("CHANGED (bit rot or tampering; restore it from backup): {path}").format(path=change.path))
    for rel in result.missing:
        print("  " + _("MISSING (restore it from backup): {path}").format(path=rel))
    for rel in result.new:
        print("  " + _("new (add it with 'akm fixity build'): {path}").format(path=rel))
    print(_("evidence: {path}").format(path=path))
    if not result.ok:
        jobs.raise_alert(
            evidence.directory(args.evidence_dir),
            "fixity.damaged",
            _("the archive has changed or missing files"),
            finished,
            record["host"],
            path,
            archive=record["archive"],
        )
        return 1
    return 0


# --- backup -------------------------------------------------------------------------------------


def _print_problems(errors: list[dict]) -> None:
    for error in errors:
        text = error.get("message", "")
        if error.get("hint"):
            text += " — " + error["hint"]
        print(f"{error.get('code', '')}: {text}", file=sys.stderr)


def _backup_init(args) -> int:
    repo = _repo(args, args.host)
    created = jobs.init_repository(repo)
    print(_("repository created") if created else _("repository already exists"))
    return 0


def _need_host(args) -> str:
    if not args.host:
        raise BackupError.one(
            "backup.no-host", _("no host given"), _("give --host with the client's inventory hostname"), field="host"
        )
    return args.host


def _backup_run(args) -> int:
    _need_host(args)
    if args.source:
        sources = _parse_sources(args.source)
    else:
        sources = jobs.sources_for_host(_load_inventory(args.inventory), args.host)
    if not sources:
        raise BackupError.one(
            "backup.nothing-to-back-up",
            _("the inventory places no data on {host}").format(host=args.host),
            _("add data placements (data_class, path) to the asset, or give --source CLASS=PATH"),
            field="data",
        )
    class_compression = _parse_class_compression(args.class_compression)
    repo = _repo(args, args.host)
    removable = Path(args.removable) if args.removable else None
    record, path = jobs.run_backup(
        repo,
        args.host,
        sources,
        evidence.directory(args.evidence_dir),
        removable,
        args.compression,
        class_compression=class_compression,
        tuning=jobs.Tuning(
            args.pack_size,
            args.read_concurrency,
            not args.always_snapshot,
            args.reread or jobs.reread_pending(_state_dir(args), args.host),
        ),
    )
    for entry in record["classes"]:
        print(
            _("{data_class}: {result}, snapshot {snapshot}, {files} files, {added} added").format(
                data_class=entry["data_class"],
                result=entry["result"],
                snapshot=entry.get("snapshot_id", "-")[:8],
                files=format_number(entry.get("files", 0)),
                added=_size(entry.get("bytes_added", 0)),
            )
        )
    copy = record["copy"]
    print(
        _("second copy: {result}").format(result=copy["result"])
        + (f" — {copy['reason']}" if copy.get("reason") else "")
    )
    print(_("evidence: {path}").format(path=path))
    errors = record["errors"] + [e for c in record["classes"] for e in c["errors"]]
    _print_problems(errors + copy.get("errors", []))
    return {"ok": 0, "warning": 1}.get(record["result"], 2)


def _backup_pull(args) -> int:
    from akm.backup import smb

    pulled = smb.read_pulls(Path(args.pulls))
    if args.host:
        pulled = [p for p in pulled if p.host == args.host]
        if not pulled:
            raise BackupError.one(
                "backup.unknown-host",
                _("the pulls file has no PC {host!r}").format(host=args.host),
                _("name a Windows PC whose shares the inventory places, or leave --host out"),
                file=args.pulls,
                field="host",
            )
    auth = Path(args.auth_file)
    if not auth.is_file():
        raise BackupError.one(
            "backup.no-smb-login",
            _("the file with the SMB login does not exist"),
            _("the backup_server role writes it from vault_backup_smb_login"),
            file=str(auth),
            field="auth-file",
        )
    cacert = args.cacert or os.environ.get("AKM_BACKUP_CACERT") or None
    staging = Path(args.staging or smb.DEFAULT_STAGING)
    worst = 0
    for host in pulled:
        repo = r.Repo(
            host.repository, _password_file(args), _state_dir(args) / "cache", Path(cacert) if cacert else None
        )
        jobs.init_repository(repo)
        record, path = smb.pull_and_back_up(
            repo, host.host, host.shares, auth, staging, evidence.directory(args.evidence_dir)
        )
        for share in record["pull"]["shares"]:
            print(
                _(
                    "{host} //{address}/{share}{path}: {result}, {files} files, {written} written, {deleted} deleted"
                ).format(
                    host=host.host,
                    address=share["address"],
                    share=share["share"],
                    path=share["path"],
                    result=share["result"],
                    files=format_number(share.get("files", 0)),
                    written=format_number(share.get("written", 0)),
                    deleted=format_number(share.get("deleted", 0)),
                )
            )
            for name in share.get("unreadable", []):
                print("  " + _("unreadable, its last copy kept: {path}").format(path=name))
        print(_("{host}: {result}; evidence: {path}").format(host=host.host, result=record["result"], path=path))
        _print_problems(record["errors"] + [e for c in record["classes"] for e in c["errors"]])
        _print_problems([e for share in record["pull"]["shares"] for e in share["errors"]])
        worst = max(worst, {"ok": 0, "warning": 1}.get(record["result"], 2))
    return worst


def _backup_check(args) -> int:
    repo = _repo(args, args.host)
    record, path = jobs.run_check(
        repo,
        args.host or "",
        args.tier,
        evidence.directory(args.evidence_dir),
        _state_dir(args),
        args.subsets,
    )
    print(
        _("check {tier} {subset}: {result}").format(
            tier=record["tier"], subset=record.get("subset", ""), result=record["result"]
        )
    )
    print(_("evidence: {path}").format(path=path))
    _print_problems(record["errors"])
    if not record["errors"]:
        return 0
    return 1 if record["errors"][0]["code"] == "backup.check-failed" else 2


def _backup_restore(args) -> int:
    repo = _repo(args, args.host)
    record, path = jobs.restore(
        repo,
        evidence.directory(args.evidence_dir),
        args.snapshot,
        args.host,
        args.data_class,
        args.include,
        Path(args.target) if args.target else None,
        args.in_place,
    )
    print(
        _("restored snapshot {snapshot} to {target}").format(
            snapshot=record["snapshot_id"][:8], target=record["target"]
        )
    )
    print(_("evidence: {path}").format(path=path))
    return 0


def _backup_drill(args) -> int:
    host = _need_host(args)
    repo = _repo(args, host)
    scratch = Path(args.scratch or (_state_dir(args) / "drill"))
    record, path = jobs.drill(
        repo, host, args.data_class, scratch, evidence.directory(args.evidence_dir), args.sample, args.keep
    )
    for entry in record["sample"]:
        print(
            _("{result}: {path} (snapshot: {snapshot}, fixity: {fixity})").format(
                result=entry["result"],
                path=entry["path"],
                snapshot=entry.get("snapshot", "-"),
                fixity=entry.get("fixity", "-"),
            )
        )
    print(_("restore drill of {data_class}: {result}").format(data_class=args.data_class, result=record["outcome"]))
    print(_("evidence: {path}").format(path=path))
    return 0 if record["result"] == "ok" else 1


def _backup_status(args) -> int:
    runs = jobs.latest_runs(evidence.directory(args.evidence_dir), args.host)
    if not runs:
        print(_("no backup runs recorded yet"))
        return 1
    worst = 0
    for run in runs:
        print(
            _("{host}: {result} at {finished}; {files} files, {added} added; second copy: {copy}").format(
                host=run.get("host", ""),
                result=run.get("result", ""),
                finished=run.get("time", ""),
                files=format_number(run.get("files", 0)),
                added=_size(run.get("bytes_added", 0)),
                copy=(run.get("copy") or {}).get("result", "-"),
            )
        )
        if run.get("result") != "ok":
            worst = 1
    return worst


def _data_classes(args) -> dict:
    """Data classes from ``--classes-file`` (JSON written by the backup_server role) or the inventory."""
    if not args.classes_file:
        return _load_inventory(args.inventory).data_classes
    try:
        raw = json.loads(Path(args.classes_file).read_text(encoding="utf-8"))
        return {
            cid: SimpleNamespace(retention=SimpleNamespace(**{k: v for k, v in (spec.get("retention") or {}).items()}))
            for cid, spec in raw.items()
        }
    except (OSError, ValueError, AttributeError, TypeError) as exc:
        raise BackupError.one(
            "backup.bad-classes-file",
            _("the data classes file cannot be read: {reason}").format(reason=exc),
            _("it is written by the backup_server role from the inventory's data_classes"),
            file=str(args.classes_file),
            field="classes-file",
        ) from exc


def _backup_prune(args) -> int:
    record, path = jobs.prune(
        Path(args.root),
        _password_file(args),
        _data_classes(args),
        evidence.directory(args.evidence_dir),
        args.dry_run,
    )
    for repo in record["repositories"]:
        for entry in repo["classes"]:
            print(
                _("{repo} {data_class}: {policy}, {removed} snapshots removed").format(
                    repo=repo["repository"],
                    data_class=entry["data_class"],
                    policy=entry["policy"],
                    removed=format_number(entry["removed"]),
                )
            )
    print(_("evidence: {path}").format(path=path))
    _print_problems(record["errors"])
    return 0 if record["result"] == "ok" else 2


def _backup_repair(args) -> int:
    record, path = jobs.repair(
        Path(args.root),
        _password_file(args),
        evidence.directory(args.evidence_dir),
        _state_dir(args) / "damaged",
        args.snapshots,
    )
    for repo in record["repositories"]:
        print(
            _("{repo}: {result}; damaged packs: {packs}; done: {actions}; errors left: {left}").format(
                repo=repo["repository"],
                result=repo["result"],
                packs=format_number(len(repo.get("broken_packs", []))),
                actions=", ".join(repo["actions"]) or "-",
                left=format_number(repo.get("errors_left", 0)),
            )
        )
        if repo["result"] == "warning":
            print(
                "  "
                + _(
                    "data is still missing: run the clients' backups (they add again what is still on the "
                    "hosts), then repair again; --snapshots cuts what is lost for good out of the snapshots"
                )
            )
    print(_("evidence: {path}").format(path=path))
    _print_problems(record["errors"])
    return {"ok": 0, "warning": 1}.get(record["result"], 2)


def _common(parser, repo: bool = True) -> None:
    parser.add_argument(
        "--evidence-dir",
        help=_("where evidence records go (default: AKM_EVIDENCE_DIR or /var/lib/akm/evidence)"),
    )
    if repo:
        parser.add_argument("--inventory", help=_("inventory directory (default: AKM_INVENTORY)"))
        parser.add_argument("--host", help=_("the client host (inventory hostname)"))
        parser.add_argument("--repo", help=_("restic repository (default: from the inventory's backup machine)"))
        parser.add_argument("--password-file", help=_("file holding the repository password"))
        parser.add_argument(
            "--cacert", help=_("CA certificate the backup server's HTTPS certificate must chain to (AKM_BACKUP_CACERT)")
        )
        parser.add_argument("--state-dir", help=_("cache and rotation state (default: /var/lib/akm/backup)"))


def register(subparsers) -> None:
    """Add ``akm fixity`` and ``akm backup`` to the CLI."""
    fx = subparsers.add_parser("fixity", help=_("checksum manifests of the archive's masters"))
    fx_sub = fx.add_subparsers(dest="action", required=True)
    for name, handler, text in (
        ("build", _fixity_build, _("create or extend the manifest with new files")),
        ("verify", _fixity_verify, _("re-read every file and report changed, missing and new files")),
    ):
        p = fx_sub.add_parser(name, help=text)
        p.add_argument("path", help=_("the archive directory"))
        p.add_argument("--manifest", type=Path, help=_("manifest directory (default: PATH/.akm-fixity)"))
        p.add_argument("--workers", type=_positive, default=None, help=_("hashing threads (default: 2)"))
        p.add_argument("--data-class", help=_("the inventory data class the archive holds (named in the record)"))
        _common(p, repo=False)
        p.set_defaults(handler=handler)

    bk = subparsers.add_parser("backup", help=_("backups with restic, checks and restores"))
    sub = bk.add_subparsers(dest="action", required=True)

    p = sub.add_parser("init", help=_("create the repository"))
    _common(p)
    p.set_defaults(handler=_backup_init)

    p = sub.add_parser("run", help=_("back up the data classes placed on a host"))
    _common(p)
    p.add_argument(
        "--source",
        action="append",
        default=[],
        metavar="CLASS=PATH",
        help=_("back up PATH as data class CLASS instead of the inventory's placements"),
    )
    p.add_argument("--removable", help=_("mount point of the removable disk for the second copy"))
    p.add_argument(
        "--compression",
        choices=("auto", "off", "max"),
        default="auto",
        help=_("restic compression (off suits already compressed media)"),
    )
    p.add_argument(
        "--class-compression",
        action="append",
        default=[],
        metavar="CLASS=MODE",
        help=_("compression of one data class, overriding --compression"),
    )
    p.add_argument(
        "--pack-size",
        type=_positive,
        metavar="MIB",
        help=_("restic's target pack size in MiB (default: restic's 16)"),
    )
    p.add_argument(
        "--read-concurrency",
        type=_positive,
        metavar="N",
        help=_("how many files restic reads at once (restic 0.17 and later; default: restic's 2)"),
    )
    p.add_argument(
        "--always-snapshot",
        action="store_true",
        help=_("make a snapshot even when nothing changed (restic 0.17 and later skip it by default)"),
    )
    p.add_argument(
        "--reread",
        action="store_true",
        help=_(
            "read every file again instead of trusting the last snapshot (after a check found damage, "
            "the backups do it by themselves until a check is clean)"
        ),
    )
    p.set_defaults(handler=_backup_run)

    p = sub.add_parser(
        "pull", help=_("pull the Windows PCs' shares over SMB and back them up (on the backup machine only)")
    )
    _common(p, repo=False)
    p.add_argument(
        "--pulls", required=True, help=_("JSON of the PCs and their shares (written by the backup_server role)")
    )
    p.add_argument("--host", help=_("only this PC"))
    p.add_argument("--auth-file", required=True, help=_("smbclient's file with the SMB login (username =, password =)"))
    p.add_argument("--staging", help=_("where the shares are mirrored (default: /var/lib/akm/backup/smb-staging)"))
    p.add_argument("--password-file", help=_("file holding the repository password"))
    p.add_argument(
        "--cacert", help=_("CA certificate the backup server's HTTPS certificate must chain to (AKM_BACKUP_CACERT)")
    )
    p.add_argument("--state-dir", help=_("cache and rotation state (default: /var/lib/akm/backup)"))
    p.set_defaults(handler=_backup_pull)

    p = sub.add_parser("check", help=_("check the repository: structure, a rotating data subset, or all data"))
    _common(p)
    p.add_argument(
        "--tier",
        choices=("structure", "subset", "full"),
        default="structure",
        help=_("how much to read (default: structure)"),
    )
    p.add_argument(
        "--subsets",
        type=_positive,
        default=jobs.DEFAULT_SUBSETS,
        help=_("number of rotating subsets; all data is read once every N subset checks"),
    )
    p.set_defaults(handler=_backup_check)

    p = sub.add_parser("restore", help=_("restore from a snapshot, by default to an alternate path"))
    _common(p)
    p.add_argument("--snapshot", default="latest", help=_("snapshot ID (default: latest)"))
    p.add_argument("--data-class", help=_("restore the latest snapshot of this data class"))
    p.add_argument("--include", action="append", default=[], help=_("restore only this path"))
    p.add_argument("--target", help=_("empty directory to restore into"))
    p.add_argument(
        "--in-place",
        action="store_true",
        help=_("write back to the original paths, overwriting what is there"),
    )
    p.set_defaults(handler=_backup_restore)

    p = sub.add_parser("drill", help=_("restore a sample into scratch space and verify it (monthly)"))
    _common(p)
    p.add_argument("--data-class", required=True, help=_("the data class to drill"))
    p.add_argument("--sample", type=_positive, default=5, help=_("how many files to restore (default: 5)"))
    p.add_argument("--scratch", help=_("scratch directory (default: STATE_DIR/drill)"))
    p.add_argument("--keep", action="store_true", help=_("keep the restored files for inspection"))
    p.set_defaults(handler=_backup_drill)

    p = sub.add_parser("status", help=_("the latest run of each host"))
    p.add_argument("--host", help=_("only this host"))
    _common(p, repo=False)
    p.set_defaults(handler=_backup_status)

    p = sub.add_parser("prune", help=_("apply retention per data class (on the backup machine only)"))
    _common(p, repo=False)
    p.add_argument("--inventory", help=_("inventory directory (default: AKM_INVENTORY)"))
    p.add_argument("--root", required=True, help=_("directory holding the repositories"))
    p.add_argument("--password-file", help=_("file holding the repository password"))
    p.add_argument("--classes-file", help=_("JSON of the data classes and their retention (instead of --inventory)"))
    p.add_argument("--dry-run", action="store_true", help=_("only show what would be removed"))
    p.set_defaults(handler=_backup_prune)

    p = sub.add_parser("repair", help=_("repair damaged repositories (on the backup machine only, restic 0.18)"))
    _common(p, repo=False)
    p.add_argument("--root", required=True, help=_("a repository, or the directory holding the repositories"))
    p.add_argument("--password-file", help=_("file holding the repository password"))
    p.add_argument(
        "--state-dir", help=_("copies of the damaged packs go to STATE_DIR/damaged (default: /var/lib/akm/backup)")
    )
    p.add_argument(
        "--snapshots",
        action="store_true",
        help=_("also rewrite snapshots whose data is lost for good, without it (deletes it from the history)"),
    )
    p.set_defaults(handler=_backup_repair)
