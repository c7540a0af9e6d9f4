"""Health against the simulator: link state, error counters and uptime parsed with TextFSM."""

from __future__ import annotations

from akm.net.health import health


def test_health_reports_down_links_errors_and_uptime(sim, fast):
    sim.control.link("sim-001", "ether3", up=False)
    sim.control.link("sim-001", "ether2", errors=7)
    sim.control.link("sim-002", "GigabitEthernet0/4", up=False)
    sim.control.link("sim-002", "GigabitEthernet0/5", errors=3)
    targets = sim.targets("sim-001", "sim-002")
    try:
        results = {r.device: r for r in health(targets, sim.logins(targets), fast)}
    finally:
        sim.control.link("sim-001", "ether3", up=True)
        sim.control.link("sim-001", "ether2", errors=0)
        sim.control.link("sim-002", "GigabitEthernet0/4", up=True)
        sim.control.link("sim-002", "GigabitEthernet0/5", errors=0)
    ros, ios = results["sim-001"].data, results["sim-002"].data
    assert results["sim-001"].status == results["sim-002"].status == "ok"
    assert ros["total"] == 5 and ros["up"] == 4 and ros["down"] == ["ether3"]
    assert ros["with_errors"] == ["ether2"]
    assert ros["uptime_seconds"] >= 0 and ros["uptime"]
    assert ros["cpu_load"].endswith("%")
    assert ios["down"] == ["GigabitEthernet0/4"] and ios["with_errors"] == ["GigabitEthernet0/5"]
    assert ios["total"] == 9 and ios["up"] == 8
    assert ios["version"] == "15.2(7)E8"
