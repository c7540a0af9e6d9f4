"""Bad desired-state files for ``akm net push``: each case in ``bad/<case>/`` with ``expected.yml``.

Every problem is found before any device is contacted, located by file and line, and says what is
wrong and how to fix it. The devices are fixed targets (no simulator is needed: nothing is sent).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from akm.net.common import NetError, Target
from akm.net.push import read_desired

HERE = Path(__file__).parent
CASES = sorted(p.name for p in (HERE / "bad").iterdir() if p.is_dir())
TARGETS = [
    Target("rtr", "mikrotik_routeros", "127.0.0.1", 22, "vault_net_rtr"),
    Target("sw", "cisco_ios", "127.0.0.1", 22, "vault_net_sw"),
]


@pytest.mark.parametrize("case", CASES)
def test_bad_desired_input(case):
    folder = HERE / "bad" / case
    with pytest.raises(NetError) as caught:
        read_desired(folder, TARGETS)
    found = [(p.code, Path(p.file).name if p.file != str(folder) else ".", p.line) for p in caught.value.problems]
    expected = [(e["code"], e["file"], e["line"]) for e in yaml.safe_load((folder / "expected.yml").read_text())]
    assert sorted(found, key=str) == sorted(expected, key=str)
    for problem in caught.value.problems:
        assert problem.message and problem.hint, f"{case}: every problem says what is wrong and how to fix it"
