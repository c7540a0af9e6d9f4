"""Helpers of the backup tests: the CLI in-process, media-like files, bit rot, tmpfs."""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
from pathlib import Path

import pytest

from akm import i18n
from akm.backup import cli as backup_cli
from akm.errors import Error

needs_restic = pytest.mark.needs("restic")


def run_akm(argv: list[str]) -> int:
    """Run an ``akm fixity|backup`` command in English and return its exit code (as ``akm`` would)."""
    i18n.setup("en")
    parser = argparse.ArgumentParser(prog="akm")
    backup_cli.register(parser.add_subparsers(dest="area", required=True))
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except Error as exc:
        for problem in exc.problems:
            print(f"{problem.code}: {problem.render()}")
        return exc.exit_code


def write_random(path: Path, size: int) -> Path:
    """A file of *size* incompressible bytes, like an audio/video master."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        left = size
        while left:
            chunk = os.urandom(min(left, 1 << 20))
            handle.write(chunk)
            left -= len(chunk)
    return path


def flip_byte(path: Path, offset: int) -> None:
    """Flip one bit of the byte at *offset*, like bit rot would."""
    path.chmod(0o640)
    with path.open("r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 0x01]))


@contextlib.contextmanager
def tmpfs(path: Path, size: str):
    """Mount a small tmpfs at *path* (needs root: mark the test ``privileged``) and unmount it afterwards."""
    path.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise AssertionError(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=False)
