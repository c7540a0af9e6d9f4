"""Build the files of every platform and write them into one output directory, all or nothing.

The files are made in memory first; only a policy without errors is written. The new tree is written
beside the target and renamed into place, so a reader sees either the old build or the new one. A
``MANIFEST`` lists every file with its SHA-256 (no timestamps: two builds of the same policy at the same
``--at`` are byte-identical).
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path

from akm.i18n import _
from akm.policy.compile import CompiledPolicy
from akm.policy.generators import GENERATORS, Options
from akm.policy.load import PolicyError

MARKER = "MANIFEST"


def render(
    policy: CompiledPolicy, platforms: list[str] | None = None, options: Options | None = None
) -> dict[str, str]:
    """Return ``{relative path: content}`` of the chosen platforms (all when *platforms* is empty)."""
    files: dict[str, str] = {}
    for name in platforms or sorted(GENERATORS):
        files.update(GENERATORS[name](options).generate(policy))
    manifest = "".join(f"{hashlib.sha256(files[path].encode()).hexdigest()}  {path}\n" for path in sorted(files))
    files[MARKER] = manifest
    return files


def write_tree(files: dict[str, str], out: Path) -> None:
    """Write *files* under *out*, replacing an earlier build there as a whole."""
    out = out.resolve()
    if out.exists() and any(out.iterdir()) and not (out / MARKER).exists():
        raise PolicyError.one(
            "policy.out-not-a-build",
            _("the output directory is not empty and holds no earlier build"),
            _("choose an empty or new directory"),
            file=str(out),
            field="--out",
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for path, content in files.items():
            target = staging / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content, encoding="utf-8")
        staging.chmod(0o755)
        old = None
        if out.exists():
            old = out.parent / f".{out.name}.old"
            if old.exists():
                shutil.rmtree(old)
            out.rename(old)
        staging.rename(out)
        if old is not None:
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
