"""Turn pydantic's validation errors into located, translated problems.

Pydantic reports where (``loc``) and what (``type``); the located containers of
:mod:`akm.yamlsource` turn ``loc`` into a line, and the table below turns ``type`` into a sentence a
person can act on, with a hint per field where the form of the value is not obvious.
"""

from __future__ import annotations

from datetime import date
from difflib import get_close_matches
from typing import Any
from zoneinfo import available_timezones

from pydantic import ValidationError

from akm.errors import Problem
from akm.i18n import _
from akm.names import MAX_LABEL, explain_foreign, explain_long
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
        "keys": _(
            "list the host's public key lines as akm inventory hostkeys --write records them, e.g. ssh-ed25519 AAAA..."
        ),
        "host": _("write the hostname of an asset, e.g. srv"),
        "server": _("write the hostname of an asset, e.g. srv"),
        "share": _(
            "write the share's name as Windows shows it: letters, digits, '_', '.', '-' and spaces, "
            "e.g. buxgalteriya (a hidden share ends with $)"
        ),
        "path": _("write an absolute path, starting with /"),
        "domain": _("write a DNS name in lowercase, e.g. kutubxona.uz"),
        "name": _("write a short name of letters, digits, '/', '.', '_' or '-', e.g. eth0"),
    }


def locate(item: Any, loc: tuple[Any, ...]) -> tuple[int | None, str]:
    """Follow *loc* into the located containers of *item*; return the line and a field path."""
    line, path, _written = _follow(item, loc)
    return line, path


def _follow(item: Any, loc: tuple[Any, ...]) -> tuple[int | None, str, str | None]:
    """:func:`locate`, and the text written in the file for the value found, if YAML made something else
    of it (``no`` for False)."""
    node = item
    line = getattr(item, "line", None)
    path = ""
    written = None
    for key in loc:
        if isinstance(key, str) and key.startswith("["):
            continue
        if isinstance(node, LocatedDict) and key in node:
            line = node.lines.get(key, line)
            written = node.written.get(key) if node.written else None
            node = node[key]
            path += f".{key}" if path else str(key)
        elif isinstance(node, LocatedList) and isinstance(key, int) and key < len(node):
            line = node.lines[key]
            written = node.written.get(key) if node.written else None
            node = node[key]
            path += f"[{key}]"
        else:
            path += f".{key}" if path else str(key)
            break
    return line, path, written


def _what_yaml_made(value: Any) -> str:
    """Say what YAML read a value as, in words: the boolean false, the number 83, no value."""
    if isinstance(value, bool):
        return _("the boolean {value}").format(value=str(value).lower())
    if value is None:
        return _("no value (null)")
    if isinstance(value, int | float):
        return _("the number {value}").format(value=value)
    if isinstance(value, date):
        return _("the date {value}").format(value=value.isoformat())
    return repr(value)


def _as_written(value: Any, written: str | None) -> str:
    """The value as it stands in the file: the text recorded by the reader, else YAML's own form."""
    if written is not None:
        return written
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _misread(value: Any, written: str | None) -> tuple[str, str] | None:
    """The message and hint for a value YAML read as something else than the text that was meant."""
    if value is None and not written:
        return _("the field has no value"), _("write a value after the colon, or remove the line")
    if isinstance(value, bool | int | float | date) or value is None:
        text = _as_written(value, written)
        return (
            _("{written} is read by YAML 1.1 as {what}, not as text").format(written=text, what=_what_yaml_made(value)),
            _('write it in quotes: "{written}"').format(written=text),
        )
    return None


def _describe(error: dict[str, Any], field: str, written: str | None) -> tuple[str, str, str]:
    """The code (pydantic's error type, or a sharper one), the message and the hint of one error."""
    kind = error["type"]
    value = error.get("input")
    special = _special(kind, error.get("ctx", {}), value, field, written)
    if special is not None:
        return special
    message, hint = _describe_type(error, field)
    return kind, message, hint


