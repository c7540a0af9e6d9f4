"""The bad-input corpus: each ``bad/NN-name.yml`` is a whole policy with one mistake, and
``bad/NN-name.expected`` lists exactly the problems it must produce (severity, code, file, line, field and
the English message).

Every problem must also say what is wrong and how to fix it, and no case may end in a traceback.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from akm.policy.compile import compile_policy
from akm.policy.load import PolicyError, load_policy

from .conftest import AT, ROOT

BAD = Path(__file__).parent / "bad"
CASES = sorted(BAD.glob("*.yml"))


def test_every_case_says_what_it_must_report():
    assert [case.name for case in CASES if not case.with_suffix(".expected").exists()] == []


@pytest.mark.parametrize("case", CASES, ids=[case.stem for case in CASES])
def test_bad_input_gives_its_exact_problems(case, inventory):
    try:
        problems = compile_policy(load_policy(case.relative_to(ROOT)), inventory, AT).problems
    except PolicyError as exc:
        problems = exc.problems
    expected = yaml.safe_load(case.with_suffix(".expected").read_text()) or []
    actual = [
        {
            "severity": p.severity,
            "code": p.code,
            "file": p.file,
            "line": p.line,
            "field": p.field,
            "message": p.message,
        }
        for p in problems
    ]
    assert actual == expected
    assert any(p.severity == "error" for p in problems) or any(
        p.code in {"policy.redundant-rule", "policy.grant-expired"} for p in problems
    )
    for problem in problems:
        assert problem.message and problem.hint, problem
        assert problem.render().startswith(problem.file)
