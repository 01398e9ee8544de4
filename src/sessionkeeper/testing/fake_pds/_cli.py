"""Run a `FakePds` as its own process, for tests (and people) that need one outside Python.

It prints ``FAKE_PDS_URL=...`` and an ``ACCOUNT=HANDLE DID`` line per account
(what a parent process reads), then ``export ATP_SERVICE=...`` and commands to try.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

from sessionkeeper.atproto.variables import SERVICE_ENV
from sessionkeeper.clock import Clock, ManualClock, SystemClock
from sessionkeeper.testing._announce import variable_lines
from sessionkeeper.testing.fake_pds._fake import FakePds

logger = logging.getLogger(__name__)


def _account(value: str) -> tuple[str, str]:
    handle, sep, password = value.partition(":")
    if not sep or not handle or not password:
        raise argparse.ArgumentTypeError(f"expected handle:password, got {value.split(':')[0]!r}")
    return handle, password


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m sessionkeeper.testing.fake_pds``."""
    parser = argparse.ArgumentParser(
        prog="python -m sessionkeeper.testing.fake_pds",
        description="Serve a fake ATProto PDS on 127.0.0.1 until SIGTERM or SIGINT.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--grace", type=float, default=7200.0, help="refresh reuse grace (s)")
    parser.add_argument("--access-lifetime", type=float, default=7200.0)
    parser.add_argument("--refresh-lifetime", type=float, default=90 * 86400.0)
    parser.add_argument("--latency", type=float, default=0.0, help="delay per XRPC call (s)")
    parser.add_argument("--create-session-floor", type=float, default=0.0)
    parser.add_argument("--rate-limits", action="store_true", help="30/5 min, 300/day")
    parser.add_argument("--service-did", default="did:web:localhost")
    parser.add_argument(
        "--manual-clock",
        action="store_true",
        help="token times move only via POST /__fake__/advance",
    )
    parser.add_argument(
        "--account",
        type=_account,
        nargs="+",
        action="extend",
        default=[],
        metavar="HANDLE:PASSWORD",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Start the fake, print its URL and accounts, serve until a stop signal."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    clock: Clock = ManualClock(start=time.time()) if args.manual_clock else SystemClock()
    fake = FakePds(
        clock=clock,
        access_lifetime=args.access_lifetime,
        refresh_lifetime=args.refresh_lifetime,
        grace_period=args.grace,
        create_session_floor=args.create_session_floor,
        rate_limits=args.rate_limits,
        latency=args.latency,
        service_did=args.service_did,
        host=args.host,
        port=args.port,
    )

    def announce(server: FakePds) -> list[str]:
        # The parent reads these lines to find the port: they are the process's output.
        lines = [f"FAKE_PDS_URL={server.url}"]
        for handle, password in args.account:
            lines.append(f"ACCOUNT={handle} {server.create_account(handle, password)}")
        handle, password = args.account[0] if args.account else ("HANDLE", "PASSWORD")
        tries = [
            f"ATP_PASSWORD={password} sessionkeeper atproto login {handle}",
            "sessionkeeper atproto whoami",
            f"curl -s {server.url}/__fake__/counts",
        ]
        return lines + variable_lines({SERVICE_ENV: server.url}, tries)

    fake.serve_until_signalled(announce)
    return 0
