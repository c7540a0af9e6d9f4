"""Bench of restic 0.14 (Debian 12) beside restic 0.18 (Debian 13) on the same data, in the lab (issue 18).

Each release's restic runs inside a lab machine of that release (``nsenter`` into the machine's
namespaces, so the machine's own ``/usr/bin/restic``, ``cat``, ``sha256sum`` and ``python3``), on an
archive generated with the same seed in each machine, so the bytes are identical. The page cache is
dropped (host-wide: the machines share the host's kernel) before every read-side measurement; the
anchors are measured in the same run, in the same machine:

* full backup as a fraction of a raw read (``cat`` of the same files, cache dropped first); goal >= 70 %;
  with restic's CPU seconds per GB; on 0.18 also with ``--read-concurrency 4``;
* a backup with nothing changed (0.18 with ``--skip-if-unchanged``, as the backup_client role runs it),
  and its parts: process start, opening the repository (key derivation), loading the index;
* a 1 %-changed incremental against the time to read the changed bytes (goal <= 2x) and against the run
  with nothing changed;
* restore of the whole archive against the raw read;
* ``akm fixity verify`` (the machine's Python) against ``sha256sum`` (goal >= 80 %).

The repositories are local directories in the machine (the same disk for both), so the table compares
restic itself; the REST server's share is measured by bench/backup.py on a Debian 13 host.

Needs root and the lab up with the backup roles converged (``make demo``): restic must be installed on
one machine of each release.

    python bench/backup_releases.py                 # 2 GB per machine, about 10 minutes
    python bench/backup_releases.py --size-mb 500   # quicker
"""

from __future__ import annotations

import argparse
import math
import os
import random
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from backup import generate, summary, write_file

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

from akm.lab import lab, machines  # noqa: E402

INSIDE = "/var/tmp/akm-bench-releases"
PATH = "PATH=/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class Target:
    """A running lab machine of one Debian release, and where its root is seen from the host."""

    name: str
    suite: str
    pid: int
    root: Path

    def host_path(self, inside: str) -> Path:
        return self.root / inside.lstrip("/")

    def run(self, *argv: str, env: tuple[str, ...] = ()) -> tuple[float, float, str]:
        """Run *argv* inside the machine; return wall seconds, CPU seconds (user + system) and stdout."""
        command = ["nsenter", "--target", str(self.pid), "--mount", "--uts", "--ipc", "--net", "--pid"]
        command += ["--", "/usr/bin/env", "-i", PATH, *env, *argv]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode != 0:
            sys.exit(f"{self.name}: {' '.join(argv[:3])} … failed ({done.returncode}): {done.stderr.strip()[-600:]}")
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        return wall, cpu, done.stdout


def drop_caches() -> None:
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("1\n")


def targets(inventory: Path) -> list[Target]:
    """One running machine per Debian release of the lab (Debian 12 first), with restic installed."""
    plan = lab.load_plan(inventory)
    pids = lab.leaders(plan)
    found: dict[str, Target] = {}
    for machine in plan.machines:
        root = machines.machine_dir(plan.state_dir, machine.hostname) / "root"
        if machine.suite in found or machine.hostname not in pids or not (root / "usr/bin/restic").exists():
            continue
        found[machine.suite] = Target(machine.hostname, machine.suite, pids[machine.hostname], root)
    ordered = [found[s] for s in ("bookworm", "trixie") if s in found]
    if len(ordered) < 2:
        sys.exit(
            "restic must be installed on a running Debian 12 and a Debian 13 machine of the lab, found it on "
            f"{', '.join(t.name for t in ordered) or 'none'}: run `make demo` first (it converges the backup roles)"
        )
    return ordered


