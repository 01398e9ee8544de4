"""A status line on stderr for a step that takes more than a second: what, and until when.

Shown only when stderr is a terminal (a script's log stays clean) and only once
the step has lasted a second, so fast runs print nothing extra.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

#: How long a step runs before the line appears.
DELAY = 1.0


@contextmanager
def waiting(what: str, timeout: float | None = None) -> Iterator[None]:
    """Say ``waiting for WHAT until HH:MM:SS`` on a terminal if the block outlasts `DELAY`."""
    if not sys.stderr.isatty():
        yield
        return
    until = (
        ""
        if timeout is None
        else time.strftime(" until %H:%M:%S", time.localtime(time.time() + timeout))
    )

    def show() -> None:
        print(f"waiting for {what}{until}...", file=sys.stderr, flush=True)

    timer = threading.Timer(DELAY, show)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
