"""Shared test set-up: messages in English unless a test asks for Uzbek, and the repository root."""

from __future__ import annotations

from pathlib import Path

import pytest

from akm import i18n

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def english_messages():
    """Run each test with English messages; tests of Uzbek output switch themselves."""
    i18n.setup("en")
    yield
    i18n.setup("en")


@pytest.fixture
def repo() -> Path:
    """The repository's root directory."""
    return REPO
