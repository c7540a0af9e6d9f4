"""Fixtures of the backup tests: real restic on local directory repositories, small data.

restic takes a plain directory as a repository; the backup machine's REST server (Debian's
restic-rest-server) serves exactly such directories, so what the CLI does is the same either way. What
the server itself guarantees (append-only, private repositories, HTTPS, a full disk there) is tested in
the lab against the real server.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from backup_helpers import run_akm

from akm.backup import jobs
from akm.backup import restic as r


@pytest.fixture
def akm():
    return run_akm


@pytest.fixture
def repo_root(tmp_path) -> Path:
    """The backup machine's directory of repositories, one per client host (``backup_server_root``)."""
    root = tmp_path / "srv"
    root.mkdir()
    return root


@pytest.fixture
def password_file(tmp_path) -> Path:
    path = tmp_path / "password"
    path.write_text(secrets.token_urlsafe(24) + "\n")
    path.chmod(0o600)
    return path


@pytest.fixture
def restic_repo(repo_root, password_file, tmp_path) -> r.Repo:
    """An initialised local repository of host ``ws1`` under :func:`repo_root`."""
    repository = r.Repo(str(repo_root / "ws1"), password_file, tmp_path / "cache")
    assert jobs.init_repository(repository) is True
    return repository
