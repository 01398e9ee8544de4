"""Serve the example app: ``python -m examples.webapp`` (settings: ``settings.py``)."""

from __future__ import annotations

import logging

import uvicorn

from examples.webapp.app import create_app
from examples.webapp.settings import Settings


def main() -> None:
    """Serve on ``WEBAPP_LISTEN`` until interrupted."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings = Settings.from_env()
    host, port = settings.listen
    print(f"example app on {settings.public_url} (listening on {host}:{port})", flush=True)
    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")


if __name__ == "__main__":
    main()
