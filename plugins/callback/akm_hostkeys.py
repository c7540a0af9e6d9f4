"""Ansible callback ``akm_hostkeys``: when a host is unreachable because its SSH host key was refused,
say what to do, in the words and language of ``akm``.

ssh (and Mitogen, which runs it) refuse a host whose key is not the one the inventory pins; their message
("Host key verification failed", Mitogen's "unrecognized or mismatching host key") names neither the
cause nor the command that records a renewed key. This callback adds both, once per host.
"""

from __future__ import annotations

DOCUMENTATION = r"""
name: akm_hostkeys
type: notification
short_description: Says what to do when a host's pinned SSH key was refused
description:
  - After an unreachable result whose message is about the host key, prints which host, why, and the
    C(akm inventory hostkeys) command that records a renewed key.
requirements:
  - enable in ansible.cfg (callbacks_enabled = akm_hostkeys)
"""

from pathlib import Path

from ansible.plugins.callback import CallbackBase

HOST_KEY_WORDS = ("host key", "host identification has changed")


class CallbackModule(CallbackBase):
    """Adds the pinned host keys' advice to an unreachable host whose key was refused."""

    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "notification"
    CALLBACK_NAME = "akm_hostkeys"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        self._told: set[str] = set()

    def v2_runner_on_unreachable(self, result) -> None:
        message = str(result._result.get("msg", "")).lower()
        host = result._host
        if host.name in self._told or not any(words in message for words in HOST_KEY_WORDS):
            return
        self._told.add(host.name)
        everyone = next((group.get_vars() for group in host.get_groups() if group.name == "all"), {})
        known_hosts = everyone.get("akm_known_hosts")
        if not known_hosts:
            return
        from akm import i18n
        from akm.inventory.hostkeys import advice

        i18n.setup()
        self._display.error(advice(Path(known_hosts).parent, host.name, changed=None), wrap_text=False)
