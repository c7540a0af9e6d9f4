"""Pinned SSH host keys: recorded once from the hosts, reviewed in git, the only keys any run trusts.

The inventory's ``host_keys`` section (:class:`akm.inventory.model.HostKeys`) holds, per host, the public
key lines its SSH server must present. :func:`survey` contacts every Debian host and network device of
the inventory at the address and port the project's clients use (:attr:`Asset.ssh_endpoint`) with
``ssh-keyscan`` and compares what each presents with what is recorded; :func:`record` writes the keys of
new hosts (and of the hosts the operator names to be replaced) into the inventory's YAML in place.

From the recorded keys :func:`write_known_hosts` makes one ``known_hosts`` file per inventory
(``<inventory>/.known_hosts``, not in git). Ansible (through the inventory plugin), pyinfra (``akm report
facts``), netmiko (``akm net``) and the lab's own ``ssh`` read it with strict checking: a host whose key
is not in it, or differs, is refused, and :func:`advice` says what to do.

Each host's line names it by its inventory hostname and by its address (``[name]:port`` and
``[address]:port`` when the port is not 22): the address is what ``ssh``, Mitogen and pyinfra look up,
the hostname is what ``akm net`` looks up when it reaches a device through another address (``--via``).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from akm import yamledit
from akm.errors import Error
from akm.i18n import _
from akm.inventory.load import PLUGIN_FILES, Inventory, inventory_files
from akm.sshsig import KEY_FIELDS, PublicKey, read_key_line
from akm.yamlsource import display_path

KNOWN_HOSTS = ".known_hosts"
"""The generated file's name in the inventory directory: hidden, so Ansible, given the directory as an
inventory source, does not try to read it as one."""
HOST_KEYS_FILE = "host_keys.yml"
"""Where the first recorded keys go when no file of the inventory has a ``host_keys`` section yet."""
PREFERENCE = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-rsa")
"""Which of the keys a host presents is recorded: the first type it has of these. One key is enough:
OpenSSH and paramiko ask a host for the types known for it, so it presents the recorded one."""
SCAN_TYPES = "ed25519,ecdsa,rsa"


class HostKeysError(Error):
    """The hosts cannot be surveyed or their keys written; the message says what to do."""


@dataclass(frozen=True)
class Target:
    """One host to survey: its inventory hostname and the address and port it is reached at."""

    name: str
    address: str
    port: int = 22


@dataclass
class Finding:
    """What one host presents against what the inventory records; ``status`` is ``new``, ``same``,
    ``changed`` or ``unreachable``."""

    target: Target
    status: str
    recorded: list[PublicKey] = field(default_factory=list)
    presented: list[PublicKey] = field(default_factory=list)

    @property
    def chosen(self) -> PublicKey | None:
        """The presented key that would be recorded (:data:`PREFERENCE`)."""
        ranked = sorted(self.presented, key=lambda key: PREFERENCE.index(key.type))
        return ranked[0] if ranked else None


def known_names(name: str, address: str | None, port: int) -> list[str]:
    """The names of one host's ``known_hosts`` line: its hostname and its address, in ``[...]:port``
    form when the port is not 22."""
    names = list(dict.fromkeys(n for n in (name, address) if n))
    return names if port == 22 else [f"[{n}]:{port}" for n in names]


def known_hosts_path(root: Path) -> Path:
    """The generated ``known_hosts`` file of the inventory whose directory is *root*."""
    return root / KNOWN_HOSTS


def known_hosts_text(inventory: Inventory) -> str:
    """The ``known_hosts`` lines of every recorded key, hosts in name order (deterministic)."""
    assets = {asset.hostname: asset for asset in inventory.assets}
    lines = [
        f"# Made by akm from {display_path(inventory.root)}'s host_keys; do not edit: akm inventory hostkeys "
        "records the keys.\n"
    ]
    for host in sorted(inventory.host_keys):
        endpoint = assets[host].ssh_endpoint or (None, 22)
        names = ",".join(known_names(host, *endpoint))
        lines.extend(f"{names} {read_key_line(key).text}\n" for key in inventory.host_keys[host].keys)
    return "".join(lines)


def write_known_hosts(inventory: Inventory, path: Path | None = None) -> Path:
    """Write the inventory's ``known_hosts`` (to *path*, else :func:`known_hosts_path`) when its content
    changed, in one rename; return the path. Every SSH client of the project calls this before it
    connects, so the file is never older than the inventory."""
    path = path or known_hosts_path(inventory.root)
    text = known_hosts_text(inventory)
    try:
        if path.read_text(encoding="utf-8") == text:
            return path
    except OSError:
        pass
    try:
        yamledit.replace(path, text)
    except OSError as exc:
        raise _file_error(
            "hostkeys.cannot-write",
            _("the known_hosts file cannot be written: {reason}"),
            _("let this user write the inventory's directory, or give another file"),
            path,
            exc,
        ) from exc
    return path


def _file_error(code: str, message: str, hint: str, path: Path, exc: OSError) -> HostKeysError:
    """A known_hosts file that cannot be read or written; *message* says which, with ``{reason}``."""
    return HostKeysError.one(code, message.format(reason=exc.strerror or exc), hint, file=display_path(path))


def read_known_hosts(path: Path) -> dict[str, list[PublicKey]]:
    """The keys of a ``known_hosts`` file by each name it gives them (markers and hashed names, which
    the generated file never has, are left out)."""
    keys: dict[str, list[PublicKey]] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise _file_error(
            "hostkeys.no-known-hosts",
            _("the known_hosts file cannot be read: {reason}"),
            _("make it with: akm inventory known-hosts -i INVENTORY -o FILE"),
            path,
            exc,
        ) from exc
    for line in text.splitlines():
        parts = line.split(None, 1)
        if len(parts) < 2 or line.startswith(("#", "@", "|")):
            continue
        try:
            key = read_key_line(parts[1])
        except ValueError:
            continue
        for name in parts[0].split(","):
            keys.setdefault(name, []).append(key)
    return keys


def advice(inventory_root: Path | str, host: str, changed: bool | None) -> str:
    """What to do about a host whose key a run refused: *changed* (the inventory pins another key),
    not recorded (``False``), or either (``None``, when the client cannot tell)."""
    inventory = display_path(Path(inventory_root))
    if changed is False:
        return _(
            "{host}: the inventory pins no SSH host key for it. Compare the fingerprint that "
            "akm inventory hostkeys shows with the one at the machine's console, then run: "
            "akm inventory hostkeys -i {inventory} --host {host} --write"
        ).format(host=host, inventory=inventory)
    text = (
        _("{host}: its SSH host key is not the one the inventory pins.")
        if changed
        else _("{host}: its SSH host key is not one the inventory pins (changed, or never recorded).")
    )
    return (
        text.format(host=host)
        + " "
        + _(
            "If the machine was reinstalled or its keys renewed, compare the fingerprint at its console "
            "(ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub), then run: "
            "akm inventory hostkeys -i {inventory} --host {host} --replace {host} --write. "
            "Otherwise do not connect: something else may answer at its address."
        ).format(host=host, inventory=inventory)
    )


def targets(inventory: Inventory, names: Iterable[str] = ()) -> list[Target]:
    """The hosts to survey: every asset in use reached over SSH that has an address, or those *names*."""
    wanted = set(names)
    found = []
    for asset in inventory.assets:
        endpoint = asset.ssh_endpoint
        if (wanted and asset.hostname not in wanted) or (not wanted and asset.status != "in_use"):
            continue
        if not asset.over_ssh or endpoint is None:
            if wanted:
                raise HostKeysError.one(
                    "hostkeys.not-over-ssh",
                    _("{host} is not reached over SSH (no Debian, no net: block, or no address)").format(
                        host=asset.hostname
                    ),
                    _("name Debian hosts and network devices that have an address"),
                    file=display_path(inventory.root),
                    field="--host",
                )
            continue
        found.append(Target(asset.hostname, *endpoint))
    unknown = wanted - {asset.hostname for asset in inventory.assets}
    if unknown:
        raise HostKeysError.one(
            "hostkeys.unknown-host",
            _("no asset named {names} in the inventory").format(names=", ".join(sorted(unknown))),
            _("use the hostname of an asset, as akm inventory show lists them"),
            file=display_path(inventory.root),
            field="--host",
        )
    return found


def scan(hosts: list[Target], timeout: int = 5) -> dict[Target, list[PublicKey]]:
    """The host keys each of *hosts* presents, read by ``ssh-keyscan`` (one run per port, every host of
    it at once); a host that does not answer is missing from the answer."""
    by_port: dict[int, list[Target]] = {}
    for host in hosts:
        by_port.setdefault(host.port, []).append(host)
    found: dict[Target, list[PublicKey]] = {}
    for port, group in sorted(by_port.items()):
        at = {host.address: host for host in group}
        command = ["ssh-keyscan", "-T", str(timeout), "-t", SCAN_TYPES, "-p", str(port), *sorted(at)]
        try:
            done = subprocess.run(command, capture_output=True, text=True, check=False)
        except FileNotFoundError as exc:
            raise HostKeysError.one(
                "hostkeys.no-ssh-keyscan",
                _("ssh-keyscan (OpenSSH) is not installed, so host keys cannot be read"),
                _("install it: apt install openssh-client"),
                file="ssh-keyscan",
            ) from exc
        for line in done.stdout.splitlines():
            parts = line.split(None, 1)
            if len(parts) < 2 or line.startswith("#"):
                continue
            address = parts[0].removeprefix("[").split("]:", 1)[0]
            try:
                key = read_key_line(parts[1], KEY_FIELDS)
            except ValueError:
                continue
            if address in at:
                found.setdefault(at[address], []).append(key)
    return found


def compare(recorded: list[PublicKey], presented: list[PublicKey]) -> str:
    """``new`` when nothing is recorded, ``same`` when every recorded key whose type the host presents
    is the one presented (and at least one is), else ``changed``."""
    if not recorded:
        return "new"
    offered = {(key.type, key.blob) for key in presented}
    offered_types = {key.type for key in presented}
    relevant = [key for key in recorded if key.type in offered_types]
    return "same" if relevant and all((key.type, key.blob) in offered for key in relevant) else "changed"


def survey(inventory: Inventory, names: Iterable[str] = (), timeout: int = 5) -> list[Finding]:
    """Contact the hosts (all, or *names*) and compare their keys with the inventory's, host by host."""
    hosts = targets(inventory, names)
    presented = scan(hosts, timeout)
    findings = []
    for host in hosts:
        pinned = inventory.host_keys.get(host.name)
        recorded = [read_key_line(key) for key in pinned.keys] if pinned else []
        keys = presented.get(host, [])
        status = compare(recorded, keys) if keys else "unreachable"
        findings.append(Finding(host, status, recorded, keys))
    return findings


