"""Every message of the backup area has an Uzbek translation, and the CLI speaks Uzbek by default."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

import akm.backup
from akm import i18n

PACKAGE = Path(akm.backup.__file__).parent
PO = PACKAGE.parent / "locale" / "uz" / "backup.po"


def test_every_backup_message_is_translated():
    with PO.open("rb") as handle:
        catalog = read_po(handle, locale="uz")
    translated = {m.id for m in catalog if m.id and m.string}
    used = {entry[2] for entry in extract_from_dir(str(PACKAGE), keywords={"_": None})}
    assert used, "no messages found to check"
    assert sorted(used - translated) == []


def test_problem_is_printed_in_uzbek(tmp_path):
    i18n.setup("uz")
    from akm.backup import fixity

    try:
        fixity.verify(tmp_path)
    except fixity.FixityError as exc:
        assert "manifesti yoʻq" in exc.problems[0].message
    else:
        raise AssertionError("verify without a manifest must fail")
    finally:
        i18n.setup("en")
