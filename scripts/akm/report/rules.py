"""Rules and security policy documents (placeholder until part 4)."""

from __future__ import annotations


def load_all(directory):
    return []
