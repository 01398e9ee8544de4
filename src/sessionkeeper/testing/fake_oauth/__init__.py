"""A fake ATProto OAuth authorization server (and the PDS, PLC and resolver around it).

Real HTTP on 127.0.0.1, for fast tests of OAuth clients::

    with FakeOAuth() as fake:
        client = OAuthClient(store=MemoryStore(), handle_resolver=fake.url,
                             plc_directory=fake.url)
        url = client.authorize("alice.test")
        redirect = httpx.get(url).headers["location"]     # consents at once
        manager = client.callback(redirect)
"""

from sessionkeeper.testing.fake_oauth._fake import (
    DEFAULT_DID,
    DEFAULT_HANDLE,
    FakeOAuth,
    thumbprint_of,
)
from sessionkeeper.testing.fake_oauth._grants import CodeGrant, Grant, PushedRequest

__all__ = [
    "DEFAULT_DID",
    "DEFAULT_HANDLE",
    "CodeGrant",
    "FakeOAuth",
    "Grant",
    "PushedRequest",
    "thumbprint_of",
]
