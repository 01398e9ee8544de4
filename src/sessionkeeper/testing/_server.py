"""A real HTTP server on 127.0.0.1 with an ephemeral port, run in a daemon thread."""

from __future__ import annotations

import logging
import signal
import socket
import sys
import threading
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Self

from sessionkeeper.errors import SessionkeeperError
from sessionkeeper.lifecycle import Running

logger = logging.getLogger(__name__)


class BadBodyError(SessionkeeperError, ValueError):
    """A request body that cannot be read: bad framing or too large (answer 400)."""


class LoopbackHandler(BaseHTTPRequestHandler):
    """Base handler of the fakes: keep-alive HTTP/1.1, no Nagle delay, tracked connections."""

    protocol_version = "HTTP/1.1"

    def read_body(self, max_body: int) -> bytes:
        """The request body, by ``Content-Length`` or chunked; `BadBodyError` if bad."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunks(max_body)
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            return b""
        try:
            length = int(length_header)
        except ValueError:
            raise BadBodyError("Content-Length is not a number") from None
        if length < 0 or length > max_body:
            raise BadBodyError("request body is too large")
        body = self.rfile.read(length)
        if len(body) != length:
            raise BadBodyError("body shorter than Content-Length")
        return body

    def _read_chunks(self, max_body: int) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise BadBodyError("malformed chunked body") from None
            if size == 0:
                # Trailers, if any, end with an empty line.
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            total += size
            if total > max_body:
                raise BadBodyError("request body is too large")
            chunks.append(self.rfile.read(size))
            self.rfile.readline(1024)

    def setup(self) -> None:
        """Register the connection so that stopping the fake can cut it."""
        super().setup()
        # Headers and body go out in two writes; without TCP_NODELAY, Nagle's
        # algorithm and the client's delayed ACK add ~40 ms to every answer.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.owner.track_connection(self.connection)  # type: ignore[attr-defined]

    def finish(self) -> None:
        """Unregister the connection; a client already gone is not an error."""
        try:
            super().finish()
        except ConnectionError:
            logger.debug("client was gone before the answer was flushed")
        finally:
            self.server.owner.untrack_connection(self.connection)  # type: ignore[attr-defined]


class LoopbackServer(Running):
    """Base of the bundled fakes: start/stop, ``url``, request counters.

    Subclasses provide ``handler_class``; handlers reach the fake through
    ``self.server.owner``.
    """

    handler_class: type[BaseHTTPRequestHandler]

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host = host
        self._port = port
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.counts: Counter[str] = Counter()
        self._count_guard = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._connections_guard = threading.Lock()

    def count(self, key: str) -> None:
        """Record one request under ``key``."""
        with self._count_guard:
            self.counts[key] += 1

    def reset_counts(self) -> None:
        """Forget every recorded request."""
        with self._count_guard:
            self.counts.clear()

    @property
    def port(self) -> int:
        """The bound port (only after `start`)."""
        if self._httpd is None:
            raise RuntimeError("server is not started")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (only after `start`)."""
        return f"http://{self._host}:{self.port}"

    def start(self) -> Self:
        """Bind and serve in a daemon thread; return ``self``."""
        httpd = ThreadingHTTPServer((self._host, self._port), self.handler_class)
        httpd.daemon_threads = True
        httpd.owner = self  # type: ignore[attr-defined]
        self._httpd = httpd
        # A short poll interval makes stop() take milliseconds instead of half a second.
        self._thread = threading.Thread(
            target=httpd.serve_forever, args=(0.05,), name=type(self).__name__, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and cut open keep-alive connections, like a server going away.

        Without cutting them, a client's pooled connection would still be
        answered by its handler thread after the server "went down".
        """
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        with self._connections_guard:
            connections = list(self._connections)
            self._connections.clear()
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                logger.debug("a connection was already closed")

    def track_connection(self, connection: socket.socket) -> None:
        """Remember an open client connection (called by the handler)."""
        with self._connections_guard:
            self._connections.add(connection)

    def untrack_connection(self, connection: socket.socket) -> None:
        """Forget a finished client connection (called by the handler)."""
        with self._connections_guard:
            self._connections.discard(connection)

    def serve_until_signalled(self, announce: Callable[[Self], list[str]]) -> None:
        """Serve in this process until SIGTERM or SIGINT (the fakes' ``python -m`` mode).

        After starting, prints the lines ``announce`` returns (flushed): a parent
        process reads them to find the server.
        """
        stop = threading.Event()

        def on_signal(signum: int, frame: FrameType | None) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        with self:
            sys.stdout.write("".join(f"{line}\n" for line in announce(self)))
            sys.stdout.flush()
            while not stop.wait(0.5):
                pass
