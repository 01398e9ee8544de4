"""Where the HAC CLI finds a username and password, never writing a password in plaintext.

Username: ``-u``, the environment variables below, the config's ``username``,
else the cached session's. Password, only when a login is actually needed:
``-p``, the environment variables below, the OS keyring (service
``sessionkeeper-hac``, user ``ENV:USERNAME``), else a hidden prompt on a
terminal (``session start`` also reads it from stdin when that is not a terminal).

Variables, most specific first: hac-client-cli's ``HAC_PASSWORD_<ENV>_<ENDPOINT>``
and ``HAC_PASSWORD_<ENV>`` (ENV and ENDPOINT upper-cased, as it spells them,
then, for names without ``_``, with other characters as ``_``), then
``HAC_<ENV>_PASSWORD``, then ``HAC_PASSWORD`` (likewise ``USERNAME``). The
original's ``<ENV>_<ENDPOINT>`` spelling itself cannot tell environment ``a``
with endpoint ``b_c`` from ``a_b`` with ``c``; give such pairs ``-p`` or the keyring.
"""

from __future__ import annotations

import getpass
import os
import re
import sys

from sessionkeeper.errors import SessionkeeperError

KEYRING_SERVICE = "sessionkeeper-hac"


class CredentialError(SessionkeeperError):
    """A credential that cannot be found or stored; the message says where to put it."""


def keyring_user(environment: str, username: str) -> str:
    """The keyring entry's user name: ``ENV:USERNAME``, one entry per pair.

    ``%`` and ``:`` in the environment are percent-encoded, so the first ``:``
    always ends it: environment ``a:b`` with user ``c`` and environment ``a``
    with user ``b:c`` get different entries. Environments without those
    characters keep the names they always had.
    """
    return f"{environment.replace('%', '%25').replace(':', '%3A')}:{username}"


def _variable_part(name: str) -> str | None:
    """``name`` spelt for a variable, when that spelling belongs to no other name.

    ``prod-eu`` becomes ``PROD_EU``, but a name holding ``_`` itself is left to its
    literal spelling: ``PROD_EU`` would otherwise stand for ``prod_eu`` too.
    """
    if "_" in name:
        return None
    return re.sub(r"[^A-Za-z0-9]", "_", name).upper()


def env_var_names(environment: str, what: str, endpoint: str | None = None) -> list[str]:
    """The variables that may hold ``what`` (``USERNAME``/``PASSWORD``), most specific first.

    ENV and ENDPOINT are upper-cased, other characters as ``_``.
    """
    env = _variable_part(environment)
    names: list[str] = []
    if endpoint:
        names.append(f"HAC_{what}_{environment.upper()}_{endpoint.upper()}")
        spelt = _variable_part(endpoint)
        if env is not None and spelt is not None:
            names.append(f"HAC_{what}_{env}_{spelt}")
    names.append(f"HAC_{what}_{environment.upper()}")
    if env is not None:
        names += [f"HAC_{what}_{env}", f"HAC_{env}_{what}"]
    return list(dict.fromkeys([*names, f"HAC_{what}"]))


def from_env(environment: str, what: str, endpoint: str | None) -> str | None:
    """The first of `env_var_names` that is set (``SESSION_ID``, ``PASSWORD``, ...)."""
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


def username_from_env(environment: str, endpoint: str | None = None) -> str | None:
    """The username the environment variables give, if any."""
    return from_env(environment, "USERNAME", endpoint)


def password_from_env(environment: str, endpoint: str | None = None) -> str | None:
    """The password the environment variables give, if any."""
    return from_env(environment, "PASSWORD", endpoint)


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
        import logging

        logging.getLogger(__name__).info("OS keyring not usable: %s", type(exc).__name__)
        return None
    return value if isinstance(value, str) and value else None


def save_keyring_password(environment: str, username: str, password: str) -> None:
    """Store ``password`` in the OS keyring; raise `CredentialError` if none is usable."""
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
    password = option or password_from_env(environment, endpoint)
    if password:
        return password
    password = keyring_password(environment, username)
    if password:
        return password
    if interactive():
        return getpass.getpass(f"HAC password for {username}: ") or None
    return None


__all__ = [
    "KEYRING_SERVICE",
    "CredentialError",
    "env_var_names",
    "find_password",
    "from_env",
    "interactive",
    "keyring_password",
    "keyring_user",
    "password_from_env",
    "save_keyring_password",
    "username_from_env",
]
