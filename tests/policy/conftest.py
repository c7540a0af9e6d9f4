"""Shared fixtures of the policy tests: the small fixture inventory and the test policy, compiled at a
fixed moment (never the wall clock)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from akm import i18n

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
INVENTORY = HERE / "inventory"
POLICY = HERE / "policy"
AT = datetime(2026, 11, 25, 12, 0, tzinfo=ZoneInfo("Asia/Tashkent"))


@pytest.fixture(autouse=True)
def _english_and_root(monkeypatch):
    """Messages in English and paths relative to the repository, as the CLI shows them."""
    monkeypatch.chdir(ROOT)
    i18n.setup("en")


@pytest.fixture(scope="session")
def inventory():
    from akm.inventory import load_inventory

    return load_inventory(INVENTORY, today=AT.date())


@pytest.fixture
def compiled(inventory):
    from akm.policy.compile import compile_policy
    from akm.policy.load import load_policy

    return compile_policy(load_policy(POLICY.relative_to(ROOT)), inventory, AT)


@pytest.fixture(scope="session")
def signing(tmp_path_factory):
    """Keys made for this run and a copy of the fixture inventory whose approvers hold them."""
    from .signing import Signing

    return Signing(tmp_path_factory.mktemp("signing").resolve(), INVENTORY, AT.date())
