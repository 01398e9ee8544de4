"""Where HAC lives under a base URL.

Rule: a base URL without a path (``https://h:9002`` or ``https://h:9002/``)
means HAC at ``/hac``; any other path (``/hac``, ``/admin``) IS the HAC root.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit, urlunsplit

from sessionkeeper.redaction import redact_url

DEFAULT_WEB_ROOT = "/hac"


@dataclass(frozen=True)
class HacUrls:
    """The server origin and the HAC web root of one base URL."""

    origin: str  #: ``scheme://host[:port]``, never with the base URL's user part
    web_root: str  #: ``/hac`` or the custom root, without a trailing slash
    #: Basic credentials from the base URL's user part (a gate in front of HAC), if any.
    basic_auth: tuple[str, str] | None = field(default=None, repr=False)

    @classmethod
    def parse(cls, base_url: str) -> HacUrls:
        """Split ``base_url``; raise ``ValueError`` if it is not an http(s) URL."""
        parts = urlsplit(base_url.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(
                f"HAC base URL {redact_url(base_url)!r} must look like https://host:9002 "
                "or https://host:9002/hac"
            )
        path = parts.path.rstrip("/")
        userinfo, at, host = parts.netloc.rpartition("@")
        user, _, password = userinfo.partition(":")
        return cls(
            origin=urlunsplit((parts.scheme, host, "", "", "")),
            web_root=path or DEFAULT_WEB_ROOT,
            basic_auth=(unquote(user), unquote(password)) if at else None,
        )

    @property
    def root(self) -> str:
        """The HAC root URL, e.g. ``https://h:9002/hac``."""
        return self.origin + self.web_root

    def url(self, path: str) -> str:
        """The URL of ``path`` (starting with ``/``) below the HAC root."""
        return self.root + path

    def same_origin(self, location: str) -> str:
        """Resolve a redirect target against our origin, keeping only its path and query.

        Behind TLS-terminating proxies Spring may name an internal host or the
        wrong scheme in ``Location``; the path is what matters.
        """
        parts = urlsplit(location)
        path = parts.path or self.web_root + "/"
        if not path.startswith("/"):
            path = self.web_root + "/" + path
        query = f"?{parts.query}" if parts.query else ""
        return self.origin + path + query


__all__ = ["DEFAULT_WEB_ROOT", "HacUrls"]
