"""A PDS that can no longer verify a token (its signing key changed): refresh once, or end.

Against the reference PDS: its answer to a token signed with another key is
400 ``InvalidToken``. The session refreshes once and replays; when the refresh is
refused too, the session is dead and removed with an ``expired`` event, never a
session that fails every call forever.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import replace
from pathlib import Path

import jwt
import pytest

from sessionkeeper.atproto import PersistentSessionManager, SessionExpiredError
from sessionkeeper.testing.reference_pds import ReferencePds

pytestmark = [pytest.mark.reference_pds, pytest.mark.timeout(120)]

PASSWORD = "refused-token-pass-1"
GET_SESSION = "com.atproto.server.getSession"
REFRESH_SESSION = "com.atproto.server.refreshSession"


def signed_elsewhere(token: str) -> str:
    """``token``'s header and claims, signed with a key the PDS does not have."""
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, options={"verify_signature": False})
    claims["exp"] = int(time.time()) + 3600
    return jwt.encode(claims, secrets.token_bytes(32), algorithm="HS256", headers=header)


def account(pds: ReferencePds) -> tuple[str, str]:
    return pds.create_account(f"rt{secrets.token_hex(4)}.test", PASSWORD)


def test_an_access_token_the_pds_cannot_verify_is_refreshed_once(
    reference_pds: ReferencePds, tmp_path: Path
) -> None:
    did, handle = account(reference_pds)
    with PersistentSessionManager(tmp_path, reference_pds.url) as m:
        session = m.login(handle, PASSWORD)
        m.store_session(replace(session, access_jwt=signed_elsewhere(session.access_jwt)))
        reference_pds.reset_counts()
        assert m.query(GET_SESSION)["did"] == did
        assert reference_pds.count(GET_SESSION, status=400) == 1
        assert reference_pds.count(REFRESH_SESSION, status=200) == 1
        assert m.query(GET_SESSION)["did"] == did  # and then it just works
        assert reference_pds.count(REFRESH_SESSION) == 1


def test_a_session_whose_refresh_is_refused_too_ends_instead_of_failing_forever(
    reference_pds: ReferencePds, tmp_path: Path
) -> None:
    _, handle = account(reference_pds)
    with PersistentSessionManager(tmp_path, reference_pds.url) as m:
        session = m.login(handle, PASSWORD)
        seen: list[str] = []
        m.on_session_event(lambda e, s: seen.append(e.value))
        m.store_session(
            replace(
                session,
                access_jwt=signed_elsewhere(session.access_jwt),
                refresh_jwt=signed_elsewhere(session.refresh_jwt),
            )
        )
        reference_pds.reset_counts()
        with pytest.raises(SessionExpiredError, match="InvalidToken"):
            m.query(GET_SESSION)
        assert m.session is None and m.list_sessions() == []
        assert seen[-1] == "expired"
        assert reference_pds.count(REFRESH_SESSION) == 1
