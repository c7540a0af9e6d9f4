"""The lab tests' fixtures live in ``tests/conftest.py`` so that lab tests of every area share them
(``running_lab``, ``in_lab``, ``lab_plan``); ``lab_test_enabled`` is re-exported for the teardown test."""

from __future__ import annotations

from tests.conftest import lab_test_enabled

__all__ = ["lab_test_enabled"]
