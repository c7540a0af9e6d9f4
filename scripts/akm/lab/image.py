"""The Debian images lab machines boot from, one per release (suite), built once with debootstrap and
cached: each machine boots the release its inventory entry names (``os: debian13`` -> trixie).

An image lives in ``<state_dir>/image/<suite>`` (outside the repository). It is built in a temporary
directory next to it and renamed into place only when complete, with a stamp file
(``etc/akm-lab-image.json``) that records the suite, the package list and a build id. So:

- a directory ``.build-<suite>-*`` is a build that was interrupted: it is removed and the image is rebuilt;
- an image without a stamp, or whose stamp records another package list, is rebuilt;
- machines whose copy-on-write layer was made on another image are reset (see :mod:`akm.lab.machines`).

The image is generic: nothing of the inventory (addresses, host names, keys) is baked into it; each
machine gets those in its own layer when it is created.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

from akm.i18n import _
from akm.lab.plan import LabError
from akm.lab.system import run

# What Ansible, the lab's own services (chrony: the fake internet's time server; python3-aiosmtpd: its
# mail sink) and the roles' first steps need; kept small on purpose.
PACKAGES = (
    "ca-certificates",
    "chrony",
    "curl",
    "dbus",
    "dnsmasq-base",
    "iproute2",
    "iputils-ping",
    "nftables",
    "openssh-server",
    "procps",
    "python3",
    "python3-aiosmtpd",
    "python3-apt",
    "sudo",
    "systemd",
    "systemd-sysv",
)
# What _finish makes of a debootstrap tree; a change there bumps it, so images made before are rebuilt.
LAYOUT = 2
STAMP = "etc/akm-lab-image.json"
BUILD_TIMEOUT = 1800


def image_dir(state_dir: Path, suite: str) -> Path:
    """Where the finished image of *suite* lives."""
    return state_dir / "image" / suite


def _builds(state_dir: Path, suite: str) -> list[Path]:
    """Interrupted builds of *suite* (``.build-<suite>-*``) and images it was replacing (``.old-<suite>-*``)."""
    parent = state_dir / "image"
    if not parent.exists():
        return []
    return [*parent.glob(f".build-{suite}-*"), *parent.glob(f".old-{suite}-*")]


def wanted_stamp(suite: str, packages: tuple[str, ...] = PACKAGES) -> dict:
    """The stamp a current image carries: suite, package list and an id derived from both."""
    ident = hashlib.sha256(json.dumps([suite, sorted(packages), LAYOUT]).encode()).hexdigest()[:16]
    return {"id": ident, "layout": LAYOUT, "packages": sorted(packages), "suite": suite}


def read_stamp(image: Path) -> dict | None:
    """Return the stamp of *image*, or ``None`` if it has none (a half-built or foreign directory)."""
    try:
        return json.loads((image / STAMP).read_text())
    except (OSError, ValueError):
        return None


def image_state(state_dir: Path, suite: str, packages: tuple[str, ...] = PACKAGES) -> str:
    """Return ``ready``, ``missing``, ``half-built`` or ``outdated`` for the image of *suite*."""
    image = image_dir(state_dir, suite)
    leftovers = [p for p in _builds(state_dir, suite) if p.name.startswith(".build-")]
    if not image.exists():
        return "half-built" if leftovers else "missing"
    stamp = read_stamp(image)
    if stamp is None:
        return "half-built"
    if stamp.get("id") != wanted_stamp(suite, packages)["id"] or "build" not in stamp:
        return "outdated"
    return "ready"


def _remove_tree(path: Path) -> None:
    """Delete an interrupted build, first unmounting what debootstrap may have left mounted in it
    (proc, sys, dev), so the removal never reaches into a host file system."""
    prefix = str(path) + "/"
    with open("/proc/self/mountinfo") as handle:
        points = sorted(
            (line.split()[4] for line in handle if line.split()[4].startswith(prefix)), key=len, reverse=True
        )
    for point in points:
        run(["umount", "-l", point], check=False)
    with open("/proc/self/mountinfo") as handle:
        if any(line.split()[4].startswith(prefix) for line in handle):
            raise LabError.one(
                "lab.image-busy",
                _("an interrupted image build still has mounts inside it"),
                _("unmount them (see /proc/self/mountinfo), then run akm lab up again"),
                file=str(path),
            )
    shutil.rmtree(path, ignore_errors=True)


def _finish(root: Path) -> None:
    """Make a fresh debootstrap tree generic and quiet: no sources, no package lists, no machine id, no apt
    timers."""
    (root / "etc/apt/sources.list").unlink(missing_ok=True)
    (root / "etc/machine-id").write_text("")
    (root / "etc/hostname").write_text("localhost\n")
    system = root / "etc/systemd/system"
    for unit in (
        "apt-daily.timer",
        "apt-daily-upgrade.timer",
        "e2scrub_all.timer",
        "fstrim.timer",
        "e2scrub_reap.service",
        "getty@tty1.service",
    ):
        target = system / unit
        target.unlink(missing_ok=True)
        target.symlink_to("/dev/null")
    for archive in (root / "var/cache/apt/archives").glob("*.deb"):
        archive.unlink()
    lists = root / "var/lib/apt/lists"
    for listing in lists.glob("*_*"):
        listing.unlink()
    # apt's cache_valid_time reads the directory's age: lists that are gone must look never updated,
    # so every role's first install downloads them (a build-time age would skip that for an hour).
    os.utime(lists, (0, 0))


def ensure_image(
    state_dir: Path,
    suite: str,
    mirror_url: str,
    log: Callable[[str], None],
    packages: tuple[str, ...] = PACKAGES,
    rebuild: bool = False,
) -> tuple[str, bool]:
    """Make sure a current image of *suite* exists (a new one if *rebuild*); return its build id and
    whether it was (re)built now.

    The build id is new with every build, so machine layers made on an earlier build are reset.

    *mirror_url* is the cache URL of the base repository (``http://<control>:3142/debian``). *log*
    is a callable that prints one progress line.
    """
    image = image_dir(state_dir, suite)
    status = image_state(state_dir, suite, packages)
    if status == "ready" and not rebuild:
        return read_stamp(image)["build"], False
    if status == "ready":
        log(_("Building a new lab image, as asked (Debian {suite}).").format(suite=suite))
    elif status == "half-built":
        log(_("A half-built lab image was found (an earlier build was interrupted); building it again."))
    elif status == "outdated":
        log(_("The lab image's package list or build steps changed; building it again."))
    else:
        log(_("Building the lab image (Debian {suite}) once; this takes a few minutes.").format(suite=suite))
    image.parent.mkdir(parents=True, exist_ok=True)
    for leftover in _builds(state_dir, suite):
        _remove_tree(leftover)
    build = Path(tempfile.mkdtemp(prefix=f".build-{suite}-", dir=image.parent))
    build_log = image.parent / f"build-{suite}.log"
    command = [
        "debootstrap",
        "--variant=minbase",
        f"--include={','.join(sorted(packages))}",
        "--components=main",
        suite,
        str(build),
        mirror_url,
    ]
    # Its own process group, so a teardown after a killed `akm lab up` can end debootstrap and its dpkg.
    with open(build_log, "wb") as out:
        child = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            returncode = child.wait(timeout=BUILD_TIMEOUT)
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            _remove_tree(build)
            raise
    if returncode != 0:
        _remove_tree(build)
        raise LabError.one(
            "lab.image-build-failed",
            _("debootstrap could not build the lab image"),
            _("read {log}; check that apt-get update works on the host").format(log=build_log),
            file=str(build_log),
        )
    _finish(build)
    stamp = {**wanted_stamp(suite, packages), "build": uuid.uuid4().hex}
    (build / STAMP).write_text(json.dumps(stamp, indent=1, sort_keys=True) + "\n")
    old = None
    if image.exists():
        old = image.parent / f".old-{suite}-{stamp['build']}"
        shutil.rmtree(old, ignore_errors=True)
        image.rename(old)
    build.rename(image)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return stamp["build"], True
