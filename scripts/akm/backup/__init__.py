"""Backups, restores and fixity of the archive (issue 7).

* :mod:`akm.backup.fixity` — BagIt-compatible SHA-256 manifests of preservation masters and scans, and
  their verification (new / changed / missing / unchanged told apart).
* :mod:`akm.backup.restic` — running restic and turning its failures into problems a person can act on.
* :mod:`akm.backup.jobs` — backup runs, tiered integrity checks, restores and the server-side retention,
  each leaving a JSON evidence record.
* :mod:`akm.backup.cli` — ``akm fixity ...`` and ``akm backup ...``.
"""

from akm.errors import Error


class BackupError(Error):
    """A backup, restore, check or fixity operation that cannot go on; its problems say why."""
