#!/usr/bin/python3
"""The lab's Telegram Bot API: ``sendMessage`` over HTTPS, as the real API answers it, for the alerts.

Installed into the internet machine by ``akm lab`` as /usr/local/sbin/akm-fake-telegram and run by the
unit ``akm-fake-telegram.service`` on an address of its own (the sites hold port 443 of the first).

``POST /bot<token>/sendMessage`` with ``chat_id`` and ``text`` (a JSON body, a form, or the query string,
as the real API takes them) answers ``{"ok": true, "result": {message}}`` and appends the message as one
JSON line to the record file: what the lab tests count. A token other than the one in the token file
answers 401, a missing field 400, another method 404, each ``{"ok": false, ...}`` and recorded nowhere.
Standard library only, so the image needs nothing more.
"""

import argparse
import json
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

BOT_ID = 100000001
"""The stand-in bot's own user id, in each message's ``from``."""


class BotApi(BaseHTTPRequestHandler):
    token = ""
    record = ""
    lock = threading.Lock()
    sent = 0

    def do_POST(self):
        url = urlsplit(self.path)
        prefix, _sep, method = url.path.lstrip("/").partition("/")
        if prefix != f"bot{self.token}" or not self.token:
            self._answer(401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
            return
        if method != "sendMessage":
            self._answer(404, {"ok": False, "error_code": 404, "description": "Not Found"})
            return
        fields = dict(parse_qsl(url.query))
        try:
            fields.update(self._body())
        except ValueError:
            self._answer(400, {"ok": False, "error_code": 400, "description": "Bad Request: can't parse JSON"})
            return
        for name in ("chat_id", "text"):
            if fields.get(name) in (None, ""):
                self._answer(400, {"ok": False, "error_code": 400, "description": f"Bad Request: {name} is empty"})
                return
        with self.lock:
            type(self).sent += 1
            message = {
                "message_id": self.sent,
                "from": {"id": BOT_ID, "is_bot": True, "first_name": "AKM lab bot"},
                "chat": {"id": _chat(fields["chat_id"]), "type": "private"},
                "date": int(time.time()),
                "text": str(fields["text"]),
            }
            with open(self.record, "a", encoding="utf-8") as out:
                out.write(json.dumps(message, ensure_ascii=False, sort_keys=True) + "\n")
        self._answer(200, {"ok": True, "result": message})

    def _body(self) -> dict:
        data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        kind = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        if not data:
            return {}
        if kind == "application/json":
            found = json.loads(data)
            if not isinstance(found, dict):
                raise ValueError("not an object")
            return found
        return dict(parse_qsl(data.decode()))

    def _answer(self, code: int, answer: dict) -> None:
        body = json.dumps(answer, ensure_ascii=False).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        # The token is in the path: the journal gets the method only.
        sys.stderr.write(f"{self.address_string()} {self.command} {self.path.rpartition('/')[2]}\n")


def _chat(value):
    """A chat id as the API gives it back: a number when it is one, else the @name as written."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return value


def serve(address: str, port: int, cert: str, key: str, token: str, record: str) -> ThreadingHTTPServer:
    """A server of the Bot API on *address*:*port* (port 0: any free one), not yet serving."""
    try:
        with open(record, encoding="utf-8") as taken:
            sent = sum(1 for _line in taken)
    except FileNotFoundError:
        sent = 0
    handler = type("Bot", (BotApi,), {"token": token, "record": record, "lock": threading.Lock(), "sent": sent})
    server = ThreadingHTTPServer((address, port), handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    return server


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", required=True, help="ADDRESS:PORT")
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--token-file", required=True, help="the one bot token accepted")
    parser.add_argument("--record", required=True, help="JSON-lines file of the messages taken")
    parser.add_argument("--ready", help="a file written once the server listens (its port inside)")
    args = parser.parse_args(argv)
    address, _sep, port = args.listen.rpartition(":")
    with open(args.token_file, encoding="utf-8") as handle:
        token = handle.read().strip()
    server = serve(address, int(port), args.cert, args.key, token, args.record)
    if args.ready:
        with open(args.ready, "w", encoding="utf-8") as out:
            out.write(f"{server.server_address[1]}\n")
    server.serve_forever()


if __name__ == "__main__":
    main()
