"""Live facts of the Debian hosts, collected over SSH with pyinfra, for the report's Drift section.

``akm report facts --inventory DIR --evidence DIR`` connects to every Debian host in use of the
inventory (the hosts of Ansible's ``linux`` group, reached exactly as Ansible reaches them: the
inventory's management address, in the lab the lab's user and key, and the inventory's pinned host keys
only), reads

* the host name, whether it is a container (``/run/systemd/container``),
* the serial number (``/sys/class/dmi/id/product_serial``; none in a container, whose DMI is the host's,
  and none when the firmware gives a placeholder such as ``To be filled by O.E.M.``),
* the MAC address of every network interface by name (``null`` when ``python3`` is missing),
* the RAM (``MemTotal``) and the size of every disk (block devices backed by a device),
* the OS release (``/etc/os-release``),

and writes ONE evidence record (``kind: drift.facts``) per run. The machines need nothing but SSH, a POSIX shell
and ``python3`` (which Ansible needs too): the fact is one shell command reading ``/proc``, ``/sys``
and ``/etc``, with a line of Python's standard library for the interfaces (no ``ip``, ``vmstat`` or
``dmidecode``), so an unconverged machine answers as well as a converged one.

The command lives under ``akm report`` rather than ``akm inventory``: its only reader is the report, it
writes into the report's evidence directory, and the inventory commands stay offline (they never open
a connection).
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

from akm import evidence
from akm.errors import Error
from akm.i18n import _

KIND = "drift.facts"
PLACEHOLDER_SERIALS = {
    "",
    "0",
    "none",
    "n/a",
    "na",
    "not specified",
    "not applicable",
    "default string",
    "system serial number",
    "to be filled by o.e.m.",
    "0123456789",
}
"""Serials firmware writes when the maker wrote none; they say nothing about the machine."""

INTERFACES = ";".join(
    [
        "import fcntl, socket, struct",
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)",
        '[print(n, fcntl.ioctl(s, 0x8927, struct.pack("256s", n.encode()[:15]))[18:24].hex(":"))'
        " for _i, n in socket.if_nameindex()]",
    ]
)
"""The name and MAC (``SIOCGIFHWADDR``) of every interface of the host's network namespace. Not
``/sys/class/net``: a container may see its host's sysfs there (systemd-nspawn does)."""

COMMAND = "; ".join(
    [
        "echo @hostname",
        "cat /proc/sys/kernel/hostname",
        "echo @container",
        "cat /run/systemd/container 2>/dev/null",
        "echo",
        "echo @serial",
        "cat /sys/class/dmi/id/product_serial 2>/dev/null",
        "echo",
        "echo @interfaces",
        f"python3 -c '{INTERFACES}' 2>/dev/null || echo '?'",
        "echo @memory",
        "grep '^MemTotal:' /proc/meminfo",
        "echo @disks",
        'for b in /sys/block/*; do [ -e "$b/device" ] && echo "${b##*/} $(cat "$b/size")"; done',
        "echo @os",
        "cat /etc/os-release",
        "true",
    ]
)
"""One round trip per host; a POSIX shell, ``cat``, ``grep`` and ``python3`` are all it needs."""


class FactsError(Error):
    """The facts cannot be collected or written."""


def parse(lines: list[str]) -> dict:
    """Turn the output of :data:`COMMAND` into the facts of one host (the shape of the record)."""
    sections: dict[str, list[str]] = {}
    current = None
    for raw in lines:
        line = raw.strip()
        if line.startswith("@") and line[1:].isalpha():
            current = sections.setdefault(line[1:], [])
        elif line and current is not None:
            current.append(line)
    container = (sections.get("container") or [""])[0] or None
    serial = (sections.get("serial") or [""])[0]
    interfaces: dict | None = {}
    for line in sections.get("interfaces", []):
        if line == "?":
            interfaces = None
            break
        name, _sep, mac = line.partition(" ")
        mac = mac.strip().lower()
        if name != "lo" and mac and mac != "00:00:00:00:00:00":
            interfaces[name] = mac
    memory_mib = None
    for line in sections.get("memory", []):
        parts = line.split()
        if len(parts) >= 2 and parts[1].isdigit():
            memory_mib = int(parts[1]) // 1024
    disks = {}
    for line in sections.get("disks", []):
        name, _sep, sectors = line.partition(" ")
        if sectors.strip().isdigit():
            disks[name] = int(sectors) * 512
    release = {}
    for line in sections.get("os", []):
        key, sep, value = line.partition("=")
        if sep:
            release[key.strip().lower()] = value.strip().strip('"')
    if container:
        serial_note = "container"
    elif serial.lower() in PLACEHOLDER_SERIALS:
        serial_note = "unreadable" if not serial else "placeholder"
    else:
        serial_note = ""
    return {
        "hostname": (sections.get("hostname") or [""])[0],
        "container": container,
        "serial": None if serial_note else serial,
        "serial_note": serial_note,
        "interfaces": None if interfaces is None else dict(sorted(interfaces.items())),
        "memory_mib": memory_mib,
        "disks": dict(sorted(disks.items())),
        "os": {k: release[k] for k in ("id", "version_id", "pretty_name") if k in release},
    }


def host_key_reasons() -> tuple[str, str]:
    """The reasons of a host refused for its host key: another key than the pinned one, or none pinned."""
    return (
        _("its SSH host key is not the one the inventory pins"),
        _("the inventory pins no SSH host key for it"),
    )


