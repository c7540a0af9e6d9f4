"""Turn pydantic's validation errors into located, translated problems.

Pydantic reports where (``loc``) and what (``type``); the located containers of
:mod:`akm.yamlsource` turn ``loc`` into a line, and the table below turns ``type`` into a sentence a
person can act on, with a hint per field where the form of the value is not obvious.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from akm.errors import Problem
from akm.i18n import _
from akm.yamlsource import LocatedDict, LocatedList


def _field_hints() -> dict[str, str]:
    return {
        "id": _("use lowercase Latin letters, digits, '_' or '-', starting with a letter, e.g. oqish_zali"),
        "hostname": _("use lowercase letters, digits and hyphens, e.g. oqish-zali-01"),
        "inventory_no": _("write it like AKM-0042"),
        "mac": _("write six pairs of hex digits separated by colons, e.g. 52:54:00:12:34:56"),
        "responsible": _("write the person's login as in people:, e.g. d.karimova"),
        "ssh_keys": _("paste the whole public key line, e.g. ssh-ed25519 AAAA... name@host"),
        "signing_key": _(
            "approvals are signed with an ed25519 key: paste its public line (ssh-keygen -y -f KEY), "
            "e.g. ssh-ed25519 AAAA... d.karimova"
        ),
        "path": _("write an absolute path, starting with /"),
        "domain": _("write a DNS name in lowercase, e.g. kutubxona.uz"),
        "name": _("write a short name of letters, digits, '/', '.', '_' or '-', e.g. eth0"),
    }


def locate(item: Any, loc: tuple[Any, ...]) -> tuple[int | None, str]:
    """Follow *loc* into the located containers of *item*; return the line and a field path."""
    node = item
    line = getattr(item, "line", None)
    path = ""
    for key in loc:
        if isinstance(key, str) and key.startswith("["):
            continue
        if isinstance(node, LocatedDict) and key in node:
            line = node.lines.get(key, line)
            node = node[key]
            path += f".{key}" if path else str(key)
        elif isinstance(node, LocatedList) and isinstance(key, int) and key < len(node):
            line = node.lines[key]
            node = node[key]
            path += f"[{key}]"
        else:
            path += f".{key}" if path else str(key)
            break
    return line, path


def _describe(error: dict[str, Any], field: str) -> tuple[str, str]:
    kind = error["type"]
    ctx = error.get("ctx", {})
    value = error.get("input")
    leaf = field.rsplit(".", 1)[-1].split("[", 1)[0]
    hint = _field_hints().get(leaf, "")
    if kind == "missing":
        return _("required field is missing"), _("add the field {field}:").format(field=leaf)
    if kind == "extra_forbidden":
        return _("unknown field {field!r}").format(field=leaf), _("remove it or correct its spelling")
    if kind == "literal_error" and isinstance(value, bool):
        return (
            _("{value!r} is not an allowed value").format(value=value),
            _("YAML reads yes/no/on/off as true/false: put the value in quotes, and use one of: {choices}").format(
                choices=ctx.get("expected", "")
            ),
        )
    if kind == "literal_error":
        return (
            _("{value!r} is not an allowed value").format(value=value),
            _("use one of: {choices}").format(choices=ctx.get("expected", "")),
        )
    if kind == "string_pattern_mismatch":
        return _("{value!r} is not written in the expected form").format(value=value), hint
    if kind == "string_too_short":
        return _("must not be empty"), _("write a value or remove the field")
    if kind == "string_type":
        return (
            _("must be text, not {value!r}").format(value=value),
            _('put the value in quotes, e.g. "{value}"').format(value=value),
        )
    if kind in {"int_type", "int_parsing", "int_from_float"}:
        return _("must be a whole number, not {value!r}").format(value=value), hint
    if kind in {"bool_type", "bool_parsing"}:
        return _("must be true or false, not {value!r}").format(value=value), ""
    if kind.startswith("date"):
        return _("{value!r} is not a date").format(value=value), _("write the date as YYYY-MM-DD, e.g. 2024-03-15")
    if kind in {"list_type", "tuple_type"}:
        return _("must be a list"), _("write each item on its own line starting with '- '")
    if kind in {"dict_type", "model_type", "model_attributes_type"}:
        return _("must be a block of fields, not {value!r}").format(value=value), _("write field: value lines under it")
    if kind == "ip_v4_address":
        return _("{value!r} is not an IPv4 address").format(value=value), _("write it like 198.18.10.25")
    if kind == "ip_v4_network":
        return (
            _("{value!r} is not an IPv4 network").format(value=value),
            _("write the network address and prefix with the host bits zero, e.g. 198.18.10.0/24"),
        )
    if kind in {"greater_than_equal", "less_than_equal", "greater_than", "less_than"}:
        limit = ctx.get("ge", ctx.get("le", ctx.get("gt", ctx.get("lt"))))
        return (
            _("{value!r} is out of range (limit {limit})").format(value=value, limit=limit),
            hint or _("write a value within the limit"),
        )
    return error.get("msg", kind), hint


def problems_from(exc: ValidationError, item: Any, section: str) -> list[Problem]:
    """Return one located problem per error of *exc*, raised while validating *item*."""
    problems = []
    file = getattr(item, "file", "")
    for error in exc.errors(include_url=False):
        line, path = locate(item, error["loc"])
        field = path or section
        message, hint = _describe(error, path)
        problems.append(Problem(file, line, field, f"schema.{error['type']}", message, hint))
    return problems
