"""Fixity of preservation masters: BagIt-compatible SHA-256 manifests, built and verified in place.

The archive directory (for example the audio/video masters or the digitised scans) is not moved into a
bag. Instead the bag's tag files live in a manifest directory, by default ``<archive>/.akm-fixity/``,
and the archive itself plays the role of the bag's ``data/`` payload directory::

    .akm-fixity/bagit.txt               BagIt-Version: 1.0, Tag-File-Character-Encoding: UTF-8
    .akm-fixity/bag-info.txt            Bagging-Date, Payload-Oxum, Bag-Software-Agent, ...
    .akm-fixity/manifest-sha256.txt     <sha256>  data/<path relative to the archive>
    .akm-fixity/tagmanifest-sha256.txt  checksums of the three files above

The manifest lines follow RFC 8493 (two spaces, ``data/`` prefix, ``%0A``/``%0D``/``%25`` encoded), so
any BagIt tool can read them after pointing ``data/`` at the archive.

``build`` adds files that are new on disk and keeps every recorded checksum as it is: a file whose
bytes changed is never silently re-recorded, because that is exactly what bit rot looks like.
``verify`` re-reads every file and sorts the result into *unchanged*, *changed* (bit rot or tampering:
restore it), *missing* (deleted: restore it) and *new* (legitimate additions: run ``build``).

Files are read in fixed-size chunks into one reused buffer per worker, never whole into memory, and
hashed by a small thread pool (``hashlib`` releases the GIL while hashing, so two workers use both
cores of the backup machine).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from akm.backup import BackupError
from akm.errors import Problem
from akm.i18n import _

MANIFEST_DIR_NAME = ".akm-fixity"
MANIFEST = "manifest-sha256.txt"
TAG_MANIFEST = "tagmanifest-sha256.txt"
BAGIT_TXT = "bagit.txt"
BAG_INFO = "bag-info.txt"
CHUNK_SIZE = 1 << 20
AGENT = "akm fixity"


class FixityError(BackupError):
    """A fixity manifest that cannot be read or an archive that cannot be scanned."""


@dataclass(frozen=True)
class Entry:
    """One file of the payload: its path relative to the archive (POSIX form) and its checksum."""

    path: str
    sha256: str
    size: int


@dataclass
class BuildResult:
    """What ``build`` did: files added to the manifest, files kept, recorded files not on disk."""

    added: list[Entry] = field(default_factory=list)
    kept: int = 0
    missing: list[str] = field(default_factory=list)
    bytes_hashed: int = 0


@dataclass
class Change:
    """A recorded file whose bytes are no longer what the manifest says."""

    path: str
    expected: str
    actual: str
    size: int


@dataclass
class VerifyResult:
    """The four kinds of outcome of ``verify``; only *changed* and *missing* are findings."""

    unchanged: list[str] = field(default_factory=list)
    changed: list[Change] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    new: list[str] = field(default_factory=list)
    bytes_hashed: int = 0

    @property
    def ok(self) -> bool:
        """True when every recorded file is present with its recorded checksum."""
        return not self.changed and not self.missing


def default_workers() -> int:
    """Two hashing threads on the usual 2-core machine; never more than the CPUs there are."""
    return max(1, min(2, os.cpu_count() or 1))


def hash_file(path: Path, chunk_size: int = CHUNK_SIZE, buffer: bytearray | None = None) -> tuple[str, int]:
    """Return the SHA-256 hex digest and size of *path*, reading it in chunks of *chunk_size*."""
    digest = hashlib.sha256()
    buf = buffer if buffer is not None else bytearray(chunk_size)
    view = memoryview(buf)
    size = 0
    with open(path, "rb", buffering=0) as handle:
        while True:
            count = handle.readinto(buf)
            if not count:
                break
            digest.update(view[:count])
            size += count
    return digest.hexdigest(), size


def hash_many(
    root: Path, paths: Iterable[str], workers: int, chunk_size: int = CHUNK_SIZE
) -> dict[str, tuple[str, int] | OSError]:
    """Hash *paths* (relative to *root*) with *workers* threads; an unreadable file maps to its OSError."""
    import threading

    local = threading.local()

    def one(rel: str) -> tuple[str, tuple[str, int] | OSError]:
        buf = getattr(local, "buf", None)
        if buf is None:
            buf = local.buf = bytearray(chunk_size)
        try:
            return rel, hash_file(root / rel, chunk_size, buf)
        except OSError as exc:
            return rel, exc

    items = sorted(paths)
    if workers <= 1 or len(items) <= 1:
        return dict(one(rel) for rel in items)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return dict(pool.map(one, items))


def encode_path(rel: str) -> str:
    """Encode a payload path for a manifest line as RFC 8493 requires."""
    return rel.replace("%", "%25").replace("\n", "%0A").replace("\r", "%0D")


def decode_path(text: str) -> str:
    """Undo :func:`encode_path`."""
    return text.replace("%0A", "\n").replace("%0a", "\n").replace("%0D", "\r").replace("%0d", "\r").replace("%25", "%")


def manifest_dir_for(root: Path, manifest: Path | None) -> Path:
    """Return the manifest directory: *manifest* if given, else ``<root>/.akm-fixity``."""
    return Path(manifest) if manifest else Path(root) / MANIFEST_DIR_NAME


def scan(root: Path, exclude: Path | None = None) -> dict[str, int]:
    """Return every regular file under *root* (relative POSIX path -> size), skipping *exclude*.

    Symbolic links are not followed: a master is a real file, and a link out of the archive must not
    make fixity read another tree.
    """
    root = Path(root)
    if not root.is_dir():
        raise FixityError.one(
            "fixity.no-archive",
            _("the archive directory does not exist or is not a directory"),
            _("give the directory of the masters, for example the audio/video archive"),
            file=str(root),
            field="path",
        )
    skip = exclude.resolve() if exclude is not None and exclude.exists() else None
    found: dict[str, int] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        if skip is not None:
            dirnames[:] = [d for d in dirnames if (here / d).resolve() != skip]
        dirnames.sort()
        for name in filenames:
            full = here / name
            try:
                info = full.lstat()
            except OSError:
                continue
            if not os.path.isfile(full) or full.is_symlink():
                continue
            found[full.relative_to(root).as_posix()] = info.st_size
    return found


def read_manifest(mdir: Path) -> dict[str, str]:
    """Read ``manifest-sha256.txt`` in *mdir* into {payload path: sha256}; {} when there is none yet."""
    path = Path(mdir) / MANIFEST
    if not path.exists():
        return {}
    entries: dict[str, str] = {}
    problems: list[Problem] = []
    with path.open(encoding="utf-8", newline="\n") as handle:
        for number, raw in enumerate(handle, start=1):
            line = raw.rstrip("\n").rstrip("\r")
            if not line.strip():
                continue
            digest, sep, name = line.partition(" ")
            name = name.lstrip(" ")
            valid = (
                sep
                and len(digest) == 64
                and all(c in "0123456789abcdef" for c in digest.lower())
                and name.startswith("data/")
            )
            if not valid:
                problems.append(
                    Problem(
                        file=str(path),
                        line=number,
                        field="manifest",
                        code="fixity.bad-manifest-line",
                        message=_("not a manifest line of the form '<sha256>  data/<path>'"),
                        hint=_("restore the manifest from backup or rebuild it with 'akm fixity build'"),
                    )
                )
                continue
            entries[decode_path(name[len("data/") :])] = digest.lower()
    if problems:
        raise FixityError(problems)
    return entries


def _write_text_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_bag(mdir: Path, root: Path, entries: dict[str, str], sizes: dict[str, int], date_text: str) -> None:
    """Write the four tag files of the bag in *mdir* (manifest sorted by path)."""
    mdir.mkdir(parents=True, exist_ok=True)
    manifest = "".join(f"{entries[p]}  data/{encode_path(p)}\n" for p in sorted(entries))
    octets = sum(sizes.get(p, 0) for p in entries)
    bagit = "BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"
    info = (
        f"Bag-Software-Agent: {AGENT}\n"
        f"Bagging-Date: {date_text}\n"
        f"External-Description: in-place bag; the payload directory data/ is {Path(root).resolve()}\n"
        f"Payload-Oxum: {octets}.{len(entries)}\n"
    )
    texts = {BAGIT_TXT: bagit, BAG_INFO: info, MANIFEST: manifest}
    for name, text in texts.items():
        _write_text_atomic(mdir / name, text)
    tags = "".join(f"{hashlib.sha256(texts[name].encode('utf-8')).hexdigest()}  {name}\n" for name in sorted(texts))
    _write_text_atomic(mdir / TAG_MANIFEST, tags)


def _unreadable(rel: str, exc: OSError) -> Problem:
    return Problem(
        file=rel,
        line=None,
        field="file",
        code="fixity.unreadable",
        message=_("the file cannot be read: {reason}").format(reason=exc.strerror or str(exc)),
        hint=_("check the disk and the file's permissions"),
    )


def build(
    root: Path,
    manifest: Path | None = None,
    workers: int | None = None,
    date_text: str = "",
    progress: Callable[[str], None] | None = None,
) -> BuildResult:
    """Create or extend the manifest of *root*: hash the files it does not list yet, keep the rest."""
    root = Path(root)
    mdir = manifest_dir_for(root, manifest)
    on_disk = scan(root, exclude=mdir)
    recorded = read_manifest(mdir)
    todo = [p for p in on_disk if p not in recorded]
    hashed = hash_many(root, todo, workers or default_workers())
    problems = [_unreadable(rel, out) for rel, out in sorted(hashed.items()) if isinstance(out, OSError)]
    if problems:
        raise FixityError(problems)
    result = BuildResult(kept=sum(1 for p in recorded if p in on_disk))
    entries = dict(recorded)
    for rel in sorted(hashed):
        digest, size = hashed[rel]  # type: ignore[misc]
        entries[rel] = digest
        result.added.append(Entry(rel, digest, size))
        result.bytes_hashed += size
    result.missing = sorted(p for p in recorded if p not in on_disk)
    if result.added or not (mdir / MANIFEST).exists():
        write_bag(mdir, root, entries, on_disk, date_text)
    return result


def verify(root: Path, manifest: Path | None = None, workers: int | None = None) -> VerifyResult:
    """Re-read every recorded file of *root* and compare it with the manifest."""
    root = Path(root)
    mdir = manifest_dir_for(root, manifest)
    on_disk = scan(root, exclude=mdir)
    if not (mdir / MANIFEST).exists():
        raise FixityError.one(
            "fixity.no-manifest",
            _("there is no fixity manifest for this archive"),
            _("create it first with 'akm fixity build {path}'").format(path=root),
            file=str(mdir / MANIFEST),
            field="manifest",
        )
    recorded = read_manifest(mdir)
    result = VerifyResult()
    result.missing = sorted(p for p in recorded if p not in on_disk)
    result.new = sorted(p for p in on_disk if p not in recorded)
    hashed = hash_many(root, [p for p in recorded if p in on_disk], workers or default_workers())
    for rel in sorted(hashed):
        out = hashed[rel]
        if isinstance(out, OSError):
            result.changed.append(Change(rel, recorded[rel], "unreadable: " + (out.strerror or str(out)), 0))
            continue
        digest, size = out
        result.bytes_hashed += size
        if digest == recorded[rel]:
            result.unchanged.append(rel)
        else:
            result.changed.append(Change(rel, recorded[rel], digest, size))
    return result