def host_key_reason(exc: BaseException) -> str | None:
    """The reason of :func:`host_key_reasons` that pyinfra's connection error *exc* comes from (paramiko's
    refusal is its context), or ``None``."""
    from paramiko import BadHostKeyException, SSHException

    cause = exc.__context__
    if isinstance(cause, BadHostKeyException):
        return host_key_reasons()[0]
    if isinstance(cause, SSHException) and "No host key for" in str(cause):
        return host_key_reasons()[1]
    return None


def targets(inventory, ssh_key: Path | None = None, known_hosts: Path | None = None) -> dict[str, dict]:
    """The hosts to collect from and pyinfra's SSH data for each, from the inventory: the hosts and
    variables Ansible gets (:mod:`akm.inventory.ansible`), so both tools reach the same machines the
    same way, and trust the same keys: the inventory's pinned host keys (its generated ``known_hosts``),
    checked strictly, so a host whose key is not pinned, or differs, is refused.

    *ssh_key* and *known_hosts* replace what the inventory gives: the management host's timer collects
    with its own key and the known_hosts file its role copies from the control node's inventory."""
    from akm.inventory import ansible
    from akm.inventory.hostkeys import known_hosts_path

    built = ansible.build(inventory)
    known_hosts = known_hosts or known_hosts_path(inventory.root)
    hosts = {}
    for name in sorted(built["groups"].get("linux", [])):
        variables = built["hostvars"][name]
        data = {"ssh_hostname": variables["ansible_host"]}
        if "ansible_user" in variables:
            data["ssh_user"] = variables["ansible_user"]
        if "ansible_port" in variables:
            data["ssh_port"] = int(variables["ansible_port"])
        key = ssh_key or variables.get("ansible_ssh_private_key_file")
        if key:
            data["ssh_key"] = str(key)
            data["ssh_allow_agent"] = False
            data["ssh_look_for_keys"] = False
        data["ssh_known_hosts_file"] = str(known_hosts)
        data["ssh_strict_host_key_checking"] = "yes"
        hosts[name] = data
    return hosts


def collect(
    inventory,
    connect_timeout: int = 10,
    command_timeout: int = 30,
    ssh_key: Path | None = None,
    known_hosts: Path | None = None,
) -> dict:
    """Connect to every target at once (pyinfra's gevent pool), run :data:`COMMAND`, and return the
    evidence record. A host that cannot be reached or does not answer is listed under
    ``unreachable`` with the reason; it never stops the others. *ssh_key* and *known_hosts*: see
    :func:`targets`."""
    import logging

    from pyinfra.api import Config, FactBase, State
    from pyinfra.api import Inventory as PyinfraInventory
    from pyinfra.api.facts import get_fact
    from pyinfra.context import ctx_host, ctx_state

    class HostFacts(FactBase):
        """Everything the drift report compares, in one command (see :data:`COMMAND`)."""

        def command(self) -> str:
            return COMMAND

        def process(self, output):
            return parse(list(output))

    logging.getLogger("pyinfra").setLevel(logging.CRITICAL)
    if known_hosts is None:
        from akm.inventory.hostkeys import write_known_hosts

        write_known_hosts(inventory)
    wanted = targets(inventory, ssh_key, known_hosts)
    started = time.monotonic()
    facts: dict[str, dict] = {}
    unreachable: dict[str, dict] = {}
    if wanted:
        state = State(
            inventory=PyinfraInventory((list(wanted.items()), {})),
            config=Config(CONNECT_TIMEOUT=connect_timeout),
        )
        state.print_fact_output = state.print_fact_input = False

        def one(host):
            try:
                host.connect(show_errors=False, raise_exceptions=True)
            except Exception as exc:  # every connector failure is a reason, not a crash
                return host, None, host_key_reason(exc) or str(exc) or type(exc).__name__
            try:
                with ctx_state.use(state), ctx_host.use(host):
                    found = get_fact(state, host, HostFacts, kwargs={"_timeout": command_timeout})
            except Exception as exc:
                return host, None, str(exc) or type(exc).__name__
            finally:
                host.disconnect()
            if not found or not found.get("hostname"):
                return host, None, _("the host gave no facts")
            return host, found, ""

        greenlets = [state.pool.spawn(one, host) for host in state.inventory]
        for greenlet in greenlets:
            host, found, reason = greenlet.get()
            if found is None:
                unreachable[host.name] = {"address": wanted[host.name]["ssh_hostname"], "reason": reason}
            else:
                facts[host.name] = {"address": wanted[host.name]["ssh_hostname"], **found}
    duration = round(time.monotonic() - started, 3)
    if not facts:
        result = "failed"
    elif unreachable:
        result = "warning"
    else:
        result = "ok"
    return evidence.record(
        KIND,
        result,
        summary=_("{reached} of {total} hosts answered").format(reached=len(facts), total=len(wanted)),
        duration_s=duration,
        inventory=str(inventory.root),
        hosts=dict(sorted(facts.items())),
        unreachable=dict(sorted(unreachable.items())),
    )


def write_record(record: dict, evidence_dir: Path) -> Path:
    """Write *record* as ``<evidence>/drift/facts-<UTC time>.json``."""
    directory = Path(evidence_dir) / "drift"
    try:
        return evidence.write(directory, f"facts-{evidence.stamp(datetime.fromisoformat(record['time']))}", record)
    except OSError as exc:
        raise FactsError.one(
            "report.facts-write",
            _("the facts record cannot be written ({error})").format(error=exc.strerror or exc),
            _("check that the evidence directory exists and is writable"),
            file=str(directory),
        ) from exc
