"""The example app's worker: acts for every signed-in account, through the app's own store.

``python -m examples.webapp.worker`` posts a short note for each account with
an OAuth session in the store, then again every ``--interval`` seconds
(``--once``: one round). It runs beside the app with the same settings: when a
token is due, whichever of the two gets there first refreshes it, once, and
the other adopts the stored result (sessionkeeper's single flight), so the
server never sees a spent refresh token. One JSON line per action on stdout.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time

from examples.webapp.app import POST, post_record
from examples.webapp.settings import Settings
from sessionkeeper.atproto import (
    NoSessionError,
    OAuthClient,
    OAuthSessionManager,
    SessionExpiredError,
)
from sessionkeeper.atproto.listing import stored_oauth_sessions
from sessionkeeper.errors import SessionkeeperError

logger = logging.getLogger("examples.webapp.worker")


def one_round(client: OAuthClient, managers: dict[str, OAuthSessionManager], text: str) -> int:
    """Post ``text`` for every account stored in ``client``'s store; return how many failed."""
    failed = 0
    for session in stored_oauth_sessions(client.store):
        try:
            # One manager per account, kept: it holds the DPoP nonce and the token set.
            manager = managers.get(session.did) or client.restore(session.did)
            managers[session.did] = manager
            answer = manager.procedure(
                "com.atproto.repo.createRecord",
                {"repo": session.did, "collection": POST, "record": post_record(text)},
            )
        except (NoSessionError, SessionExpiredError):
            gone = managers.pop(session.did, None)  # signed out, or revoked, meanwhile
            if gone is not None:
                gone.close()
            continue
        except SessionkeeperError as exc:
            failed += 1
            print(json.dumps({"did": session.did, "error": str(exc)}), flush=True)
            continue
        print(json.dumps({"did": session.did, "uri": answer.get("uri")}), flush=True)
    return failed


def main(argv: list[str] | None = None) -> int:
    """Run rounds until interrupted (or one, with ``--once``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--once", action="store_true", help="run one round and exit")
    parser.add_argument("--interval", type=float, default=300.0, help="seconds between rounds")
    parser.add_argument("--text", default="Posted by the worker", help="what to post")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings = Settings.from_env()
    managers: dict[str, OAuthSessionManager] = {}
    with settings.client(settings.open_store()) as client:
        try:
            while True:
                failed = one_round(client, managers, args.text)
                if args.once:
                    return 1 if failed else 0
                time.sleep(args.interval)
        except KeyboardInterrupt:
            return 0
        finally:
            for manager in managers.values():
                manager.close()


if __name__ == "__main__":
    sys.exit(main())
