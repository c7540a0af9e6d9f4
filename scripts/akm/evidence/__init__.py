"""Evidence records: one format for every event the centre's work leaves behind, and its one writer.

Every area (backups, fixity, restores, network devices, drift facts, the access-policy push and its
rollback) writes each event as one JSON object in a file under the evidence directory, and the reports
read those files. ``schema.json`` beside this module is the contract between them (JSON Schema, draft
2020-12): a common envelope (``kind``, ``time`` with its zone, ``result``, ``host``, ``duty`` ...) and a
part per kind. :func:`write` checks a record against it before anything reaches the disk, and
:func:`load` checks every record it reads, so a record that does not fit is a bug of its writer, found
where it was written, and never a "malformed" line in a report.

This module runs on every host with Debian's ``python3`` and ``python3-jsonschema`` (4.10 in Debian 12,
the version the schema is kept compatible with) besides the control node's virtual environment, so it
imports nothing but the standard library, ``jsonschema`` and :mod:`akm.errors` / :mod:`akm.i18n`.
"""

from __future__ import annotations

import json
import os
import re
import socket
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

from akm.errors import Error, Problem
from akm.i18n import _

SCHEMA_FILE = Path(__file__).with_name("schema.json")
DEFAULT_DIR = Path("/var/lib/akm/evidence")
RESULTS = ("ok", "warning", "soft_failure", "failed")
DUTY_VARIABLE = "AKM_DUTY"
"""The environment variable through which a duty's systemd unit names the duty its records belong to."""
LATEST_SUFFIX = "-latest.json"
"""A copy of an area's newest record under a fixed name, for people; readers skip it."""


class EvidenceError(Error):
    """A record does not fit the evidence schema, or an evidence file cannot be read or written."""


@cache
def schema() -> dict:
    """The evidence schema (``schema.json``)."""
    return json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))


@cache
def _validator():
    from jsonschema import Draft202012Validator

    return Draft202012Validator(schema())


def kinds() -> tuple[str, ...]:
    """Every kind of record the schema describes."""
    return tuple(schema()["properties"]["kind"]["enum"])


def directory(explicit: Path | str | None = None) -> Path:
    """The evidence directory: *explicit*, else ``AKM_EVIDENCE_DIR``, else ``/var/lib/akm/evidence``."""
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("AKM_EVIDENCE_DIR") or DEFAULT_DIR)


def now() -> datetime:
    """The current time in UTC, to the second."""
    return datetime.now(UTC).replace(microsecond=0)


