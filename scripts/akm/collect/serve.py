"""The read-only answer of every host to the management host's collection (the SSH key's forced command).

Every Debian host authorises the management host's collection key with
``restrict,from="<management addresses>",command="/usr/bin/python3 -I .../akm/collect/serve.py ..."``:
whatever that key asks, sshd runs this program, and the request only arrives as text in
``SSH_ORIGINAL_COMMAND``. The program's own arguments (written by the management role into the
``command=``) name the only things it may show:

``--evidence DIR``
    the host's evidence records (``*.json`` under DIR, at any depth, without the ``*-latest.json``
    copies and the temporary dot files);
``--log NAME=PATH``
    a log file and its rotated files beside it (``PATH.1``, ``PATH-20261125``, ``PATH.2.gz`` ...), read
    decompressed;
``--file NAME=PATH``
    a file and the files its program keeps beside it (Kea's ``kea-leases4.csv`` and ``.csv.2``);
``--neighbours``
    the neighbour table (``ip -j neigh show``).

Two requests exist. ``list [NAME=N ...]`` answers one JSON document: the evidence files (path, size,
modification time), and per log and file the files with inode, size, modification time and the
SHA-256 of the first N bytes (default :data:`HEAD`), by which the collector knows a file again after a
rename or a compression. ``get`` reads a JSON list of pieces from its input (an evidence path; a log's
file from an offset, up to a length; a file; the neighbour table) and answers each as one JSON header
line (``{"size": n}`` or ``{"error": code}``) followed by exactly n bytes. A name outside what ``list``
shows, a path leaving the evidence folder, or any other request is refused; nothing is ever written.

The program runs with Debian's ``python3 -I`` and imports nothing but the standard library: it is copied
to every host by the base role with the evidence writer, and has no message a person reads (the
collector turns its error codes into sentences).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

HEAD = 4096
"""How many first bytes of a log file identify it (a Squid line begins with its time in milliseconds)."""
CHUNK = 1 << 20
LATEST_SUFFIX = "-latest.json"


class Refused(Exception):
    """A request this program does not answer; its argument is a stable code."""


def siblings(path: Path) -> list[Path]:
    """*path* and the files beside it whose name continues its name with ``.`` or ``-`` (rotations)."""
    if not path.parent.is_dir():
        return []
    prefix = path.name
    found = []
    for entry in path.parent.iterdir():
        name = entry.name
        rotation = name == prefix or name.startswith((prefix + ".", prefix + "-"))
        if rotation and entry.is_file() and not entry.is_symlink():
            found.append(entry)
    return sorted(found)


def _open(path: Path):
    return gzip.open(path, "rb") if path.name.endswith(".gz") else path.open("rb")


def head_hash(path: Path, length: int) -> str:
    """SHA-256 of the first *length* bytes of *path* (decompressed), or of all of it when shorter."""
    with _open(path) as handle:
        return hashlib.sha256(handle.read(length)).hexdigest()


def evidence_files(root: Path) -> list[dict]:
    """The evidence records under *root* the collector may copy."""
    found = []
    if not root.is_dir():
        return found
    for path in sorted(root.rglob("*.json")):
        relative = path.relative_to(root)
        if any(part.startswith(".") for part in relative.parts) or path.name.endswith(LATEST_SUFFIX):
            continue
        if path.is_symlink() or not path.is_file():
            continue
        info = path.stat()
        found.append({"path": relative.as_posix(), "size": info.st_size, "mtime_ns": info.st_mtime_ns})
    return found


def describe(base: Path, length: int) -> list[dict]:
    """Name, inode, size, modification time and head hash of *base* (``current``) and its rotations."""
    found = []
    for path in siblings(base):
        info = path.stat()
        found.append(
            {
                "name": path.name,
                "current": path == base,
                "inode": info.st_ino,
                "size": info.st_size,
                "mtime_ns": info.st_mtime_ns,
                "compressed": path.name.endswith(".gz"),
                "head": head_hash(path, length),
            }
        )
    return found


class Server:
    """What one host shows: its sources, from the forced command's arguments."""

    def __init__(self, evidence: Path | None, logs: dict[str, Path], files: dict[str, Path], neighbours: bool):
        self.evidence = evidence
        self.logs = logs
        self.files = files
        self.neighbours = neighbours

    def list(self, words: list[str]) -> dict:
        lengths = {}
        for word in words:
            name, sep, number = word.partition("=")
            if not sep or not number.isdigit() or not 0 < int(number) <= HEAD:
                raise Refused("bad-head")
            lengths[name] = int(number)
        return {
            "evidence": evidence_files(self.evidence) if self.evidence else None,
            "logs": {n: describe(p, lengths.get(n, HEAD)) for n, p in sorted(self.logs.items())},
            "files": {n: describe(p, HEAD) for n, p in sorted(self.files.items())},
            "neighbours": self.neighbours,
        }

    def _member(self, source: str, name) -> Path:
        base = self.logs.get(source) or self.files.get(source)
        if base is None:
            raise Refused("unknown-source")
        for path in siblings(base):
            if path.name == name:
                return path
        raise Refused("not-found")

    def _evidence(self, relative) -> Path:
        if self.evidence is None or not isinstance(relative, str):
            raise Refused("unknown-source")
        parts = Path(relative).parts
        if not relative.endswith(".json") or Path(relative).is_absolute() or ".." in parts or not parts:
            raise Refused("outside")
        path = self.evidence / relative
        if path.is_symlink() or not path.is_file():
            raise Refused("not-found")
        return path

    def pieces(self, piece: dict):
        """Yield the bytes of one requested piece."""
        source = piece.get("source")
        if source == "evidence":
            with self._evidence(piece.get("path")).open("rb") as handle:
                yield handle.read()
        elif source == "neighbours":
            if not self.neighbours:
                raise Refused("unknown-source")
            done = subprocess.run(["ip", "-j", "neigh", "show"], capture_output=True, check=False)
            if done.returncode != 0:
                raise Refused("neighbours-failed")
            yield done.stdout
        else:
            path = self._member(source, piece.get("name"))
            offset, length = piece.get("offset", 0), piece.get("length")
            if not isinstance(offset, int) or offset < 0 or not (length is None or isinstance(length, int)):
                raise Refused("bad-range")
            with _open(path) as handle:
                handle.seek(offset)
                left = length
                while left is None or left > 0:
                    block = handle.read(CHUNK if left is None else min(CHUNK, left))
                    if not block:
                        break
                    if left is not None:
                        left -= len(block)
                    yield block

    def get(self, request: bytes, out) -> None:
        try:
            wanted = json.loads(request or b"[]")
        except ValueError as exc:
            raise Refused("bad-request") from exc
        if not isinstance(wanted, list) or not all(isinstance(p, dict) for p in wanted):
            raise Refused("bad-request")
        for piece in wanted:
            try:
                data = b"".join(self.pieces(piece))
            except Refused as refused:
                out.write(json.dumps({"error": refused.args[0]}).encode() + b"\n")
                continue
            except OSError as exc:
                out.write(json.dumps({"error": "unreadable", "detail": exc.strerror or str(exc)}).encode() + b"\n")
                continue
            out.write(json.dumps({"size": len(data)}).encode() + b"\n")
            out.write(data)


