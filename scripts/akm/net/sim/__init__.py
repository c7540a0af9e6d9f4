"""A small stateful simulator of MikroTik RouterOS v7 and Cisco IOS devices over SSH.

One process serves many devices, each on its own loopback port (``asyncssh``). Every device keeps its
configuration as state, so a command changes what ``/export`` or ``show running-config`` prints next.
Faults (refuse login, drop the connection after N commands, answer slowly, be down) are switched per
device at run time through a control socket (:mod:`akm.net.sim.control`).

Only what the project's tools and tests use is modelled; the behaviour (prompts, error messages, export
and running-config layout, volatile header lines) follows the vendors' documented CLI closely enough for
netmiko's ``mikrotik_routeros`` and ``cisco_ios`` drivers to work unchanged.
"""
