"""What the HTTP deadline and body cap cost, against plain httpx in the same run.

1. Per-request overhead: small JSON answers from a loopback server, bounded
   client vs ``httpx.Client`` (target: at most 1.10x).
2. Memory of a hostile 100 MiB answer: peak traced memory of a new process that
   GETs it with each client (the plain one reads it all; the bounded one stops at
   its 4 MiB cap).
3. A server trickling its headers at 1 byte/s: how long a HAC login and an
   ATProto login, each on a 2 s timeout, take to give up (target: the timeout).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler

import httpx

from _table import paired, print_table, verdict
from sessionkeeper.atproto import PersistentSessionManager
from sessionkeeper.hac import BasicAuthHandler, HacClient
from sessionkeeper.http_limits import MIB, bounded_client
from sessionkeeper.testing._server import LoopbackHandler, LoopbackServer
from sessionkeeper.testing.hostile_server import HostileServer

BODY = json.dumps({"did": "did:plc:" + "a" * 24, "handle": "alice.test", "pad": "x" * 900}).encode()
REQUESTS = 50
#: Rounds of REQUESTS GETs per client; a round lasts ~35 ms, so loopback jitter needs many.
ROUNDS = 41
OVERHEAD_TARGET = 1.10
HUGE = 100 * MIB
TRICKLE_TIMEOUT = 2.0

_PROBE = textwrap.dedent(
    """
    import json, sys, tracemalloc
    import httpx
    from sessionkeeper.http_limits import bounded_client
    tracemalloc.start()
    client = bounded_client(60) if sys.argv[2] == "bounded" else httpx.Client(timeout=60)
    try:
        size = len(client.get(sys.argv[1]).content)
    except httpx.HTTPError as exc:
        size = type(exc).__name__
    print(json.dumps({"peak": tracemalloc.get_traced_memory()[1], "result": size}))
    """
)


class _Json(LoopbackHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _JsonServer(LoopbackServer):
    handler_class: type[BaseHTTPRequestHandler] = _Json


def overhead() -> tuple[float, float]:
    """Median seconds for REQUESTS GETs: plain, bounded."""
    server = _JsonServer()
    server.start()
    try:
        with httpx.Client(timeout=10) as plain, bounded_client(10) as bounded:

            def run(client: httpx.Client) -> None:
                for _ in range(REQUESTS):
                    client.get(server.url + "/x").raise_for_status()

            return paired(lambda: run(plain), lambda: run(bounded), repeat=ROUNDS)
    finally:
        server.stop()


def peak(url: str, kind: str) -> tuple[int, str]:
    """Peak traced bytes of one process GETting ``url`` with the ``kind`` client, and
    what it got (a size or an error name)."""
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, url, kind],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    result = json.loads(done.stdout)
    return int(result["peak"]), str(result["result"])


def give_up_after(attempt: Callable[[], object]) -> float:
    """Seconds until ``attempt()`` fails against the trickling server."""
    started = time.monotonic()
    try:
        attempt()
    except Exception:  # the failure is what is timed
        return time.monotonic() - started
    raise AssertionError("a trickling server answered in full")


def trickle_rows() -> list[list[str]]:
    """One row per client: seconds to give up on a server trickling its headers."""
    with HostileServer("trickle-headers") as server, tempfile.TemporaryDirectory() as home:
        hac = HacClient(
            server.url,
            BasicAuthHandler("admin", "nimda"),
            timeout=int(TRICKLE_TIMEOUT),
            session_persistence=False,
        )
        atproto = PersistentSessionManager(home, server.url, http=bounded_client(TRICKLE_TIMEOUT))
        with hac, atproto:
            times = {
                "HacClient.login()": give_up_after(hac.login),
                "PersistentSessionManager.login()": give_up_after(
                    lambda: atproto.login("alice.test", "app-password")
                ),
            }
    return [
        [name, f"{seconds:.1f}", verdict(seconds < TRICKLE_TIMEOUT + 0.5)]
        for name, seconds in times.items()
    ]


def main() -> None:
    """Measure and print both tables."""
    plain, bounded = overhead()
    ratio = bounded / plain
    print_table(
        f"Bounded HTTP: {REQUESTS} small JSON GETs on loopback (median of {ROUNDS} rounds)",
        ["client", "ms per request", "ratio", f"target <= {OVERHEAD_TARGET}x"],
        [
            ["httpx.Client", f"{plain / REQUESTS * 1000:.3f}", "1.00", ""],
            [
                "bounded_client",
                f"{bounded / REQUESTS * 1000:.3f}",
                f"{ratio:.2f}",
                verdict(ratio <= OVERHEAD_TARGET),
            ],
        ],
        save="http-overhead",
    )
    with HostileServer("huge-chunked", size=HUGE) as server:
        plain_peak, plain_got = peak(server.url, "plain")
        bounded_peak, bounded_got = peak(server.url, "bounded")
    print_table(
        f"Bounded HTTP: peak memory of one GET of a {HUGE // MIB} MiB chunked answer",
        ["client", "outcome", "peak MiB", "ratio to plain"],
        [
            ["httpx.Client", f"{plain_got} bytes", f"{plain_peak / MIB:.1f}", "1.00"],
            [
                "bounded_client",
                bounded_got,
                f"{bounded_peak / MIB:.1f}",
                f"{bounded_peak / plain_peak:.3f}",
            ],
        ],
        save="http-memory",
    )

    print_table(
        f"Bounded HTTP: a server trickling its headers at 1 byte/s, timeout {TRICKLE_TIMEOUT:g} s",
        ["client", "gave up after s", f"target: ~{TRICKLE_TIMEOUT:g} s"],
        trickle_rows(),
        save="http-trickle",
    )


if __name__ == "__main__":
    main()
