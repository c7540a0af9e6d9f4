"""Lab machines: a copy-on-write layer over the image, booted with ``systemd-nspawn -b``.

Each machine has ``<state_dir>/machines/<host>/`` with ``upper/`` and ``work/`` (its overlayfs layer,
kept between ``down`` and ``up``), ``root/`` (where the overlay is mounted while the lab runs) and
``console.log``. A new or reset layer is *seeded* with what makes the machine itself: host name,
machine id, resolver, apt sources through the cache, root's authorized key, the lab CA, and for the
fake internet its units (web, DNS, time, the alerts' Bot API and mail sink). Resetting a machine
throws the layer away and seeds a new one, so it takes seconds.

nspawn runs with ``--register=no --keep-unit`` because the host has no systemd/machined, joins the
machine's prepared namespace with ``--network-namespace-path`` and gets CAP_NET_ADMIN/CAP_NET_RAW back
so nftables works inside. Stopping asks the machine's systemd to power off (SIGRTMIN+4 to its PID 1)
and kills the container's PID 1 after a bounded wait; killing PID 1 of a PID namespace ends every
process in it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from akm.i18n import _
from akm.lab import cgroups, internet
from akm.lab.aptcache import Source, machine_sources
from akm.lab.image import image_dir
from akm.lab.plan import LabError, Machine, Plan, Port
from akm.lab.system import ProcessRef, children, run

POWEROFF = signal.SIGRTMIN + 4


def machine_dir(state_dir: Path, hostname: str) -> Path:
    """The directory of *hostname*'s layer, mount point and console log."""
    return state_dir / "machines" / hostname


def mounted(path: Path) -> bool:
    """True if *path* is a mount point in the host's mount table."""
    target = str(path)
    with open("/proc/self/mountinfo") as handle:
        return any(line.split()[4] == target for line in handle)


def lab_mounts(state_dir: Path) -> list[str]:
    """Every mount under ``<state_dir>/machines`` (the overlays of the lab), deepest first."""
    base = str(state_dir / "machines") + "/"
    with open("/proc/self/mountinfo") as handle:
        points = [line.split()[4] for line in handle]
    return sorted((p for p in points if p.startswith(base)), key=len, reverse=True)


def unmount_all(state_dir: Path) -> list[str]:
    """Unmount every lab overlay; return the mount points."""
    points = lab_mounts(state_dir)
    for point in points:
        if run(["umount", point], check=False).returncode != 0:
            run(["umount", "-l", point], check=False)
    return points


def _write(root: Path, relative: str, content: str, mode: int = 0o644) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink() or path.exists():
        path.unlink()
    path.write_text(content)
    path.chmod(mode)


def host_keys_dir(state_dir: Path) -> Path:
    """Where the lab keeps its machines' and simulated devices' SSH host keys, one folder per host."""
    return state_dir / "ssh" / "hosts"


def host_key_file(state_dir: Path, hostname: str) -> Path:
    """The private SSH host key file of the machine or simulated device *hostname*."""
    return host_keys_dir(state_dir) / hostname / "ssh_host_ed25519_key"


def host_key(state_dir: Path, hostname: str) -> tuple[str, str]:
    """The SSH host key of *hostname* (private, public), made once and kept in ``<state_dir>/ssh/hosts``.

    Every machine has its own host key, stable across resets, so the keys the lab inventory pins stay
    valid and machines can tell each other apart (e.g. a backup server trusting one client).
    """
    key = host_key_file(state_dir, hostname)
    if not (key.exists() and key.with_suffix(".pub").exists()):
        key.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        key.unlink(missing_ok=True)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"root@{hostname}", "-f", str(key)])
    return key.read_text(), key.with_suffix(".pub").read_text()


def dhcp_network(port: Port) -> str:
    """systemd-networkd's settings for a leg configured by DHCP: an IPv4 lease asked for by the leg's
    MAC (the reservation's key), its routes from the lease; names and time come from the gateway
    anyway (resolv.conf, the base role's time client)."""
    return (
        f"[Match]\nName={port.inner}\n\n[Network]\nDHCP=ipv4\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n\n"
        "[DHCPv4]\nClientIdentifier=mac\nUseDNS=no\nUseNTP=no\nUseHostname=no\n"
    )


