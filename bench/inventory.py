"""How fast is ``akm inventory check``, and how much memory does it take?

Two anchors, each measured in the same run:

* issue 2's goal: a 50,000-asset inventory checked in under 2 s;
* issue 19's goals: a 50 MB inventory file checked in at most 5 s and 500 MB of peak memory, whatever
  is in it (the issue measured 35 s and 1.9 GB for such a file before). It is measured three times:
  valid (the fast way: libyaml's events made into plain values by ``akm._yamlplain``); with one mistake
  added at the end, whose item alone is then read again the located way to find file, line and field;
  and with a serial number written as a number YAML 1.1 reads in octal (``serial: 0123``), which the
  fast way keeps as the text written and reports itself.

The bench writes the synthetic inventories (:mod:`akm.inventory.synthetic`) into a temporary directory,
then measures:

* ``akm inventory check`` end to end, as a separate process, the median of ``--runs`` (wall clock, the
  CPU time of that run, and the median peak resident memory from ``wait4``'s rusage of each child,
  ``ru_maxrss``);
* the phases of the fast way in this process: reading the YAML (each piece of a large file validated as
  soon as it is read), validating the rest, cross-checking;
* the same check of the shipped production inventory;
* with ``--located``, the located reading of the 50,000-asset files in this process.

It prints one table per anchor with the ratio of each figure to its goal. Nothing is asserted: the
machine may be shared and busy, which is why the CPU time is printed beside the wall clock.

    python bench/inventory.py [--assets 50000] [--megabytes 50] [--runs 3] [--located]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from akm.inventory import inventory_files, synthetic
from akm.inventory.load import cross_check, read, validate, written_ids
from akm.yamlsource import gc_paused, load_yaml

GOAL = 2.0
LARGE_TIME, LARGE_MEMORY = 5.0, 500
BEFORE_TIME, BEFORE_MEMORY = 35.0, 1900
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


def median_check(path: Path, runs: int, expected: int = 0) -> tuple[float, float, int]:
    """The median of *runs* checks: wall (and the CPU of that run) and peak memory.

    Every run must end with the exit code *expected* (1: the inventory has a problem)."""
    results = [run_check(path) for _ in range(runs)]
    failed = [code for *_rest, code in results if code != expected]
    if failed:
        raise SystemExit(f"akm inventory check {path} ended with exit code {failed[0]}, not {expected}")
    wall, cpu, _rss, _code = sorted(results)[len(results) // 2]
    return wall, cpu, sorted(rss for _w, _c, rss, _code in results)[len(results) // 2]


def timed(function: Callable[[], Any]) -> tuple[float, float, Any]:
    """Call *function* with the collector paused as the loader does: wall seconds, CPU seconds, result."""
    with gc_paused():
        wall, cpu = time.perf_counter(), time.process_time()
        result = function()
        return time.perf_counter() - wall, time.process_time() - cpu, result


def phases(path: Path) -> list[tuple[str, float, float]]:
    """Time the phases of the fast way on the inventory at *path* (each must find nothing)."""
    files = inventory_files(path)
    read_wall, read_cpu, (lists, singles, problems) = timed(lambda: read(files))
    ids = written_ids(lists)
    valid_wall, valid_cpu, records = timed(lambda: validate(lists, singles, problems))
    check_wall, check_cpu, found = timed(lambda: cross_check(*records, singles, ids, date.today()))
    if problems or found:
        raise SystemExit(f"the synthetic inventory has problems: {[*problems, *found][0].render()}")
    return [
        ("  read YAML (libyaml events to plain values), validated as read", read_wall, read_cpu),
        ("  validate what was not validated as read", valid_wall, valid_cpu),
        ("  cross-check", check_wall, check_cpu),
    ]


def located(path: Path) -> list[tuple[str, float, float]]:
    """Time the located reading of every file, then the whole located load (the reference way)."""
    files = inventory_files(path)
    read_wall, read_cpu, _data = timed(lambda: [load_yaml(file) for file in files])
    import akm.inventory.load as load

    load_wall, load_cpu, _inv = timed(lambda: load._load(files, path, date.today(), fast=False))
    return [
        ("  located: read YAML (libyaml events, lines kept)", read_wall, read_cpu),
        ("  located: whole load (read, validate, check)", load_wall, load_cpu),
    ]


def print_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for k, row in enumerate([header, *rows]):
        cells = [row[0].ljust(widths[0])] + [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        print("  ".join(cells))
        if k == 0:
            print("  ".join("-" * width for width in widths))


def sized(directory: Path, megabytes: float) -> tuple[Path, int]:
    """Write a synthetic inventory whose assets file is *megabytes* MiB; return it and its asset count."""
    sample = synthetic.write(directory / "sample", assets=1000)
    per_asset = (sample / "assets.yml").stat().st_size / 1000
    assets = round(megabytes * 2**20 / per_asset)
    return synthetic.write(directory / "large", assets=assets), assets


def with_mistake(path: Path, assets: int, directory: Path) -> Path:
    """A copy of the inventory at *path* with one more asset, in a file read after the others, whose MAC
    is the broadcast address: the check must then read everything the located way to say where the
    mistake is."""
    shutil.copytree(path, directory)
    segment, ip = synthetic.spare_address(assets)
    (directory / "zz-mistake.yml").write_text(MISTAKE.format(segment=segment, ip=ip))
    return directory


def with_octal(path: Path, directory: Path) -> Path:
    """A copy of the inventory at *path* whose first serial number is written ``0123``: YAML 1.1 reads it
    as the octal number 83, which the check reports. The large file is copied a line at a time, so that
    this process stays small (see :func:`main`)."""
    directory.mkdir()
    for source in path.iterdir():
        with source.open() as lines, (directory / source.name).open("w") as out:
            changed = source.name != "assets.yml"
            for line in lines:
                if not changed and line.startswith("    serial: "):
                    line, changed = "    serial: 0123\n", True
                out.write(line)
    return directory


MISTAKE = """---
assets:
  - inventory_no: AKM-999999
    hostname: pc-mistake
    kind: workstation
    model: Lenovo ThinkCentre neo 50s
    serial: SN-MISTAKE
    interfaces:
      - {{segment: {segment}, ip: {ip}, mac: "ff:ff:ff:ff:ff:ff"}}
    department: akt
    room: xona-1
    responsible: i.tech
    purchased: 2024-01-10
    status: in_use
    os: debian12