def iso(moment: datetime) -> str:
    """*moment* as ISO 8601 in UTC (``2026-11-25T22:15:00Z``)."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def stamp(moment: datetime) -> str:
    """*moment* as the compact UTC stamp used in file names (``20261125T221500Z``)."""
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def this_host() -> str:
    """The name of this machine: the base role makes it the inventory hostname."""
    return socket.gethostname().split(".", 1)[0].lower()


def record(kind: str, result: str, *, time: datetime | str | None = None, host: str | None = None, **parts) -> dict:
    """A record of *kind*: the envelope and the kind's own *parts* (see ``schema.json``).

    *time* is when the event ended (default: now); *host* defaults to this machine's name; the duty
    comes from ``AKM_DUTY`` when a duty's unit runs the writer.
    """
    moment = time or now()
    data = {
        "kind": kind,
        "time": moment if isinstance(moment, str) else iso(moment),
        "result": result,
        "host": host or this_host(),
    }
    duty = os.environ.get(DUTY_VARIABLE)
    if duty:
        data["duty"] = duty
    data.update(parts)
    return data


# --- checking --------------------------------------------------------------------------------------


def _hint(code: str) -> str:
    return {
        "evidence.missing": _("the writer must fill it in; see schema.json"),
        "evidence.unknown-field": _("add the field to the kind's part in schema.json, or leave it out"),
        "evidence.unknown-kind": _("use a kind listed in schema.json, or describe the new kind there"),
        "evidence.time": _("write ISO 8601 with a zone, e.g. 2026-11-20T02:00:05+05:00 or 2026-11-19T21:00:05Z"),
        "evidence.type": _("see the field's type in schema.json"),
        "evidence.value": _("see the allowed values in schema.json"),
    }[code]


def _field(path) -> str:
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else str(step))
    return text


_WHITESPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


def line_of(text: str, path) -> int | None:
    """The line of *text* (a JSON document) where the value at *path* (keys and indexes) begins; for a
    key that is not there, ``None``."""
    try:
        at = _WHITESPACE.match(text, 0).end()
        for step in path:
            if isinstance(step, str) and text[at] == "{":
                at = _WHITESPACE.match(text, at + 1).end()
                while text[at] != "}":
                    key, at = json.decoder.scanstring(text, at + 1)
                    at = _WHITESPACE.match(text, _WHITESPACE.match(text, at).end() + 1).end()
                    if key == step:
                        break
                    at = _next_item(text, at)
                else:
                    return None
            elif isinstance(step, int) and text[at] == "[":
                at = _WHITESPACE.match(text, at + 1).end()
                for _item in range(step):
                    at = _next_item(text, at)
            else:
                return None
    except (ValueError, IndexError):
        return None
    return text.count("\n", 0, at) + 1


def _next_item(text: str, at: int) -> int:
    """Skip the value at *at* and the comma after it; return where the next item begins."""
    _value, at = _DECODER.raw_decode(text, at)
    at = _WHITESPACE.match(text, at).end()
    if text[at] == ",":
        at = _WHITESPACE.match(text, at + 1).end()
    return at


_QUOTED = re.compile(r"'([^']+)'")


def problems(data, file: str = "", text: str | None = None, prefix: tuple = ()) -> list[Problem]:
    """Every way *data* (one record) does not fit the schema, each with the field and, when the
    record's JSON *text* is given, its line. *prefix* is the record's place in a file of several."""
    found: dict[tuple, Problem] = {}
    for error in _validator().iter_errors(data):
        path = [*prefix, *error.absolute_path]
        keyword = error.validator
        names: list[str | None] = [None]
        if keyword in ("required", "additionalProperties"):
            names = _QUOTED.findall(error.message) or [None]
        elif keyword == "unevaluatedProperties":
            # A kind's part that fails leaves its fields "unevaluated" too: name only the unknown ones,
            # and none when the kind itself is missing or unknown (its part cannot be told then).
            known = _fields_of(data.get("kind")) if data.get("kind") in kinds() else None
            names = [n for n in _QUOTED.findall(error.message) if known is not None and n not in known]
        for name in names:
            where = [*path, name] if name else path
            code = _code(keyword, where[len(prefix) :])
            line = line_of(text, where if keyword != "required" else path) if text is not None else None
            if code == "evidence.missing":
                message = _("a required field is missing")
            elif code == "evidence.unknown-field":
                message = _("a record of kind {kind} has no field {name!r}").format(kind=data.get("kind"), name=name)
            else:
                message = _("the record does not fit the evidence schema: {detail}").format(detail=error.message)
            found.setdefault((code, _field(where)), Problem(file, line, _field(where), code, message, _hint(code)))
    return sorted(found.values())


@cache
def _fields_of(kind) -> frozenset[str]:
    """The fields a record of *kind* may have: the envelope's and its part's."""
    known = set(schema()["properties"])
    for branch in schema()["allOf"]:
        if branch["if"]["properties"]["kind"]["const"] == kind:
            name = branch["then"]["$ref"].rsplit("/", 1)[1]
            known.update(schema()["$defs"][name].get("properties", {}))
    return frozenset(known)


def _code(keyword: str, path: list) -> str:
    if keyword == "required":
        return "evidence.missing"
    if keyword in ("unevaluatedProperties", "additionalProperties"):
        return "evidence.unknown-field"
    if path == ["kind"]:
        return "evidence.unknown-kind"
    if keyword == "type":
        return "evidence.type"
    if path and path[-1] in ("time", "started") and keyword == "pattern":
        return "evidence.time"
    return "evidence.value"


def check(data: dict, file: str = "") -> None:
    """Raise :class:`EvidenceError` unless *data* fits the schema."""
    found = problems(data, file)
    if found:
        raise EvidenceError(found)


# --- writing ---------------------------------------------------------------------------------------


def write_bytes(path: Path, data: bytes, mode: int = 0o640) -> Path:
    """Write *data* to *path* atomically: a temporary file beside it (a dot name, which readers skip),
    then a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        os.fchmod(descriptor, mode)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def write_json(path: Path, data, mode: int = 0o640) -> Path:
    """Write *data* to *path* atomically (:func:`write_bytes`), sorted and indented."""
    text = json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    return write_bytes(path, text.encode("utf-8"), mode)


def write(folder: Path, name: str, data: dict, latest: str = "") -> Path:
    """Check *data* against the schema and write it as ``folder/name.json`` (``name-2.json`` ... when
    taken); return the path. Nothing is written when the record does not fit.

    *latest* also writes the record to ``folder/<latest>-latest.json``, replacing the one before.
    """
    path = Path(folder) / f"{name}.json"
    check(data, str(path))
    number = 1
    while path.exists():
        number += 1
        path = Path(folder) / f"{name}-{number}.json"
    write_json(path, data)
    if latest:
        write_json(Path(folder) / f"{latest}{LATEST_SUFFIX}", data)
    return path


# --- reading ---------------------------------------------------------------------------------------


def files(folder: Path) -> Iterator[Path]:
    """The record files under *folder* (any depth), in name order; copies (``*-latest.json``) and
    temporary files are left out."""
    for path in sorted(Path(folder).rglob("*.json")):
        if not path.name.endswith(LATEST_SUFFIX) and not path.name.startswith("."):
            yield path


def load(path: Path) -> tuple[list[tuple[str, dict]], list[Problem]]:
    """The records of one file (an object, or a list of objects) that fit the schema, each with where
    it is (``file``, or ``file[index]`` in a list), and the problems of those that do not."""
    where = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return [], [
            Problem(
                where,
                exc.lineno,
                "",
                "evidence.unreadable",
                _("not a JSON document: {reason}").format(reason=exc.msg),
                _("fix or remove the file"),
            )
        ]
    except (OSError, UnicodeDecodeError) as exc:
        return [], [
            Problem(
                where,
                None,
                "",
                "evidence.unreadable",
                _("the file cannot be read: {reason}").format(reason=getattr(exc, "strerror", None) or exc),
                _("fix or remove the file"),
            )
        ]
    several = isinstance(data, list)
    records, found = [], []
    for index, item in enumerate(data if several else [data]):
        prefix = (index,) if several else ()
        if not isinstance(item, dict):
            found.append(
                Problem(
                    where,
                    line_of(text, prefix),
                    _field(prefix),
                    "evidence.not-object",
                    _("a record must be a JSON object"),
                    _("write one object with kind, time, result and host"),
                )
            )
            continue
        item_problems = problems(item, where, text, prefix)
        if item_problems:
            found.extend(item_problems)
        else:
            records.append((f"{where}[{index}]" if several else where, item))
    return records, found
