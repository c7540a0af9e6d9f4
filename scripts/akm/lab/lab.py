"""Bring the virtual library up and down: the orchestration behind ``akm lab``.

``up`` is idempotent and converging: if the lab of this inventory already runs completely it changes
nothing and says so; if anything is left from an earlier (crashed, killed) run it is cleaned first;
if any step fails, everything made so far is removed again before the error is shown. ``down`` needs
neither a plan nor a state file: it stops the processes recorded in ``/run/akm-lab/state.json`` and
the lab's own processes found by their command line (nspawn on a layer under the state directory,
apt-cacher-ng with the lab's configuration directory), always by PID, then unmounts the layers and
deletes every ``akm-`` namespace and the host link.

Order of ``up``: plan and preflight (nothing is created before both pass) → switch and host leg →
package cache → image (built once, through the cache) → keys, CA, the run-time vault
(:func:`lab_secrets`: the fake internet's Bot API takes its bot token) → each machine's namespace, layer,
boot → host route → wait for SSH on every machine → simulated network devices, if that module exists (also
on the control address, with their ports open to the management segment) → the machines' and devices'
host keys pinned in the lab inventory (:func:`record_host_keys`) → every machine booted, checked over SSH.
``up`` on a running lab restarts only a simulator that is gone or outdated, and pins what is not pinned.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import secrets
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from akm.errors import Problem
from akm.i18n import _
from akm.inventory.hostkeys import known_hosts_path, ssh_options
from akm.lab import aptcache, cgroups, image, internet, machines, network
from akm.lab.plan import APT_CACHE_PORT, LabError, Machine, Plan, plan_lab
from akm.lab.system import ProcessRef, State, all_pids, cmdline, lab_lock, reap, run, stop, which

DEFAULT_INVENTORY = Path(os.environ.get("AKM_LAB_INVENTORY", "inventory/lab"))
DEFAULT_STATE_DIR = Path("/var/lib/akm-lab")
SIMULATOR = "akm.net.sim"
# Debian package of each tool the lab runs on the host (the Makefile's deps target installs them).
TOOLS = {
    "apt-cacher-ng": "apt-cacher-ng",
    "debootstrap": "debootstrap",
    "ip": "iproute2",
    "nft": "nftables",
    "openssl": "openssl",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
    "sysctl": "procps",
    "systemd-nspawn": "systemd-container",
}


@dataclass
class HostChecks:
    """How the lab asks about the host; tests replace these to simulate a user or a missing tool."""

    is_root: Callable[[], bool] = field(default=lambda: os.geteuid() == 0)
    which: Callable[[str], str | None] = field(default=which)


def preflight(checks: HostChecks | None = None) -> list[Problem]:
    """Return the problems that stop the lab on this host: not root (``lab.not-root``), missing tools
    (``lab.missing-tool``)."""
    checks = checks or HostChecks()
    problems = []
    if not checks.is_root():
        problems.append(
            Problem(
                "",
                None,
                "",
                "lab.not-root",
                _("the lab needs root: it creates network namespaces, mounts and containers"),
                _("run it as root (sudo akm lab up, or sudo make lab)"),
            )
        )
    for tool, package in sorted(TOOLS.items()):
        if checks.which(tool) is None:
            problems.append(
                Problem(
                    "",
                    None,
                    tool,
                    "lab.missing-tool",
                    _("the program {tool} is not installed").format(tool=tool),
                    _("install the Debian package {package} (make deps)").format(package=package),
                )
            )
    return problems


def load_plan(inventory: Path | Plan) -> Plan:
    """Load and check the lab inventory, then plan the lab (raises before anything is created).

    A :class:`Plan` is returned as it is, so tests and the bench can run the lab from a plan.
    """
    if isinstance(inventory, Plan):
        return inventory
    from akm.inventory import load_inventory

    return plan_lab(load_inventory(Path(inventory)))


def key_paths(state_dir: Path) -> tuple[Path, Path]:
    """The control node's private and public key."""
    ssh = state_dir / "ssh"
    return ssh / "id_ed25519", ssh / "id_ed25519.pub"


