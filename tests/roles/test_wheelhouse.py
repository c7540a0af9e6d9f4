"""The management role's wheelhouse: only exactly pinned runtime distributions, at the pinned versions."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from akm.wheelhouse import WheelhouseError, pins, requirements

REPO = Path(__file__).resolve().parents[2]


def test_the_role_installs_the_versions_pinned_in_pyproject():
    pyproject = (REPO / "pyproject.toml").read_text()
    names = yaml.safe_load((REPO / "roles/management/defaults/main.yml").read_text())["management_python_packages"]
    wanted = requirements(pyproject, names, "pyproject.toml")
    assert len(wanted) == len(names)
    assert "netmiko==" + pins(pyproject)["netmiko"] in wanted
    assert "python-docx==" + pins(pyproject)["python-docx"] in wanted
    # The drift facts (pyinfra) and the policy push (mitogen, ansible.cfg's strategy) run on the host; the
    # collection bundle and the test tools do not.
    assert {"pyinfra==" + pins(pyproject)["pyinfra"], "mitogen==" + pins(pyproject)["mitogen"]} <= set(wanted)
    assert not any(w.startswith(("ansible==", "asyncssh==", "pytest==")) for w in wanted)


def test_names_are_matched_as_pip_does():
    text = '[project]\ndependencies = ["PyYAML==6.0.4", "python_docx==1.2.0", "loose>=1"]\n'
    assert pins(text) == {"pyyaml": "6.0.4", "python-docx": "1.2.0"}
    assert requirements(text, ["pyyaml", "Python.Docx"], "x") == ["python-docx==1.2.0", "pyyaml==6.0.4"]


def test_a_name_that_is_not_pinned_is_refused_with_its_place():
    text = '[project]\ndependencies = ["loose>=1", "pyyaml==6.0.4"]\n'
    with pytest.raises(WheelhouseError) as caught:
        requirements(text, ["loose", "missing", "pyyaml"], "abc:pyproject.toml")
    (problem,) = caught.value.problems
    assert problem.code == "wheelhouse.not-pinned"
    assert problem.file == "abc:pyproject.toml"
    assert problem.field == "management_python_packages"
    assert "loose, missing" in problem.message
