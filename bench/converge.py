"""Bench of a no-op re-converge of the whole lab: Ansible's defaults versus the project's ansible.cfg (issue 4).

Anchor: the issue's goal that the tuned settings (pipelining, ControlPersist, fact caching, forks; here also
Mitogen's strategy) make a re-converge that changes nothing at least 3x faster than Ansible's defaults.
Both runs use the same playbook, inventory, roles and plugins; the "defaults" configuration keeps only
what is needed to find them (and host_key_checking: both check the host keys the lab inventory pins), so
every tuning setting falls back to Ansible's default value. A warm-up converge first brings the lab to the
converged state, and each measured run must report ``changed=0`` on every host, so both columns time the
same work.

Needs root and a running lab (``make lab``):

    python bench/converge.py [--playbook playbooks/site.yml] [--repeat 1] [--no-warm-up]
"""

from __future__ import annotations

import argparse
import configparser
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LAB = REPO / "inventory" / "lab" / "akm.yml"
# Settings that only tell Ansible where the project's pieces are (or how SSH checks host keys):
# the defaults column keeps these and nothing else.
LOCATING = {
    "defaults": ("inventory_plugins", "roles_path", "filter_plugins", "host_key_checking", "interpreter_python"),
    "inventory": ("enable_plugins", "unparsed_is_failed"),
}
TUNING = (
    ("defaults", "strategy"),
    ("defaults", "forks"),
    ("defaults", "gathering"),
    ("defaults", "fact_caching"),
    ("ssh_connection", "pipelining"),
    ("ssh_connection", "ssh_args"),
)


def defaults_config(tuned: Path, target: Path) -> None:
    """Write *target*: the tuned configuration reduced to the settings that locate the project."""
    source = configparser.ConfigParser(interpolation=None)
    source.read(tuned)
    reduced = configparser.ConfigParser(interpolation=None)
    for section, keys in LOCATING.items():
        reduced.add_section(section)
        for key in keys:
            if source.has_option(section, key):
                value = source.get(section, key)
                if section == "defaults" and key.endswith(("_plugins", "_path")):
                    value = str(REPO / value)
                reduced.set(section, key, value)
    with target.open("w") as handle:
        reduced.write(handle)


def converge(config: Path, playbook: str, cache: Path) -> tuple[float, dict[str, int]]:
    """Run *playbook* on the lab with *config*; return (seconds, changed tasks per host)."""
    env = dict(os.environ, ANSIBLE_CONFIG=str(config), ANSIBLE_NOCOLOR="1")
    # The fact cache a specialist has after the last converge (the defaults configuration has none).
    env["ANSIBLE_CACHE_PLUGIN_CONNECTION"] = str(cache)
    started = time.perf_counter()
    done = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(LAB), playbook],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{playbook} failed with {config.name}:\n{done.stdout[-3000:]}")
    changed = {
        host: int(re.search(r"changed=(\d+)", counts).group(1))
        for host, counts in re.findall(r"^(\S+)\s+:\s+(ok=.*)$", done.stdout, flags=re.MULTILINE)
    }
    return seconds, changed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--playbook", default="playbooks/site.yml")
    parser.add_argument("--repeat", type=int, default=1, help="measured runs per configuration")
    parser.add_argument("--no-warm-up", dest="warm_up", action="store_false", help="the lab is converged already")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/converge.py needs root and a running lab (make lab)")
    tuned = REPO / "ansible.cfg"
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        defaults = tmp / "defaults.cfg"
        defaults_config(tuned, defaults)
        if args.warm_up:
            seconds, _ = converge(tuned, args.playbook, tmp / "facts")
            print(f"warm-up converge: {seconds:.1f} s")
        results = {}
        for name, config in (("Ansible defaults", defaults), ("tuned ansible.cfg", tuned)):
            times = []
            for _run in range(args.repeat):
                seconds, changed = converge(config, args.playbook, tmp / "facts")
                if any(changed.values()):
                    sys.exit(f"not a no-op run with {name}: changed {changed}")
                times.append(seconds)
            results[name] = times
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    base = statistics.median(results["Ansible defaults"])
    print(f"\nNo-op re-converge of {args.playbook} on the lab ({len(changed)} hosts), median of {args.repeat}:")
    print(f"{'configuration':<20} {'wall s':>8} {'speed-up':>9}")
    for name, times in results.items():
        median = statistics.median(times)
        print(f"{name:<20} {median:>8.1f} {base / median:>8.2f}x")
    print("tuned settings: " + ", ".join(f"{s}.{k}" for s, k in TUNING))
    print(f"peak RSS of one ansible-playbook run: {peak:.0f} MiB; goal: tuned >= 3x faster than defaults")
    return 0


if __name__ == "__main__":
    sys.exit(main())
