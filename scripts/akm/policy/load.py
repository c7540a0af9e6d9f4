"""Read a policy directory into validated records that still know their file and line.

A policy is a directory of YAML files (``policies/access/<inventory>/``); each file holds any of the
sections ``settings``, ``bandwidth``, ``schedules``, ``categories``, ``services``, ``rules`` and
``grants``. List sections from several files are joined in file-name order. List files of domains
(``lists:`` of a category) are read relative to the policy directory, one domain per line, ``#`` starts a
comment.

YAML is read by :mod:`akm.yamlsource` (the inventory's line-tracking loader) and schema errors are
located by :func:`akm.inventory.errors_map.problems_from`, so the policy reports problems exactly like
the inventory does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from akm.errors import Error, Problem
from akm.i18n import _
from akm.inventory.errors_map import problems_from
from akm.policy.model import SECTIONS, SINGLE_SECTIONS, Bandwidth, Settings
from akm.yamlsource import display_path, read_sections, yaml_files


class PolicyError(Error):
    """The policy has problems; ``problems`` lists each with file, line and field."""


@dataclass
class Located:
    """A validated record together with the YAML mapping it came from."""

    record: Any
    item: Any

    @property
    def file(self) -> str:
        return getattr(self.item, "file", "")

    def line(self, *path: Any) -> int | None:
        """Return the line of the field at *path* (keys and list indexes), or of the record itself."""
        node = self.item
        line = getattr(node, "line", None)
        for key in path:
            lines = getattr(node, "lines", None)
            if lines is None:
                break
            if isinstance(key, int):
                if key < len(lines):
                    line = lines[key]
                    node = node[key]
                else:
                    break
            elif key in lines:
                line = lines[key]
                node = node[key]
            else:
                break
        return line


@dataclass
class RawPolicy:
    """Every section of a policy, validated one record at a time, in file order."""

    root: Path
    settings: Located
    bandwidth: Located | None
    sections: dict[str, list[Located]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def __getattr__(self, name: str) -> list[Located]:
        if name in SECTIONS:
            return self.sections.get(name, [])
        raise AttributeError(name)


def policy_files(path: Path) -> list[Path]:
    """Return the YAML files of the policy at *path* (a directory or one file), in name order.

    Raises :class:`PolicyError` if a folder of the policy cannot be read.
    """
    if path.is_file():
        return [path]
    files, problems = yaml_files(path, "policy")
    if problems:
        raise PolicyError(problems)
    return files


def _problem(file: str, line: int | None, field_: str, code: str, message: str, hint: str) -> Problem:
    return Problem(file, line, field_, code, message, hint)


def _hint(field_: str) -> str:
    leaf = field_.rsplit(".", 1)[-1].split("[", 1)[0]
    selectors = _("write all, segment:ID, department:ID, profile:NAME, person:LOGIN or host:HOSTNAME")
    targets = _("write internet, category:ID or service:ID")
    return {
        "who": selectors,
        "restricted": selectors,
        "hosts": _("write host:HOSTNAME or profile:NAME, e.g. profile:file_server"),
        "allow": targets,
        "deny": targets,
        "ports": _("write tcp/445 or udp/6000-6100"),
        "from": _('write the time as "HH:MM" in quotes, e.g. "09:00"'),
        "to": _('write the time as "HH:MM" in quotes, e.g. "18:00"'),
        "lists": _("write a path ending in .txt relative to the policy directory"),
        "id": _("use lowercase Latin letters, digits, '_' or '-', starting with a letter"),
        "expiry_warning_days": _("write a whole number of days, e.g. 14"),
        "proxy_port": _("write a port number, e.g. 3128"),
        "intercept_port": _("write a port number other than the proxy's, e.g. 3129"),
        "log_retention_days": _("write a whole number of days, e.g. 365"),
        "by": _("write the login of the person who approved, as in the inventory's people:"),
    }.get(leaf, "")


def _retired(field_: str) -> str:
    """The hint for a field the policy no longer has, telling what replaced it."""
    if field_.rsplit(".", 1)[-1] in {"approved_by", "approved_on"}:
        return _("approvals are signed now: delete approved_by and approved_on; the approver runs akm policy approve")
    return ""


def _validate(
    model: type,
    item: Any,
    section: str,
    index: int,
    problems: list[Problem],
    file: str = "",
    line: int | None = None,
) -> Located | None:
    if not isinstance(item, dict):
        problems.append(
            _problem(
                getattr(item, "file", file),
                getattr(item, "line", line),
                f"{section}[{index}]",
                "policy.item-not-a-mapping",
                _("each item must be a block of fields, not {value!r}").format(value=item),
                _("write field: value lines under the '- '"),
            )
        )
        return None
    try:
        return Located(model.model_validate(item), item)
    except ValidationError as exc:
        for problem in problems_from(exc, item, section):
            inner = "" if problem.field == section else problem.field
            where = section if section in SINGLE_SECTIONS else f"{section}[{index}]"
            field_ = where + (f".{inner}" if inner and not inner.startswith("[") else inner)
            problem = Problem(
                problem.file,
                problem.line,
                field_,
                problem.code,
                problem.message,
                _retired(field_) or problem.hint or _hint(field_),
                problem.severity,
            )
            problems.append(problem)
        return None


def load_policy(path: Path | str) -> RawPolicy:
    """Read and schema-check the policy at *path*; problems are collected on the result, not raised.

    Raises :class:`PolicyError` only when there is no policy to read at all.
    """
    path = Path(path)
    if not path.exists():
        raise PolicyError(
            [
                _problem(
                    display_path(path),
                    None,
                    "",
                    "policy.not-found",
                    _("the policy does not exist"),
                    _("give the directory of a policy, e.g. policies/access/production"),
                )
            ]
        )
    files = policy_files(path)
    if not files:
        raise PolicyError(
            [
                _problem(
                    display_path(path),
                    None,
                    "",
                    "policy.no-files",
                    _("the policy has no YAML files"),
                    _("add files such as rules.yml and grants.yml"),
                )
            ]
        )
    problems: list[Problem] = []
    lists, singles, found = read_sections(files, tuple(SECTIONS), tuple(SINGLE_SECTIONS), "policy", "rules")
    problems.extend(found)
    sections: dict[str, list[Located]] = {}
    for section, model in SECTIONS.items():
        sections[section] = [
            located
            for index, (item, file, line) in enumerate(lists[section])
            if (located := _validate(model, item, section, index, problems, file, line)) is not None
        ]
    settings = None
    if "settings" in singles:
        settings = _validate(Settings, singles["settings"] or {}, "settings", 0, problems)
    if settings is None:
        settings = Located(Settings(), None)
    bandwidth = None
    if singles.get("bandwidth") is not None:
        bandwidth = _validate(Bandwidth, singles["bandwidth"], "bandwidth", 0, problems)
    root = path if path.is_dir() else path.parent
    return RawPolicy(root=root, settings=settings, bandwidth=bandwidth, sections=sections, problems=problems)
