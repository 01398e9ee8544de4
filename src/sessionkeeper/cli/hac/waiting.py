"""A status line on stderr, on a terminal only, for a HAC request that takes over a second.

A hanging HAC used to be silent for the whole timeout. Now, once a request has
been out for `SHOW_AFTER` seconds, stderr shows what it waits for and
until when (``logging in to HAC at https://h:9002 as 'admin' (until 14:03:12)``);
the line is erased when the answer comes. Pipes and CI logs never see it.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, TextIO

from sessionkeeper.redaction import origin

if TYPE_CHECKING:
    import httpx

    from sessionkeeper.hac.client import HacClient

#: Seconds a step runs before its line is shown: quick answers never flicker.
SHOW_AFTER = 1.0
_ERASE = "\r\x1b[K"
#: Paths of the form login (its page, its POST, the landing page read for the CSRF token).
_LOGIN_PATHS = ("/login", "/j_spring_security_check", "/")


class StatusLine:
    """One line on ``stream`` naming the step under way, drawn once it has lasted a while."""

    def __init__(self, stream: TextIO, show_after: float = SHOW_AFTER) -> None:
        self._stream = stream
        self._show_after = show_after
        self._changed = threading.Condition()
        self._step: tuple[int, str] | None = None  # (number, text) of the step under way
        self._count = 0
        self._shown = False
        self._closed = False
        self._thread: threading.Thread | None = None

    def start(self, what: str, seconds: float) -> None:
        """A step begins that gives up after ``seconds``: say so if it lasts."""
        until = time.strftime("%H:%M:%S", time.localtime(time.time() + seconds))
        with self._changed:
            self._erase()
            self._count += 1
            self._step = (self._count, f"{what} (until {until})...")
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True)
                self._thread.start()
            self._changed.notify_all()

    def done(self) -> None:
        """The step ended: erase its line if it was drawn."""
        with self._changed:
            self._step = None
            self._erase()
            self._changed.notify_all()

    def close(self) -> None:
        """No more steps: erase the line and stop the drawing thread."""
        with self._changed:
            self._closed = True
            self._step = None
            self._erase()
            self._changed.notify_all()
        if self._thread is not None:
            self._thread.join()

    def _erase(self) -> None:
        if self._shown:
            self._stream.write(_ERASE)
            self._stream.flush()
            self._shown = False

    def _moved_on(self, step: tuple[int, str]) -> Callable[[], bool]:
        return lambda: self._step != step or self._closed

    def _run(self) -> None:
        with self._changed:
            while not self._closed:
                step = self._step
                if step is None or self._shown:
                    self._changed.wait()
                    continue
                # Wait the delay out unless the step ends or another begins first.
                self._changed.wait_for(self._moved_on(step), self._show_after)
                if self._step == step and not self._closed:
                    self._stream.write(f"{_ERASE}{step[1]}")
                    self._stream.flush()
                    self._shown = True


@contextmanager
def watched(client: HacClient, username: str) -> Iterator[None]:
    """While the block runs, a slow request of ``client`` shows a status line on a terminal."""
    stream = sys.stderr
    try:
        terminal = stream.isatty()
    except (AttributeError, ValueError):
        terminal = False
    if not terminal:
        yield
        return
    import httpx

    line = StatusLine(stream)
    root = origin(client.urls.root)
    login = {httpx.URL(client.urls.url(path)).path for path in _LOGIN_PATHS}

    def on_request(request: httpx.Request) -> None:
        if request.url.path in login:
            line.start(f"logging in to HAC at {root} as {username!r}", client.timeout)
        else:
            line.start(f"waiting for HAC at {root}", client.timeout)

    def on_response(_response: httpx.Response) -> None:
        line.done()

    hooks = client.http_session.event_hooks
    hooks["request"].append(on_request)
    hooks["response"].append(on_response)
    try:
        yield
    finally:
        line.close()


__all__ = ["SHOW_AFTER", "StatusLine", "watched"]