def ansible_vars(plan: Plan) -> dict[str, str]:
    """Connection variables Ansible needs for a lab machine (the inventory plugin adds ansible_host and
    the same host key settings): root, the lab's key, and only the lab inventory's pinned host keys."""
    private, _public = key_paths(plan.state_dir)
    return {
        "ansible_user": "root",
        "ansible_ssh_private_key_file": str(private),
        "ansible_ssh_common_args": shlex.join(
            [*ssh_options(known_hosts_path(plan.inventory)), "-o", "IdentitiesOnly=yes"]
        ),
    }


def connection(plan: Plan, hostname: str) -> dict[str, object]:
    """How to reach *hostname*, in the keys of molecule's instance config (plus the Ansible variables)."""
    machine = plan.machine(hostname)
    private, _public = key_paths(plan.state_dir)
    return {
        "instance": hostname,
        "address": str(machine.management),
        "user": "root",
        "port": 22,
        "identity_file": str(private),
        "known_hosts": str(known_hosts_path(plan.inventory)),
        **ansible_vars(plan),
    }


def _known_hosts(plan: Plan, machine: Machine) -> Path:
    """The known_hosts file that holds *machine*'s key: the lab inventory's, or for the fake internet
    (part of the lab, not of the centre: no asset, nothing the inventory pins) one the lab writes from
    the key it made for it."""
    if not machine.internet:
        return known_hosts_path(plan.inventory)
    path = plan.state_dir / "ssh" / "internet.known_hosts"
    text = f"{machine.management} {machines.host_key(plan.state_dir, machine.hostname)[1]}"
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path


def ssh_command(plan: Plan, hostname: str, command: list[str] | None = None) -> list[str]:
    """The ``ssh`` command line that logs into *hostname* as root with the lab's key, trusting only the
    host key the lab inventory pins for it."""
    machine = plan.machine(hostname)
    private, _public = key_paths(plan.state_dir)
    return [
        "ssh",
        "-i",
        str(private),
        *ssh_options(_known_hosts(plan, machine)),
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "BatchMode=yes",
        "-o",
        "ConnectTimeout=10",
        f"root@{machine.management}",
        *(command or []),
    ]


def _ensure_keys(plan: Plan) -> str:
    private, public = key_paths(plan.state_dir)
    private.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not (private.exists() and public.exists()):
        private.unlink(missing_ok=True)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "akm-lab-control", "-f", str(private)])
    return public.read_text()


def new_host_keys(plan: Plan) -> set[str]:
    """The lab's machines and simulated devices that have no host key yet: the lab makes theirs now
    (:func:`machines.host_key`, the simulator's ``--host-keys``), so what the inventory pins for them
    belongs to an earlier state directory and is replaced."""
    return {
        name
        for name in (*(m.hostname for m in plan.machines), *plan.simulated)
        if not machines.host_key_file(plan.state_dir, name).exists()
    }


def record_host_keys(plan: Plan, renewed: set[str], log: Callable[[str], None]) -> bool:
    """Pin the lab's host keys the way production pins its own: contact every machine of the centre
    (the fake internet is no asset: see :func:`_known_hosts`) and every device the simulator serves
    (``akm inventory hostkeys``' survey), write the keys of new ones, and of those in *renewed*, into
    the lab inventory's ``host_keys.yml`` (not in git: the keys belong to this state directory), and
    make the inventory's known_hosts from them. A key that changed otherwise is not written: the log
    says so and what to do, and every run refuses the machine until then. Returns whether any key was
    written."""
    from akm.inventory import hostkeys, load_inventory

    inventory = load_inventory(plan.inventory)
    hosts = [m.hostname for m in plan.machines if not m.internet]
    findings = hostkeys.survey(inventory, [*hosts, *sorted(served_devices(plan))])
    # A machine that has just booted may answer its first key exchange late: it is asked once more.
    late = [f.target.name for f in findings if f.status == "unreachable"]
    if late:
        again = {f.target.name: f for f in hostkeys.survey(inventory, late, timeout=15)}
        findings = [again.get(f.target.name, f) for f in findings]
    written = hostkeys.record(plan.inventory, findings, replace=renewed)
    if written:
        inventory = load_inventory(plan.inventory)
        log(
            _("Recorded the host keys of {hosts} in {file}.").format(
                hosts=", ".join(sorted(w.host for w in written)), file=written[0].file
            )
        )
    hostkeys.write_known_hosts(inventory)
    for finding in findings:
        if finding.status == "changed" and finding.target.name not in renewed:
            log(hostkeys.advice(plan.inventory, finding.target.name, changed=True))
        elif finding.status == "unreachable":
            log(_("{host} did not show its host key; it is not pinned.").format(host=finding.target.name))
    return bool(written)


