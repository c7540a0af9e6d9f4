"""The Debian package cache of the lab: apt-cacher-ng on the control node, upstream read at run time.

Lab machines (and debootstrap, when it builds the image) fetch packages only from
``http://<control ip>:3142/<path>``. apt-cacher-ng maps each path to the upstream URI the host's own
apt configuration uses (``/etc/apt/sources.list.d/*.sources`` ``URIs:`` lines, or ``deb`` lines of
``sources.list``), so no mirror name is ever written into the repository: it appears only in the
generated configuration under the state directory.

The daemon is a process the lab owns: started in the foreground as a child (there is no systemd on
the host), with its own configuration, cache and log directories under ``<state_dir>/apt-cache``,
listening only on the control address.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from akm.i18n import _
from akm.inventory.model import DEBIAN_RELEASES
from akm.lab.plan import APT_CACHE_PORT, LabError

APT_DIR = Path("/etc/apt")
CODENAMES = frozenset(codename for codename, _version in DEBIAN_RELEASES.values())
"""The Debian releases (codenames) the lab builds machines of."""


@dataclass(frozen=True)
class Source:
    """One repository of the host's apt configuration: where it is and what it holds."""

    uri: str
    suites: tuple[str, ...]
    components: tuple[str, ...]

    @property
    def path(self) -> str:
        """The URI's path (``/debian``): the key the cache maps back to this upstream."""
        return urlsplit(self.uri).path.rstrip("/") or "/"


def _deb822(text: str) -> list[dict[str, str]]:
    stanzas: list[dict[str, str]] = []
    current: dict[str, str] = {}
    key = None
    for raw in text.splitlines():
        if raw.startswith("#"):
            continue
        if not raw.strip():
            if current:
                stanzas.append(current)
            current, key = {}, None
            continue
        if raw[0] in " \t" and key:
            current[key] += " " + raw.strip()
            continue
        if ":" in raw:
            key, value = raw.split(":", 1)
            key = key.strip()
            current[key] = value.strip()
    if current:
        stanzas.append(current)
    return stanzas


def read_sources(apt_dir: Path = APT_DIR) -> list[Source]:
    """Return the host's ``deb`` repositories over HTTP(S), in configuration order."""
    sources: list[Source] = []
    for path in sorted((apt_dir / "sources.list.d").glob("*.sources")):
        for stanza in _deb822(path.read_text(encoding="utf-8", errors="replace")):
            if "deb" not in stanza.get("Types", "").split() or stanza.get("Enabled", "yes") == "no":
                continue
            for uri in stanza.get("URIs", "").split():
                sources.append(
                    Source(
                        uri,
                        tuple(stanza.get("Suites", "").split()),
                        tuple(stanza.get("Components", "").split()),
                    )
                )
    lists = [apt_dir / "sources.list", *sorted((apt_dir / "sources.list.d").glob("*.list"))]
    for path in lists:
        if not path.is_file():
            continue
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            line = re.sub(r"\[[^\]]*\]", " ", line.split("#", 1)[0]).split()
            if len(line) >= 3 and line[0] == "deb":
                sources.append(Source(line[1], (line[2],), tuple(line[3:])))
    return [s for s in sources if urlsplit(s.uri).scheme in ("http", "https")]


def _split_suite(suite: str) -> tuple[str, str] | None:
    """``("bookworm", "-security")`` for ``bookworm-security``; ``None`` for a suite of no known release."""
    codename, dash, rest = suite.partition("-")
    return (codename, dash + rest) if codename in CODENAMES else None


def lab_sources(apt_dir: Path = APT_DIR, suites: tuple[str, ...] = ("trixie",)) -> dict[str, list[Source]]:
    """Return, for each of *suites*, the repositories lab machines of that release use; or raise
    ``lab.no-mirror``.

    They are derived from the host's own Debian repositories, whatever release the host runs: a
    repository that carries ``bookworm bookworm-updates`` on a Debian 12 host serves ``trixie
    trixie-updates`` for a Debian 13 machine from the same mirror (and the other way round), so both
    releases need nothing but the host's apt configuration. The first repository of each release carries
    the release itself: debootstrap builds its image from it.
    """
    derived: dict[str, list[Source]] = {suite: [] for suite in suites}
    for source in read_sources(apt_dir):
        parts = [_split_suite(s) for s in source.suites]
        suffixes = tuple(dict.fromkeys(p[1] for p in parts if p is not None))
        for suite in suites:
            mapped = Source(source.uri, tuple(suite + suffix for suffix in suffixes), source.components)
            if suffixes and mapped not in derived[suite]:
                derived[suite].append(mapped)
    for suite, found in derived.items():
        if not any(suite in s.suites for s in found):
            raise LabError.one(
                "lab.no-mirror",
                _("the host's apt configuration names no HTTP Debian repository the lab can use for {suite}").format(
                    suite=suite
                ),
                _("configure apt on the host (apt-get update must work); the lab's cache uses the same mirror"),
                file=str(apt_dir),
                field="URIs",
            )
    return derived


def base_source(sources: list[Source], suite: str) -> Source:
    """Return the repository debootstrap builds the image of *suite* from."""
    return next(s for s in sources if suite in s.suites)


def acng_config(state: Path, listen: str, sources: list[Source]) -> str:
    """Return the apt-cacher-ng configuration of the lab (deterministic for the same inputs)."""
    lines = [
        "# Written by akm lab at run time; upstreams come from the host's apt configuration.",
        f"CacheDir: {state / 'cache'}",
        f"LogDir: {state / 'log'}",
        f"SocketPath: {state / 'socket'}",
        f"PidFile: {state / 'pid'}",
        f"Port: {APT_CACHE_PORT}",
        f"BindAddress: {listen}",
        "ForeGround: 1",
        "ExThreshold: 4",
        # A test run asks for the same index files again and again (every fresh machine runs apt update):
        # for half an hour they are served from the cache without asking the upstream, and a failed
        # download is retried, so a brief upstream hiccup does not fail a converge in the middle of a run.
        "FreshIndexMaxAge: 1800",
        "DlMaxRetries: 5",
        "ReportPage: acng-report.html",
    ]
    seen: dict[str, str] = {}
    for source in sources:
        seen.setdefault(source.path, source.uri.rstrip("/") + "/")
    for path, uri in sorted(seen.items()):
        lines.append(f"Remap-{re.sub('[^A-Za-z0-9]', '', path) or 'root'}: {path} ; {uri}")
    return "\n".join(lines) + "\n"


def machine_sources(cache_url: str, sources: list[Source]) -> str:
    """Return the deb822 ``.sources`` file of a lab machine: the same repositories, through the cache."""
    stanzas = []
    for source in sources:
        stanzas.append(
            "\n".join(
                [
                    "Types: deb",
                    f"URIs: {cache_url}{source.path}",
                    f"Suites: {' '.join(source.suites)}",
                    f"Components: {' '.join(source.components) or 'main'}",
                    "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg",
                ]
            )
        )
    return "\n\n".join(stanzas) + "\n"
