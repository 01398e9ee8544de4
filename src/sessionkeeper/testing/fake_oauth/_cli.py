"""``python -m sessionkeeper.testing.fake_oauth``: serve a `FakeOAuth` until SIGTERM or SIGINT.

It prints ``FAKE_OAUTH_URL=...``, then the variables that make the CLI and
the library resolve handles and DIDs through it (``ATP_HANDLE_RESOLVER``,
``ATP_PLC_DIRECTORY``), and a command to try. Its authorization page consents
at once, so a script (``curl -sL URL``) can stand in for the browser.
"""

from __future__ import annotations

import argparse
import logging
import sys

from sessionkeeper.atproto.variables import HANDLE_RESOLVER_ENV, PLC_DIRECTORY_ENV
from sessionkeeper.testing._announce import variable_lines
from sessionkeeper.testing.fake_oauth._fake import DEFAULT_DID, DEFAULT_HANDLE, FakeOAuth

URL_LINE = "FAKE_OAUTH_URL="


def _account(value: str) -> tuple[str, str]:
    did, sep, handle = value.partition("=")
    if not sep or not did.startswith("did:") or not handle:
        raise argparse.ArgumentTypeError(f"expected DID=HANDLE, got {value!r}")
    return did, handle


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m sessionkeeper.testing.fake_oauth``."""
    parser = argparse.ArgumentParser(
        prog="python -m sessionkeeper.testing.fake_oauth",
        description="Serve a fake ATProto OAuth server (with PDS, PLC and resolver) on 127.0.0.1.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--lifetime", type=float, default=3600.0, help="access token lifetime (s)")
    parser.add_argument(
        "--account",
        type=_account,
        action="append",
        default=[],
        metavar="DID=HANDLE",
        help=f"an account besides {DEFAULT_HANDLE} ({DEFAULT_DID}); repeatable",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Start the fake, print its URL and variables, serve until a stop signal."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    fake = FakeOAuth(lifetime=args.lifetime, host=args.host, port=args.port)
    for did, handle in args.account:
        fake.add_account(did, handle)

    def announce(server: FakeOAuth) -> list[str]:
        variables = {HANDLE_RESOLVER_ENV: server.url, PLC_DIRECTORY_ENV: server.url}
        tries = [
            f"sessionkeeper atproto login --oauth {DEFAULT_HANDLE} --no-browser "
            "(then open the printed URL, or curl -sL it)",
            f"curl -s {server.url}/__fake__/grants",
        ]
        return [f"{URL_LINE}{server.url}", *variable_lines(variables, tries)]

    fake.serve_until_signalled(announce)
    return 0
