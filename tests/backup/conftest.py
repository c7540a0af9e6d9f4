"""Fixtures of the backup tests: a real REST server on a free loopback port, real restic, small data."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from backup_helpers import run_akm, serving

from akm.backup import jobs
from akm.backup import restic as r


@pytest.fixture
def akm():
    return run_akm


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "srv"
    root.mkdir()
    with serving(root) as srv:
        yield srv


@pytest.fixture
def password_file(tmp_path) -> Path:
    path = tmp_path / "password"
    path.write_text(secrets.token_urlsafe(24) + "\n")
    path.chmod(0o600)
    return path


@pytest.fixture
def restic_repo(server, password_file, tmp_path) -> r.Repo:
    """An initialised repository of host ``ws1`` behind the append-only server."""
    repository = r.Repo(server.url + "ws1/", password_file, tmp_path / "cache")
    assert jobs.init_repository(repository) is True
    return repository
