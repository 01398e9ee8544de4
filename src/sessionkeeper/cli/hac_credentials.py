"""Where the HAC CLI finds a username and password, never writing a password in plaintext.

Username: ``--username``, the environment variables below, the config's
``username``, else a prompt on a terminal. Password, only when a login is
actually needed: ``--password``, the environment variables below, the OS
keyring (service ``sessionkeeper-hac``, user ``ENV:USERNAME``), else a hidden
prompt on a terminal.

Variables, most specific first: the original hac-client CLI's
``HAC_PASSWORD_<ENV>_<ENDPOINT>`` and ``HAC_PASSWORD_<ENV>``, then
``HAC_<ENV>_PASSWORD``, then ``HAC_PASSWORD`` (likewise ``USERNAME``).
"""

from __future__ import annotations

import getpass
import logging
import os
import re
import sys
from collections.abc import Callable

import httpx

from sessionkeeper.hac.auth import AuthHandler
from sessionkeeper.hac.errors import HacAuthenticationError

logger = logging.getLogger(__name__)

KEYRING_SERVICE = "sessionkeeper-hac"


class CredentialError(Exception):
    """A credential that cannot be found or stored; the message says where to put it."""


def keyring_user(environment: str, username: str) -> str:
    """The keyring entry's user name: ``ENV:USERNAME``."""
    return f"{environment}:{username}"


def _variable_part(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "_", name).upper()


def env_var_names(environment: str, what: str, endpoint: str | None = None) -> list[str]:
    """The variables that may hold ``what`` (``USERNAME``/``PASSWORD``), most specific first.

    ENV and ENDPOINT are upper-cased, other characters as ``_``.
    """
    env = _variable_part(environment)
    names = [f"HAC_{what}_{env}_{_variable_part(endpoint)}"] if endpoint else []
    return [*names, f"HAC_{what}_{env}", f"HAC_{env}_{what}", f"HAC_{what}"]


def _from_env(environment: str, what: str, endpoint: str | None) -> str | None:
    for name in env_var_names(environment, what, endpoint):
        value = os.environ.get(name)
        if value:
            return value
    return None


def interactive() -> bool:
    """True when stdin is a terminal, the only case in which we prompt."""
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


def resolve_username(
    option: str | None, environment: str, configured: str | None, endpoint: str | None = None
) -> str:
    """The username to use, or :class:`CredentialError` naming the ways to give one."""
    username = option or _from_env(environment, "USERNAME", endpoint) or configured
    if not username and interactive():
        username = input("HAC username: ").strip()
    if not username:
        names = " or ".join(env_var_names(environment, "USERNAME", endpoint))
        raise CredentialError(f"no HAC username: pass --username or set {names}")
    return username


def keyring_password(environment: str, username: str) -> str | None:
    """The password saved in the OS keyring, or ``None`` (also when no keyring is usable)."""
    try:
        import keyring
        from keyring.errors import KeyringError
    except ImportError:
        return None
    try:
        value = keyring.get_password(KEYRING_SERVICE, keyring_user(environment, username))
    except KeyringError as exc:
        logger.info("OS keyring not usable: %s", type(exc).__name__)
        return None
    return value if isinstance(value, str) and value else None


def save_keyring_password(environment: str, username: str, password: str) -> None:
    """Store ``password`` in the OS keyring; raise :class:`CredentialError` if none is usable."""
    try:
        import keyring
        from keyring.errors import KeyringError
    except ImportError as exc:
        raise CredentialError("the keyring package is not installed") from exc
    try:
        keyring.set_password(KEYRING_SERVICE, keyring_user(environment, username), password)
    except KeyringError as exc:
        raise CredentialError(
            f"cannot save the password in the OS keyring ({type(exc).__name__}); "
            "use HAC_PASSWORD instead"
        ) from exc


def find_password(
    option: str | None, environment: str, username: str, endpoint: str | None = None
) -> str | None:
    """The password from the option, the environment, the keyring or a prompt; else ``None``."""
    password = option or _from_env(environment, "PASSWORD", endpoint)
    if password:
        return password
    password = keyring_password(environment, username)
    if password:
        return password
    if interactive():
        return getpass.getpass(f"HAC password for {username}: ") or None
    return None


class LazyPasswordAuth(AuthHandler):
    """Form login whose password is looked up only when a login really happens.

    A warm run reuses the cached session and never touches the keyring or
    prompts; the password is fetched once, on the first login.
    """

    def __init__(self, username: str, password_source: Callable[[], str | None]) -> None:
        self.username = username
        self._source = password_source
        self._password: str | None = None

    def __repr__(self) -> str:
        return f"LazyPasswordAuth(username={self.username!r}, password=***)"

    @property
    def password(self) -> str | None:
        """The password, if one was needed and found so far."""
        return self._password

    def apply_auth(self, request: httpx.Request) -> httpx.Request:
        """Nothing per request: the session cookie carries the login."""
        return request

    def get_initial_credentials(self) -> dict[str, str]:
        """``j_username`` and ``j_password``, looking the password up on first use."""
        if self._password is None:
            self._password = self._source()
        if not self._password:
            raise HacAuthenticationError(
                f"no password for HAC user {self.username!r}: pass --password, set HAC_PASSWORD, "
                "or run `hac login --save-password` once to keep it in the OS keyring"
            )
        return {"j_username": self.username, "j_password": self._password}


__all__ = [
    "KEYRING_SERVICE",
    "CredentialError",
    "LazyPasswordAuth",
    "env_var_names",
    "find_password",
    "interactive",
    "keyring_password",
    "keyring_user",
    "resolve_username",
    "save_keyring_password",
]
