"""Serve the example app: ``python -m examples.webapp [--fake]`` (settings: ``settings.py``).

``--fake`` starts the bundled fake authorization server and PDS in the same
process and resolves handles on it: sign in as ``alice.test`` (the fake's
authorization page consents at once), with no account anywhere.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os

import uvicorn

from examples.webapp.app import create_app
from examples.webapp.settings import Settings


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
        print(f"example app on {settings.public_url} (listening on {host}:{port})", flush=True)
        uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")


if __name__ == "__main__":
    main()