@dataclass(frozen=True)
class Written:
    """One host whose keys were written: where (file, the line of its item or its ``keys:``)."""

    host: str
    file: str
    line: int


def _items(root: yaml.Node | None) -> list[yaml.MappingNode]:
    found = yamledit.section(root, "host_keys")
    if found is None or not isinstance(found[1], yaml.SequenceNode):
        return []
    return [item for item in found[1].value if isinstance(item, yaml.MappingNode)]


def _host_of(item: yaml.MappingNode) -> str | None:
    return getattr(yamledit.field(item, "host"), "value", None)


def _refuse_flow(file: str, line: int) -> HostKeysError:
    return HostKeysError.one(
        "hostkeys.flow-style",
        _("host_keys is written in braces or brackets here; keys are written as a block"),
        _("write each host of host_keys as '- host: NAME' with its keys: listed under it, then try again"),
        file=file,
        line=line,
        field="host_keys",
    )


def _next_item(text: str, hosts: dict[str, list[str]]) -> yaml.MappingNode | None:
    """The first item of the file's ``host_keys`` whose host is one of *hosts*."""
    return next((item for item in _items(yamledit.compose(text)) if _host_of(item) in hosts), None)


def _home(inventory_path: Path, files: list[Path]) -> Path:
    """The file new hosts are added to: the first with a ``host_keys`` section, else a one-file inventory,
    else a new ``host_keys.yml`` in the inventory's directory."""
    for path in files:
        if yamledit.section(yamledit.compose(path.read_text(encoding="utf-8")), "host_keys") is not None:
            return path
    root = inventory_path.parent if inventory_path.name in PLUGIN_FILES else inventory_path
    return root if root.is_file() else root / HOST_KEYS_FILE


