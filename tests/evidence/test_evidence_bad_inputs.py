"""Every case of the evidence corpus reports exactly its problems: code, file, line and field.

A case is a directory under ``bad/`` with ``record.json`` and ``expected.yml``. Several cases are the
shapes the areas wrote before the one format (the rollback's ``at``, the push's own kind): a reader
reports them, it never guesses.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from akm import evidence

HERE = Path(__file__).parent / "bad"
CASES = sorted(p.name for p in HERE.iterdir() if p.is_dir())


def test_corpus_has_a_case_per_kind_of_problem():
    codes = {
        problem["code"]
        for case in CASES
        for problem in yaml.safe_load((HERE / case / "expected.yml").read_text())["problems"]
    }
    assert codes == {
        "evidence.missing",
        "evidence.unknown-field",
        "evidence.unknown-kind",
        "evidence.time",
        "evidence.type",
        "evidence.value",
        "evidence.unreadable",
        "evidence.not-object",
    }


@pytest.mark.parametrize("name", CASES)
def test_bad_input(name):
    case = HERE / name
    expected = yaml.safe_load((case / "expected.yml").read_text())["problems"]
    records, problems = evidence.load(case / "record.json")
    assert [p["code"] for p in expected] != [] and len(records) == int(name == "list-with-a-number")
    assert [(p.code, p.file, p.line, p.field) for p in problems] == [
        (p["code"], str(case / "record.json"), p["line"], p["field"]) for p in expected
    ]
    assert all(p.message and p.hint for p in problems)
