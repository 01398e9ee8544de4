"""The fake HAC as its own process: options, ``main`` and `spawn`.

``python -m sessionkeeper.testing.fake_hac [--port N] [--latency S] [--route NODE]
[--mode 2211|legacy] [--web-root /hac] [--session-timeout S] [--user NAME:PASSWORD]``
prints ``FAKE_HAC_URL=http://127.0.0.1:PORT``, then ``export HAC_URL=...``,
``HAC_USERNAME`` and ``HAC_PASSWORD`` lines, and serves until SIGTERM or SIGINT.
Other processes drive it through ``{url}/__fake__/...`` (see ``FakeHac.control``).
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys

from sessionkeeper.testing._announce import variable_lines
from sessionkeeper.testing.fake_hac._fake import FakeHac

logger = logging.getLogger(__name__)

__all__ = ["main", "spawn"]

MODULE = "sessionkeeper.testing.fake_hac"
URL_LINE = "FAKE_HAC_URL="


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m sessionkeeper.testing.fake_hac",
        description="Serve a fake SAP Commerce HAC on 127.0.0.1.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds slept per request")
    parser.add_argument("--route", default=None, help="node name for the ROUTE cookie")
    parser.add_argument("--mode", choices=["2211", "legacy"], default="2211")
    parser.add_argument("--web-root", default="/hac")
    parser.add_argument("--session-timeout", type=float, default=7200.0)
    parser.add_argument(
        "--user",
        action="append",
        default=[],
        metavar="NAME:PASSWORD",
        help="a user that may log in (repeatable; default admin:nimda)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the fake until SIGTERM/SIGINT; return the exit code."""
    args = _parse_args(argv)
    users: dict[str, str] | None = None
    if args.user:
        users = {}
        for entry in args.user:
            name, sep, password = entry.partition(":")
            if not sep or not name:
                print(f"--user expects NAME:PASSWORD, got {name!r}...", file=sys.stderr)
                return 2
            users[name] = password
    fake = FakeHac(
        users=users,
        mode=args.mode,
        web_root=args.web_root,
        route=args.route,
        session_timeout=args.session_timeout,
        latency=args.latency,
        host=args.host,
        port=args.port,
    )
    user, password = next(iter((users or {"admin": "nimda"}).items()))

    def announce(server: FakeHac) -> list[str]:
        # The first line is what a parent process reads to find the server.
        variables = {"HAC_URL": server.url, "HAC_USERNAME": user, "HAC_PASSWORD": password}
        tries = [
            'hac --url "$HAC_URL" groovy "return 40 + 2"',
            f"curl -s {server.url}/__fake__/counts",
        ]
        return [f"{URL_LINE}{server.url}", *variable_lines(variables, tries)]

    fake.serve_until_signalled(announce)
    logger.info("fake HAC stopped")
    return 0


def spawn(*args: str) -> tuple[subprocess.Popen[str], str]:
    """Start the fake as its own process with ``args`` (the options of `main`).

    Returns the process and its URL; stop it with ``terminate()`` then ``wait()``.
    """
    process = subprocess.Popen(
        [sys.executable, "-m", MODULE, *args], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith(URL_LINE):
            return process, line.strip()[len(URL_LINE) :]
    process.kill()
    process.wait()
    raise RuntimeError(f"the fake HAC process ended without serving (exit {process.returncode})")
