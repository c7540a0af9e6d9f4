"""``python -m akm.wheelhouse``: what the management role installs on a host that cannot reach PyPI.

Run on the control node (the management role delegates it to localhost). For the commit at HEAD of
the repository it makes, in a cache directory outside git:

* ``deps-<digest>/``: wheels of the named runtime distributions at the versions pinned in that commit's
  ``pyproject.toml``, and everything they depend on (``pip wheel``, which fetches through the control
  node's own pip configuration);
* ``akm-<commit>/``: the wheel of the project itself, built from ``git archive`` of the commit (so
  uncommitted edits are never deployed, and the wheel is the same every time), and a ``git bundle`` of
  the commit's history (the equipment register reads the inventory's git log);
* ``set-<digest>-<commit>/``: hard links to both wheel sets, the directory the role copies to the host.

Everything is made once per commit and pin set and reused afterwards, so a second converge copies
nothing. Prints one JSON object: ``set`` (directory), ``bundle`` (file), ``commit``, ``requirements``
(``name==version`` of the named distributions), ``akm_wheel`` (file name) and ``changed``.

Only the distributions the scheduled jobs import are named by the role (``management_python_packages``):
the Ansible collection bundle and asyncssh (the simulator's server) are not needed there.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import tomllib
from pathlib import Path

from akm.archive import extract_files
from akm.errors import Error
from akm.i18n import _


class WheelhouseError(Error):
    """The wheelhouse cannot be made (an unpinned name, a failed build)."""


def _git(repo: Path, *args: str, binary: bool = False):
    done = subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=not binary)
    return done.stdout


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(pyproject_text: str) -> dict[str, str]:
    """``{canonical name: version}`` of the exactly pinned runtime dependencies of a pyproject."""
    data = tomllib.loads(pyproject_text)
    found = {}
    for requirement in data["project"]["dependencies"]:
        match = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)\s*==\s*([^\s;]+)\s*", requirement)
        if match:
            found[_canonical(match.group(1))] = match.group(2)
    return found


def requirements(pyproject_text: str, names: list[str], source: str) -> list[str]:
    """``name==version`` for each of *names*, from the pins; every name must be pinned there."""
    pinned = pins(pyproject_text)
    missing = sorted(n for n in names if _canonical(n) not in pinned)
    if missing:
        raise WheelhouseError.one(
            "wheelhouse.not-pinned",
            _("not an exactly pinned dependency of the project: {names}").format(names=", ".join(missing)),
            _("name only distributions listed with == in pyproject.toml [project] dependencies"),
            file=source,
            field="management_python_packages",
        )
    return sorted(f"{_canonical(n)}=={pinned[_canonical(n)]}" for n in set(names))


def _pip(*args: str, env: dict | None = None) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        raise WheelhouseError.one(
            "wheelhouse.pip-failed",
            _("pip could not make the wheels: {error}").format(error=done.stderr.strip()[-800:]),
            _("check that the control node can install the pinned packages (make venv)"),
        )


def _fresh(target: Path, make) -> bool:
    """Make *target* with *make(tmpdir)* unless it is complete already; return True if it was made."""
    if (target / ".complete").exists():
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    try:
        make(scratch)
        (scratch / ".complete").write_text("")
        shutil.rmtree(target, ignore_errors=True)
        scratch.rename(target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return True


def build(repo: Path, cache: Path, names: list[str]) -> dict:
    """Make (or reuse) the wheel sets and the bundle of HEAD; return what the role needs."""
    commit = _git(repo, "rev-parse", "--verify", "HEAD^{commit}").strip()
    pyproject = _git(repo, "show", f"{commit}:pyproject.toml")
    wanted = requirements(pyproject, names, f"{commit[:12]}:pyproject.toml")
    digest = hashlib.sha256(json.dumps([sys.version_info[:2], wanted]).encode()).hexdigest()[:16]
    deps = cache / f"deps-{digest}"
    own = cache / f"akm-{commit}"
    both = cache / f"set-{digest}-{commit[:12]}"

    def make_deps(scratch: Path) -> None:
        _pip("wheel", "--wheel-dir", str(scratch), *wanted)

    def make_own(scratch: Path) -> None:
        source = scratch / "src"
        source.mkdir()
        archive = _git(repo, "archive", "--format=tar", commit, binary=True)
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            extract_files(tar, source)
        stamp = _git(repo, "show", "-s", "--format=%ct", commit).strip()
        _pip(
            "wheel",
            "--no-deps",
            "--wheel-dir",
            str(scratch),
            str(source),
            env=dict(os.environ, SOURCE_DATE_EPOCH=stamp),
        )
        shutil.rmtree(source)
        subprocess.run(
            ["git", "-C", str(repo), "bundle", "create", "-q", str(scratch / "akm-infra.bundle"), "HEAD"],
            check=True,
            capture_output=True,
        )

    def make_set(scratch: Path) -> None:
        for folder in (deps, own):
            for wheel in folder.glob("*.whl"):
                os.link(wheel, scratch / wheel.name)

    changed = _fresh(deps, make_deps)
    changed = _fresh(own, make_own) or changed
    changed = _fresh(both, make_set) or changed
    akm_wheel = next(own.glob("akm_infra-*.whl")).name
    return {
        "set": str(both),
        "bundle": str(own / "akm-infra.bundle"),
        "commit": commit,
        "requirements": wanted,
        "akm_wheel": akm_wheel,
        "changed": changed,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m akm.wheelhouse", description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, required=True, help=_("the git checkout of akm-infra"))
    parser.add_argument("--cache", type=Path, required=True, help=_("cache directory outside git"))
    parser.add_argument("--package", action="append", required=True, help=_("runtime distribution (repeatable)"))
    args = parser.parse_args(argv)
    try:
        result = build(args.repo.resolve(), args.cache.resolve(), args.package)
    except Error as error:
        for problem in error.problems:
            print(problem.render(), file=sys.stderr)
        return 2
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