def _cache_dir(state_dir: Path) -> Path:
    return state_dir / "apt-cache"


def _start_cache(plan: Plan, sources: dict[str, list[aptcache.Source]], state: State) -> None:
    base = _cache_dir(plan.state_dir)
    for part in ("conf", "cache", "log"):
        (base / part).mkdir(parents=True, exist_ok=True)
    every = [source for suite in sorted(sources) for source in sources[suite]]
    (base / "conf" / "acng.conf").write_text(aptcache.acng_config(base, str(plan.control.ip), every))
    with open(base / "log" / "daemon.log", "ab") as out:
        child = subprocess.Popen(
            ["apt-cacher-ng", "-c", str(base / "conf")],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    state.remember("apt-cache", ProcessRef.of(child.pid, str(base / "conf")))
    deadline = time.monotonic() + 15
    import socket

    while time.monotonic() < deadline:
        try:
            socket.create_connection((str(plan.control.ip), APT_CACHE_PORT), timeout=1).close()
            return
        except OSError:
            if child.poll() is not None:
                break
            time.sleep(0.2)
    raise LabError.one(
        "lab.cache-failed",
        _("apt-cacher-ng did not start on {address}").format(address=f"{plan.control.ip}:{APT_CACHE_PORT}"),
        _(
            "read its log; port {port} must be free on that address (a system "
            "apt-cacher-ng service: systemctl disable --now apt-cacher-ng)"
        ).format(port=APT_CACHE_PORT),
        file=str(base / "log" / "daemon.log"),
    )


def simulator_files(state_dir: Path) -> dict[str, Path]:
    """Where the simulator's run-time files live (the paths ``docs/network-devices.md`` names)."""
    return {
        "credentials": Path(os.environ.get("AKM_SIM_CREDENTIALS") or state_dir / "netsim-credentials.json"),
        "state": state_dir / "netsim-state.json",
        "ready": state_dir / "netsim.ready",
        "host_keys": machines.host_keys_dir(state_dir),
        "log": state_dir / "netsim.log",
        "vault": state_dir / "vault.yml",
        "vault_password": state_dir / "vault-password",
    }


def simulator_command(plan: Plan) -> list[str] | None:
    """The command that serves the inventory's simulated network devices, or ``None`` when the
    simulator module (``akm.net.sim``, issue 6) is not installed."""
    try:
        if importlib.util.find_spec(SIMULATOR) is None:
            return None
    except ModuleNotFoundError:
        return None
    files = simulator_files(plan.state_dir)
    return [
        sys.executable,
        "-m",
        SIMULATOR,
        "--inventory",
        str(plan.inventory),
        "--credentials",
        str(files["credentials"]),
        "--state",
        str(files["state"]),
        "--ready-file",
        str(files["ready"]),
        "--host-keys",
        str(files["host_keys"]),
        "--also-listen",
        str(plan.control.ip),
    ]


def _ensure_vault_password(path: Path) -> None:
    """Make the lab vault's random password (0600) once; it never leaves the state directory."""
    if not path.exists():
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_urlsafe(32) + "\n")


# The list of the secrets the vault must hold (akm.vault): the lab's vault holds exactly those.
SECRETS_FILE = Path(__file__).resolve().parents[3] / "policies" / "secrets.yml"


