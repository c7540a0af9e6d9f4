"""``akm net push``: apply desired configuration lines safely, with commit-confirmed rollback.

The desired state is a plain text file of CLI lines per device — ``<hostname>.rsc`` (RouterOS, in
``/export`` layout) or ``<hostname>.cfg`` (IOS, in running-config layout) — as ``akm policy build``
writes them. For every device, in parallel:

1. read the current configuration and plan the difference (:meth:`Platform.plan`); show it;
2. arm a safety net on the device: RouterOS saves a backup (``/system backup save``) and adds a
   scheduler job that loads it when the confirmation time is over; IOS copies the running
   configuration to flash;
3. apply only the difference; any rejected command stops this device;
4. post-check on a new session (which proves the management path still works): re-read and
   re-plan; anything left to change means the change did not take;
5. if the post-check fails, roll back now (RouterOS ``/system backup load``; IOS ``configure replace``).

Then the operator is asked once, for all devices that passed, to keep the change (``--confirm yes``
keeps it without asking). Confirmed: the safety net is removed (and IOS writes memory). Not confirmed
in time: every device is rolled back. A RouterOS device whose scheduler already fired (the tool lost
its connection, or the operator was too slow) has rolled itself back; that is reported as such.
One device failing never stops the others.
"""

from __future__ import annotations

import contextlib
import math
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from akm import evidence
from akm.errors import Problem
from akm.i18n import _
from akm.net.common import (
    CommandRejected,
    DeviceResult,
    NetError,
    Target,
    Timeouts,
    classify,
    open_session,
    run_parallel,
    send,
)
from akm.net.platforms import PLATFORMS, REDACTED, Plan
from akm.net.vault import Login

ARCHIVE_PATH = "akm-archive"


@dataclass
class PushOptions:
    """How a push behaves; ``grace`` is added to the confirmation time for the device-side timer."""

    dry_run: bool = False
    confirm: str = "ask"
    confirm_timeout: float = 120.0
    grace: float = 60.0
    save: bool = True
    timeouts: Timeouts = field(default_factory=Timeouts)
    workers: int = 32
    reconnect_attempts: int = 10
    owner: str = "akm"


def _problem(file: Path, line: int | None, code: str, message: str, hint: str) -> Problem:
    return Problem(str(file), line, "", code, message, hint)


def _candidates(path: Path) -> list[Path]:
    """The files a desired state may be in: *path* itself, or a directory's files and those of its
    ``routeros/`` and ``ios/`` subdirectories (the layout of ``akm policy build``)."""
    if not path.is_dir():
        return [path]
    files = [p for p in sorted(path.iterdir()) if p.is_file()]
    for sub in ("routeros", "ios"):
        if (path / sub).is_dir():
            files += [p for p in sorted((path / sub).iterdir()) if p.is_file()]
    return files


def read_desired(path: Path, targets: list[Target], known: Iterable[str] = ()) -> dict[str, list[str]]:
    """Read the desired state of *targets*: files named ``<hostname>.rsc`` (RouterOS) or
    ``<hostname>.cfg``/``.txt`` (IOS). A file of an inventory device that is not selected (*known*)
    is skipped; a file of no device is a problem. Every problem is reported, and nothing is sent."""
    by_name = {t.name: t for t in targets}
    known = set(known) | set(by_name)
    if not path.exists():
        raise NetError(
            [
                _problem(
                    path,
                    None,
                    "net.desired-missing",
                    _("the desired configuration does not exist"),
                    _("give a file or a directory made by akm policy build"),
                )
            ]
        )
    suffixes = {s for p in PLATFORMS.values() for s in p.desired_suffixes}
    desired: dict[str, list[str]] = {}
    problems = []
    for file in _candidates(path):
        if file.suffix not in suffixes:
            continue
        name = file.stem
        target = by_name.get(name)
        if target is None:
            if name not in known:
                problems.append(
                    _problem(
                        file,
                        None,
                        "net.desired-unknown-device",
                        _("no selected network device is named {name}").format(name=name),
                        _("name the file after the device's hostname"),
                    )
                )
            continue
        allowed = PLATFORMS[target.platform].desired_suffixes
        if file.suffix not in allowed:
            problems.append(
                _problem(
                    file,
                    None,
                    "net.desired-wrong-platform",
                    _("{name} is a {platform} device; its file must end in {suffix}").format(
                        name=name, platform=target.platform, suffix=" / ".join(allowed)
                    ),
                    _("rename the file or check the device's platform in the inventory"),
                )
            )
            continue
        try:
            lines = file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(_problem(file, None, "net.desired-unreadable", str(exc), _("write the file as UTF-8 text")))
            continue
        for number, line in enumerate(lines, start=1):
            if REDACTED in line:
                problems.append(
                    _problem(
                        file,
                        number,
                        "net.desired-redacted",
                        _("the line holds a redacted secret, which must never be pushed to a device"),
                        _("remove the line, or put the real value in from ansible-vault by hand"),
                    )
                )
        if target.platform == "mikrotik_routeros":
            for number, line in enumerate(lines, start=1):
                stripped = line.strip()
                if stripped and not stripped.startswith(("#", "/", "add ", "set ")) and not line.startswith(" "):
                    problems.append(
                        _problem(
                            file,
                            number,
                            "net.desired-bad-line",
                            _("a RouterOS line must be a menu (/...), add or set"),
                            _("write it the way /export does"),
                        )
                    )
        if name in desired:
            problems.append(
                _problem(
                    file,
                    None,
                    "net.desired-duplicate",
                    _("there is more than one desired file for {name}").format(name=name),
                    _("keep one file per device"),
                )
            )
        comment = "#" if target.platform == "mikrotik_routeros" else "!"
        desired[name] = [line for line in lines if not line.lstrip().startswith(comment)]
    if problems:
        raise NetError(problems)
    if not desired:
        raise NetError(
            [
                _problem(
                    path,
                    None,
                    "net.desired-empty",
                    _("no desired configuration for any selected device"),
                    _("files are named <hostname>.rsc (RouterOS) or <hostname>.cfg (IOS)"),
                )
            ]
        )
    return desired