def write_keys(inventory_path: Path, keys: dict[str, list[str]]) -> list[Written]:
    """Write *keys* (hostname -> key lines) into the inventory at *inventory_path*, in place.

    A host that has an entry keeps it: its ``keys:`` are replaced. A new host is added at the end of the
    first file (in the inventory's order) that has a ``host_keys`` section, else of a one-file inventory,
    else of a new ``host_keys.yml``. Each changed file is read back and must hold exactly the new keys
    before it replaces the old one, in one rename; nothing else in it changes.
    """
    files = inventory_files(inventory_path)
    pending = dict(keys)
    changed: dict[Path, str] = {}
    written: list[Written] = []
    for path in files:
        text = path.read_text(encoding="utf-8")
        while (item := _next_item(text, pending)) is not None:
            host = _host_of(item)
            if item.flow_style:
                raise _refuse_flow(display_path(path), item.start_mark.line + 1)
            text, line = yamledit.set_field(text, item, "keys", [f"  - {key}" for key in pending.pop(host)])
            changed[path] = text
            written.append(Written(host, display_path(path), line))
    if pending:
        home = _home(inventory_path, files)
        text = changed.get(home) or (home.read_text(encoding="utf-8") if home.exists() else "")
        if not text:
            text = "---\n# The hosts' SSH host keys, recorded by akm inventory hostkeys --write (docs/inventory.md).\n"
        for host in sorted(pending):
            try:
                text, line = yamledit.append_item(
                    text, "host_keys", [f"host: {host}", "keys:", *(f"  - {key}" for key in pending[host])]
                )
            except ValueError as exc:
                raise _refuse_flow(display_path(home), 1) from exc
            written.append(Written(host, display_path(home), line))
        changed[home] = text
    for path, text in changed.items():
        _read_back(path, text, keys)
    for path, text in changed.items():
        yamledit.replace(path, text)
    return written