def lab_secrets(plan: Plan) -> None:
    """Make what the lab vault lacks of the list of secrets (policies/secrets.yml) with the function
    ``akm vault init`` runs in production (:func:`akm.vault.fill`): random values, every value already
    there kept. The devices' logins, named by the inventory, are the simulator's when it runs
    (:func:`simulator_credentials` makes them first), so they are there already.

    Existing values are kept, so repositories made by an earlier ``make demo`` stay readable.
    """
    from akm import vault
    from akm.inventory import load_inventory
    from akm.net.vault import read_vault, write_vault

    files = simulator_files(plan.state_dir)
    _ensure_vault_password(files["vault_password"])
    variables = read_vault(files["vault"], files["vault_password"]) if files["vault"].exists() else {}
    added = vault.fill(vault.load(SECRETS_FILE), variables, load_inventory(plan.inventory))
    if added:
        write_vault(files["vault"], files["vault_password"], variables | added)


def simulator_credentials(plan: Plan) -> None:
    """Make the devices' logins at run time: a random vault password (``<state_dir>/vault-password``,
    0600, made once), the vault entries and the simulator's credentials file, through
    ``python -m akm.net.sim.credentials`` (which keeps entries that exist). Skipped when
    ``AKM_SIM_CREDENTIALS`` names a file made elsewhere."""
    if os.environ.get("AKM_SIM_CREDENTIALS"):
        return
    files = simulator_files(plan.state_dir)
    _ensure_vault_password(files["vault_password"])
    run(
        [
            sys.executable,
            "-m",
            f"{SIMULATOR}.credentials",
            "--inventory",
            str(plan.inventory),
            "--vault",
            str(files["vault"]),
            "--vault-password-file",
            str(files["vault_password"]),
            "--out",
            str(files["credentials"]),
        ]
    )


def _start_simulator(plan: Plan, state: State, log: Callable[[str], None], wait: float = 20.0) -> None:
    command = simulator_command(plan)
    if command is None:
        if plan.simulated:
            log(
                _("The network device simulator ({module}) is not installed; devices are not simulated.").format(
                    module=SIMULATOR
                )
            )
        return
    files = simulator_files(plan.state_dir)
    if plan.simulated:
        simulator_credentials(plan)
    files["ready"].unlink(missing_ok=True)
    with open(files["log"], "ab") as out:
        child = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    state.remember("simulator", ProcessRef.of(child.pid, str(files["ready"])))
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and child.poll() is None and not files["ready"].exists():
        time.sleep(0.2)
    if child.poll() is not None:
        log(_("The network device simulator stopped at once; read {log}.").format(log=files["log"]))
    elif not files["ready"].exists():
        log(
            _("The network device simulator is not ready after {seconds} s; read {log}.").format(
                seconds=int(wait), log=files["log"]
            )
        )


def served_devices(plan: Plan) -> dict[str, dict]:
    """The devices the running simulator serves, by name, as its ready file lists them (none when it is
    not ready)."""
    import json

    ready = simulator_files(plan.state_dir)["ready"]
    return json.loads(ready.read_text()).get("devices", {}) if ready.exists() else {}


def simulator_ports(plan: Plan) -> list[int]:
    """The ports the running simulator listens on (from its ready file; none when it is not ready)."""
    return sorted({int(d["port"]) for d in served_devices(plan).values()})


def refresh_simulator(plan: Plan, state: State, log: Callable[[str], None]) -> bool:
    """Restart only the simulator when it is gone or runs with other arguments than this code would
    give it (an older ``akm``); the machines keep running. Then open the devices' ports to the
    management segment. Return True if the simulator was restarted."""
    command = simulator_command(plan)
    if command is None:
        return False
    ref = (state.processes or {}).get("simulator")
    restarted = False
    if ref is None or not ref.alive() or cmdline(ref.pid).split()[1:] != " ".join(command).split()[1:]:
        if ref is not None:
            stop([ref], signal.SIGTERM, 5.0)
            reap(ref)
        _start_simulator(plan, state, log)
        log(_("The network device simulator was restarted."))
        restarted = True
    network.host_firewall(plan, simulator_ports(plan))
    return restarted


