"""A small stateful simulator of MikroTik RouterOS v7 and Cisco IOS devices over SSH.

One process serves many devices, each on its own loopback port (``asyncssh``). Every device keeps its
configuration as state, so a command changes what ``/export`` or ``show running-config`` prints next.
Faults (refuse login, drop the connection after N commands, answer slowly, be down) are switched per
device at run time through a control socket (:mod:`akm.net.sim.control`).

Only what the project's tools and tests use is modelled; the behaviour (prompts, error messages, export
and running-config layout, volatile header lines) follows the vendors' documented CLI closely enough for
netmiko's ``mikrotik_routeros`` and ``cisco_ios`` drivers to work unchanged.
"""


def known_hosts(ready: dict) -> str:
    """The ``known_hosts`` lines that pin each device of a simulator's ready file (``--ready-file``) to
    its own host key, under its address and port: what tests and the bench give netmiko, which trusts no
    other key. The lab pins its devices by contacting them instead, as production does."""
    return "".join(f"[{d['host']}]:{d['port']} {d['host_key']}\n" for d in ready["devices"].values())