# --- device operations ------------------------------------------------------------------------------


def _read(connection, target: Target, timeouts: Timeouts) -> str:
    """The device's configuration."""
    return send(connection, PLATFORMS[target.platform].read_command, timeouts)


def _with_dynamic(connection, target: Target, timeouts: Timeouts, config: str) -> str:
    """*config* followed by the dynamic state a plan compares too (RouterOS timed address-list entries)."""
    platform = PLATFORMS[target.platform]
    if not platform.dynamic_command:
        return config
    return config + "\n" + "\n".join(platform.dynamic_lines(send(connection, platform.dynamic_command, timeouts)))


def _arm(connection, target: Target, options: PushOptions) -> None:
    t = options.timeouts
    if target.platform == "mikrotik_routeros":
        name = PLATFORMS[target.platform].rollback_backup
        job = PLATFORMS[target.platform].rollback_job
        send(connection, f"/system backup save name={name} dont-encrypt=yes", t)
        send(connection, f"/system scheduler remove [find name={job}]", t)
        seconds = int(options.confirm_timeout + options.grace) or 1
        event = f'/system scheduler remove [find name={job}]; /system backup load name={name} password=\\"\\"'
        send(connection, f'/system scheduler add name={job} interval={seconds}s on-event="{event}"', t)
    else:
        name = PLATFORMS[target.platform].rollback_file
        connection.send_command(f"copy running-config flash:{name}", expect_string=r"\?", read_timeout=t.command)
        output = connection.send_command("\n", expect_string=r"#", read_timeout=t.command)
        if "bytes copied" not in output:
            raise CommandRejected(f"copy running-config flash:{name}: {output.strip()}")


def _ensure_archive(connection, timeouts: Timeouts) -> None:
    """Give IOS the configuration archive its ``revert timer`` needs (a one-time, visible change)."""
    output = connection.send_config_set(["archive", f"path flash:{ARCHIVE_PATH}"], read_timeout=timeouts.command)
    if "% " in output:
        raise CommandRejected(output.strip().splitlines()[-1])


def _revert_minutes(options: PushOptions) -> int:
    """Minutes of the IOS ``revert timer``: the confirmation time plus grace, rounded up, 1 to 120."""
    return max(1, min(120, math.ceil((options.confirm_timeout + options.grace) / 60)))