def _swept(state_dir: Path) -> list[tuple[str, ProcessRef]]:
    """Lab processes found by command line: nspawn on a lab layer, the lab's apt-cacher-ng, the simulator."""
    layer = f"--directory={state_dir / 'machines'}/"
    cache = str(_cache_dir(state_dir) / "conf")
    sim = str(simulator_files(state_dir)["ready"])
    build = str(state_dir / "image" / ".build-")
    found = []
    for pid in all_pids():
        line = cmdline(pid)
        if "systemd-nspawn" in line and layer in line:
            marker = next(w for w in line.split() if w.startswith(layer))
            found.append((f"machine:{marker.rsplit('/', 2)[-2]}", ProcessRef.of(pid, marker)))
        elif "apt-cacher-ng" in line and cache in line:
            found.append(("apt-cache", ProcessRef.of(pid, cache)))
        elif SIMULATOR in line and sim in line:
            found.append(("simulator", ProcessRef.of(pid, sim)))
        elif "debootstrap" in line and build in line:
            found.append(("image-build", ProcessRef.of(pid, build)))
    return found


def _state_dir_guess(inventory: Path | Plan | None) -> Path:
    state = State.load()
    if state and state.state_dir:
        return Path(state.state_dir)
    if inventory is not None:
        try:
            return load_plan(inventory).state_dir
        except Exception:
            pass
    return DEFAULT_STATE_DIR


def leftovers(state_dir: Path) -> list[str]:
    """Everything of a lab that exists now: processes, mounts, namespaces, the host link."""
    found = [name for name, ref in _swept(state_dir) if ref.alive()]
    state = State.load()
    if state:
        found += [name for name, ref in (state.processes or {}).items() if ref.alive()]
    found += [f"orphan:{name}" for name in machines.container_inits(state_dir).values()]
    found += machines.lab_mounts(state_dir)
    found += network.lab_namespaces()
    if network.host_link_exists():
        found.append("akm-ctl")
    if network.host_firewall_exists():
        found.append("nft:akm_lab")
    return sorted(set(found))


def teardown(state_dir: Path, grace: float = 10.0) -> list[str]:
    """Remove every part of the lab under *state_dir*; return what was removed. Needs no plan."""
    state = State.load()
    recorded = dict((state.processes or {}) if state else {})
    known = {ref.pid for ref in recorded.values()}
    for name, ref in _swept(state_dir):
        if ref.pid not in known:
            recorded[f"{name}+{ref.pid}"] = ref
    removed = sorted(name for name, ref in recorded.items() if ref.alive())
    for name, ref in recorded.items():
        if name.startswith("image-build") and ref.alive() and os.getpgid(ref.pid) == ref.pid:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(ref.pid, signal.SIGKILL)
    machine_refs = [ref for name, ref in recorded.items() if name.startswith("machine:")]
    machines.stop_machines(machine_refs, grace)
    stop([ref for name, ref in recorded.items() if not name.startswith("machine:")], signal.SIGTERM, 5.0)
    for ref in recorded.values():
        reap(ref)
    removed += machines.kill_orphans(state_dir)
    removed += machines.unmount_all(state_dir)
    removed += cgroups.remove_all()
    removed += network.destroy()
    State.clear()
    return removed


def is_running(inventory: Path | Plan) -> bool:
    """True if the whole lab of *inventory* runs (every machine, the cache, the network)."""
    return _running(load_plan(inventory), State.load())


def _running(plan: Plan, state: State | None) -> bool:
    if state is None or state.state_dir != str(plan.state_dir) or state.plan_id != plan.ident:
        return False
    procs = state.processes or {}
    needed = ["apt-cache", *(f"machine:{m.hostname}" for m in plan.machines)]
    if not all(name in procs and procs[name].alive() for name in needed):
        return False
    return set(plan.netns_names) <= set(network.lab_namespaces()) and network.host_link_exists()


