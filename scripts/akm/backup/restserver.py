"""A small server of restic's REST backend protocol over a plain directory, append-only by default.

Debian 12 ships restic but not restic's rest-server, so the backup machine runs this one. It speaks
both versions of the protocol (a client that sends ``Accept: application/vnd.x.restic.rest.v2`` gets
listings with sizes, any other client the v1 list of names) and stores the repository exactly like
restic's local backend, so ``restic -r /srv/...`` works on the same directory on the backup machine —
that is how forget and prune run there, never through the server.

Requests (``<repo>`` is an optional path prefix, so one server can hold several repositories)::

    POST   /<repo>/?create=true          create the directory layout
    HEAD   /<repo>/config                size of the config, or 404
    GET    /<repo>/config                the config
    POST   /<repo>/config                store the config (only if there is none)
    GET    /<repo>/<type>/               list: v1 ["name", ...]; v2 [{"name": .., "size": ..}, ...]
    HEAD   /<repo>/<type>/<name>         size, or 404
    GET    /<repo>/<type>/<name>         content; ``Range: bytes=a-b`` / ``a-`` / ``-n`` gives 206
    POST   /<repo>/<type>/<name>         store (the body's SHA-256 must equal the name)
    DELETE /<repo>/<type>/<name>         remove; in append-only mode only for ``locks``

``<type>`` is one of data, keys, locks, snapshots, index; ``data`` objects live in ``data/<2 hex>/``.

Append-only means: nothing that exists is ever overwritten (an upload of an existing name is refused
with 403 in every mode — restic names objects by their content, so a second upload under the same name
is either a duplicate or an attack) and nothing is deleted except lock files, which restic must be able
to remove when it finishes. A client that was taken over can add snapshots but cannot remove history.

Uploads are written to a temporary file, checked against their name, flushed to disk and then linked
into place, so a killed client or a full disk never leaves a partial object under a real name.
A full disk answers ``507 Insufficient Storage``.

With a users file (``--auth-file``: lines ``user:<sha256 hex of the password>``) every request needs
HTTP basic authentication and a user may only use the repository named after it (``/<user>/...``,
restic's "private repositories"), so one client can neither read nor add to another's backups. The
passwords are long random tokens (the roles derive one per host from a vault secret), so a plain
SHA-256 is enough to keep them out of the file; a slow password hash would cost on every request.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import hmac
import json
import os
import re
import secrets
import ssl
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

TYPES = ("data", "keys", "locks", "snapshots", "index")
V2 = "application/vnd.x.restic.rest.v2"
V1 = "application/vnd.x.restic.rest.v1"
_NAME = re.compile(r"^[0-9a-f]{64}$")
_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
CHUNK = 1 << 20


def read_users(path: Path) -> dict[str, str]:
    """Read a users file of ``user:sha256hex`` lines (``#`` comments allowed)."""
    users = {}
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, digest = line.partition(":")
        if not sep or not _SEGMENT.match(user) or not _NAME.match(digest.strip()):
            raise ValueError(f"{path}:{number}: expected 'user:<64 hex digits>'")
        users[user] = digest.strip()
    return users


class RepoStore:
    """The on-disk layout of restic repositories under one root directory."""

    def __init__(self, root: Path, append_only: bool = True, users: dict[str, str] | None = None) -> None:
        self.root = Path(root)
        self.append_only = append_only
        self.users = users or {}

    def repo_dir(self, prefix: list[str]) -> Path:
        """Return the directory of the repository named by the path *prefix*."""
        return self.root.joinpath(*prefix)

    def object_path(self, repo: Path, kind: str, name: str) -> Path:
        """Return where object *name* of *kind* is stored."""
        if kind == "data":
            return repo / "data" / name[:2] / name
        return repo / kind / name

    def create(self, repo: Path) -> None:
        """Create the directory layout of a repository (idempotent)."""
        for kind in TYPES:
            (repo / kind).mkdir(parents=True, exist_ok=True)
        for i in range(256):
            (repo / "data" / f"{i:02x}").mkdir(exist_ok=True)

    def listing(self, repo: Path, kind: str) -> list[tuple[str, int]] | None:
        """Return (name, size) of every object of *kind*, or None when the type directory is missing."""
        base = repo / kind
        if not base.is_dir():
            return None
        dirs = sorted(p for p in base.iterdir() if p.is_dir()) if kind == "data" else [base]
        out = []
        for d in dirs:
            with os.scandir(d) as it:
                for entry in it:
                    if _NAME.match(entry.name) and entry.is_file(follow_symlinks=False):
                        out.append((entry.name, entry.stat(follow_symlinks=False).st_size))
        out.sort()
        return out


def _parse_path(path: str) -> tuple[list[str], str | None, str | None, bool] | None:
    """Split a request path into (repo prefix, type or 'config', object name, trailing slash).

    Returns None for a path that names nothing valid (including any attempt at ``..``).
    """
    trailing = path.endswith("/")
    parts = [p for p in path.split("/") if p]
    if any(not _SEGMENT.match(p) for p in parts):
        return None
    if not parts:
        return [], None, None, trailing
    if parts[-1] == "config":
        return parts[:-1], "config", None, trailing
    if parts[-1] in TYPES:
        return parts[:-1], parts[-1], None, trailing
    if len(parts) >= 2 and parts[-2] in TYPES and _NAME.match(parts[-1]):
        return parts[:-2], parts[-2], parts[-1], trailing
    return parts, None, None, trailing


class Handler(BaseHTTPRequestHandler):
    """One HTTP request of restic's REST protocol."""

    protocol_version = "HTTP/1.1"
    server_version = "akm-restserver/1"
    store: RepoStore
    quiet = True

    def log_message(self, format: str, *args) -> None:
        if not self.quiet:
            sys.stderr.write(f"{self.address_string()} - {format % args}\n")

    def _error(self, status: HTTPStatus, text: str = "") -> None:
        self._drain()
        body = (text or status.phrase).encode() + b"\n"
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _drain(self) -> None:
        """Read an unread request body so the connection can be reused for the next request."""
        if getattr(self, "_body_read", False):
            return
        self._body_read = True
        for _chunk in self._body_chunks():
            pass

    def _body_chunks(self):
        """Yield the request body in pieces; a piece is only valid until the next one is asked for."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                line = self.rfile.readline(1024)
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return
                left = size
                while left:
                    chunk = self.rfile.read(min(CHUNK, left))
                    if not chunk:
                        raise ConnectionError("client went away")
                    left -= len(chunk)
                    yield chunk
                self.rfile.readline(1024)
        else:
            left = int(self.headers.get("Content-Length") or 0)
            buf = bytearray(min(CHUNK, max(left, 1)))
            view = memoryview(buf)
            while left > 0:
                count = self.rfile.readinto(view[: min(len(buf), left)])
                if not count:
                    raise ConnectionError("client went away")
                left -= count
                yield view[:count]

    def _user(self) -> str | None:
        """The authenticated user, or None (after answering 401) when credentials are missing or wrong."""
        header = self.headers.get("Authorization", "")
        scheme, _sep, encoded = header.partition(" ")
        if scheme.lower() == "basic":
            try:
                user, _sep, password = base64.b64decode(encoded, validate=True).decode("utf-8").partition(":")
            except (ValueError, UnicodeDecodeError):
                user, password = "", ""
            expected = self.store.users.get(user)
            offered = hashlib.sha256(password.encode("utf-8")).hexdigest()
            if expected is not None and hmac.compare_digest(expected, offered):
                return user
        self._drain()
        body = b"authentication required\n"
        self.send_response(HTTPStatus.UNAUTHORIZED)
        self.send_header("WWW-Authenticate", 'Basic realm="akm-restic"')
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        return None

    def _target(self):
        self._body_read = False
        url = urlsplit(self.path)
        parsed = _parse_path(url.path)
        if parsed is None:
            self._error(HTTPStatus.NOT_FOUND, "invalid path")
            return None
        prefix, kind, name, trailing = parsed
        if self.store.users:
            user = self._user()
            if user is None:
                return None
            if prefix[:1] != [user]:
                self._error(HTTPStatus.FORBIDDEN, "each client may use only its own repository /<user>/")
                return None
        return url, self.store.repo_dir(prefix), kind, name, trailing

    def _send_empty(self, status: HTTPStatus, length: int = 0, headers: dict | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(length))
        self.end_headers()

    def do_HEAD(self) -> None:
        self._get(head=True)

    def do_GET(self) -> None:
        self._get(head=False)

    def _get(self, head: bool) -> None:
        target = self._target()
        if target is None:
            return
        _url, repo, kind, name, _trailing = target
        if kind is None:
            self._error(HTTPStatus.NOT_FOUND)
            return
        if kind != "config" and name is None:
            self._list(repo, kind, head)
            return
        path = repo / "config" if kind == "config" else self.store.object_path(repo, kind, name)
        try:
            handle = open(path, "rb")  # noqa: SIM115 - the with-block below closes it
        except FileNotFoundError:
            self._error(HTTPStatus.NOT_FOUND)
            return
        except OSError as exc:
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, exc.strerror or "")
            return
        with handle:
            size = os.fstat(handle.fileno()).st_size
            start, end, status = 0, size, HTTPStatus.OK
            wanted = self.headers.get("Range")
            if wanted and not head:
                match = _RANGE.match(wanted.strip())
                if not match or (not match.group(1) and not match.group(2)):
                    self._error(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
                    return
                first, last = match.group(1), match.group(2)
                if first:
                    start = int(first)
                    end = min(size, int(last) + 1) if last else size
                else:
                    start = max(0, size - int(last))
                if start >= size or end <= start:
                    self._error(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
                    return
                status = HTTPStatus.PARTIAL_CONTENT
            headers = {"Content-Type": "application/octet-stream", "Accept-Ranges": "bytes"}
            if status == HTTPStatus.PARTIAL_CONTENT:
                headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
            self._send_empty(status, end - start, headers)
            if head:
                return
            self.wfile.flush()
            self.connection.sendfile(handle, start, end - start)

    def _list(self, repo: Path, kind: str, head: bool) -> None:
        items = self.store.listing(repo, kind)
        if items is None:
            self._error(HTTPStatus.NOT_FOUND)
            return
        if V2 in self.headers.get("Accept", ""):
            body = json.dumps([{"name": n, "size": s} for n, s in items]).encode()
            ctype = V2
        else:
            body = json.dumps([n for n, _s in items]).encode()
            ctype = V1
        self._send_empty(HTTPStatus.OK, len(body), {"Content-Type": ctype})
        if not head:
            self.wfile.write(body)

    def do_POST(self) -> None:
        target = self._target()
        if target is None:
            return
        url, repo, kind, name, _trailing = target
        if kind is None:
            if parse_qs(url.query).get("create") == ["true"]:
                self._drain()
                try:
                    self.store.create(repo)
                except OSError as exc:
                    self._error(self._status_for(exc), exc.strerror or "")
                    return
                self._send_empty(HTTPStatus.OK)
            else:
                self._error(HTTPStatus.BAD_REQUEST, "POST to a repository needs ?create=true")
            return
        if kind != "config" and name is None:
            self._error(HTTPStatus.METHOD_NOT_ALLOWED)
            return
        path = repo / "config" if kind == "config" else self.store.object_path(repo, kind, name)
        if not path.parent.is_dir():
            self._error(HTTPStatus.NOT_FOUND, "no repository here; create it first")
            return
        if path.exists():
            self._error(HTTPStatus.FORBIDDEN, "object exists; overwriting is not allowed")
            return
        self._save(path, None if kind == "config" else name)

    @staticmethod
    def _status_for(exc: OSError) -> HTTPStatus:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return HTTPStatus.INSUFFICIENT_STORAGE
        return HTTPStatus.INTERNAL_SERVER_ERROR

    def _save(self, path: Path, expected: str | None) -> None:
        tmp = path.parent / f".tmp-{secrets.token_hex(8)}"
        digest = hashlib.sha256()
        try:
            self._body_read = True
            with open(tmp, "xb") as out:
                for chunk in self._body_chunks():
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            if expected is not None and digest.hexdigest() != expected:
                tmp.unlink(missing_ok=True)
                self._error(HTTPStatus.BAD_REQUEST, "content does not match its name (sha256)")
                return
            try:
                os.link(tmp, path)
            except FileExistsError:
                tmp.unlink(missing_ok=True)
                self._error(HTTPStatus.FORBIDDEN, "object exists; overwriting is not allowed")
                return
            tmp.unlink(missing_ok=True)
            os.chmod(path, 0o440)
            dfd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except ConnectionError:
            tmp.unlink(missing_ok=True)
            self.close_connection = True
            return
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            self.log_error("saving %s failed: %s", path.name, exc)
            self.close_connection = True
            self._error(self._status_for(exc), exc.strerror or "")
            return
        self._send_empty(HTTPStatus.OK)

    def do_DELETE(self) -> None:
        target = self._target()
        if target is None:
            return
        _url, repo, kind, name, _trailing = target
        if kind is None or (kind != "config" and name is None):
            self._error(HTTPStatus.METHOD_NOT_ALLOWED)
            return
        if self.store.append_only and kind != "locks":
            self._error(HTTPStatus.FORBIDDEN, "append-only: deleting is not allowed")
            return
        path = repo / "config" if kind == "config" else self.store.object_path(repo, kind, name)
        try:
            path.unlink()
        except FileNotFoundError:
            self._error(HTTPStatus.NOT_FOUND)
            return
        except OSError as exc:
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, exc.strerror or "")
            return
        self._send_empty(HTTPStatus.OK)


def tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A server-side TLS context (TLS 1.2 or newer) with *cert* (PEM, chain allowed) and *key*."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(cert), str(key))
    return context


class RestServer(ThreadingHTTPServer):
    """The HTTP server; ``serve_forever`` in a thread for tests, or :func:`main` as a service."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(
        self,
        root: Path,
        host: str = "127.0.0.1",
        port: int = 0,
        append_only: bool = True,
        quiet: bool = True,
        users: dict[str, str] | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        store = RepoStore(Path(root), append_only, users)
        handler = type("BoundHandler", (Handler,), {"store": store, "quiet": quiet})
        super().__init__((host, port), handler)
        self.store = store
        self.tls = tls

    def finish_request(self, request, client_address) -> None:
        """With TLS, do the handshake here, in the request's own thread: a slow or plain-HTTP client
        then never holds up ``accept`` for the others, and a plain-HTTP request simply fails its
        handshake (nothing is ever served without TLS)."""
        if self.tls is not None:
            request.settimeout(30)
            request = self.tls.wrap_socket(request, server_side=True)
            request.settimeout(None)
        super().finish_request(request, client_address)

    def handle_error(self, request, client_address) -> None:
        """A client that hangs up (restic killed, or done with a keep-alive connection) is normal."""
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError | TimeoutError | ssl.SSLError):
            return
        super().handle_error(request, client_address)

    @property
    def url(self) -> str:
        """The ``rest:`` repository URL of the root repository."""
        host, port = self.server_address[:2]
        scheme = "https" if self.tls is not None else "http"
        return f"rest:{scheme}://{host}:{port}/"

    def start_thread(self) -> threading.Thread:
        """Serve in a daemon thread and return it (tests, bench)."""
        thread = threading.Thread(target=self.serve_forever, name="akm-restserver", daemon=True)
        thread.start()
        return thread
