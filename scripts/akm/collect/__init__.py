"""Collection: the management host gathers what the reports need from every Debian host in use.

``akm collect`` (``akm-collect.service``, by its timer) asks every host of Ansible's ``linux`` group,
over SSH with the management host's own collection key, for what it has that the management host has
not yet got:

* the host's evidence records, copied under ``<evidence>/hosts/<host>/`` with their own relative
  path, once by name (a record whose size or time changed is read again, and written only when its
  content did change), and checked against the evidence schema as they arrive;
* each log the host offers (the gateway's Squid access log), appended to one file per day under
  ``<logs>/<host>/`` (``access-20261125.log``), every line exactly once across rotations;
* the files and the neighbour table the host offers (the gateway's Kea leases and ``ip -j neigh``),
  written as one ``network.presence`` record of that host: which addresses and MACs were on the network.

The hosts answer with :mod:`akm.collect.serve`, the key's forced command, which can only read what its
arguments name. The collector keeps, per host, a state file under ``<state>/``: the evidence records it
holds (size, time, SHA-256) and per log a **cursor**: the file it read last (inode, and its first bytes,
up to :data:`~akm.collect.serve.HEAD`), and how far. At the next run the host lists its log and the
rotated files beside it; the cursor's file is found again by inode and first bytes — by its first bytes
alone once logrotate compressed it into a new file — and the collector reads the rest of that file and
every newer one whole. Only complete lines of the live file are taken, so a line Squid is still
writing comes next time. A host that was off, or a rotation between two runs, loses nothing as long as
the rotated file still exists (the policy keeps it ``log_retention_days``); a cursor whose file is gone
is reported, and the collection starts again from the oldest file there is.

Every write is atomic (a temporary file, then a rename), and the state is written last: a run that
stops half-way leaves the state of the run before, and the day's log file is rewritten from its
committed length, so nothing is counted twice. Each run writes one ``collect.run`` record: per host
what came and what failed; an unreachable host is a failure in that record, never a crash, and the
next run catches up.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import shlex
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from akm import evidence
from akm.collect.serve import HEAD
from akm.errors import Error
from akm.i18n import _

KIND = "collect.run"
PRESENCE = "network.presence"
HOSTS_FOLDER = "hosts"
"""The folder under the evidence directory where each host's records are copied (``hosts/<host>/``)."""
SERVE = "akm/collect/serve.py"
"""The forced command's program, under the base role's library folder (``base_akm_lib``)."""


class CollectError(Error):
    """The collection cannot start (its folders), or a host answered something this collector cannot read."""


class Failed(Exception):
    """One host could not be collected from; the argument is the reason a person reads."""


