"""Benchmark of the users' history: our engine (C scanner + DuckDB) against SARG on the same generated log.

    python bench/reports.py                 # CI size: 1,000,000 lines
    python bench/reports.py --lines 10000000

Both tools run as child processes on the same file, never at the same time; wall time, CPU time and
peak resident memory are measured with GNU time. Ours runs ``--repeat`` times (default 3) around the
single SARG run (which takes minutes) and the table shows the median: on a shared machine one
few-second run is at the mercy of a moment's load, SARG's long run averages it. SARG is run with
only the reports that correspond to ours (top users, top sites, denied) and with exact byte counts;
its per-host totals (requests and bytes per client address, from its top-users table) must equal ours
exactly, or the run fails. Goal (issue 8): ours at least 25 times faster.
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
from datetime import UTC, datetime
from pathlib import Path

from akm.report.squidgen import generate

GOAL = 25.0

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
        help="runs of ours, around the one SARG run; the table shows their median (default 3)",
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
        start = time.perf_counter()
        generate(log, args.lines, clients, domains, datetime(2026, 11, 16, tzinfo=UTC), 7 * 86400)
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
        ours_argv = [sys.executable, "-m", "akm.report.squidlog", str(log), "--memory-limit", args.memory_limit]
        runs = []
        for turn in range(args.repeat):
            if turn == args.repeat // 2:
                sarg_time, sarg_cpu, sarg_rss, sarg_rc = run_measured([sarg, "-f", str(conf)])
            with ours_json.open("w") as handle:
                runs.append(run_measured(ours_argv, stdout=handle))
        if args.repeat == 0:
            sarg_time, sarg_cpu, sarg_rss, sarg_rc = run_measured([sarg, "-f", str(conf)])
        ours_rc = max((run[3] for run in runs), default=1)
        if ours_rc or sarg_rc:
            print(f"a run failed: ours={ours_rc} sarg={sarg_rc}", file=sys.stderr)
            return 1
        ours_time = statistics.median(run[0] for run in runs)
        ours_cpu = statistics.median(run[1] for run in runs)
        ours_rss = max(run[2] for run in runs)

        ours = json.loads(ours_json.read_text())["by_host"]
        theirs = sarg_hosts(out)
        differences = sorted(
            (ip, ours.get(ip), theirs.get(ip)) for ip in set(ours) | set(theirs) if ours.get(ip) != theirs.get(ip)
        )
        ratio = sarg_time / ours_time

        print(
            f"log: {args.lines:,} lines, {size / 2**20:,.0f} MiB, {len(clients)} hosts, "
            f"{len(domains)} sites (generated in {generated:.1f} s); cores: {os.cpu_count()}, "
            f"load average before: {os.getloadavg()[0]:.2f}"
        )
        print()
        print(f"| {'tool':<34} | {'wall, s':>8} | {'CPU, s':>8} | {'peak RSS, MiB':>13} | {'lines/s (wall)':>14} |")
        print(f"|{'-' * 36}|{'-' * 10}|{'-' * 10}|{'-' * 15}|{'-' * 16}|")
        for name, seconds, cpu, rss in (
            ("SARG 2.4 (topusers+sites+denied)", sarg_time, sarg_cpu, sarg_rss),
            ("akm squidlog (C scan + DuckDB)", ours_time, ours_cpu, ours_rss),
        ):
            print(f"| {name:<34} | {seconds:8.2f} | {cpu:8.2f} | {rss / 1024:13.0f} | {args.lines / seconds:14,.0f} |")
        print()
        verdict = "met" if ratio >= GOAL else "NOT met"
        print(f"speed ratio SARG/ours, wall time: {ratio:.1f}x (goal >= {GOAL:.0f}x: {verdict})")
        print(f"speed ratio SARG/ours, CPU time:  {sarg_cpu / ours_cpu:.1f}x")
        print(
            f"per-host totals: {len(ours)} hosts ours, {len(theirs)} SARG; "
            f"{'identical (requests and bytes)' if not differences else f'{len(differences)} differ'}"
        )
        print(
            "our runs (wall/CPU s): "
            + ", ".join(f"{run[0]:.2f}/{run[1]:.2f}" for run in runs)
            + f"; load average after: {os.getloadavg()[0]:.2f}"
        )
        for ip, mine, other in differences[:10]:
            print(f"  {ip}: ours {mine} SARG {other}")
        return 1 if differences else 0
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