def _named(text: str) -> tuple[str, Path]:
    name, sep, path = text.partition("=")
    if not sep or not name.isidentifier():
        raise argparse.ArgumentTypeError("NAME=PATH")
    return name, Path(path)


def main(argv: list[str] | None = None) -> int:
    """Answer the request in ``SSH_ORIGINAL_COMMAND``; 0 when answered, 2 when refused."""
    parser = argparse.ArgumentParser(prog="akm-collect-serve")
    parser.add_argument("--evidence", type=Path)
    parser.add_argument("--log", type=_named, action="append", default=[])
    parser.add_argument("--file", type=_named, action="append", default=[])
    parser.add_argument("--neighbours", action="store_true")
    args = parser.parse_args(argv)
    server = Server(args.evidence, dict(args.log), dict(args.file), args.neighbours)
    try:
        words = shlex.split(os.environ.get("SSH_ORIGINAL_COMMAND", ""))
    except ValueError:
        words = []
    out = sys.stdout.buffer
    try:
        if words[:1] == ["list"]:
            out.write(json.dumps(server.list(words[1:]), sort_keys=True).encode() + b"\n")
        elif words == ["get"]:
            server.get(sys.stdin.buffer.read(), out)
        else:
            raise Refused("unknown-request")
    except Refused as refused:
        print(json.dumps({"error": refused.args[0]}), file=sys.stderr)
        return 2
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