def _read_back(path: Path, text: str, keys: dict[str, list[str]]) -> None:
    """Refuse *text* unless it reads as YAML whose ``host_keys`` give each host of *keys* in it exactly
    its new keys."""
    try:
        data = yamledit.load(text)
        entries = {e.get("host"): e.get("keys") for e in data.get("host_keys") or [] if isinstance(e, dict)}
        wrong = [host for host in keys if host in entries and entries[host] != keys[host]]
    except (yaml.YAMLError, AttributeError, TypeError):
        wrong = ["?"]
    if wrong:
        raise HostKeysError.one(
            "hostkeys.write-failed",
            _("the file would not read back with the new keys of {hosts}").format(hosts=", ".join(wrong)),
            _("write host_keys in block style (docs/inventory.md), then try again"),
            file=display_path(path),
            field="host_keys",
        )


def record(inventory_path: Path, findings: list[Finding], replace: Iterable[str] = ()) -> list[Written]:
    """Write the chosen key of every ``new`` host of *findings*, and of every ``changed`` host named in
    *replace*, into the inventory at *inventory_path*; return what was written."""
    replace = set(replace)
    keys = {
        f.target.name: [f.chosen.text]
        for f in findings
        if f.chosen is not None and (f.status == "new" or (f.status == "changed" and f.target.name in replace))
    }
    return write_keys(inventory_path, keys) if keys else []


def ssh_options(known_hosts: Path) -> list[str]:
    """The OpenSSH options that trust exactly the keys of *known_hosts*: that file only (no user's or
    system's file), and a host not in it, or with another key, refused."""
    return [
        "-o",
        f"UserKnownHostsFile={known_hosts}",
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        "-o",
        "StrictHostKeyChecking=yes",
    ]
