"""Key names of a RedisStore: plain on one server, hash-tagged on Redis Cluster."""

from __future__ import annotations

import hashlib

from sessionkeeper.stores.errors import StoreUrlError


def escape_glob(text: str) -> str:
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)


class RedisKeys:
    """The key names of one store: plain on one server, hash-tagged on a cluster."""

    def __init__(self, prefix: str, *, tagged: bool) -> None:
        if tagged and ("{" in prefix or "}" in prefix):
            raise StoreUrlError(
                f"prefix {prefix!r} holds a brace: on Redis Cluster the store puts its own "
                "hash tag in every key, so the prefix must not have one"
            )
        self.prefix = prefix
        self.tagged = tagged

    def _head(self, name: str) -> str:
        if not self.tagged:
            return self.prefix
        tag = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        return f"{self.prefix}{{{tag}}}"

    def value(self, name: str) -> str:
        return f"{self._head(name)}v:{name}"

    def lock(self, name: str) -> str:
        return f"{self._head(name)}lock:{name}"

    def wake(self, name: str) -> str:
        return f"{self._head(name)}wake:{name}"

    def value_pattern(self) -> str:
        """A ``SCAN`` pattern matching every value key of this store."""
        tag = "{" + "[0-9a-f]" * 16 + "}" if self.tagged else ""
        return escape_glob(self.prefix) + tag + "v:*"

    def name_of(self, key: str) -> str:
        """The name a value key (matched by `value_pattern`) stores."""
        skip = len(self.prefix) + (18 if self.tagged else 0) + len("v:")
        return key[skip:]


__all__ = ["RedisKeys", "escape_glob"]
