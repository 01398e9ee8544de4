"""A real HTTP server on 127.0.0.1 with an ephemeral port, run in a daemon thread."""

from __future__ import annotations

import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Self


class LoopbackServer:
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
        """The bound port (only after :meth:`start`)."""
        if self._httpd is None:
            raise RuntimeError("server is not started")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (only after :meth:`start`)."""
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
        """Stop serving and close the socket."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
