"""Translations of everything a user reads, and Uzbek formatting of dates and numbers.

Messages are written in English in the code and translated through gettext catalogs kept as ``.po``
files under ``locale/<lang>/`` (one file per area, so parallel work does not collide). The catalogs
are compiled with Babel into one ``akm.mo`` on first use, or by ``make``. The language comes from
``--lang`` or ``AKM_LANG``; Uzbek (Latin) is the default.

The compiled catalog is also made the process's default gettext domain, so that the standard library's
``argparse`` prints its usage errors in the same language.
"""

from __future__ import annotations

import gettext
import os
from datetime import date, datetime
from pathlib import Path

from babel import dates as babel_dates
from babel import numbers as babel_numbers
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

DOMAIN = "akm"
LANGUAGES = ("uz", "en")
DEFAULT_LANGUAGE = "uz"
LOCALE_DIR = Path(__file__).parent / "locale"

_translation: gettext.NullTranslations = gettext.NullTranslations()
_language = "en"


def _po_files(lang: str) -> list[Path]:
    return sorted((LOCALE_DIR / lang).glob("*.po"))


def compile_catalog(lang: str, target_dir: Path = LOCALE_DIR) -> Path:
    """Merge every ``.po`` file of *lang* into one ``akm.mo`` and return its path.

    A message defined in two files with different translations is a mistake in the catalogs and
    raises ``ValueError`` naming both.
    """
    merged = Catalog(locale=lang, domain=DOMAIN)
    origin: dict[str, Path] = {}
    for po_path in _po_files(lang):
        with po_path.open("rb") as handle:
            catalog = read_po(handle, locale=lang)
        for message in catalog:
            if not message.id:
                continue
            known = merged.get(message.id)
            if known is not None and known.string != message.string:
                raise ValueError(f"{po_path}: {message.id!r} is translated differently in {origin[message.id]}")
            merged.add(message.id, message.string)
            origin[message.id] = po_path
    mo_path = target_dir / lang / "LC_MESSAGES" / f"{DOMAIN}.mo"
    mo_path.parent.mkdir(parents=True, exist_ok=True)
    with mo_path.open("wb") as handle:
        write_mo(handle, merged)
    return mo_path


def _fresh_catalog_dir(lang: str) -> Path:
    sources = _po_files(lang)
    for base in (LOCALE_DIR, Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "akm" / "locale"):
        mo_path = base / lang / "LC_MESSAGES" / f"{DOMAIN}.mo"
        newest = max((p.stat().st_mtime for p in sources), default=0.0)
        if mo_path.exists() and mo_path.stat().st_mtime >= newest:
            return base
        try:
            compile_catalog(lang, base)
        except OSError:
            continue
        return base
    raise OSError(f"cannot write the compiled catalog for {lang!r}")


def setup(language: str | None = None) -> str:
    """Select the language of messages for this process and return it.

    Raises ``ValueError`` for a language that has no catalog.
    """
    global _translation, _language
    language = language or os.environ.get("AKM_LANG") or DEFAULT_LANGUAGE
    if language not in LANGUAGES:
        raise ValueError(language)
    if language == "en":
        _translation = gettext.NullTranslations()
        gettext.textdomain("messages")
    else:
        localedir = _fresh_catalog_dir(language)
        _translation = gettext.translation(DOMAIN, localedir, languages=[language])
        gettext.bindtextdomain(DOMAIN, localedir)
        os.environ["LANGUAGE"] = language
        gettext.textdomain(DOMAIN)
    _language = language
    return language


def language() -> str:
    """Return the language selected by :func:`setup`."""
    return _language


def _(message: str) -> str:
    """Translate *message* into the selected language."""
    return _translation.gettext(message)


def ngettext(singular: str, plural: str, count: int) -> str:
    """Translate a message whose form depends on *count*."""
    return _translation.ngettext(singular, plural, count)


def babel_locale() -> str:
    """Return the Babel locale of the selected language (``uz`` means Uzbek in Latin script)."""
    return "uz_Latn" if _language == "uz" else "en"


def format_date(value: date | datetime, style: str = "long") -> str:
    """Format a date the way the selected language writes it (``25-noyabr, 2026`` in Uzbek)."""
    return babel_dates.format_date(value, format=style, locale=babel_locale())


def format_number(value: float | int) -> str:
    """Format a number with the selected language's separators (``1 234 567`` in Uzbek)."""
    return babel_numbers.format_decimal(value, locale=babel_locale())
