#!/usr/bin/python3
"""The lab's fake internet: every test site over HTTP (port 80) and HTTPS (port 443).

Installed into the internet machine by ``akm lab`` as /usr/local/sbin/akm-fake-internet and run by a
systemd unit there. Sites come from /etc/akm-lab/sites.json (from the lab inventory); one certificate,
signed by the lab's own CA, covers them all. A request for an unknown host gets 404, a site without
HTTPS asked over TLS gets 421. It listens on the address given as its argument (every address without
one): the Telegram Bot API stand-in holds port 443 of another address of the machine. Standard library
only, so the image needs nothing more.
"""

import json
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

CONFIG = "/etc/akm-lab"
PAGE_BYTES = 256 * 1024
"""Size of a site's page: a real home page with its pictures weighs hundreds of kilobytes, so a few
requests add up to a volume the reports show in MiB, as a day of real use does."""


class Handler(BaseHTTPRequestHandler):
    sites: ClassVar[dict] = {}
    tls = False

    def do_GET(self):
        host = (self.headers.get("Host") or "").split(":")[0].lower()
        site = self.sites.get(host) or self.sites.get(host.removeprefix("www."))
        if site is None:
            self._answer(404, f"unknown site {host}")
        elif self.tls and not site["https"]:
            self._answer(421, f"{host} does not speak HTTPS")
        else:
            text = f"akm-lab site {site['domain']} category {site['category']} path {self.path}"
            self._answer(200, text, PAGE_BYTES)

    do_HEAD = do_GET

    def _answer(self, code, text, size=0):
        body = f"<!doctype html><title>{text}</title><h1>{text}</h1>\n".encode()
        if len(body) < size:
            body += b"<!-- " + b"." * (size - len(body) - 10) + b" -->\n"
        self.send_response(code)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, fmt, *args):
        sys.stderr.write(f"{self.address_string()} {fmt % args}\n")


def main():
    with open(f"{CONFIG}/sites.json", encoding="utf-8") as handle:
        sites = {s["domain"]: s for s in json.load(handle)}
    plain = type("Plain", (Handler,), {"sites": sites, "tls": False})
    secure = type("Secure", (Handler,), {"sites": sites, "tls": True})
    address = sys.argv[1] if len(sys.argv) > 1 else "0.0.0.0"
    http = ThreadingHTTPServer((address, 80), plain)
    https = ThreadingHTTPServer((address, 443), secure)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(f"{CONFIG}/sites.crt", f"{CONFIG}/sites.key")
    https.socket = context.wrap_socket(https.socket, server_side=True)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    https.serve_forever()


if __name__ == "__main__":
    main()
