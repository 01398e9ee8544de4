"""Serve the example app: ``python -m examples.webapp [--fake]`` (settings: ``settings.py``).

``--fake`` starts the bundled fake authorization server and PDS in the same
process and resolves handles on it: sign in as ``alice.test`` (the fake's
authorization page consents at once), with no account anywhere.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import logging
import os
import socket

import uvicorn

from examples.webapp.app import create_app
from examples.webapp.settings import Settings


def _can_listen(host: str, port: int) -> bool:
    """Whether ``host:port`` is free now, so a busy port is named before uvicorn's own error."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as probe:
        # As uvicorn binds: a port in TIME_WAIT from an earlier run counts as free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise
    return True


def main(argv: list[str] | None = None) -> None:
    """Serve on ``WEBAPP_LISTEN`` until interrupted."""
    parser = argparse.ArgumentParser(description="The sessionkeeper example OAuth web app.")
    parser.add_argument("--fake", action="store_true", help="sign in on the bundled fake server")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    env = dict(os.environ)
    with contextlib.ExitStack() as stack:
        if args.fake:
            from sessionkeeper.testing import FakeOAuth
            from sessionkeeper.testing.fake_oauth import DEFAULT_HANDLE

            fake = stack.enter_context(FakeOAuth())
            env |= {"ATP_HANDLE_RESOLVER": fake.url, "ATP_PLC_DIRECTORY": fake.url}
            print(f"fake PDS on {fake.url}: sign in as {DEFAULT_HANDLE}", flush=True)
        settings = Settings.from_env(env)
        host, port = settings.listen
        if not _can_listen(host, port):
            raise SystemExit(
                f"{host}:{port} is in use by another program: choose a free port, e.g. "
                f"WEBAPP_URL=http://127.0.0.1:{port + 1} python -m examples.webapp"
                + (" --fake" if args.fake else "")
            )
        print(f"example app on {settings.public_url} (listening on {host}:{port})", flush=True)
        uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")


if __name__ == "__main__":
    main()
