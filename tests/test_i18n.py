"""Every message the code translates has an Uzbek translation, and Uzbek formatting is Babel's."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from akm import i18n

PACKAGE = Path(i18n.__file__).parent


def _translations() -> dict[str, str]:
    found: dict[str, str] = {}
    for po in (PACKAGE / "locale" / "uz").glob("*.po"):
        with po.open("rb") as handle:
            for message in read_po(handle):
                if message.id:
                    found[message.id] = message.string
    return found


def test_every_message_has_an_uzbek_translation():
    translations = _translations()
    missing = []
    for filename, _lineno, message, _comments, _context in extract_from_dir(
        PACKAGE, method_map=[("**.py", "python")], keywords={"_": None}
    ):
        if isinstance(message, str) and not translations.get(message):
            missing.append(f"{filename}: {message!r}")
    assert not missing, "add these to scripts/akm/locale/uz/<area>.po:\n" + "\n".join(missing)


def test_uzbek_dates_and_numbers():
    i18n.setup("uz")
    assert i18n.format_date(date(2026, 11, 25)) == "25-noyabr, 2026"
    assert i18n.format_number(1234567) == "1\u00a0234\u00a0567"
    i18n.setup("en")
    assert i18n.format_date(date(2026, 11, 25)) == "November 25, 2026"
