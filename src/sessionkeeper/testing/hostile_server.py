"""A deliberately hostile HTTP server on 127.0.0.1, for proving clients' limits.

Each connection reads one request's headers, then answers with one of:

* ``trickle-headers``: the status line and headers, one byte per ``interval``, forever;
* ``trickle-body``: prompt headers (``Content-Length`` 1 MB), then the body one byte
  per ``interval``;
* ``huge-body``: a ``size``-byte body with its ``Content-Length``, as fast as the
  client reads;
* ``huge-chunked``: the same body chunked, with no length announced;
* ``gzip-bomb``: a small gzip body (``Content-Encoding: gzip``) that decodes to ``size``
  bytes.

Used by the tests of `sessionkeeper.http_limits`; a client under test must
give up on its own (deadline, body cap); the server never stops first.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import zlib
from collections.abc import Iterator
from typing import Literal, Self

from sessionkeeper.lifecycle import Running

Behaviour = Literal[
    "trickle-headers", "trickle-body", "huge-body", "huge-chunked", "gzip-bomb", "gzip-gzip-bomb"
]
_BLOCK = b"x" * 65536
_HEADERS = b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"


def _gzip(data: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


class HostileServer(Running):
    """A threaded loopback server answering every request with one hostile behaviour."""

    def __init__(
        self, behaviour: Behaviour, *, interval: float = 1.0, size: int = 300 * 1024 * 1024
    ) -> None:
        self.behaviour = behaviour
        self.interval = interval
        self.size = size
        self.requests = 0  #: requests whose headers were read
        self.bytes_sent = 0
        self._guard = threading.Lock()
        self._stopped = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._connections: set[socket.socket] = set()
        self._thread = threading.Thread(target=self._accept, name="hostile-server", daemon=True)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def start(self) -> Self:
        """Accept connections in a daemon thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close the listener and every open connection."""
        self._stopped.set()
        self._listener.close()
        with self._guard:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
            connection.close()
        self._thread.join(timeout=5)

    def _accept(self) -> None:
        self._listener.settimeout(0.1)  # closing a socket does not wake accept()
        while not self._stopped.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            connection.settimeout(None)
            with self._guard:
                self._connections.add(connection)
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        try:
            with connection:
                while self._read_request(connection):
                    with self._guard:
                        self.requests += 1
                    for piece in self._answer():
                        connection.sendall(piece)
                        with self._guard:
                            self.bytes_sent += len(piece)
        except OSError:
            pass  # the client gave up, as it should
        finally:
            with self._guard:
                self._connections.discard(connection)

    @staticmethod
    def _read_request(connection: socket.socket) -> bool:
        received = b""
        while b"\r\n\r\n" not in received:
            data = connection.recv(65536)
            if not data:
                return False
            received += data
        return True

    def _slowly(self, data: bytes) -> Iterator[bytes]:
        for index in range(len(data)):
            if self._stopped.wait(self.interval):
                return
            yield data[index : index + 1]

    def _answer(self) -> Iterator[bytes]:
        if self.behaviour == "trickle-headers":
            yield from self._slowly(_HEADERS + b"X-Padding: " + b"p" * 10_000_000)
        elif self.behaviour == "trickle-body":
            yield _HEADERS + b"Content-Length: 1000000\r\n\r\n"
            yield from self._slowly(b"<" * 1_000_000)
        elif self.behaviour in ("gzip-bomb", "gzip-gzip-bomb"):
            # Twice compressed, under "gzip, gzip": httpx decodes every listed encoding.
            twice = self.behaviour == "gzip-gzip-bomb"
            bomb = _gzip(self._gzip_bomb()) if twice else self._gzip_bomb()
            encoding = "gzip, gzip" if twice else "gzip"
            yield _HEADERS + (
                f"Content-Encoding: {encoding}\r\nContent-Length: {len(bomb)}\r\n\r\n".encode()
            )
            yield bomb
        elif self.behaviour == "huge-body":
            yield _HEADERS + f"Content-Length: {self.size}\r\n\r\n".encode()
            yield from self._blocks(self.size, chunked=False)
        else:
            yield _HEADERS + b"Transfer-Encoding: chunked\r\n\r\n"
            yield from self._blocks(self.size, chunked=True)
            yield b"0\r\n\r\n"

    def _gzip_bomb(self) -> bytes:
        compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        zeros = bytes(len(_BLOCK))
        parts = [compressor.compress(zeros) for _ in range(self.size // len(zeros))]
        return b"".join(parts) + compressor.flush()

    def _blocks(self, size: int, *, chunked: bool) -> Iterator[bytes]:
        left = size
        while left > 0 and not self._stopped.is_set():
            block = _BLOCK[: min(left, len(_BLOCK))]
            left -= len(block)
            yield f"{len(block):x}\r\n".encode() + block + b"\r\n" if chunked else block


__all__ = ["Behaviour", "HostileServer"]
