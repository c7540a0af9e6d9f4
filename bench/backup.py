"""Bench of backups and fixity (issue 7) on a generated archive of media-like files.

Anchors, all measured in the same run on the same files:

* full backup throughput vs a raw read of the same data (goal >= 70 %), once per setting in
  ``VARIANTS`` (restic's defaults as "before", then what an operator would change for media:
  compression off, bigger packs), each into a fresh repository, with restic's CPU seconds. The
  repositories are served by Debian's ``restic-rest-server`` on loopback when it is installed (Debian
  13; then with the server's CPU seconds, and the same backup to a local directory shows restic alone),
  else they are local directories (Debian 12 has no REST server package: the REST path is measured in
  the lab, restic 0.14 on a Debian 12 machine beside 0.18 on a Debian 13 one, issue 18); the output's
  first line says which;
* an incremental backup with 1 % of the files rewritten vs the time to read the changed bytes
  (goal <= 2x), per setting, with and without restic's local cache; restic's fixed cost per run is
  split into process start, opening the repository (key derivation) and a backup with nothing changed;
* restore throughput vs the raw read;
* ``akm fixity verify`` vs ``sha256sum`` over the same files (goal >= 80 %).

The archive is deterministic (seeded): large "recordings" and many smaller "scans", all incompressible
like real audio/video masters and compressed scans. The raw read is of a warm page cache, the strictest
anchor on this machine; ``--cold`` drops the page cache (root) before each read-side measurement.

    python bench/backup.py                  # ~2 GB, CI-sized (~2 minutes, ~13 GB of free disk)
    python bench/backup.py --size-mb 10000  # bigger
    python bench/backup.py --repo-dir /dev/shm --cache-dir /dev/shm   # without the target disk
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from akm.backup import fixity

CHUNK = 1 << 20

# Settings compared in one run, each on a fresh repository: (name, label, restic backup options).
# "before" is restic's default as the roles used it; the last one is the operator's choice for media.
VARIANTS = (
    ("before", "compression auto, 16 MiB packs (restic defaults)", ("--compression", "auto")),
    ("off", "compression off, 16 MiB packs", ("--compression", "off")),
    ("off64", "compression off, 64 MiB packs", ("--compression", "off", "--pack-size", "64")),
)


def generate(root: Path, size_mb: int, seed: int = 7) -> list[Path]:
    """Write a deterministic media-like archive of about *size_mb* MB; return its files."""
    rng = random.Random(seed)
    total = size_mb * 1024 * 1024
    large = total // 2
    files: list[Path] = []
    count_large = max(2, size_mb // 30)
    for i in range(count_large):
        files.append(write_file(root / "recordings" / f"rec-{i:03d}.wav", large // count_large, rng))
    count_scans = max(10, count_large * 9)
    for i in range(count_scans):
        files.append(write_file(root / "scans" / f"page-{i:04d}.tif", (total - large) // count_scans, rng))
    return files


def write_file(path: Path, size: int, rng: random.Random) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        left = size
        while left:
            n = min(left, 4 * CHUNK)
            handle.write(rng.randbytes(n))
            left -= n
    return path


def check_space(work: Path, repo_dir: Path, size_mb: int) -> None:
    """Exit with a clear message unless the disks can hold the archive and its restore (in *work*) and
    the four repositories the run fills (in *repo_dir*), before anything is generated."""
    need: dict[int, tuple[Path, int]] = {}
    for where, copies in ((work, 2), (repo_dir, 4)):
        dev = os.stat(where).st_dev
        path, total = need.get(dev, (where, 0))
        need[dev] = (path, total + copies * size_mb * 1024 * 1024)
    for path, total in need.values():
        free = shutil.disk_usage(path).free
        if free < total * 1.1:
            sys.exit(
                f"not enough free disk in {path}: a run of --size-mb {size_mb} needs about "
                f"{total * 1.1 / 1e9:.1f} GB there (the archive, its restore and four repositories), "
                f"{free / 1e9:.1f} GB are free; give a smaller --size-mb, or --workdir / --repo-dir on a "
                "bigger disk"
            )


def drop_caches(enabled: bool) -> None:
    if enabled:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("1\n")


def raw_read(files: list[Path]) -> float:
    buf = bytearray(CHUNK)
    start = time.perf_counter()
    for path in files:
        with open(path, "rb", buffering=0) as handle:
            while handle.readinto(buf):
                pass
    return time.perf_counter() - start


def direct_read(files: list[Path]) -> float | None:
    """Read *files* with O_DIRECT (bypassing the page cache, so from the disk) without dropping the
    shared machine's cache; None where the filesystem refuses O_DIRECT (tmpfs)."""
    import mmap

    buf = mmap.mmap(-1, 4 * CHUNK)
    start = time.perf_counter()
    try:
        for path in files:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
            try:
                with os.fdopen(fd, "rb", buffering=0, closefd=False) as handle:
                    while handle.readinto(buf):
                        pass
            finally:
                os.close(fd)
    except OSError:
        return None
    return time.perf_counter() - start


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_rest_server(repo_root: Path, port: int) -> subprocess.Popen | None:
    """Debian's ``restic-rest-server`` over *repo_root* on 127.0.0.1:*port*, append-only as on the
    backup machine (without logins: the bench measures the data path); None when it is not installed."""
    binary = shutil.which("restic-rest-server")
    if binary is None:
        return None
    server = subprocess.Popen(
        [binary, "--path", str(repo_root), "--listen", f"127.0.0.1:{port}", "--no-auth", "--append-only"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(50):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return server
        except OSError:
            time.sleep(0.1)
    server.terminate()
    sys.exit(f"restic-rest-server did not listen on 127.0.0.1:{port} within 5 s")


def restic(env: dict, *args: str) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(["restic", *args], env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"restic {' '.join(args)} failed: {proc.stderr.strip()[-400:]}")
    return elapsed, proc.stdout


def restic_cpu_timed(env: dict, *args: str) -> tuple[float, str, float]:
    """Like :func:`restic`, plus the CPU seconds (user + system) restic used."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    elapsed, out = restic(env, *args)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return elapsed, out, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) the process *pid* has used so far (the REST server)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds_per_core(wall: float, cpu: float) -> float:
    return cpu / wall if wall else 0.0


def median3(measure) -> float:
    return sorted(measure() for _ in range(3))[1]


def summary(stdout: str) -> dict:
    for line in stdout.splitlines():
        if '"summary"' in line:
            return json.loads(line)
    return {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=2048, help="size of the generated archive (default 2048)")
    parser.add_argument("--workdir", type=Path, help="where to generate (default: a temporary directory)")
    parser.add_argument("--cold", action="store_true", help="drop the page cache before read measurements")
    parser.add_argument(
        "--repo-dir",
        type=Path,
        help="where the repositories are stored (default: inside the workdir; "
        "/dev/shm measures restic and the server without the target disk)",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        help="restic's local cache (default: inside the workdir; /dev/shm puts it in memory)",
    )
    args = parser.parse_args(argv)
    if shutil.which("restic") is None:
        sys.exit("restic is not installed (make deps)")
    if args.size_mb < 1:
        sys.exit(f"--size-mb must be at least 1, not {args.size_mb}")
    check_space(
        args.workdir or Path(tempfile.gettempdir()),
        args.repo_dir or args.workdir or Path(tempfile.gettempdir()),
        args.size_mb,
    )
    work = Path(tempfile.mkdtemp(prefix="akm-bench-backup-", dir=args.workdir))
    server = None
    repo_root = work
    try:
        archive = work / "archive"
        files = generate(archive, args.size_mb)
        size = sum(p.stat().st_size for p in files)
        mb = size / 1e6
        rows: list[tuple[str, float, float, str]] = []

        raw_read(files)
        drop_caches(args.cold)
        t_raw = raw_read(files)
        rows.append(("raw read of the archive (page cache)", t_raw, mb / t_raw, "anchor"))
        t_direct = direct_read(files)
        if t_direct:
            rows.append(("raw read of the archive from disk (O_DIRECT)", t_direct, mb / t_direct, "anchor"))

        drop_caches(args.cold)
        start = time.perf_counter()
        subprocess.run(["sha256sum", *map(str, files)], check=True, stdout=subprocess.DEVNULL)
        t_sha = time.perf_counter() - start
        rows.append(("sha256sum (anchor of fixity)", t_sha, mb / t_sha, "anchor"))
        fixity.build(archive, date_text="2026-01-01")
        for workers in (1, 2):
            drop_caches(args.cold)
            start = time.perf_counter()
            result = fixity.verify(archive, workers=workers)
            t_fx = time.perf_counter() - start
            assert result.ok and len(result.unchanged) == len(files)
            rows.append(
                (
                    f"akm fixity verify, {workers} worker(s)",
                    t_fx,
                    mb / t_fx,
                    f"{100 * t_sha / t_fx:.0f}% of sha256sum (goal >= 80%)",
                )
            )

        repo_root = Path(tempfile.mkdtemp(prefix="akm-bench-repo-", dir=args.repo_dir or work))
        port = free_port()
        server = start_rest_server(repo_root, port)
        password = work / "password"
        password.write_text(secrets.token_urlsafe(24))
        base_env = {
            **os.environ,
            "RESTIC_PASSWORD_FILE": str(password),
            "RESTIC_CACHE_DIR": str(args.cache_dir or work / "cache"),
        }

        # One fresh repository per setting, the same files, the same server: only the setting differs.
        envs: dict[str, dict] = {}
        cpu: dict[str, str] = {}
        for name, _label, options in VARIANTS:
            where = f"rest:http://127.0.0.1:{port}/{name}/" if server else str(repo_root / name)
            env = {**base_env, "RESTIC_REPOSITORY": where}
            restic(env, "init", "--repository-version", "2")
            envs[name] = env
            drop_caches(args.cold)
            server_cpu = process_cpu(server.pid) if server else 0.0
            t_full, out, restic_cpu = restic_cpu_timed(
                env, "backup", "--json", "--host", "bench", *options, str(archive)
            )
            cpu[name] = f"CPU s: restic {restic_cpu:.1f}"
            if server:
                cpu[name] += f", server {process_cpu(server.pid) - server_cpu:.1f}"
            rows.append(
                (
                    f"full backup, {_label}",
                    t_full,
                    mb / t_full,
                    f"{100 * t_raw / t_full:.1f}% of cached read"
                    + (f", {100 * t_direct / t_full:.0f}% of disk read" if t_direct else "")
                    + f" (goal >= 70%); {cpu[name]}",
                )
            )
        best = VARIANTS[-1]
        env = envs[best[0]]

        t_local, local_cpu = t_full, restic_cpu
        if server:
            local_env = {**env, "RESTIC_REPOSITORY": str(repo_root / "local")}
            restic(local_env, "init", "--repository-version", "2")
            drop_caches(args.cold)
            t_local, _, local_cpu = restic_cpu_timed(
                local_env, "backup", "--json", "--host", "bench", *best[2], str(archive)
            )
            rows.append(
                (
                    f"full backup, {best[1]}, to a local directory (no server)",
                    t_local,
                    mb / t_local,
                    f"restic alone: {local_cpu:.1f} CPU s; the REST server path runs at "
                    f"{100 * t_local / t_full:.0f}% of restic's local speed",
                )
            )
            shutil.rmtree(repo_root / "local", ignore_errors=True)
        t_cpu = cpu_seconds_per_core(t_local, local_cpu)
        rows.append(("  restic CPU per wall second, local backup", t_cpu, 0.0, f"of {os.cpu_count()} cores"))

        # restic's fixed cost of any run: process start, opening the repository (the key's scrypt,
        # calibrated by restic init to ~0.5 s on the machine that made it), the index, the lock.
        t_start = median3(lambda: restic(env, "version")[0])
        rows.append(("  fixed cost: restic process start (median of 3)", t_start, 0.0, "restic version"))
        t_open = median3(lambda: restic(env, "cat", "config", "--no-lock")[0])
        rows.append(("  fixed cost: open the repository (key + config)", t_open, 0.0, "scrypt key derivation"))
        t_noop = median3(lambda: restic(env, "backup", "--json", "--host", "bench", *best[2], str(archive))[0])
        rows.append(
            ("backup with nothing changed (fixed cost, median of 3)", t_noop, 0.0, "start, key, index, lock, scan")
        )

        # Three rounds, each rewriting a different 1 % of the files; each round backs the same
        # changes up into every repository: the defaults, the choice without restic's local cache
        # (what a fresh machine or a wiped cache pays once), the choice with a warm cache. Medians.
        rng = random.Random(11)
        incremental: dict[str, list[tuple[float, float]]] = {name: [] for name, _l, _o in VARIANTS}
        reads: list[float] = []
        for _round in range(3):
            changed = rng.sample(files, max(1, math.ceil(len(files) / 100)))
            for path in changed:
                write_file(path, path.stat().st_size, rng)
            changed_mb = sum(p.stat().st_size for p in changed) / 1e6
            raw_read(changed)
            drop_caches(args.cold)
            reads.append(direct_read(changed) or raw_read(changed))
            for name, _label, options in VARIANTS:
                cache = ("--no-cache",) if name == "off" else ()
                drop_caches(args.cold)
                t_inc, out = restic(envs[name], *cache, "backup", "--json", "--host", "bench", *options, str(archive))
                incremental[name].append((t_inc, summary(out).get("data_added", 0) / 1e6))
        t_changed = sorted(reads)[1]
        rows.append(
            (
                f"read of the {len(changed)} changed file(s) from disk (median of 3)",
                t_changed,
                changed_mb / t_changed,
                "anchor",
            )
        )
        for name, label, _options in VARIANTS:
            t_inc, added = sorted(incremental[name])[1]
            rows.append(
                (
                    f"incremental, {len(changed)} of {len(files)} changed, {label}"
                    + (", no local cache" if name == "off" else "")
                    + " (median of 3)",
                    t_inc,
                    changed_mb / t_inc,
                    f"{t_inc / t_changed:.1f}x read time (goal <= 2x); "
                    + (
                        f"{(t_inc - t_noop) / t_changed:.1f}x without the fixed cost"
                        if t_inc > t_noop
                        else "no slower than a run with nothing changed"
                    )
                    + f"; {added:.1f} MB added",
                )
            )

        target = work / "restore"
        drop_caches(args.cold)
        t_restore, _ = restic(env, "restore", "latest", "--target", str(target))
        rows.append(
            (
                "restore of the whole archive",
                t_restore,
                mb / t_restore,
                f"{100 * t_raw / t_restore:.1f}% of raw read",
            )
        )

        print(
            f"archive: {len(files)} files, {mb:.0f} MB, {'cold' if args.cold else 'warm'} page cache, "
            f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, "
            f"restic {restic(env, 'version')[1].split()[1]}"
            + (
                f" via restic-rest-server on loopback, repositories in {repo_root.parent}"
                if server
                else f", repositories are local directories in {repo_root.parent} (restic-rest-server is "
                "not installed; the REST path is measured in the lab)"
            )
        )
        print(f"{'measurement':<54} {'seconds':>9} {'MB/s':>9}  ratio")
        for name, seconds, rate, note in rows:
            print(f"{name:<54} {seconds:>9.2f} {rate:>9.1f}  {note}")
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)
        if args.repo_dir:
            shutil.rmtree(repo_root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
