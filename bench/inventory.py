"""How fast is ``akm inventory check``? The anchor is issue 2's goal: a 50,000-asset inventory in under 2 s.

The bench writes the synthetic inventory (:mod:`akm.inventory.synthetic`) into a temporary directory,
then measures:

* ``akm inventory check`` end to end, as a separate process, best of ``--runs`` (wall clock, the CPU
  time of that run, and its peak memory from ``getrusage``'s maxrss);
* the phases of the fast way in this process: reading the YAML, validating, cross-checking;
* the same check of the shipped production inventory;
* with ``--located``, the located reading of the same files (what every check cost before the fast
  way, and still what an inventory with a problem costs; slow: tens of seconds).

It prints one table with the ratio of each figure to the 2 s goal. Nothing is asserted: the machine
may be shared and busy, which is why the CPU time is printed beside the wall clock.

    python bench/inventory.py [--assets 50000] [--runs 3] [--located]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from akm.inventory import inventory_files, synthetic
from akm.inventory.load import cross_check_plain, read_plain, validate_plain
from akm.yamlsource import gc_paused, load_yaml

GOAL = 2.0
REPO = Path(__file__).resolve().parents[1]
AKM = Path(sys.executable).with_name("akm")


def run_check(path: Path) -> tuple[float, float, int, int]:
    """Run ``akm inventory check PATH`` once: wall seconds, CPU seconds, peak memory in KiB, exit code."""
    start = time.perf_counter()
    with open(os.devnull, "wb") as null:
        pid = os.posix_spawn(
            str(AKM),
            [str(AKM), "inventory", "check", str(path)],
            os.environ,
            file_actions=[
                (os.POSIX_SPAWN_DUP2, null.fileno(), 1),
                (os.POSIX_SPAWN_DUP2, null.fileno(), 2),
            ],
        )
        _pid, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - start
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, os.waitstatus_to_exitcode(status)


def best_check(path: Path, runs: int) -> tuple[float, float, int]:
    """The fastest of *runs* checks (wall, CPU of that run) and the largest peak memory among them."""
    results = [run_check(path) for _ in range(runs)]
    failed = [code for *_rest, code in results if code != 0]
    if failed:
        raise SystemExit(f"akm inventory check {path} failed with exit code {failed[0]}")
    wall, cpu, _rss, _code = min(results)
    return wall, cpu, max(rss for _w, _c, rss, _code in results)


def timed(function: Callable[[], Any]) -> tuple[float, float, Any]:
    """Call *function* with the collector paused as the loader does: wall seconds, CPU seconds, result."""
    with gc_paused():
        wall, cpu = time.perf_counter(), time.process_time()
        result = function()
        return time.perf_counter() - wall, time.process_time() - cpu, result


def phases(path: Path) -> list[tuple[str, float, float]]:
    """Time the phases of the fast way on the inventory at *path* (each must succeed)."""
    files = inventory_files(path)
    read_wall, read_cpu, sections = timed(lambda: read_plain(files))
    if sections is None:
        raise SystemExit("the fast way could not vouch for the synthetic inventory")
    valid_wall, valid_cpu, records = timed(lambda: validate_plain(*sections))
    if records is None:
        raise SystemExit("the synthetic inventory is not valid")
    check_wall, check_cpu, clean = timed(lambda: cross_check_plain(*sections, *records, date.today()))
    if not clean:
        raise SystemExit("the cross-checks found problems in the synthetic inventory")
    return [
        ("  read YAML (yaml-rs, vouched by libyaml)", read_wall, read_cpu),
        ("  validate (pydantic, one batch per section)", valid_wall, valid_cpu),
        ("  cross-check", check_wall, check_cpu),
    ]


def located(path: Path) -> list[tuple[str, float, float]]:
    """Time the located reading of every file, then the whole located load (the reference way)."""
    files = inventory_files(path)
    read_wall, read_cpu, _data = timed(lambda: [load_yaml(file) for file in files])
    import akm.inventory.load as load

    load_wall, load_cpu, _inv = timed(lambda: load._load_located(files, path, date.today()))
    return [
        ("  located: read YAML (PyYAML, lines kept)", read_wall, read_cpu),
        ("  located: whole load (read, validate, check)", load_wall, load_cpu),
    ]


def main(argv: list[str] | None = None) -> int:
    """Run the bench and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--assets", type=int, default=50_000, help="assets in the synthetic inventory")
    parser.add_argument("--runs", type=int, default=3, help="end-to-end runs; the best is kept")
    parser.add_argument("--located", action="store_true", help="also time the located (reference) reading")
    args = parser.parse_args(argv)
    rows: list[tuple[str, float, float | None, str]] = []
    # The processes are run while this one is still small: a spawned child reports the peak memory of
    # the address space it started in.
    wall, cpu, rss = best_check(REPO / "inventory" / "production", args.runs)
    production = (wall, cpu, f"{rss / 1024:.0f}")
    with tempfile.TemporaryDirectory(prefix="akm-bench-") as tmp:
        path = synthetic.write(Path(tmp), assets=args.assets)
        size = sum(f.stat().st_size for f in path.iterdir()) / 2**20
        wall, cpu, rss = best_check(path, args.runs)
        rows.append((f"akm inventory check, {args.assets:,} assets ({size:.0f} MiB)", wall, cpu, f"{rss / 1024:.0f}"))
        for name, phase_wall, phase_cpu in phases(path):
            rows.append((name, phase_wall, phase_cpu, ""))
        if args.located:
            for name, phase_wall, phase_cpu in located(path):
                rows.append((name, phase_wall, phase_cpu, ""))
    rows.append(("akm inventory check, production inventory", *production))

    header = ("what", "wall s", "CPU s", "wall / 2 s goal", "peak MiB")
    table = [header] + [
        (name, f"{wall:.2f}", "" if cpu is None else f"{cpu:.2f}", f"{wall / GOAL:.2f}", rss)
        for name, wall, cpu, rss in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for k, row in enumerate(table):
        cells = [row[0].ljust(widths[0])] + [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        print("  ".join(cells))
        if k == 0:
            print("  ".join("-" * width for width in widths))
    load = os.getloadavg()[0]
    print(f"\nbest of {args.runs} end-to-end runs; goal {GOAL:.0f} s; load average {load:.1f} on {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
