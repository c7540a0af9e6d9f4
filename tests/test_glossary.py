"""docs/glossary.md is kept: no variant it lists as not to be used appears in the Uzbek catalogs or the
docs, every preferred Uzbek term is used, and oʻ/gʻ are written with ʻ (U+02BB)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from akm import i18n

REPO = Path(__file__).resolve().parents[1]
GLOSSARY = REPO / "docs" / "glossary.md"
NAME_MARKS = r"[.\-/@:<>`]"
"""A word joined to these is part of a name, a path, an option or a placeholder, not Uzbek text."""


def _terms() -> list[tuple[str, str, list[str]]]:
    """(English, Uzbek, variants not to be used) of every row of the table of terms."""
    table = GLOSSARY.read_text(encoding="utf-8").split("## Atamalar / Terms", 1)[1]
    rows = []
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0] not in ("English", "---"):
            rows.append((cells[0], cells[1], [v.strip() for v in cells[2].split(",") if v.strip()]))
    return rows


def _uzbek_texts() -> list[tuple[str, str]]:
    """(where, text) of every Uzbek translation, and of every doc without its code."""
    found = []
    for po in sorted((Path(i18n.__file__).parent / "locale" / "uz").glob("*.po")):
        with po.open("rb") as handle:
            for message in read_po(handle):
                if message.id:
                    strings = message.string if isinstance(message.string, tuple) else (message.string,)
                    text = re.sub(r"\{[^}]*\}", " ", " ".join(strings))
                    found.append((f"{po.name}: {message.id if isinstance(message.id, str) else message.id[0]}", text))
    for doc in [*sorted((REPO / "docs").glob("*.md")), REPO / "README.md"]:
        if doc == GLOSSARY:
            continue
        text = re.sub(r"```.*?```", " ", doc.read_text(encoding="utf-8"), flags=re.DOTALL)
        found.append((doc.name, re.sub(r"`[^`\n]*`", " ", text)))
    return found


def _pattern(variant: str) -> re.Pattern:
    stem = variant.endswith("…")
    body = re.escape(variant.rstrip("…")) + (r"\w*" if stem else "")
    return re.compile(rf"(?<!\w)(?<!{NAME_MARKS}){body}(?!\w)(?!{NAME_MARKS})", re.IGNORECASE)


def test_the_glossary_has_its_table():
    terms = _terms()
    assert len(terms) >= 30
    assert ("grant", "ruxsatnoma", ["ruxsati…", "ruxsatlar…", "ruxsatni", "ruxsatga"]) in terms


@pytest.mark.parametrize("english, uzbek, avoid", _terms(), ids=[t[0] for t in _terms()])
def test_no_variant_the_glossary_rejects_is_used(english, uzbek, avoid):
    texts = _uzbek_texts()
    found = []
    for variant in avoid:
        pattern = _pattern(variant)
        for where, text in texts:
            for match in pattern.finditer(text):
                found.append(f"{where}: «{match.group(0)}» (write «{uzbek}»)")
    assert not found, f"{english}: " + "; ".join(found)


def test_every_preferred_term_is_used():
    text = " ".join(t for _where, t in _uzbek_texts()).lower()
    unused = []
    for english, uzbek, _avoid in _terms():
        words = [w for w in re.split(r"[ /]+", uzbek.lower()) if not re.fullmatch(r"[a-z]", w)]
        if not all(re.search(rf"(?<!\w){re.escape(w[: max(4, len(w) - 2)])}", text) for w in words):
            unused.append(f"{english}: {uzbek}")
    assert not unused


def test_o_and_g_are_written_with_the_turned_comma():
    wrong = re.compile(r"[OoGg][‘'’](?=[a-zʻ])")
    found = [
        f"{where}: {match.group(0)}"
        for where, text in _uzbek_texts()
        for match in wrong.finditer(text)
        if not where.endswith(".md") or "‘" in match.group(0)
    ]
    assert not found