def check(inventory: Path | Plan, checks: HostChecks | None = None) -> Plan:
    """Plan the lab of *inventory* and check the host; raise :class:`LabError` with every problem.

    Pure but for reading the inventory and asking the host (through *checks*) whether it is root and has
    the tools: it creates, starts and stops nothing, so tests can feed it bad inventories.
    """
    plan = load_plan(inventory)
    problems = preflight(checks)
    if problems:
        raise LabError(problems)
    return plan


def up(
    inventory: Path | Plan = DEFAULT_INVENTORY,
    *,
    fresh: bool = False,
    new_image: bool = False,
    timeout: float = 180.0,
    log: Callable[[str], None] = print,
    checks: HostChecks | None = None,
) -> Plan:
    """Bring the lab of *inventory* up (see the module documentation); return its plan.

    *fresh* gives every machine a new layer; *new_image* also builds the image anew (so every layer is
    new too), as a newcomer's first ``make demo`` does; the package cache is kept either way.
    """
    plan = check(inventory, checks)
    with lab_lock():
        state = State.load()
        renewed = new_host_keys(plan)
        if _running(plan, state) and not (fresh or new_image):
            restarted = refresh_simulator(plan, state, log)
            if not record_host_keys(plan, renewed, log) and not restarted:
                log(_("The lab is already up; nothing changed."))
            return plan
        if state and state.state_dir and state.state_dir != str(plan.state_dir):
            teardown(Path(state.state_dir), grace=0)
        stale = leftovers(plan.state_dir)
        if stale:
            log(
                _("Found the remains of an earlier lab run ({count} items); removing them first.").format(
                    count=len(stale)
                )
            )
            teardown(plan.state_dir, grace=0)
        state = State(inventory=str(plan.inventory), state_dir=str(plan.state_dir), processes={}, plan_id=plan.ident)
        state.save()
        try:
            _bring_up(plan, state, fresh, new_image, timeout, log, renewed)
        except BaseException:
            log(_("Bringing the lab up failed; removing what was made."))
            teardown(plan.state_dir, grace=0)
            raise
    return plan


def _bring_up(
    plan: Plan,
    state: State,
    fresh: bool,
    new_image: bool,
    timeout: float,
    log: Callable[[str], None],
    renewed: set[str],
) -> None:
    started = time.monotonic()
    sources = aptcache.lab_sources(suites=plan.suites)
    plan.state_dir.mkdir(parents=True, exist_ok=True)
    network.create_switch(plan)
    network.host_firewall(plan)
    _start_cache(plan, sources, state)
    image_ids = {}
    for suite in plan.suites:
        mirror = plan.apt_cache_url + aptcache.base_source(sources[suite], suite).path
        image_ids[suite], built = image.ensure_image(plan.state_dir, suite, mirror, log, rebuild=new_image)
        if built:
            log(_("The lab image is ready ({seconds} s).").format(seconds=round(time.monotonic() - started)))
    public_key = _ensure_keys(plan)
    ca_cert = internet.ensure_ca(plan).read_text()
    # The vault first: the fake internet's Bot API takes the vault's bot token from its layer.
    if plan.simulated and simulator_command(plan) is not None:
        simulator_credentials(plan)
    lab_secrets(plan)
    for machine in plan.machines:
        network.create_machine_network(plan, machine)
        machines.prepare(
            plan, machine, image_ids[machine.suite], public_key, ca_cert, sources[machine.suite], fresh=fresh
        )
        state.remember(f"machine:{machine.hostname}", machines.spawn(plan, machine))
    network.add_host_routes(plan)
    machines.wait_ready(plan, list(plan.machines), _machine_refs(state), timeout)
    _start_simulator(plan, state, log)
    record_host_keys(plan, renewed, log)
    # Logging in needs the pinned keys: the machines' boot is awaited over SSH only now.
    machines.wait_ready(plan, list(plan.machines), _machine_refs(state), timeout, _settle_argv(plan))
    network.host_firewall(plan, simulator_ports(plan))
    log(
        _("The lab is up: {count} machines answer SSH ({seconds} s).").format(
            count=len(plan.machines), seconds=round(time.monotonic() - started)
        )
    )