def enabled_units(plan: Plan, machine: Machine) -> list[tuple[str, str, str]]:
    """``(target, unit, unit file)`` of the units the seed enables: the fake internet's own, and
    systemd-networkd where a leg is configured by DHCP."""
    units = []
    if machine.dhcp_ports:
        units += [
            ("multi-user.target", "systemd-networkd.service", "/lib/systemd/system/systemd-networkd.service"),
            ("sockets.target", "systemd-networkd.socket", "/lib/systemd/system/systemd-networkd.socket"),
        ]
    if machine.internet:
        units += [("multi-user.target", unit, f"/etc/systemd/system/{unit}") for unit in internet.units(plan)]
    return units


def seed_files(
    plan: Plan, machine: Machine, public_key: str, ca_cert: str, sources: list[Source], image: Path
) -> dict[str, tuple[str, int]]:
    """Return the files (path -> content, mode) that make a fresh layer into *machine*."""
    machine_id = hashlib.sha256(f"akm-lab:{machine.hostname}".encode()).hexdigest()[:32]
    bundle = image / "etc/ssl/certs/ca-certificates.crt"
    private_host_key, public_host_key = host_key(plan.state_dir, machine.hostname)
    files = {
        "etc/ssh/ssh_host_ed25519_key": (private_host_key, 0o600),
        "etc/ssh/ssh_host_ed25519_key.pub": (public_host_key, 0o644),
        "etc/hostname": (f"{machine.hostname}\n", 0o644),
        "etc/hosts": (f"127.0.0.1\tlocalhost\n127.0.1.1\t{machine.hostname}\n", 0o644),
        "etc/machine-id": (machine_id + "\n", 0o444),
        "etc/resolv.conf": (f"nameserver {machine.resolver or plan.dns_server}\n", 0o644),
        "etc/apt/sources.list.d/akm-lab.sources": (machine_sources(plan.apt_cache_url, sources), 0o644),
        "root/.ssh/authorized_keys": (public_key.strip() + "\n", 0o600),
        "usr/local/share/ca-certificates/akm-lab-ca.crt": (ca_cert, 0o644),
        "etc/ssl/certs/ca-certificates.crt": (
            (bundle.read_text() if bundle.exists() else "") + ca_cert,
            0o644,
        ),
    }
    for port in machine.dhcp_ports:
        files[f"etc/systemd/network/50-akm-{port.inner}.network"] = (dhcp_network(port), 0o644)
    if machine.internet:
        for path, content in internet.unit_files(plan, machine).items():
            mode = 0o600 if path.endswith((".key", "-token")) else 0o755 if path.startswith("usr/local/sbin") else 0o644
            files[path] = (content, mode)
    return files


def prepare(
    plan: Plan,
    machine: Machine,
    image_id: str,
    public_key: str,
    ca_cert: str,
    sources: list[Source],
    fresh: bool = False,
) -> bool:
    """Mount *machine*'s layer (seeding a new one if needed); return True if the layer is new.

    The layer records an id of the image build and of its seed. A layer made on another image, or
    seeded from another inventory (other sites, resolver, key, CA, repositories), or any layer when
    *fresh* is set, is thrown away first: a changed inventory gives the machine a fresh layer.
    """
    home = machine_dir(plan.state_dir, machine.hostname)
    root = home / "root"
    stamp = home / "layer-id"
    image = image_dir(plan.state_dir, machine.suite)
    files = seed_files(plan, machine, public_key, ca_cert, sources, image)
    layer_id = hashlib.sha256(json.dumps([image_id, sorted(files.items())], sort_keys=True).encode()).hexdigest()[:16]
    if mounted(root):
        run(["umount", str(root)])
    known = stamp.read_text().strip() if stamp.exists() else ""
    new = fresh or known != layer_id or not (home / "upper").exists()
    if new:
        # The stamp goes first and comes back only after seeding, so an interrupted seed is redone.
        stamp.unlink(missing_ok=True)
        for part in ("upper", "work"):
            shutil.rmtree(home / part, ignore_errors=True)
    for part in ("upper", "work", "root"):
        (home / part).mkdir(parents=True, exist_ok=True)
    run(
        [
            "mount",
            "-t",
            "overlay",
            "overlay",
            "-o",
            f"lowerdir={image},upperdir={home / 'upper'},workdir={home / 'work'}",
            str(root),
        ]
    )
    if new:
        (root / "root/.ssh").mkdir(parents=True, exist_ok=True, mode=0o700)
        for path, (content, mode) in files.items():
            _write(root, path, content, mode)
        for kind in ("rsa", "ecdsa"):
            for suffix in ("", ".pub"):
                (root / f"etc/ssh/ssh_host_{kind}_key{suffix}").unlink(missing_ok=True)
        for target, unit, path in enabled_units(plan, machine):
            wants = root / "etc/systemd/system" / f"{target}.wants"
            wants.mkdir(parents=True, exist_ok=True)
            link = wants / unit
            if not link.is_symlink():
                link.symlink_to(path)
        stamp.write_text(layer_id + "\n")
    return new


