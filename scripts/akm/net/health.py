"""``akm net health``: interfaces up/down, error counters, uptime (and CPU/memory where shown).

Outputs are parsed with TextFSM: the ntc-templates for RouterOS ``/interface print terse
without-paging`` and ``/system resource print`` and for IOS ``show version`` and ``show interfaces``;
RouterOS ``/interface print stats`` has no ntc template, so ours is in ``akm/net/templates/``.
The result per device (kept as evidence for the reports) has ``uptime``, ``uptime_seconds``,
``interfaces`` (name, up, errors), ``up``/``total`` and ``with_errors``.
"""

from __future__ import annotations

from pathlib import Path

from akm.net.common import DeviceResult, Target, Timeouts, open_session, run_parallel
from akm.net.vault import Login

TEMPLATES = Path(__file__).parent / "templates"


def _seconds(weeks="", days="", hours="", minutes="", seconds="", years="") -> int:
    value = lambda text: int(text) if text else 0  # noqa: E731
    return (
        (((value(years) * 52 + value(weeks)) * 7 + value(days)) * 24 + value(hours)) * 60 + value(minutes)
    ) * 60 + value(seconds)


def _parsed(connection, command: str, timeouts: Timeouts, template: Path | None = None) -> list[dict]:
    kwargs = {"use_textfsm": True, "read_timeout": timeouts.command}
    if template:
        kwargs["textfsm_template"] = str(template)
    output = connection.send_command(command, **kwargs)
    if isinstance(output, str):
        raise ValueError(f"{command}: output could not be parsed")
    return output


def routeros_health(connection, timeouts: Timeouts) -> dict:
    resource = _parsed(connection, "/system resource print", timeouts)[0]
    links = _parsed(connection, "/interface print terse without-paging", timeouts)
    stats = {
        row["name"]: row
        for row in _parsed(
            connection,
            "/interface print stats",
            timeouts,
            TEMPLATES / "akm_mikrotik_routeros_interface_print_stats.textfsm",
        )
    }
    interfaces = []
    for link in links:
        counters = stats.get(link["name"], {})
        interfaces.append(
            {
                "name": link["name"],
                "up": "R" in link["status"],
                "errors": int(counters.get("rx_error") or 0) + int(counters.get("tx_error") or 0),
            }
        )
    return {
        "uptime": resource["uptime"],
        "uptime_seconds": _seconds(
            resource["uptime_weeks"],
            resource["uptime_days"],
            resource["uptime_hours"],
            resource["uptime_minutes"],
            resource["uptime_seconds"],
        ),
        "version": resource["version"],
        "cpu_load": resource["cpu_load"],
        "free_memory": resource["free_memory"],
        "total_memory": resource["total_memory"],
        "interfaces": interfaces,
    }


def ios_health(connection, timeouts: Timeouts) -> dict:
    version = _parsed(connection, "show version", timeouts)[0]
    interfaces = []
    for row in _parsed(connection, "show interfaces", timeouts):
        interfaces.append(
            {
                "name": row["interface"],
                "up": row["link_status"] == "up" and row["protocol_status"].startswith("up"),
                "admin_down": row["link_status"] == "administratively down",
                "errors": int(row["input_errors"] or 0) + int(row["output_errors"] or 0),
            }
        )
    return {
        "uptime": version["uptime"],
        "uptime_seconds": _seconds(
            version["uptime_weeks"],
            version["uptime_days"],
            version["uptime_hours"],
            version["uptime_minutes"],
            years=version["uptime_years"],
        ),
        "version": version["version"],
        "interfaces": interfaces,
    }


COLLECTORS = {"mikrotik_routeros": routeros_health, "cisco_ios": ios_health}


def health(
    targets: list[Target], logins: dict[str, Login], timeouts: Timeouts | None = None, workers: int = 32
) -> list[DeviceResult]:
    """Collect the health of every target in parallel."""
    timeouts = timeouts or Timeouts()

    def work(target: Target) -> DeviceResult:
        connection = open_session(target, logins[target.name], timeouts)
        try:
            data = COLLECTORS[target.platform](connection, timeouts)
        finally:
            connection.disconnect()
        data["total"] = len(data["interfaces"])
        data["up"] = sum(1 for i in data["interfaces"] if i["up"])
        data["down"] = sorted(i["name"] for i in data["interfaces"] if not i["up"] and not i.get("admin_down"))
        data["with_errors"] = sorted(i["name"] for i in data["interfaces"] if i["errors"])
        return DeviceResult(target.name, target.platform, "ok", data=data)

    return run_parallel(targets, work, workers)
