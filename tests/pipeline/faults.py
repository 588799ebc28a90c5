"""Flaky servers on loopback, for the transient-error tests: real HTTP over real sockets, with faults drawn
from a seeded generator on about one request in five.

    reset  the connection is closed with a TCP RST before any response
    503    HTTP 503 (S3's `SlowDown` error document when proxying S3)
    cut    the response declares its full Content-Length and stops part-way through the body

`FaultyFileServer` serves files itself (GET with `Range`, HEAD); `FaultyProxy` forwards to another HTTP
server (moto's S3) and injects the same faults into its answers. `fail_all` names files (URL path suffixes)
for which every request fails, until `heal()`.
"""

from __future__ import annotations

import http.client
import os
import random
import re
import socket
import struct
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

FAULTS = ("reset", "503", "cut")
SLOWDOWN = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
            b"<Message>Please reduce your request rate.</Message></Error>")
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection"}


class _Faults:
    def __init__(self, seed: int, rate: float):
        self.rng, self.rate, self.lock = random.Random(seed), rate, threading.Lock()
        self.injected: Counter = Counter()
        self.requests = 0
        self.fail_all: set[str] = set()

    def draw(self, path: str, body: bool) -> str | None:
        with self.lock:
            self.requests += 1
            if any(path.endswith(name) for name in self.fail_all):
                fault = "503"
            elif self.rng.random() < self.rate:
                fault = self.rng.choice(FAULTS if body else FAULTS[:2])
            else:
                return None
            self.injected[fault] += 1
            return fault

    def cut_point(self, length: int) -> int:
        with self.lock:
            return self.rng.randrange(0, max(1, length))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, *args) -> None:  # quiet: pytest shows the failures
        pass

    def _reset(self) -> None:
        # SO_LINGER 0: close() sends RST, as a peer that crashed or a load balancer that gave up
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    def _send(self, status: int, headers: list[tuple[str, str]], body: bytes, fault: str | None,
              length: int | None = None) -> None:
        """`length`: the Content-Length to declare when it is not len(body) (the answer to a HEAD)."""
        if fault == "reset":
            return self._reset()
        if fault == "503":
            status, headers, body, length = 503, [("Content-Type", "application/xml"), ("Retry-After", "0")], SLOWDOWN, None
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        if self.command == "HEAD":
            return
        if fault == "cut":
            self.wfile.write(body[: self.server.faults.cut_point(len(body))])
            self.wfile.flush()
            return self._reset()
        self.wfile.write(body)

    def _body_requested(self) -> bool:
        return self.command == "GET"


class _FileHandler(_Handler):
    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        path = self.server.root / self.path.lstrip("/").split("?")[0]
        fault = self.server.faults.draw(self.path, self._body_requested())
        if not path.is_file():
            return self._send(404, [], b"not found", fault)
        data = path.read_bytes()
        headers = [("Accept-Ranges", "bytes"), ("Content-Type", "application/octet-stream")]
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        if not match:
            return self._send(200, headers, data, fault)
        start, end = int(match.group(1)), int(match.group(2) or len(data) - 1)
        if start >= len(data):
            return self._send(416, [("Content-Range", f"bytes */{len(data)}")], b"", fault)
        end = min(end, len(data) - 1)
        headers.append(("Content-Range", f"bytes {start}-{end}/{len(data)}"))
        self._send(206, headers, data[start:end + 1], fault)


class _ProxyHandler(_Handler):
    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        request_body = self.rfile.read(length) if length else None
        upstream = http.client.HTTPConnection(*self.server.upstream, timeout=60)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "proxy-connection")}
            upstream.request(self.command, self.path, body=request_body, headers=headers)
            response = upstream.getresponse()
            body = response.read()
            out = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP]
            declared = response.getheader("Content-Length")
        finally:
            upstream.close()
        length = int(declared) if self.command == "HEAD" and declared else None
        # faults on object reads only (GET, HEAD): uploads by the test itself go straight to the S3 server
        fault = self.server.faults.draw(self.path, self._body_requested())
        self._send(response.status, out, body, fault, length)

    do_GET = do_HEAD = _forward

    def do_PUT(self) -> None:  # not faulted: the test sets up its bucket through here only if it wants to
        self._forward_plain()

    def _forward_plain(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        upstream = http.client.HTTPConnection(*self.server.upstream, timeout=60)
        try:
            upstream.request(self.command, self.path, body=self.rfile.read(length) if length else None,
                             headers=dict(self.headers.items()))
            response = upstream.getresponse()
            body = response.read()
            out = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP]
        finally:
            upstream.close()
        self._send(response.status, out, body, None)

    do_POST = do_DELETE = do_PUT


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):  # a client that hung up: routine
            super().handle_error(request, client_address)
    faults: _Faults
    root: Path
    upstream: tuple[str, int]


class _Running:
    """A server in a background thread; use as a context manager."""

    def __init__(self, handler, seed: int, rate: float, **attrs):
        self.server = _Server(("127.0.0.1", 0), handler)
        self.server.faults = _Faults(seed, rate)
        for key, value in attrs.items():
            setattr(self.server, key, value)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def faults(self) -> _Faults:
        return self.server.faults

    def fail_all(self, name: str) -> None:
        self.faults.fail_all.add(name)

    def heal(self) -> None:
        self.faults.fail_all.clear()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def FaultyFileServer(root: str | os.PathLike, seed: int = 0, rate: float = 0.2) -> _Running:
    return _Running(_FileHandler, seed, rate, root=Path(root))


def FaultyProxy(upstream: str, seed: int = 0, rate: float = 0.2) -> _Running:
    host, port = upstream.removeprefix("http://").split(":")
    return _Running(_ProxyHandler, seed, rate, upstream=(host, int(port)))
