"""The bad-input corpus: each ``bad/NN-name.yml`` is a whole policy with one mistake, and
``bad/NN-name.expected`` lists exactly the problems it must produce (severity, code, file, line, field and
the English message).

Every problem must also say what is wrong and how to fix it, and no case may end in a traceback.

The cases are checked in a copy whose ``test-sign`` placeholders are real signatures made with this
run's keys (``signing.py``), against the fixture inventory holding those keys; problems are reported
with the corpus's own paths.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pytest
import yaml

from akm.policy.cli import main, register
from akm.policy.compile import compile_policy
from akm.policy.load import PolicyError, load_policy

from .conftest import AT, ROOT

BAD = Path(__file__).parent / "bad"
CASES = sorted(BAD.glob("*.yml"))


def test_every_case_says_what_it_must_report():
    assert [case.name for case in CASES if not case.with_suffix(".expected").exists()] == []


@pytest.fixture(scope="session")
def signed_corpus(tmp_path_factory, signing) -> Path:
    copy = tmp_path_factory.mktemp("corpus").resolve() / "bad"
    shutil.copytree(BAD, copy)
    for case in copy.glob("*.yml"):
        signing.resolve(case)
    return copy


def _as_written(text: str, signing, signed_corpus: Path) -> str:
    """*text* with the copy's paths as the corpus's and this run's key fingerprints as ``<key of LOGIN>``."""
    text = text.replace(str(signed_corpus), str(BAD.relative_to(ROOT)))
    for fingerprint, name in signing.names().items():
        text = text.replace(fingerprint, name)
    return text


@pytest.mark.parametrize("case", CASES, ids=[case.stem for case in CASES])
def test_bad_input_gives_its_exact_problems(case, signing, signed_corpus):
    try:
        problems = compile_policy(load_policy(signed_corpus / case.name), signing.inventory, AT).problems
    except PolicyError as exc:
        problems = exc.problems
    expected = yaml.safe_load(case.with_suffix(".expected").read_text()) or []
    actual = [
        {
            "severity": p.severity,
            "code": p.code,
            "file": _as_written(p.file, signing, signed_corpus),
            "line": p.line,
            "field": p.field,
            "message": _as_written(p.message, signing, signed_corpus),
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


QUERIES = sorted((BAD / "query").glob("*.args"))
QUERY = ["query", "-i", "tests/policy/inventory", "-p", "tests/policy/policy", "--at", "2026-11-25T12:00"]
"""``bad/query/NN-name.args`` are the arguments (one a line) after these; the test policy requires logins."""


def test_every_query_case_says_what_it_must_report():
    assert [case.name for case in QUERIES if not case.with_suffix(".expected").exists()] == []


@pytest.mark.parametrize("case", QUERIES, ids=[case.stem for case in QUERIES])
def test_bad_query_gives_its_exact_problem(case, capsys):
    """``akm policy query`` refuses bad arguments (a login the proxy would never see, a name the inventory
    does not know) with one problem that says what to do, exit code 2, nothing else printed."""
    arguments = [*QUERY, *case.read_text().splitlines()]
    parser = argparse.ArgumentParser(prog="akm")
    register(parser.add_subparsers(dest="area", required=True))
    args = parser.parse_args(["policy", *arguments])
    with pytest.raises(PolicyError) as caught:
        args.handler(args)
    actual = [
        {"code": p.code, "file": p.file, "line": p.line, "field": p.field, "message": p.message}
        for p in caught.value.problems
    ]
    assert actual == (yaml.safe_load(case.with_suffix(".expected").read_text()) or [])
    assert all(p.hint for p in caught.value.problems)
    capsys.readouterr()
    assert main(["--lang", "en", "policy", *arguments]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == "".join(p.render() + "\n" for p in caught.value.problems)