def _special(kind: str, ctx: dict, value: Any, field: str, written: str | None) -> tuple[str, str, str] | None:
    """The errors that say what was written and what YAML or the field made of it."""
    leaf = field.rsplit(".", 1)[-1].split("[", 1)[0]
    if kind in {"string_type", "literal_error"} and not isinstance(value, str):
        misread = _misread(value, written)
        if misread is not None:
            message, hint = misread
            if kind == "literal_error":
                hint = _("use one of: {choices}").format(choices=ctx.get("expected", ""))
            return kind, message, hint
    if kind == "string_pattern_mismatch" and isinstance(value, str):
        foreign = explain_foreign(value)
        if foreign is not None:
            return ("non_latin", *foreign)
        if leaf == "hostname" and len(value) > MAX_LABEL:
            return (
                "dns_name_too_long",
                _("the host name {value!r} is {length} characters long; a DNS name allows at most 63").format(
                    value=value, length=len(value)
                ),
                _("shorten it to 63 characters or fewer"),
            )
    if kind == "address_type":
        example = "198.18.10.0/24" if leaf == "subnet" else "198.18.10.25"
        return (
            kind,
            _("{written} is read by YAML 1.1 as {what}, not as an address").format(
                written=_as_written(value, written), what=_what_yaml_made(value)
            ),
            _("write the address with its dots, e.g. {example}").format(example=example),
        )
    if kind in {"mac_broadcast", "mac_multicast"}:
        if kind == "mac_broadcast":
            message = _("{value} is the broadcast address, not the address of one network card")
        else:
            message = _(
                "{value} is a multicast address (its first byte {first} is odd), not the address of one network card"
            )
        return (
            kind,
            message.format(value=value, first=ctx.get("first", "")),
            _("copy the address from the card's label or from 'ip link'; a card's own address has an even first byte"),
        )
    if kind == "dns_name_too_long":
        return kind, explain_long(str(value)) or "", _("shorten it")
    if kind == "time_zone":
        message = _("{value!r} is not a time zone").format(value=value)
        suggestion = get_close_matches(str(value), sorted(available_timezones()), n=1)
        if suggestion:
            message += " " + _("(did you mean {zone}?)").format(zone=suggestion[0])
        zone = suggestion[0] if suggestion else "Asia/Tashkent"
        return kind, message, _("write a name of the time zone database, e.g. {zone}").format(zone=zone)
    return None


def _describe_type(error: dict[str, Any], field: str) -> tuple[str, str]:
    kind = error["type"]
    ctx = error.get("ctx", {})
    value = error.get("input")
    leaf = field.rsplit(".", 1)[-1].split("[", 1)[0]
    hint = _field_hints().get(leaf, "")
    if kind == "missing":
        return _("required field is missing"), _("add the field {field}:").format(field=leaf)
    if kind == "extra_forbidden":
        return _("unknown field {field!r}").format(field=leaf), _("remove it or correct its spelling")
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
        return _("must be text, not {value!r}").format(value=value), _("write text after the colon")
    if kind in {"int_type", "int_parsing", "int_from_float"}:
        return _("must be a whole number, not {value!r}").format(value=value), hint
    if kind in {"bool_type", "bool_parsing"}:
        return _("must be true or false, not {value!r}").format(value=value), ""
    if kind.startswith("date"):
        return _("{value!r} is not a date").format(value=value), _("write the date as YYYY-MM-DD, e.g. 2024-03-15")
    if kind == "too_short":
        return _("the list is empty"), hint or _("write at least one item, or remove the field")
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
    return problems_of(exc.errors(include_url=False), item, section)


def problems_of(errors: list[dict[str, Any]], item: Any, section: str) -> list[Problem]:
    """Return one located problem per error (as pydantic lists them) found in *item*."""
    problems = []
    file = getattr(item, "file", "")
    for error in errors:
        line, path, written = _follow(item, error["loc"])
        field = path or section
        kind, message, hint = _describe(error, path, written)
        problems.append(Problem(file, line, field, f"schema.{kind}", message, hint))
    return problems
