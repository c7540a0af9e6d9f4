"""Benchmark of the users' history against SARG on the same generated log: our engine (C scanner +
DuckDB) alone, and the whole ``akm report weekly`` command (inventory, access policy, engine, DOCX, XLSX
and HTML).

    python bench/reports.py                 # CI size: 1,000,000 lines
    python bench/reports.py --lines 10000000

Every tool runs as a child process on the same file, never two at the same time; wall time, CPU time
and peak resident memory are measured with GNU time. The engine and the report run ``--repeat`` times
each (default 3) around the single SARG run (which takes minutes) and the table shows their medians: on a
shared machine one few-second run is at the mercy of a moment's load, SARG's long run averages it. The
log covers exactly the report's week (2026-W47 in the lab inventory's time zone); its clients include
the lab's computers, so the report names some of them. SARG is run with only the reports that
correspond to ours (top users, top sites, denied) and with exact byte counts; its per-host totals
(requests and bytes per client address, from its top-users table) must equal the engine's exactly and
the report's as the report shows them (requests exactly, volume in MiB to one decimal), or the run
fails. Goals (issues 8 and 19): the engine and the whole report each at least 25 times faster than SARG.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from akm.inventory import load_inventory
from akm.report import periods
from akm.report.squidgen import generate

GOAL = 25.0
REPO = Path(__file__).resolve().parents[1]
INVENTORY = REPO / "inventory" / "lab"
POLICY = REPO / "policies" / "access" / "lab"
WEEK = "2026-W47"
MIB = 2**20

SARG_CONF = """\
access_log {log}
output_dir {out}
temporary_dir {tmp}
user_ip yes
records_without_userid ip
resolve_ip no
date_format e
lastlog 0
remove_temp_files yes
index no
overwrite_report yes
use_comma no
displayed_values bytes
exclude_codes {empty}
max_elapsed 0
report_type topusers topsites denied
topuser_num 0
topsites_num 100
show_successful_message no
show_read_statistics no
graphs no
"""


def run_measured(argv: list[str], stdout=subprocess.DEVNULL) -> tuple[float, float, int, int]:
    """Run *argv* under GNU time; return (wall seconds, CPU seconds, peak RSS in KiB, exit status).

    CPU time (user + system) is printed beside wall time because the build machine is shared: wall
    time depends on what else runs, CPU time much less so.

    GNU time is a small process, so the peak it reports is the tool's own (with the children it
    waited for), not the memory of this Python process that a fork would carry over.
    """
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        process = subprocess.run(
            ["/usr/bin/time", "-f", "%e %U %S %M", "-o", report.name, *argv],
            stdout=stdout,
            stderr=subprocess.PIPE,
            check=False,
        )
        if process.returncode:
            sys.stderr.write(process.stderr.decode(errors="replace")[-2000:])
        seconds, user, system, kib = report.read().split()[-4:]
    return float(seconds), float(user) + float(system), int(kib), process.returncode


def sarg_hosts(out_dir: Path) -> dict[str, list[int]]:
    """Per-address (requests, bytes) from SARG's top-users table (its ``index.html`` for the period)."""
    pages = [p for p in out_dir.glob("*/index.html")]
    if len(pages) != 1:
        raise SystemExit(f"SARG wrote {len(pages)} period reports in {out_dir}; expected one")
    totals = {}
    for row in re.findall(r"<tr>(.*?)</tr>", pages[0].read_text(errors="replace"), re.S):
        cells = [html.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row)]
        if len(cells) >= 4 and re.fullmatch(r"[0-9a-fA-F.:]+", cells[1]) and cells[0].isdigit():
            totals[cells[1]] = [int(re.sub(r"\D", "", cells[2])), int(re.sub(r"\D", "", cells[3]))]
    return totals


def report_hosts(workbook: Path) -> dict[str, list]:
    """Per computer (requests, MiB) from the report's users_hosts sheet: the inventory's name, or the
    address of a computer the inventory does not know."""
    from openpyxl import load_workbook

    sheet = load_workbook(workbook, read_only=True)["users_hosts"]
    return {row[0]: [row[2], row[3]] for row in sheet.iter_rows(min_row=3, values_only=True)}


def as_report_shows(totals: dict[str, list[int]], inventory) -> dict[str, list]:
    """Per-address (requests, bytes) summed per computer as the report names it, bytes in MiB to one
    decimal."""
    names = {str(i.ip): a.hostname for a in inventory.assets for i in a.interfaces if i.ip}
    summed: dict[str, list[int]] = {}
    for ip, (requests, size) in totals.items():
        found = summed.setdefault(names.get(ip, ip), [0, 0])
        found[0] += requests
        found[1] += size
    return {key: [requests, round(size / MIB, 1)] for key, (requests, size) in summed.items()}