class Bench:
    """The measurements on one machine; every row is (label, seconds, MB/s, note)."""

    def __init__(self, target: Target, size_mb: int):
        self.t = target
        self.size_mb = size_mb
        self.version = target.run("restic", "version")[2].split()[1]
        self.modern = tuple(int(p) for p in self.version.split(".")[:2]) >= (0, 17)
        self.rows: dict[str, tuple[float, float, str]] = {}

    def restic_env(self, repo: str) -> tuple[str, ...]:
        return (
            f"RESTIC_REPOSITORY={INSIDE}/{repo}",
            f"RESTIC_PASSWORD_FILE={INSIDE}/password",
            f"RESTIC_CACHE_DIR={INSIDE}/cache",
        )

    def restic(self, repo: str, *args: str) -> tuple[float, float, str]:
        return self.t.run("restic", *args, env=self.restic_env(repo))

    def cat(self, files: list[str]) -> float:
        drop_caches()
        return self.t.run("sh", "-c", 'cat "$@" > /dev/null', "cat", *files)[0]

    def prepare(self) -> list[Path]:
        host = self.t.host_path(INSIDE)
        shutil.rmtree(host, ignore_errors=True)
        host.mkdir(parents=True)
        (host / "password").write_text(secrets.token_urlsafe(24))
        shutil.copytree(REPO / "scripts" / "akm", host / "lib" / "akm", ignore=shutil.ignore_patterns("__pycache__"))
        return generate(host / "archive", self.size_mb)

    def inside(self, path: Path) -> str:
        return "/" + str(path.relative_to(self.t.root))

    def measure(self) -> None:
        files = self.prepare()
        inner = [self.inside(p) for p in files]
        mb = sum(p.stat().st_size for p in files) / 1e6
        gb = mb / 1000
        archive = f"{INSIDE}/archive"
        options = ["--compression", "off", "--host", "bench"]
        t_raw = self.cat(inner)
        self.rows["raw read (cat, page cache dropped)"] = (t_raw, mb / t_raw, "anchor")

        variants = [("full backup, compression off (the role's media setting)", "repo", [])]
        if self.modern:
            variants.append(("full backup, same, --read-concurrency 4", "repo4", ["--read-concurrency", "4"]))
        for label, repo, extra in variants:
            self.restic(repo, "init", "--repository-version", "2")
            drop_caches()
            wall, cpu, _out = self.restic(repo, "backup", "--json", *options, *extra, archive)
            self.rows[label] = (wall, mb / wall, f"{100 * t_raw / wall:.0f}% of raw read (goal >= 70%)")
            self.rows[label + ": CPU s per GB"] = (cpu / gb, 0.0, f"{cpu / wall:.2f} cores busy")

        skip = ["--skip-if-unchanged"] if self.modern else []
        fixed = {
            "  process start (restic version)": ("version",),
            "  open the repository (key, config)": ("cat", "config", "--no-lock"),
            "  open and load the index (list blobs)": ("list", "blobs", "--no-lock"),
        }
        for label, args in fixed.items():
            self.rows[label] = (statistics.median(self.restic("repo", *args)[0] for _ in range(3)), 0.0, "median of 3")
        t_noop = statistics.median(
            self.restic("repo", "backup", "--json", *options, *skip, archive)[0] for _ in range(3)
        )
        self.rows["backup with nothing changed" + (" (--skip-if-unchanged)" if skip else "")] = (
            t_noop,
            0.0,
            "median of 3",
        )

        rng = random.Random(11)
        rounds = []
        for _round in range(3):
            changed = rng.sample(files, max(1, math.ceil(len(files) / 100)))
            for path in changed:
                write_file(path, path.stat().st_size, rng)
            changed_mb = sum(p.stat().st_size for p in changed) / 1e6
            t_read = self.cat([self.inside(p) for p in changed])
            drop_caches()
            wall, _cpu, out = self.restic("repo", "backup", "--json", *options, *skip, archive)
            rounds.append((wall, t_read, changed_mb, summary(out).get("data_added", 0) / 1e6))
        t_inc, t_read, changed_mb, added = sorted(rounds)[1]
        self.rows[f"read of the changed files ({changed_mb:.0f} MB, cat)"] = (t_read, changed_mb / t_read, "anchor")
        self.rows["incremental, 1% of the files changed (median of 3)"] = (
            t_inc,
            changed_mb / t_inc,
            f"{t_inc / t_read:.1f}x the read (goal <= 2x); {t_inc / t_noop:.1f}x the unchanged run; "
            f"{max(t_inc - t_noop, 0) / t_read:.1f}x the read without it; {added:.0f} MB added",
        )

        drop_caches()
        wall = self.restic("repo", "restore", "latest", "--target", f"{INSIDE}/restore")[0]
        self.rows["restore of the whole archive"] = (wall, mb / wall, f"{100 * t_raw / wall:.0f}% of raw read")
        shutil.rmtree(self.t.host_path(f"{INSIDE}/restore"), ignore_errors=True)

        drop_caches()
        t_sha = self.t.run("sh", "-c", 'sha256sum "$@" > /dev/null', "sha", *inner)[0]
        self.rows["sha256sum of the archive (anchor of fixity)"] = (t_sha, mb / t_sha, "anchor")
        akm = (f"PYTHONPATH={INSIDE}/lib", "LC_ALL=C.UTF-8")
        evidence = ("--evidence-dir", f"{INSIDE}/evidence")
        self.t.run("python3", "-m", "akm.backup", "fixity", "build", archive, *evidence, env=akm)
        drop_caches()
        t_fx = self.t.run("python3", "-m", "akm.backup", "fixity", "verify", archive, *evidence, env=akm)[0]
        self.rows["akm fixity verify (the machine's python3, 2 workers)"] = (
            t_fx,
            mb / t_fx,
            f"{100 * t_sha / t_fx:.0f}% of sha256sum (goal >= 80%)",
        )
        self.mb = mb
        self.files = len(files)

    def clean(self) -> None:
        shutil.rmtree(self.t.host_path(INSIDE), ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inventory", type=Path, default=REPO / "inventory" / "lab")
    parser.add_argument("--size-mb", type=int, default=2048, help="archive size per machine (default 2048)")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        sys.exit("bench/backup_releases.py needs root (nsenter into the lab's machines, dropping the page cache)")
    if args.size_mb < 10:
        sys.exit(f"--size-mb must be at least 10, not {args.size_mb}")
    benches = [Bench(t, args.size_mb) for t in targets(args.inventory)]
    free = shutil.disk_usage(benches[0].t.root).free
    if free < 6 * args.size_mb * 1e6 * 1.1:
        sys.exit(f"not enough free disk under {benches[0].t.root}: about {6.6 * args.size_mb / 1000:.1f} GB needed")
    try:
        for bench in benches:
            bench.measure()
            bench.clean()
    finally:
        for bench in benches:
            bench.clean()
    first = benches[0]
    print(
        f"archive: {first.files} files, {first.mb:.0f} MB, identical in each machine; {os.cpu_count()} CPUs; "
        "repositories are local directories; page cache dropped before every read"
    )
    # A Markdown table, as the issue note gives it: per release seconds, MB/s and the ratio to its anchor.
    heads = [f"restic {b.version} ({b.t.name}, {b.t.suite})" for b in benches]
    print("| measurement | " + " | ".join(f"{h}: s | MB/s | ratio" for h in heads) + " |")
    print("|---|" + "---:|---:|---|" * len(benches))
    for label in dict.fromkeys(label for b in benches for label in b.rows):
        cells = []
        for bench in benches:
            seconds, rate, note = bench.rows.get(label, (None, 0.0, "-"))
            cells += [f"{seconds:.2f}" if seconds is not None else "-", f"{rate:.1f}" if rate else "", note]
        print(f"| {label.strip()} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
