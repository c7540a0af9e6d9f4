"""A Jinja filter that writes an htpasswd entry the way restic's REST server reads it (bcrypt).

The backup machine's login file is rendered whole from the inventory (one line per client host, stale
ones gone), so the same converge must give the same file: the bcrypt salt is derived from a seed the
role passes (the client's name and the vault's secret) instead of being random. The passwords are
random 256-bit tokens, not words a person chose, so a derived salt gives an attacker nothing to reuse.
"""

from __future__ import annotations

import hashlib
from typing import Any

import bcrypt
from ansible.errors import AnsibleFilterError

# bcrypt's own base-64 alphabet; the salt is 22 of its characters, the last with its low four bits zero.
_ALPHABET = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_LAST = _ALPHABET[::16]


def akm_htpasswd_bcrypt(password: str, seed: str, rounds: int = 10) -> str:
    """Return ``$2b$<rounds>$<salt><hash>`` of *password* with a salt derived from *seed*."""
    if not password or not seed:
        raise AnsibleFilterError("akm_htpasswd_bcrypt needs a password and a seed (is the vault loaded?)")
    digest = hashlib.sha256(seed.encode()).digest()
    salt = "".join(_ALPHABET[byte % 64] for byte in digest[:21]) + _LAST[digest[21] % 4]
    return bcrypt.hashpw(password.encode(), f"$2b${rounds:02d}${salt}".encode()).decode()


class FilterModule:
    """``akm_htpasswd_bcrypt``."""

    def filters(self) -> dict[str, Any]:
        return {"akm_htpasswd_bcrypt": akm_htpasswd_bcrypt}
