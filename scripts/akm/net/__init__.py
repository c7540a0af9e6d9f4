"""Network devices of the centre: configuration backups with history, safe pushes, health.

The devices come from the inventory (assets with a ``net`` block); their credentials come from
ansible-vault. ``akm.net.sim`` is a small stateful simulator of RouterOS and Cisco IOS devices used by
the tests, the bench and the lab, since no real router or switch can be reached from the build machines.
"""
