"""Bench of the virtual library: bring-up time (cold image, warm), memory per machine, reset time.

Anchor (issue 3): a systemd-nspawn machine boots in about 10 s and takes about 100 MB of memory.

    .venv/bin/python bench/lab.py                 # warm: the image exists (CI-sized, about a minute)
    .venv/bin/python bench/lab.py --cold-image    # also rebuild the image through the package cache
    .venv/bin/python bench/lab.py --resets 5      # more reset samples

Needs root. The lab is left as it was found (up or down). Memory is the summed PSS of each machine's
processes (shared image pages divided fairly); RSS, which counts shared pages in every machine, is
shown beside it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

from akm import i18n  # noqa: E402
from akm.lab import lab  # noqa: E402

ANCHOR_BOOT_S = 10.0
ANCHOR_MEMORY_MB = 100.0


def _timed(action) -> float:
    started = time.monotonic()
    action()
    return time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inventory", type=Path, default=REPO / "inventory" / "lab")
    parser.add_argument("--cold-image", action="store_true", help="delete and rebuild the image first")
    parser.add_argument("--resets", type=int, default=3, help="reset samples (default 3)")
    args = parser.parse_args(argv)
    i18n.setup("en")
    quiet = lambda _line: None  # noqa: E731
    plan = lab.load_plan(args.inventory)
    was_up = lab.is_running(plan)
    rows: list[tuple[str, str, str]] = []

    lab.down(plan, log=quiet)
    if args.cold_image:
        cold = _timed(lambda: lab.up(plan, new_image=True, log=quiet))
        rows.append(("up, cold image (build + boot)", f"{cold:.1f} s", "-"))
        down_time = _timed(lambda: lab.down(plan, log=quiet))
    else:
        lab.up(plan, log=quiet)
        down_time = _timed(lambda: lab.down(plan, log=quiet))
    warm = _timed(lambda: lab.up(plan, log=quiet))
    per_machine = warm / len(plan.machines)
    rows.append(
        (
            f"up, warm ({len(plan.machines)} machines, parallel boot)",
            f"{warm:.1f} s",
            f"{warm / ANCHOR_BOOT_S:.2f} x one 10 s boot",
        )
    )
    rows.append(("  per machine", f"{per_machine:.1f} s", f"{per_machine / ANCHOR_BOOT_S:.2f} x 10 s"))
    rows.append(("down (power off, sweep)", f"{down_time:.1f} s", "-"))

    time.sleep(5)
    _plan, machines, _services = lab.status(plan)
    for m in machines:
        rows.append(
            (
                f"memory {m.hostname} (PSS / RSS)",
                f"{m.memory_kib / 1024:.0f} / {m.rss_kib / 1024:.0f} MiB",
                f"{m.memory_kib / 1024 / ANCHOR_MEMORY_MB:.2f} x 100 MB",
            )
        )
    mean_pss = statistics.mean(m.memory_kib for m in machines) / 1024
    rows.append(("memory, mean PSS per machine", f"{mean_pss:.0f} MiB", f"{mean_pss / ANCHOR_MEMORY_MB:.2f} x 100 MB"))

    target = next(m.hostname for m in plan.machines if not m.internet and not m.forwarding)
    samples = [lab.reset(plan, target, log=quiet) for _ in range(max(1, args.resets))]
    rows.append(
        (
            f"reset {target} (median of {len(samples)})",
            f"{statistics.median(samples):.1f} s",
            f"{statistics.median(samples) / ANCHOR_BOOT_S:.2f} x 10 s",
        )
    )

    if not was_up:
        lab.down(plan, log=quiet)
    widths = [max(len(r[i]) for r in [("measure", "value", "vs anchor"), *rows]) for i in range(3)]
    for row in [("measure", "value", "vs anchor"), *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