# --- the transport ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ssh:
    """OpenSSH's client with the collection key, trusting the inventory's pinned host keys only."""

    key: Path | None
    known_hosts: Path
    connect_timeout: int = 10
    timeout: float = 1800

    def command(self, target: dict, words: list[str]) -> list[str]:
        from akm.inventory.hostkeys import ssh_options

        command = ["ssh", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={self.connect_timeout}"]
        if target.get("ssh_key"):
            command += ["-i", target["ssh_key"], "-o", "IdentitiesOnly=yes"]
        command += [*ssh_options(self.known_hosts), "-p", str(target.get("ssh_port", 22))]
        return [*command, "-l", target.get("ssh_user", "root"), "--", target["ssh_hostname"], shlex.join(words)]

    def __call__(self, target: dict, words: list[str], request: bytes = b"") -> bytes:
        try:
            done = subprocess.run(
                self.command(target, words), input=request, capture_output=True, timeout=self.timeout, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise Failed(_("no answer within {seconds} s").format(seconds=int(self.timeout))) from exc
        if done.returncode != 0:
            raise Failed(answer_error(done.returncode, done.stderr))
        return done.stdout


def answer_error(code: int, stderr: bytes) -> str:
    """The reason a person reads for a host's non-zero answer: the server's refusal, or SSH's own."""
    lines = stderr.decode("utf-8", "replace").strip().splitlines()
    try:
        refused = json.loads(lines[-1])["error"] if lines else ""
    except (ValueError, KeyError, TypeError):
        refused = ""
    if refused:
        return _("the host refused the request ({code}): is its collection program of this version?").format(
            code=refused
        )
    return (lines[-1] if lines else "") or _("ssh ended with code {code}").format(code=code)


# --- the state of one host -------------------------------------------------------------------------


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _prefix(path: Path, length: int) -> bytes:
    """The first *length* bytes of *path* (fewer when it is shorter or absent)."""
    try:
        with path.open("rb") as handle:
            return handle.read(length)
    except FileNotFoundError:
        return b""


@dataclass
class LogState:
    """Where the collection of one log stands: the cursor in the host's files, and the day file it
    appends to with its committed length."""

    cursor: dict | None = None
    dest: str = ""
    dest_size: int = 0


@dataclass
class HostState:
    """What the management host already holds of one host (``<state>/<host>.json``)."""

    evidence: dict[str, list] = field(default_factory=dict)
    logs: dict[str, LogState] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> HostState:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError) as exc:
            raise CollectError.one(
                "collect.state-unreadable",
                _("the collection state cannot be read: {reason}").format(reason=getattr(exc, "strerror", None) or exc),
                _("remove the file: the next run copies again what is still on the host, each record once"),
                file=str(path),
            ) from exc
        logs = {name: LogState(**value) for name, value in data.get("logs", {}).items()}
        return cls(evidence=data.get("evidence", {}), logs=logs)

    def save(self, path: Path) -> None:
        data = {
            "evidence": dict(sorted(self.evidence.items())),
            "logs": {name: vars(value) for name, value in sorted(self.logs.items())},
        }
        evidence.write_bytes(path, json.dumps(data, indent=1, sort_keys=True).encode() + b"\n", mode=0o600)


# --- logs -------------------------------------------------------------------------------------------


def _ordered(files: list[dict]) -> list[dict]:
    """The live file first, then the rotated ones newest first (by the time they were last written)."""
    live = [f for f in files if f["current"]]
    return live + sorted((f for f in files if not f["current"]), key=lambda f: -f["mtime_ns"])


def _head(cursor: dict | None) -> bytes:
    return base64.b64decode(cursor["head"]) if cursor else b""


def find(files: list[dict], cursor: dict | None) -> int | None:
    """The place in :func:`_ordered` *files* of the cursor's file: same inode and first bytes, else
    (a rename into a compressed copy) the same first bytes; ``None`` when it is gone."""
    if not cursor:
        return None
    head = _sha(_head(cursor))
    matches = [
        i for i, f in enumerate(files) if f["head"] == head and (f["compressed"] or f["size"] >= cursor["offset"])
    ]
    same = [i for i in matches if files[i]["inode"] == cursor["inode"] and not files[i]["compressed"]]
    return (same or matches or [None])[0]


def plan(files: list[dict], cursor: dict | None) -> tuple[list[dict], bool]:
    """The pieces to read (oldest first) to take every line after *cursor* exactly once, and whether
    the cursor's file was gone (lines between may be lost)."""
    ordered = _ordered(files)
    at = find(ordered, cursor)
    if at is None:
        chosen = [(f, 0) for f in reversed(ordered)]
    else:
        chosen = [(ordered[at], cursor["offset"])] + [(f, 0) for f in reversed(ordered[:at])]
    pieces = []
    for file, offset in chosen:
        piece = {"name": file["name"], "offset": offset, "inode": file["inode"], "current": file["current"]}
        piece["length"] = file["size"] - offset if file["current"] else None
        pieces.append(piece)
    return pieces, bool(cursor) and at is None


def advance(cursor: dict | None, piece: dict, data: bytes) -> tuple[bytes, dict]:
    """The part of *data* (read for *piece*) to keep, and the cursor after it: the live file's lines
    are kept up to the last complete one."""
    taken = data[: data.rfind(b"\n") + 1] if piece["current"] else data
    if piece["offset"] == 0:
        head = taken[:HEAD]
    else:
        head = _head(cursor)
        head += taken[: HEAD - len(head)]
    end = piece["offset"] + len(taken)
    if end == 0:
        return taken, cursor
    moved = {"name": piece["name"], "inode": piece["inode"], "offset": end}
    return taken, {**moved, "head": base64.b64encode(head).decode()}


def day_file(name: str, day: str) -> str:
    """The collected file of one day of the log called *name*: ``access.log`` → ``access-<day>.log``."""
    stem, dot, suffix = name.partition(".")
    return f"{stem}-{day}.{suffix}" if dot else f"{name}-{day}"


def settle(folder: Path, state: LogState) -> None:
    """Cut the day file of *state* back to its committed length, when a run stopped after writing it
    and before its state: those lines come again."""
    if not state.dest:
        return
    path = folder / state.dest
    if path.exists() and path.stat().st_size > state.dest_size:
        evidence.write_bytes(path, _prefix(path, state.dest_size))


def append(folder: Path, state: LogState, name: str, data: bytes) -> LogState:
    """Append *data* to the day file *name* under *folder* (its committed part, then *data*, renamed
    into place); return the state that commits it."""
    committed = state.dest_size if state.dest == name else 0
    path = folder / name
    evidence.write_bytes(path, _prefix(path, committed) + data)
    return LogState(state.cursor, name, committed + len(data))


# --- presence ---------------------------------------------------------------------------------------


def leases(texts: list[bytes]) -> list[dict]:
    """The leases of Kea's memfile CSV files (oldest file first; a later line of an address wins)."""
    found: dict[str, dict] = {}
    for text in texts:
        for row in csv.DictReader(io.StringIO(text.decode("utf-8", "replace"))):
            address = (row.get("address") or "").strip()
            if not address:
                continue
            expire = (row.get("expire") or "").strip()
            found[address] = {
                "address": address,
                "mac": (row.get("hwaddr") or "").strip().lower(),
                "hostname": (row.get("hostname") or "").strip(),
                "expires": evidence.iso(datetime.fromtimestamp(int(expire), UTC)) if expire.isdigit() else "",
                "state": int(row["state"]) if (row.get("state") or "").strip().isdigit() else 0,
            }
    return [found[a] for a in sorted(found)]


def neighbours(text: bytes) -> list[dict]:
    """The entries of ``ip -j neigh show`` that have a MAC address."""
    try:
        entries = json.loads(text or b"[]")
    except ValueError:
        return []
    found = []
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and entry.get("lladdr") and entry.get("dst"):
            state = entry.get("state") or []
            found.append(
                {
                    "address": str(entry["dst"]),
                    "mac": str(entry["lladdr"]).lower(),
                    "device": str(entry.get("dev", "")),
                    "state": ",".join(state) if isinstance(state, list) else str(state),
                }
            )
    return sorted(found, key=lambda e: (e["address"], e["device"]))


# --- one host ---------------------------------------------------------------------------------------


@dataclass
class Places:
    """Where the collection writes on the management host."""

    evidence: Path
    logs: Path
    state: Path


def _pieces(answer: bytes, count: int) -> list[bytes | str]:
    """Split a ``get`` answer into *count* pieces: bytes, or the server's error code."""
    found: list[bytes | str] = []
    at = 0
    for _index in range(count):
        end = answer.find(b"\n", at)
        if end < 0:
            raise Failed(_("the host's answer ended early"))
        header = json.loads(answer[at:end])
        at = end + 1
        if "error" in header:
            found.append(str(header["error"]))
            continue
        size = int(header["size"])
        if at + size > len(answer):
            raise Failed(_("the host's answer ended early"))
        found.append(answer[at : at + size])
        at += size
    return found


def collect_host(name: str, target: dict, transport, places: Places, moment: datetime, local: bool) -> dict:
    """Collect from one host; return its entry of the ``collect.run`` record. *local*: this is the
    management host itself, whose records are already in place (its logs are still collected)."""
    entry: dict = {"result": "ok", "evidence": 0, "logs": {}, "problems": []}
    state_file = places.state / f"{name}.json"
    state = HostState.load(state_file)
    try:
        heads = [f"{source}={len(_head(s.cursor))}" for source, s in sorted(state.logs.items()) if s.cursor]
        listing = json.loads(transport(target, ["list", *heads]))
        wanted: list[dict] = []
        copies = []
        for item in [] if local else listing.get("evidence") or []:
            known = state.evidence.get(item["path"])
            if not known or known[:2] != [item["size"], item["mtime_ns"]]:
                copies.append(item)
                wanted.append({"source": "evidence", "path": item["path"]})
        log_plans = {}
        for source, files in sorted(listing.get("logs", {}).items()):
            log_state = state.logs.get(source, LogState())
            pieces, lost = plan(files, log_state.cursor)
            log_plans[source] = (pieces, lost)
            wanted += [
                {"source": source, "name": p["name"], "offset": p["offset"], "length": p["length"]} for p in pieces
            ]
        file_names = {}
        for source, files in sorted(listing.get("files", {}).items()):
            file_names[source] = [f["name"] for f in sorted(files, key=lambda f: f["mtime_ns"])]
            wanted += [{"source": source, "name": n} for n in file_names[source]]
        if listing.get("neighbours"):
            wanted.append({"source": "neighbours"})
        answer = _pieces(transport(target, ["get"], json.dumps(wanted).encode()), len(wanted))
    except Failed as exc:
        return {**entry, "result": "failed", "reason": str(exc)}
    except (ValueError, KeyError, TypeError) as exc:
        return {**entry, "result": "failed", "reason": _("the host's answer cannot be read: {error}").format(error=exc)}
    pieces_in = iter(zip(wanted, answer, strict=True))
    folder = places.evidence / HOSTS_FOLDER / name
    for item in copies:
        _request, data = next(pieces_in)
        if isinstance(data, str):
            entry["problems"].append(_problem("collect.evidence-unreadable", data, item["path"]))
            continue
        known = state.evidence.get(item["path"])
        digest = _sha(data)
        if not known or known[2] != digest:
            path = folder / item["path"]
            evidence.write_bytes(path, data)
            entry["evidence"] += 1
            _records, wrong = evidence.load(path)
            entry["problems"] += [_problem(p.code, p.message, item["path"]) for p in wrong]
        state.evidence[item["path"]] = [item["size"], item["mtime_ns"], digest]
    day = moment.astimezone(UTC).strftime("%Y%m%d")
    for source, (pieces, lost) in log_plans.items():
        log_state = state.logs.get(source, LogState())
        settle(places.logs / name, log_state)
        taken_all = b""
        cursor = log_state.cursor
        read_from = []
        datas = [data for _request, data in (next(pieces_in) for _p in pieces)]
        unreadable = [(p, d) for p, d in zip(pieces, datas, strict=True) if isinstance(d, str)]
        for piece, data in unreadable[:1]:
            entry["problems"].append(_problem("collect.log-unreadable", data, piece["name"]))
        if not unreadable:
            for piece, data in zip(pieces, datas, strict=True):
                taken, cursor = advance(cursor, piece, data)
                taken_all += taken
                read_from.append(piece["name"])
            if taken_all:
                log_state = append(places.logs / name, log_state, day_file(_live_name(pieces, source), day), taken_all)
            state.logs[source] = LogState(cursor, log_state.dest, log_state.dest_size)
        if lost:
            entry["problems"].append(
                _problem(
                    "collect.log-cursor-lost",
                    _("the file collected last is gone from the host: lines written between may be missing"),
                    source,
                )
            )
        entry["logs"][source] = {"bytes": len(taken_all), "lines": taken_all.count(b"\n"), "files": read_from}
    texts: dict[str, list[bytes]] = {}
    for source, names in file_names.items():
        texts[source] = [data for _request, data in (next(pieces_in) for _n in names) if isinstance(data, bytes)]
    table = b""
    if listing.get("neighbours"):
        _request, data = next(pieces_in)
        if isinstance(data, str):
            entry["problems"].append(_problem("collect.neighbours-unreadable", data, "neighbours"))
        else:
            table = data
    state.save(state_file)
    if "leases" in texts or listing.get("neighbours"):
        entry["presence"] = str(_presence(name, texts.get("leases", []), table, places, moment))
    if entry["problems"]:
        entry["result"] = "warning"
    return entry


def _live_name(pieces: list[dict], source: str) -> str:
    return next((p["name"] for p in pieces if p["current"]), source)


def _problem(code: str, message: str, item: str) -> dict:
    return {"code": code, "message": message, "item": item}


def _presence(host: str, lease_texts: list[bytes], table: bytes, places: Places, moment: datetime) -> Path:
    found_leases, found_neighbours = leases(lease_texts), neighbours(table)
    record = evidence.record(
        PRESENCE,
        "ok",
        time=moment,
        host=host,
        summary=_("{leases} leases, {neighbours} neighbours").format(
            leases=len(found_leases), neighbours=len(found_neighbours)
        ),
        leases=found_leases,
        neighbours=found_neighbours,
    )
    return evidence.write(places.evidence / "presence", f"{host}-{evidence.stamp(moment)}", record)


# --- the run ----------------------------------------------------------------------------------------


def collect(targets: dict[str, dict], transport, places: Places, workers: int = 8) -> dict:
    """Collect from every host of *targets* (``{name: ssh data}``, see :func:`akm.report.facts.targets`)
    at once; return the ``collect.run`` record (not yet written)."""
    for folder in (places.evidence, places.logs, places.state):
        if not folder.is_dir():
            raise CollectError.one(
                "collect.no-folder",
                _("the folder does not exist"),
                _("the management role creates it; converge the management host, or give another folder"),
                file=str(folder),
            )
    moment = evidence.now()
    here = evidence.this_host()
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(targets) or 1))) as pool:
        futures = {
            name: pool.submit(collect_host, name, target, transport, places, moment, name == here)
            for name, target in sorted(targets.items())
        }
        hosts = {name: future.result() for name, future in futures.items()}
    failed = sorted(n for n, h in hosts.items() if h["result"] == "failed")
    result = "failed" if failed else ("warning" if any(h["problems"] for h in hosts.values()) else "ok")
    return evidence.record(
        KIND,
        result,
        time=moment,
        summary=_("{reached} of {total} hosts collected; not reached: {failed}").format(
            reached=len(hosts) - len(failed), total=len(hosts), failed=", ".join(failed) or "-"
        ),
        records=sum(h["evidence"] for h in hosts.values()),
        hosts=hosts,
    )


def write_record(record: dict, evidence_dir: Path) -> Path:
    """Write *record* as ``<evidence>/collect/run-<UTC time>.json``."""
    moment = datetime.fromisoformat(record["time"])
    return evidence.write(Path(evidence_dir) / "collect", f"run-{evidence.stamp(moment)}", record)
