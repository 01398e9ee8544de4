"""Small context-manager shapes that many classes share, written once."""

from __future__ import annotations

from typing import Self


class Closing:
    """A resource used in ``with``: leaving the block calls `close`."""

    def close(self) -> None:
        """Release what the resource holds."""
        raise NotImplementedError  # pragma: no cover

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncClosing:
    """A resource used in ``async with``: leaving the block awaits `aclose`."""

    async def aclose(self) -> None:
        """Release what the resource holds."""
        raise NotImplementedError  # pragma: no cover

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


class Running:
    """A server used in ``with``: entering calls `start`, leaving calls `stop`."""

    def start(self) -> Self:
        """Start serving and return self."""
        raise NotImplementedError  # pragma: no cover

    def stop(self) -> None:
        """Stop serving."""
        raise NotImplementedError  # pragma: no cover

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