"""


def main(argv: list[str] | None = None) -> int:
    """Run the bench and print its tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--assets", type=int, default=50_000, help="assets in the synthetic inventory")
    parser.add_argument("--megabytes", type=float, default=50, help="size of the large inventory file, in MiB")
    parser.add_argument("--runs", type=int, default=3, help="end-to-end runs; the median is kept")
    parser.add_argument("--located", action="store_true", help="also time the located (reference) reading")
    args = parser.parse_args(argv)
    rows: list[tuple[str, float, float | None, str]] = []
    large: list[tuple[str, float, float, int]] = []
    # The processes are run while this one is still small: a spawned child reports the peak memory of
    # the address space it started in.
    wall, cpu, rss = median_check(REPO / "inventory" / "production", args.runs)
    production = (wall, cpu, f"{rss / 1024:.0f}")
    with tempfile.TemporaryDirectory(prefix="akm-bench-") as tmp:
        path, assets = sized(Path(tmp), args.megabytes)
        size = (path / "assets.yml").stat().st_size / 2**20
        large.append((f"valid, {assets:,} assets ({size:.0f} MiB file)", *median_check(path, args.runs)))
        broken = with_mistake(path, assets, Path(tmp) / "broken")
        octal = with_octal(path, Path(tmp) / "octal")
        shutil.rmtree(path)
        large.append(("the same with one mistake (its item located)", *median_check(broken, args.runs, expected=1)))
        shutil.rmtree(broken)
        large.append(("the same with serial: 0123 (octal in YAML 1.1)", *median_check(octal, args.runs, expected=1)))
        shutil.rmtree(octal)
        path = synthetic.write(Path(tmp) / "issue2", assets=args.assets)
        size = sum(f.stat().st_size for f in path.iterdir()) / 2**20
        wall, cpu, rss = median_check(path, args.runs)
        rows.append((f"akm inventory check, {args.assets:,} assets ({size:.0f} MiB)", wall, cpu, f"{rss / 1024:.0f}"))
        for name, phase_wall, phase_cpu in phases(path):
            rows.append((name, phase_wall, phase_cpu, ""))
        if args.located:
            for name, phase_wall, phase_cpu in located(path):
                rows.append((name, phase_wall, phase_cpu, ""))
    rows.append(("akm inventory check, production inventory", *production))

    print(f"Issue 19: a {args.megabytes:.0f} MiB inventory file, goals {LARGE_TIME:.0f} s and {LARGE_MEMORY} MB")
    print(f"(before: {BEFORE_TIME:.0f} s and {BEFORE_MEMORY / 1000:.1f} GB)\n")
    goals = (f"wall / {LARGE_TIME:.0f} s", "peak MB", f"peak / {LARGE_MEMORY} MB")
    header = ("akm inventory check", "wall s", "CPU s", *goals)
    print_table(
        header,
        [
            (name, f"{wall:.2f}", f"{cpu:.2f}", f"{wall / LARGE_TIME:.2f}", f"{kib * 1024 / 1e6:.0f}",
             f"{kib * 1024 / 1e6 / LARGE_MEMORY:.2f}")
            for name, wall, cpu, kib in large
        ],
    )  # fmt: skip
    print(f"\nIssue 2: {args.assets:,} assets, goal {GOAL:.0f} s\n")
    print_table(
        ("what", "wall s", "CPU s", "wall / 2 s goal", "peak MiB"),
        [
            (name, f"{wall:.2f}", "" if cpu is None else f"{cpu:.2f}", f"{wall / GOAL:.2f}", rss)
            for name, wall, cpu, rss in rows
        ],
    )
    load = os.getloadavg()[0]
    print(f"\nmedian of {args.runs} end-to-end runs; load average {load:.1f} on {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
