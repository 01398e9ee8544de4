"""What the MarshalX tests share: call names, a time past expiry, the stored file, the posts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from sessionkeeper.atproto import name_for_did
from sessionkeeper.testing.fake_pds import FakePds

REFRESH = "com.atproto.server.refreshSession"
CREATE_RECORD = "com.atproto.repo.createRecord"
PAST_EXP = 7201.0  #: seconds after login at which the fake's access token has expired


def stored(tmp_path: Path, did: str) -> dict[str, Any]:
    """The session document the ``manager`` fixture stored for ``did``."""
    document: dict[str, Any] = json.loads((tmp_path / "sessions" / name_for_did(did)).read_text())
    return document


def posts(pds: FakePds, did: str) -> list[str]:
    """The texts of ``did``'s posts as the PDS lists them."""
    listing = httpx.get(
        f"{pds.url}/xrpc/com.atproto.repo.listRecords",
        params={"repo": did, "collection": "app.bsky.feed.post"},
        trust_env=False,
    ).json()
    return [record["value"]["text"] for record in listing["records"]]
