"""FakeOAuth's PDS side: an account's records are kept, so an app lists what it posted."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from sessionkeeper.atproto import OAuthClient, XrpcError
from sessionkeeper.testing import FakeOAuth
from sessionkeeper.testing.fake_oauth import DEFAULT_DID, DEFAULT_HANDLE

POST = "app.bsky.feed.post"


def test_created_records_are_listed_newest_first_for_their_account_only(tmp_path: Path) -> None:
    with (
        FakeOAuth() as server,
        OAuthClient(tmp_path, handle_resolver=server.url, plc_directory=server.url) as client,
    ):
        manager = client.callback(httpx.get(client.authorize(DEFAULT_HANDLE)).headers["location"])
        for text in ("one", "two"):
            created = manager.procedure(
                "com.atproto.repo.createRecord",
                {"repo": DEFAULT_DID, "collection": POST, "record": {"text": text}},
            )
            assert created["uri"].startswith(f"at://{DEFAULT_DID}/{POST}/")
        listed = manager.query(
            "com.atproto.repo.listRecords", {"repo": DEFAULT_DID, "collection": POST}
        )
        assert [r["value"]["text"] for r in listed["records"]] == ["two", "one"]
        with pytest.raises(XrpcError, match="not your repository"):
            manager.procedure(
                "com.atproto.repo.createRecord",
                {"repo": "did:plc:someoneelse", "collection": POST, "record": {"text": "x"}},
            )
        manager.close()