def _apply(connection, target: Target, plan: Plan, options: PushOptions) -> None:
    timeouts = options.timeouts
    if target.platform == "mikrotik_routeros":
        for line in plan.apply:
            if line.startswith("/system identity set"):
                # the prompt carries the identity: wait for any prompt, then learn the new one
                send(connection, line, timeouts, expect=r"\[[^\]]+\] [^\r\n]*>")
                connection.set_base_prompt()
            else:
                send(connection, line, timeouts)
        return
    hostname = [line for line in plan.apply if line.startswith("hostname ")]
    lines = [line for line in plan.apply if not line.startswith("hostname ")]
    # the device reverts by itself unless ``configure confirm`` arrives in time (archive feature)
    output = connection.config_mode(config_command=f"configure terminal revert timer {_revert_minutes(options)}")
    if "%" in output:
        raise CommandRejected(output.strip().splitlines()[-1])
    if lines:
        output = connection.send_config_set(
            lines, enter_config_mode=False, exit_config_mode=False, read_timeout=timeouts.command
        )
        for marker in ("% Invalid input", "% Incomplete command", "% Ambiguous command"):
            if marker in output:
                raise CommandRejected(output.split(marker)[0].strip().splitlines()[-2] if "^" in output else marker)
    if hostname:
        # the prompt carries the hostname: wait for any configuration prompt, then learn the new one
        for line in hostname:
            connection.send_command(line, expect_string=r"\(config[^)]*\)#", read_timeout=timeouts.command)
    connection.exit_config_mode()
    if hostname:
        connection.set_base_prompt()


def _rollback(target: Target, login: Login, options: PushOptions) -> None:
    """Restore the configuration saved by :func:`_arm`, over a new session."""
    t = options.timeouts
    connection = _connect(target, login, options)
    try:
        if target.platform == "mikrotik_routeros":
            name = PLATFORMS[target.platform].rollback_backup
            connection.send_command(
                f'/system backup load name={name} password=""',
                expect_string=r"\[y/N\]",
                read_timeout=t.command,
            )
            try:
                connection.write_channel("y\r\n")
                connection.read_channel_timing(read_timeout=2)
            except (OSError, EOFError):
                pass  # the device reboots and drops the session, as expected
        else:
            name = PLATFORMS[target.platform].rollback_file
            send(connection, f"configure replace flash:{name} force", t)
            send(connection, f"delete /force flash:{name}", t)
    finally:
        with contextlib.suppress(Exception):  # a dropped session cannot be closed politely
            connection.disconnect()


def _disarm(connection, target: Target, options: PushOptions) -> bool:
    """Remove the safety net; False if the device already rolled itself back."""
    t = options.timeouts
    if target.platform == "mikrotik_routeros":
        platform = PLATFORMS[target.platform]
        count = send(connection, f"/system scheduler print count-only where name={platform.rollback_job}", t)
        if count.strip() != "1":
            return False
        send(connection, f"/system scheduler remove [find name={platform.rollback_job}]", t)
        send(connection, f"/file remove {platform.rollback_backup}.backup", t)
        return True
    name = PLATFORMS[target.platform].rollback_file
    confirmed = connection.send_command("configure confirm", read_timeout=t.command)
    send(connection, f"delete /force flash:{name}", t)
    if "No Rollback Confirmed Change pending" in confirmed:
        return False
    if options.save:
        output = connection.send_command("write memory", read_timeout=t.command)
        if "[OK]" not in output:
            raise CommandRejected(f"write memory: {output.strip()}")
    return True


def _connect(target: Target, login: Login, options: PushOptions):
    """Open a session, retrying while a device comes back from a reboot."""
    last: Exception | None = None
    for _attempt in range(options.reconnect_attempts):
        try:
            return open_session(target, login, options.timeouts)
        except Exception as exc:
            last = exc
            status, _detail = classify(exc)
            if status in ("auth_failed", "host_key"):
                break
            time.sleep(1)
    assert last is not None
    raise last


# --- the run ----------------------------------------------------------------------------------------


