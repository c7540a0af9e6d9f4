"""Bench of the drift collector (pyinfra) against Ansible's fact gathering on the lab (issues 4 and 8).

Anchor: ``ansible -i inventory/lab/akm.yml linux -m ansible.builtin.setup``, run as the project runs
Ansible (its ansible.cfg: pipelining, SSH ControlPersist of 60 s, so every run of Ansible after the
first reuses open SSH connections, while each ``akm report facts`` opens new ones). Both run as
commands, start to finish, alternately, ``--repeat`` times, on every Debian machine of the lab. As a
check of what each saw, the interfaces and MAC addresses each tool reports are compared with the
inventory: in a systemd-nspawn machine ``/sys/class/net`` is the host's sysfs, which Ansible's setup
reads, while the collector asks the machine's own network namespace (``SIOCGIFHWADDR``).

Needs root and the running lab (``make lab``); under the shared-lab rule run it inside
``flock /tmp/akm-lab.lock``.

    python bench/facts.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from akm.inventory import load_inventory
from akm.lab import lab

ROOT = Path(__file__).resolve().parents[1]
INVENTORY = ROOT / "inventory" / "lab"
BIN = Path(sys.executable).parent


def timed(command: list[str], env: dict) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return elapsed, done.stdout


def ansible_macs(output: str) -> dict[str, dict[str, str]]:
    """Interface → MAC per host, from the json callback's output of the ad-hoc setup."""
    macs = {}
    for play in json.loads(output)["plays"]:
        for task in play["tasks"]:
            for host, result in task["hosts"].items():
                facts = result["ansible_facts"]
                macs[host] = {
                    name: facts[f"ansible_{name.replace('-', '_')}"]["macaddress"]
                    for name in facts["ansible_interfaces"]
                    if name != "lo" and "macaddress" in facts.get(f"ansible_{name.replace('-', '_')}", {})
                }
    return macs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/facts.py needs root (the lab's key): skipped")
        return 0
    plan = lab.load_plan(INVENTORY)
    if not lab.is_running(plan):
        print("the lab is not up (make lab): bench/facts.py skipped")
        return 0
    env = {
        **os.environ,
        "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
        "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
        "AKM_LANG": "en",
    }
    pyinfra_times, ansible_times = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(args.repeat):
            evidence = Path(tmp) / f"run{run}"
            seconds, _out = timed(
                [str(BIN / "akm"), "report", "facts", "--inventory", str(INVENTORY), "--evidence", str(evidence)],
                env,
            )
            pyinfra_times.append(seconds)
            record = json.loads(next((evidence / "drift").glob("facts-*.json")).read_text())
            seconds, out = timed(
                [str(BIN / "ansible"), "-i", str(INVENTORY / "akm.yml"), "linux", "-m", "ansible.builtin.setup"],
                env,
            )
            ansible_times.append(seconds)
    hosts = sorted(record["hosts"])
    inventory = load_inventory(INVENTORY)
    expected = {a.hostname: {i.name: i.mac for i in a.interfaces if i.mac} for a in inventory.assets}
    seen_by_ansible = ansible_macs(out)
    match_pyinfra = sum(record["hosts"][h]["interfaces"] == expected[h] for h in hosts)
    match_ansible = sum(seen_by_ansible.get(h) == expected[h] for h in hosts)
    print(f"Facts of {len(hosts)} lab machines ({', '.join(hosts)}), {args.repeat} runs each, alternating\n")
    print(f"| {'tool':<58} | {'first, s':>8} | {'median, s':>9} | {'best, s':>7} |")
    print(f"|{'-' * 60}|{'-' * 10}|{'-' * 11}|{'-' * 9}|")
    rows = [
        ("akm report facts (pyinfra 3.10, one command per host)", pyinfra_times),
        ("ansible linux -m ansible.builtin.setup (ansible-core 2.19)", ansible_times),
    ]
    for name, times in rows:
        print(f"| {name:<58} | {times[0]:>8.2f} | {statistics.median(times):>9.2f} | {min(times):>7.2f} |")
    print(
        f"\nansible / pyinfra: {statistics.median(ansible_times) / statistics.median(pyinfra_times):.1f}x by median, "
        f"{ansible_times[0] / pyinfra_times[0]:.1f}x on the first run; pyinfra's own collection inside the "
        f"command took {record['duration_s']:.2f} s"
    )
    print(
        f"Hosts whose interfaces and MAC addresses are exactly the inventory's: pyinfra {match_pyinfra} of "
        f"{len(hosts)}, Ansible {match_ansible} of {len(hosts)}"
    )
    if match_ansible < len(hosts):
        host = next(h for h in hosts if seen_by_ansible.get(h) != expected[h])
        print(f"  e.g. {host}: Ansible's setup reports {seen_by_ansible.get(host)} (it reads /sys/class/net)")
    return 0 if match_pyinfra == len(hosts) else 1


if __name__ == "__main__":
    raise SystemExit(main())
