"""Every case of the reports' bad-input corpus reports exactly its expected problems and never crashes.

A case is a directory under ``bad/`` with one input file — ``access.log`` (Squid log), ``evidence.json``,
``rules.yml``, ``controls.yml``, ``procedures.yml``, ``register.csv``, ``policy-view.yml`` or
``acknowledgements.yml`` — and ``expected.yml``: for a log, the rejected lines by reason and the numbers
of the first (up to three) of each, the requests counted and, where the case is about what is kept, the
sites, logins or per-host (requests, bytes) it must give; for the others each problem's code, file, line
and field (a register of signed "Tanishdim" sheets is checked against the repository's rules documents
and the lab's staff, on 2026-11-25; the controls of a valid rules document, ``controls.yml``, against
the repository's roles, duties and procedures and the lab's access policy, as ``akm policy check``
does; a list of procedures against the repository).
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from akm import procedures
from akm.policy.compile import compile_policy
from akm.policy.load import load_policy
from akm.report import digitised, evidence, rules, squidlog
from akm.report.build import ReportError, load_policy_view
from akm.yamlsource import display_path

HERE = Path(__file__).parent / "bad"
REPO = HERE.parents[2]
CASES = sorted(p.name for p in HERE.iterdir() if p.is_dir())


def _control_problems(path: Path, inventory) -> list:
    document, problems = rules.load(path)
    assert problems == []
    at = datetime(2026, 11, 25, 12, 0, tzinfo=ZoneInfo(inventory.centre.timezone))
    policy = compile_policy(load_policy(REPO / "policies" / "access" / "lab"), inventory, at)
    known, problems = rules.controls(REPO, "lab", policy)
    assert problems == []
    return known.problems([document])


def _problems(case: Path, inventory) -> list:
    if (case / "controls.yml").exists():
        return _control_problems(case / "controls.yml", inventory)
    if (case / "procedures.yml").exists():
        with pytest.raises(procedures.ProceduresError) as caught:
            procedures.load(case / "procedures.yml", REPO)
        return caught.value.problems
    if (case / "evidence.json").exists():
        records, problems = evidence.read(case)
        assert records == []
        return problems
    if (case / "rules.yml").exists():
        document, problems = rules.load(case / "rules.yml")
        assert document is None
        return problems
    if (case / "register.csv").exists():
        items, problems = digitised.read_register(case / "register.csv")
        assert items == []
        return problems
    with pytest.raises(ReportError) as caught:
        load_policy_view(case / "policy-view.yml", "Asia/Tashkent")
    return caught.value.problems


@pytest.mark.parametrize("name", CASES)
def test_bad_input(name, inventory):
    case = HERE / name
    expected = yaml.safe_load((case / "expected.yml").read_text())
    if (case / "acknowledgements.yml").exists():
        register = case / "acknowledgements.yml"
        documents = rules.load_all(REPO / "policies" / "rules")
        records, problems = rules.load_acknowledgements(register, documents, inventory, date(2026, 11, 25))
        assert len(records) == 1
        assert [(p.code, p.file, p.line, p.field) for p in problems] == [
            (e["code"], display_path(register), e["line"], e["field"]) for e in expected["problems"]
        ]
        assert all(p.message and (p.hint or p.code.startswith("schema.")) for p in problems)
    elif (case / "access.log").exists():
        usage = squidlog.analyse(case / "access.log", squidlog.Attribution(), threads=1)
        assert usage.malformed == expected["malformed"]
        assert {r: [s.line for s in found] for r, found in usage.samples.items()} == expected.get("lines", {})
        assert usage.requests == expected.get("requests", 0)
        if "sites" in expected:
            assert sorted(row["domain"] for row in usage.top_sites[("all", "all")]) == sorted(expected["sites"])
        if "logins" in expected:
            assert sorted(row["login"] for row in usage.by_person) == sorted(expected["logins"])
        if "hosts" in expected:
            assert {row["ip"]: [row["requests"], row["bytes"]] for row in usage.by_host} == expected["hosts"]
    else:
        problems = _problems(case, inventory)
        found = [(p.code, Path(p.file).name, p.line, p.field) for p in problems]
        assert found == [(e["code"], e["file"], e["line"], e["field"]) for e in expected["problems"]]
        assert all(p.message and (p.hint or p.code.startswith("schema.")) for p in problems)
