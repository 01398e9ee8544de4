"""The root of every error sessionkeeper raises, so one ``except`` can catch them all.

Each package keeps its own small hierarchy below this class; every message
names the thing at fault and never carries a secret. The whole tree::

    SessionkeeperError
    ├── StoreError                        sessionkeeper.stores
    │   ├── InvalidNameError (+ValueError)
    │   ├── ValueTooLargeError
    │   ├── LockTimeoutError (+TimeoutError)
    │   ├── LockLostError
    │   ├── DecryptionError
    │   ├── MissingKeyError
    │   ├── StoreUnavailableError
    │   ├── StoreIOError (+OSError)       a disk refused: the errno is kept
    │   │   └── StoreFullError            ENOSPC, EDQUOT
    │   ├── UnsafeStoreError              a location another user controls
    │   └── StoreUrlError (+ValueError)
    ├── HacClientError                    sessionkeeper.hac
    │   └── HacAuthenticationError
    ├── SessionFileError (+ValueError)    sessionkeeper.hac.session: an unusable cache file
    ├── FormatError (+ValueError)         sessionkeeper.maintenance: an entry unlike its name
    ├── SessionError                      sessionkeeper.atproto
    │   ├── NoSessionError
    │   ├── SessionExpiredError
    │   ├── SessionNetworkError
    │   │   ├── XrpcNetworkError
    │   │   └── RateLimitedError             a recorded 429 wait still runs: not sent
    │   ├── CorruptSessionError
    │   ├── MalformedTokenError (+ValueError)   sessionkeeper.atproto.jwt decodes tokens
    │   ├── SessionStringError (+ValueError)    a MarshalX session string unfit to import
    │   ├── DidResolutionError               sessionkeeper.atproto.did_resolution
    │   ├── XrpcError
    │   └── OAuthError                       OAuth sign-in
    │       ├── OAuthResolutionError         discovery and verification
    │       ├── OAuthCallbackError           state, iss, error= in the redirect
    │       └── OAuthTokenError              PAR or token endpoint refused
    ├── DeadlineExceededError (+httpx.TimeoutException)   sessionkeeper.http_limits
    ├── ResponseTooLargeError (+httpx.TransportError)     sessionkeeper.http_limits
    ├── CliError, ConfigError, CredentialError, UsageError  sessionkeeper.cli (printed, exit 2)
    └── RedisServerError, ReferencePdsError, ConsentError   sessionkeeper.testing harnesses

The two HTTP limit errors also subclass httpx's transport errors: code that
turns ``httpx.HTTPError`` into "the server cannot be reached, the session is
kept" treats a trickling or oversized answer the same way.
"""

from __future__ import annotations


class SessionkeeperError(Exception):
    """Base class of every error raised by sessionkeeper."""


__all__ = ["SessionkeeperError"]
