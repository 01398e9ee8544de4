"""The ``hac`` command's login: the password is looked up only when a login really happens."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from sessionkeeper.hac.auth import AuthHandler
from sessionkeeper.hac.errors import HacAuthenticationError

if TYPE_CHECKING:
    import httpx


class LazyPasswordAuth(AuthHandler):
    """Form login whose password is looked up only when a login really happens.

    A warm run reuses the cached session and never touches the keyring or
    prompts; the password is fetched once, on the first login.
    """

    def __init__(
        self,
        username: str,
        password_source: Callable[[], str | None],
        start_command: str = "hac session start",
    ) -> None:
        self.username = username
        self._source = password_source
        #: The whole ``hac session start ...`` line the error names, to paste as it is.
        self.start_command = start_command
        self._password: str | None = None

    def __repr__(self) -> str:
        return f"LazyPasswordAuth(username={self.username!r}, password=***)"

    def apply_auth(self, request: httpx.Request) -> httpx.Request:
        """Nothing per request: the session cookie carries the login."""
        return request

    def get_initial_credentials(self) -> dict[str, str]:
        """``j_username`` and ``j_password``, looking the password up on first use."""
        if self._password is None:
            self._password = self._source()
        if not self._password:
            raise HacAuthenticationError(
                f"the HAC session of {self.username!r} has ended and no password is at hand: "
                f"run `{self.start_command}` again, set HAC_PASSWORD, or keep it in the OS "
                f"keyring with `{self.start_command} --save-password`"
            )
        return {"j_username": self.username, "j_password": self._password}


__all__ = ["LazyPasswordAuth"]
