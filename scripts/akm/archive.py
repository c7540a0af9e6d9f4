"""Unpacking a tar archive of our own git history (``git archive``) without trusting its member names."""

from __future__ import annotations

import tarfile
from pathlib import Path


def extract_files(tar: tarfile.TarFile, root: Path) -> None:
    """Write the archive's regular files under *root*, nothing else: no link, no device, no path that
    leaves *root*. ``extractall(filter="data")`` does the same from Python 3.11.4 on; Debian 12's Python
    3.11.2, which a control node and the management host run, lacks it."""
    root = root.resolve()
    for member in tar.getmembers():
        target = (root / member.name).resolve()
        if member.isfile() and target.is_relative_to(root):
            target.parent.mkdir(parents=True, exist_ok=True)
            with tar.extractfile(member) as source:
                target.write_bytes(source.read())