def differences(ours: dict, theirs: dict) -> list[tuple]:
    return sorted((k, ours.get(k), theirs.get(k)) for k in set(ours) | set(theirs) if ours.get(k) != theirs.get(k))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000, help="log lines (issue goal: 10000000)")
    parser.add_argument("--hosts", type=int, default=200)
    parser.add_argument("--sites", type=int, default=2000)
    parser.add_argument("--memory-limit", default="1GB", help="DuckDB memory limit of our engine")
    parser.add_argument("--keep", type=Path, help="keep the work files in this directory")
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="runs of the engine and of the report, around the one SARG run; the table shows medians (default 3)",
    )
    args = parser.parse_args()
    sarg = shutil.which("sarg")
    if not sarg:
        print("sarg is not installed: apt-get install sarg (make deps)", file=sys.stderr)
        return 2

    work = Path(tempfile.mkdtemp(prefix="akm-bench-reports-")) if not args.keep else args.keep
    work.mkdir(parents=True, exist_ok=True)
    try:
        log = work / "access.log"
        clients = [
            (f"198.18.{20 + 10 * (k % 2)}.{10 + k // 2}", f"user{k:03d}" if k % 3 == 0 else "-")
            for k in range(args.hosts)
        ]
        domains = [f"site{k}.example.uz" for k in range(args.sites)]
        inventory = load_inventory(INVENTORY)
        week_start, week_end = periods.parse("weekly", WEEK, date(2026, 12, 1)).bounds(inventory.centre.timezone)
        start = time.perf_counter()
        generate(log, args.lines, clients, domains, week_start, int((week_end - week_start).total_seconds()))
        generated = time.perf_counter() - start
        size = log.stat().st_size

        out, tmp, empty = work / "sarg-out", work / "sarg-tmp", work / "empty"
        for directory in (out, tmp):
            shutil.rmtree(directory, ignore_errors=True)
            directory.mkdir()
        empty.write_text("")
        conf = work / "sarg.conf"
        conf.write_text(SARG_CONF.format(log=log, out=out, tmp=tmp, empty=empty))

        ours_json = work / "ours.json"
        engine_argv = [sys.executable, "-m", "akm.report.squidlog", str(log), "--memory-limit", args.memory_limit]
        report_out = work / "report"
        report_argv = [
            *(sys.executable, "-m", "akm.cli", "report", "weekly", "--period", WEEK),
            *("--inventory", str(INVENTORY), "--access-policy", str(POLICY), "--access-log", str(log)),
            *("--rules", str(REPO / "policies" / "rules"), "--out", str(report_out)),
        ]
        engine_runs, report_runs = [], []
        for turn in range(args.repeat):
            if turn == args.repeat // 2:
                sarg_run = run_measured([sarg, "-f", str(conf)])
            with ours_json.open("w") as handle:
                engine_runs.append(run_measured(engine_argv, stdout=handle))
            report_runs.append(run_measured(report_argv))
        if args.repeat == 0:
            sarg_run = run_measured([sarg, "-f", str(conf)])
        failed = {
            "engine": max((run[3] for run in engine_runs), default=1),
            "report": max((run[3] for run in report_runs), default=1),
            "sarg": sarg_run[3],
        }
        if any(failed.values()):
            print(f"a run failed: {failed}", file=sys.stderr)
            return 1

        theirs = sarg_hosts(out)
        engine_differ = differences(json.loads(ours_json.read_text())["by_host"], theirs)
        (workbook,) = report_out.glob(f"weekly-{WEEK}.xlsx")
        report_differ = differences(report_hosts(workbook), as_report_shows(theirs, inventory))

        def median(runs: list[tuple], field: int) -> float:
            return statistics.median(run[field] for run in runs)

        print(
            f"log: {args.lines:,} lines, {size / 2**20:,.0f} MiB, {len(clients)} hosts, "
            f"{len(domains)} sites (generated in {generated:.1f} s); cores: {os.cpu_count()}, "
            f"load average before: {os.getloadavg()[0]:.2f}"
        )
        print()
        print(
            f"| {'tool':<44} | {'wall, s':>8} | {'CPU, s':>8} | {'peak RSS, MiB':>13} | {'lines/s (wall)':>14} "
            f"| {'SARG/ours, wall':>15} | {'SARG/ours, CPU':>14} |"
        )
        print(f"|{'-' * 46}|{'-' * 10}|{'-' * 10}|{'-' * 15}|{'-' * 16}|{'-' * 17}|{'-' * 16}|")
        rows = (
            ("SARG 2.4 (topusers+sites+denied)", sarg_run[0], sarg_run[1], sarg_run[2]),
            (
                "akm engine (C scan + DuckDB), median of runs",
                *(median(engine_runs, i) for i in range(2)),
                max(run[2] for run in engine_runs),
            ),
            (
                "akm report weekly (DOCX+XLSX+HTML), median",
                *(median(report_runs, i) for i in range(2)),
                max(run[2] for run in report_runs),
            ),
        )
        for name, seconds, cpu, rss in rows:
            ratios = (
                ("", "") if name.startswith("SARG") else (f"{sarg_run[0] / seconds:.1f}x", f"{sarg_run[1] / cpu:.1f}x")
            )
            print(
                f"| {name:<44} | {seconds:8.2f} | {cpu:8.2f} | {rss / 1024:13.0f} | {args.lines / seconds:14,.0f} "
                f"| {ratios[0]:>15} | {ratios[1]:>14} |"
            )
        print()
        for name, runs in (("engine", engine_runs), ("whole report", report_runs)):
            ratio = sarg_run[0] / median(runs, 0)
            verdict = "met" if ratio >= GOAL else "NOT met"
            print(
                f"{name}: SARG/ours {ratio:.1f}x by wall time, {sarg_run[1] / median(runs, 1):.1f}x by CPU time "
                f"(goal >= {GOAL:.0f}x: {verdict}); runs (wall/CPU s): "
                + ", ".join(f"{run[0]:.2f}/{run[1]:.2f}" for run in runs)
            )
        for name, found in (("engine", engine_differ), ("report", report_differ)):
            print(
                f"per-host totals, {name} against SARG ({len(theirs)} hosts): "
                f"{'identical' if not found else f'{len(found)} differ'}"
            )
            for ip, mine, other in found[:10]:
                print(f"  {ip}: ours {mine} SARG {other}")
        print(f"load average after: {os.getloadavg()[0]:.2f}")
        return 1 if engine_differ or report_differ else 0
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