def down(
    inventory: Path | Plan | None = DEFAULT_INVENTORY,
    *,
    grace: float = 10.0,
    log: Callable[[str], None] = print,
    checks: HostChecks | None = None,
) -> list[str]:
    """Remove the whole lab; return what was removed (empty if nothing was there)."""
    problems = [p for p in preflight(checks) if p.code == "lab.not-root"]
    if problems:
        raise LabError(problems)
    state_dir = _state_dir_guess(inventory)
    with lab_lock():
        removed = teardown(state_dir, grace)
    if removed:
        log(_("The lab is down ({count} items removed).").format(count=len(removed)))
    else:
        log(_("The lab was not running; nothing to remove."))
    return removed


def _settle_argv(plan: Plan) -> Callable:
    return lambda machine: ssh_command(plan, machine.hostname)


def _machine_refs(state: State) -> dict[str, ProcessRef]:
    return {k.split(":", 1)[1]: v for k, v in (state.processes or {}).items() if k.startswith("machine:")}


def leaders(inventory: Path | Plan) -> dict[str, int]:
    """Host PID of each running machine's systemd (its PID 1), by hostname: what ``nsenter --target``
    takes to run a command inside the machine's namespaces (the release bench of restic does)."""
    plan = load_plan(inventory)
    refs = _machine_refs(_require_running(plan))
    found = {name: machines.leader(ref) for name, ref in refs.items()}
    return {name: pid for name, pid in found.items() if pid is not None}


def _require_running(plan: Plan) -> State:
    state = State.load()
    if not _running(plan, state):
        raise LabError.one(
            "lab.not-running", _("the lab is not running"), _("start it with: akm lab up"), file=str(plan.inventory)
        )
    return state


def reset(
    inventory: Path | Plan,
    hostname: str,
    *,
    timeout: float = 120.0,
    log: Callable[[str], None] = print,
    checks: HostChecks | None = None,
) -> float:
    """Give *hostname* a fresh layer and boot it again; return the seconds it took."""
    plan = load_plan(inventory)
    machine = plan.machine(hostname)
    problems = preflight(checks)
    if problems:
        raise LabError(problems)
    started = time.monotonic()
    with lab_lock():
        state = _require_running(plan)
        old = state.processes[f"machine:{hostname}"]
        machines.stop_machines([old], grace=0)
        reap(old)
        sources = aptcache.lab_sources(suites=(machine.suite,))[machine.suite]
        image_id = image.read_stamp(image.image_dir(plan.state_dir, machine.suite))["build"]
        public_key = key_paths(plan.state_dir)[1].read_text()
        ca_cert = internet.ca_paths(plan.state_dir)[1].read_text()
        machines.prepare(plan, machine, image_id, public_key, ca_cert, sources, fresh=True)
        state.remember(f"machine:{hostname}", machines.spawn(plan, machine))
        machines.wait_ready(plan, [machine], _machine_refs(state), timeout, _settle_argv(plan))
    seconds = time.monotonic() - started
    log(_("{host} is fresh again ({seconds} s).").format(host=hostname, seconds=round(seconds, 1)))
    return seconds


@dataclass(frozen=True)
class MachineStatus:
    """One row of ``akm lab status``."""

    hostname: str
    management: str
    segments: str
    running: bool
    memory_kib: int
    rss_kib: int


def status(inventory: Path | Plan) -> tuple[Plan, list[MachineStatus], dict[str, bool]]:
    """Return the plan, each machine's state and the state of the lab's services."""
    plan = load_plan(inventory)
    state = State.load()
    procs = (state.processes or {}) if state else {}
    rows = []
    for m in plan.machines:
        ref = procs.get(f"machine:{m.hostname}")
        alive = bool(ref and ref.alive())
        pss, rss = machines.memory_kib(ref) if alive else (0, 0)
        rows.append(MachineStatus(m.hostname, str(m.management), ",".join(p.segment for p in m.ports), alive, pss, rss))
    services = {name: ref.alive() for name, ref in sorted(procs.items()) if not name.startswith("machine:")}
    for suite in plan.suites:
        services[f"image {suite}"] = image.image_state(plan.state_dir, suite) == "ready"
    return plan, rows, services