def push(
    targets: list[Target],
    logins: dict[str, Login],
    desired: dict[str, list[str]],
    options: PushOptions,
    ask: Callable[[float], bool] = lambda timeout: False,
    report: Callable[[str, list[str]], None] = lambda device, diff: None,
) -> list[DeviceResult]:
    """Push *desired* to *targets*; return one result per device (see the module docstring)."""
    started = evidence.iso(evidence.now())

    def prepare_and_apply(target: Target) -> DeviceResult:
        login = logins[target.name]
        platform = PLATFORMS[target.platform]
        connection = open_session(target, login, options.timeouts)
        armed = False
        try:
            before = _read(connection, target, options.timeouts)
            plan = platform.plan(
                _with_dynamic(connection, target, options.timeouts, before), desired[target.name], options.owner
            )
            report(target.name, plan.diff)
            data = {
                "started": started,
                "diff": plan.diff,
                "commands": plan.apply,
                "before": platform.clean(before),
            }
            if plan.empty:
                return DeviceResult(target.name, target.platform, "ok", _("already as desired"), data=data)
            if options.dry_run:
                return DeviceResult(
                    target.name,
                    target.platform,
                    "ok",
                    _("dry run: {n} commands not applied").format(n=len(plan.apply)),
                    data=data,
                )
            if target.platform == "cisco_ios" and not re.search(r"^archive$", before, re.M):
                _ensure_archive(connection, options.timeouts)
                data["before"] = platform.clean(_read(connection, target, options.timeouts))
            _arm(connection, target, options)
            armed = True
            _apply(connection, target, plan, options)
        except Exception as exc:
            if not armed:
                raise
            status, detail = classify(exc)
            return _rolled_back(
                target,
                login,
                options,
                _("apply failed ({status}: {detail})").format(status=status, detail=detail),
                data=data,
            )
        finally:
            with contextlib.suppress(Exception):  # a dropped session cannot be closed politely
                connection.disconnect()
        try:
            check = _connect(target, login, options)
            try:
                after = _with_dynamic(check, target, options.timeouts, _read(check, target, options.timeouts))
            finally:
                check.disconnect()
            remaining = platform.plan(after, desired[target.name], options.owner)
        except Exception as exc:
            status, detail = classify(exc)
            return _rolled_back(
                target,
                login,
                options,
                _("post-check failed ({status}: {detail})").format(status=status, detail=detail),
                data=data,
            )
        if not remaining.empty:
            data["remaining"] = remaining.diff
            return _rolled_back(
                target,
                login,
                options,
                _("post-check failed: {n} differences remain").format(n=len(remaining.diff)),
                data=data,
            )
        data["applied"] = True
        return DeviceResult(target.name, target.platform, "changed", _("applied, awaiting confirmation"), data=data)

    results = _finish_run(targets, logins, options, ask, run_parallel(targets, prepare_and_apply, options.workers))
    for result in results:
        result.data.pop("before", None)
    return results


def _finish_run(
    targets: list[Target],
    logins: dict[str, Login],
    options: PushOptions,
    ask: Callable[[float], bool],
    results: list[DeviceResult],
) -> list[DeviceResult]:
    """Ask once for confirmation, then keep or roll back every device that passed its post-check."""
    pending = [r for r in results if r.data.get("applied")]
    if not pending:
        return results
    confirmed = options.confirm == "yes" or ask(options.confirm_timeout)
    by_name = {t.name: t for t in targets}

    def finish(target: Target) -> DeviceResult:
        login = logins[target.name]
        previous = next(r for r in results if r.device == target.name)
        data = {k: v for k, v in previous.data.items() if k != "applied"}
        if not confirmed:
            return _rolled_back(target, login, options, _("not confirmed in time"), data=data)
        connection = _connect(target, login, options)
        try:
            kept = _disarm(connection, target, options)
        finally:
            connection.disconnect()
        if not kept:
            return DeviceResult(
                target.name,
                target.platform,
                "rolled_back",
                _("the device rolled back by itself before the confirmation arrived"),
                data=data,
            )
        return DeviceResult(target.name, target.platform, "changed", _("applied and confirmed"), data=data)

    finished = {r.device: r for r in run_parallel([by_name[r.device] for r in pending], finish, options.workers)}
    for result in results:
        if result.device in finished:
            finished[result.device].seconds = round(finished[result.device].seconds + result.seconds, 3)
    return [finished.get(r.device, r) for r in results]


def _rolled_back(target: Target, login: Login, options: PushOptions, reason: str, data: dict) -> DeviceResult:
    """Roll back and check that the configuration read before the change is back."""
    platform = PLATFORMS[target.platform]
    try:
        _rollback(target, login, options)
        connection = _connect(target, login, options)
        try:
            restored = platform.clean(_read(connection, target, options.timeouts))
        finally:
            connection.disconnect()
        if "before" in data and restored != data["before"]:
            return DeviceResult(
                target.name,
                target.platform,
                "error",
                _("{reason}; the rollback did not restore the previous configuration").format(reason=reason),
                data=data,
            )
    except Exception as exc:
        status, detail = classify(exc)
        if target.platform == "mikrotik_routeros":
            note = _("the device's scheduler restores the saved backup by itself")
        else:
            note = _("restore flash:{file} by hand").format(file=PLATFORMS[target.platform].rollback_file)
        return DeviceResult(
            target.name,
            target.platform,
            "error",
            _("{reason}; rollback failed ({status}: {detail}); {note}").format(
                reason=reason, status=status, detail=detail, note=note
            ),
            data=data,
        )
    return DeviceResult(
        target.name,
        target.platform,
        "rolled_back",
        _("{reason}; rolled back").format(reason=reason),
        data=data,
    )
