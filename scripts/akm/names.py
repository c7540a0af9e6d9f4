"""What is wrong with a name that must be written in Latin letters: a look-alike letter, a long DNS label.

Host names, logins, ids and domains are plain ASCII. A Cyrillic ``с`` or ``о`` typed on an Uzbek or
Russian keyboard looks the same as the Latin one and makes a name that nothing else matches;
:func:`foreign_letter` finds the first such character and says which Latin letter it imitates, so a
message can name it. :func:`long_label` finds a part of a DNS name longer than DNS allows.
"""

from __future__ import annotations

import unicodedata
from typing import NamedTuple

from akm.i18n import _

# Letters of other scripts that are drawn like a Latin letter (Unicode's confusables, the common ones).
_LOOK_ALIKES = {
    **dict(zip("аеорсхуіјѕԁһԛԝк", "aeopcxyijsdhqwk", strict=True)),
    **dict(zip("АВЕКМНОРСТХУІЈЅ", "ABEKMHOPCTXYIJS", strict=True)),
    **dict(zip("αβεικνορτυχ", "abeiknoptux", strict=True)),
    **dict(zip("ΑΒΕΖΗΙΚΜΝΟΡΤΥΧ", "ABEZHIKMNOPTYX", strict=True)),
}
MAX_LABEL = 63
MAX_NAME = 253


class ForeignLetter(NamedTuple):
    """A character outside ASCII in a name: where it is (from 1), its Unicode name, what it imitates."""

    char: str
    position: int
    name: str
    latin: str | None
    fixed: str | None


def latin_for(char: str) -> str | None:
    """The ASCII letter *char* is drawn like (Cyrillic ``с`` → ``c``, ``é`` → ``e``), or ``None``."""
    if char in _LOOK_ALIKES:
        return _LOOK_ALIKES[char]
    base = unicodedata.normalize("NFKD", char)[:1]
    return base if base.isascii() and base.isalnum() else None


def foreign_letter(text: str) -> ForeignLetter | None:
    """The first character of *text* outside ASCII, or ``None`` if there is none.

    ``fixed`` is *text* with every such character replaced by its Latin look-alike, when each has one.
    """
    if text.isascii():
        return None
    position, char = next((k, c) for k, c in enumerate(text, 1) if not c.isascii())
    replaced = [c if c.isascii() else latin_for(c) for c in text]
    fixed = "".join(replaced) if all(replaced) else None  # type: ignore[arg-type]
    return ForeignLetter(char, position, unicodedata.name(char, f"U+{ord(char):04X}"), latin_for(char), fixed)


def long_label(name: str) -> str | None:
    """The first dot-separated part of *name* longer than a DNS label may be (63), or ``None``."""
    return next((label for label in name.split(".") if len(label) > MAX_LABEL), None)


def explain_foreign(value: str) -> tuple[str, str] | None:
    """Message and hint for a name with a character outside ASCII (which one, where, what it imitates),
    or ``None`` if the name is ASCII."""
    found = foreign_letter(value)
    if found is None:
        return None
    if found.latin is None:
        message = _("{value!r} has the character {char!r} ({name}) at position {position}, which is not a Latin letter")
    else:
        message = _(
            "{value!r} has the character {char!r} ({name}) at position {position}; it looks like the Latin "
            "letter {latin!r} but is not"
        )
    message = message.format(value=value, char=found.char, name=found.name, position=found.position, latin=found.latin)
    if found.fixed is not None:
        return message, _("retype it with Latin letters: {fixed}").format(fixed=found.fixed)
    return message, _("use only Latin letters, digits and the signs the field allows")


def explain_long(value: str) -> str | None:
    """The message for a DNS name with a label longer than 63 characters or more than 253 in all."""
    label = long_label(value)
    if label is None and len(value) <= MAX_NAME:
        return None
    return _("{label!r} in {value!r} is longer than a DNS name allows (63 characters a label, 253 in all)").format(
        label=label or value, value=value
    )
