"""Errors raised by the HAC client; their messages never carry a secret."""

from __future__ import annotations

from sessionkeeper.errors import SessionkeeperError


class HacClientError(SessionkeeperError):
    """Base class of every HAC client error: a request or a response that went wrong."""


class HacAuthenticationError(HacClientError):
    """Login failed, or a session stayed dead after one re-login."""


__all__ = ["HacAuthenticationError", "HacClientError"]