def spawn(plan: Plan, machine: Machine) -> ProcessRef:
    """Boot *machine* in the background and return the nspawn process."""
    home = machine_dir(plan.state_dir, machine.hostname)
    root = home / "root"
    console = open(home / "console.log", "wb")  # noqa: SIM115 - handed to the child, closed below
    try:
        child = subprocess.Popen(
            cgroups.enter_argv(
                cgroups.machine_groups(machine.hostname),
                [
                    "systemd-nspawn",
                    "--boot",
                    f"--directory={root}",
                    f"--machine={machine.netns}",
                    f"--hostname={machine.hostname}",
                    "--register=no",
                    "--keep-unit",
                    f"--network-namespace-path=/run/netns/{machine.netns}",
                    "--capability=CAP_NET_ADMIN,CAP_NET_RAW",
                    "--console=read-only",
                    "--link-journal=no",
                    "--resolv-conf=off",
                    "--timezone=off",
                ],
            ),
            stdin=subprocess.DEVNULL,
            stdout=console,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    finally:
        console.close()
    return ProcessRef.of(child.pid, f"--directory={root}")


def leader(ref: ProcessRef) -> int | None:
    """The host PID of the container's PID 1 (the machine's systemd), if it runs."""
    if not ref.alive():
        return None
    kids = children(ref.pid)
    return kids[0] if kids else None


def stop_machines(refs: list[ProcessRef], grace: float) -> None:
    """Power the machines of *refs* off together; after *grace* seconds kill what still runs."""
    if grace > 0:
        for ref in refs:
            pid = leader(ref)
            if pid:
                os.kill(pid, POWEROFF)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(r.alive() for r in refs):
            time.sleep(0.2)
    for ref in refs:
        pid = leader(ref)
        if pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(r.alive() for r in refs):
        time.sleep(0.1)
    for ref in refs:
        ref.signal(signal.SIGKILL)


def container_inits(state_dir: Path) -> dict[int, str]:
    """PID 1 of every container booted from a lab layer, found on the host by its root mount.

    This finds machines whose nspawn was killed (their systemd then lives on, orphaned); the answer maps
    host PID to host name. Killing such a PID ends its whole container.
    """
    upper = f"upperdir={state_dir / 'machines'}/"
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
            nspid = next(line.split()[1:] for line in status.splitlines() if line.startswith("NSpid:"))
            if len(nspid) < 2 or nspid[-1] != "1":
                continue
            with open(f"/proc/{entry}/mountinfo") as handle:
                root = next((line for line in handle if line.split()[4] == "/"), "")
        except (OSError, StopIteration):
            continue
        if upper in root:
            found[int(entry)] = root.split(upper, 1)[1].split("/", 1)[0]
    return found


def kill_orphans(state_dir: Path) -> list[str]:
    """SIGKILL the containers of lab layers that still run after their nspawn is gone; return names."""
    killed = []
    for pid, name in container_inits(state_dir).items():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
            killed.append(f"orphan:{name}")
    deadline = time.monotonic() + 5
    while killed and time.monotonic() < deadline and container_inits(state_dir):
        time.sleep(0.1)
    return killed


def ssh_ready(address: str, timeout: float = 1.0) -> bool:
    """True if an SSH server answers with its banner at *address*:22."""
    try:
        with socket.create_connection((address, 22), timeout=timeout) as conn:
            conn.settimeout(timeout)
            return conn.recv(8).startswith(b"SSH-")
    except OSError:
        return False


def wait_ready(
    plan: Plan,
    machines: list[Machine],
    refs: dict[str, ProcessRef],
    timeout: float,
    ssh_argv: Callable[[Machine], list[str]] | None = None,
) -> None:
    """Wait until every machine of *machines* answers SSH and, given *ssh_argv*, has finished booting
    (systemd ``running`` or ``degraded``); raise ``lab.boot-timeout`` after *timeout* s."""
    deadline = time.monotonic() + timeout
    _wait_ssh(plan, machines, refs, deadline, timeout)
    if ssh_argv is None:
        return
    checks = {
        m.hostname: subprocess.Popen(
            [*ssh_argv(m), "systemctl", "is-system-running", "--wait"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for m in machines
    }
    late = []
    for name, check in checks.items():
        try:
            answer, _err = check.communicate(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            check.kill()
            check.communicate()
            late.append(name)
            continue
        if check.returncode == 255:
            raise LabError.one(
                "lab.ssh-failed",
                _("cannot log into {host}: {error}").format(host=name, error=answer.strip()[-300:]),
                _("give it a fresh layer: akm lab reset {host} (or akm lab up --fresh)").format(host=name),
                file=str(plan.state_dir / "ssh"),
                field=name,
            )
        if answer.strip().splitlines()[-1:] not in (["running"], ["degraded"]):
            log = machine_dir(plan.state_dir, name) / "console.log"
            raise LabError.one(
                "lab.boot-failed",
                _("machine {host} did not boot properly: {state}").format(host=name, state=answer.strip()[-200:]),
                _("read its console log {log}").format(log=log),
                file=str(log),
                field=name,
            )
    if late:
        _timeout(plan, late, timeout)


def _timeout(plan: Plan, names: list[str], timeout: float) -> None:
    hosts = ", ".join(sorted(names))
    raise LabError.one(
        "lab.boot-timeout",
        _("no SSH answer from {hosts} within {seconds} s").format(hosts=hosts, seconds=int(timeout)),
        _("read console.log in each machine's directory; raise --timeout on a slow host"),
        file=str(plan.state_dir / "machines"),
        field=hosts,
    )


def _wait_ssh(
    plan: Plan, machines: list[Machine], refs: dict[str, ProcessRef], deadline: float, timeout: float
) -> None:
    waiting = {m.hostname: m for m in machines}
    while waiting and time.monotonic() < deadline:
        for name, machine in list(waiting.items()):
            if not refs[name].alive():
                log = machine_dir(plan.state_dir, name) / "console.log"
                raise LabError.one(
                    "lab.boot-failed",
                    _("machine {host} stopped while booting").format(host=name),
                    _("read its console log {log}").format(log=log),
                    file=str(log),
                    field=name,
                )
            if ssh_ready(str(machine.management)):
                del waiting[name]
        if waiting:
            time.sleep(0.5)
    if waiting:
        _timeout(plan, list(waiting), timeout)


def _rollup(pid: int) -> tuple[int, int]:
    """PSS and RSS of *pid* in KiB (zeros if unreadable)."""
    pss = rss = 0
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                pss = int(line.split()[1])
            elif line.startswith("Rss:"):
                rss = int(line.split()[1])
    except OSError:
        pass
    return pss, rss


def memory_kib(ref: ProcessRef) -> tuple[int, int]:
    """Memory of a running machine: summed PSS and RSS (KiB) of every process in its PID namespace.

    PSS shares the pages of the common image fairly between machines, so it sums to what the lab
    costs the host; RSS counts shared pages in every machine and is the upper bound.
    """
    pid = leader(ref)
    if pid is None:
        return 0, 0
    try:
        namespace = os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return 0, 0
    pss = rss = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{entry}/ns/pid") == namespace:
                one_pss, one_rss = _rollup(int(entry))
                pss, rss = pss + one_pss, rss + one_rss
        except OSError:
            continue
    return pss, rss
