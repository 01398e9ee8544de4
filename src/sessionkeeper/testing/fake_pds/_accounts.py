"""The fake's accounts: who may log in, and what a session answer says about them."""

from __future__ import annotations

import base64
import hmac
import secrets
from dataclasses import dataclass, field
from typing import Any


def new_plc_did() -> str:
    """A random ``did:plc:`` with 24 lowercase base32 characters, like the PLC directory's."""
    raw = secrets.token_bytes(15)
    return "did:plc:" + base64.b32encode(raw).decode("ascii").lower()[:24]


def new_app_password() -> str:
    """An app password in the reference's ``xxxx-xxxx-xxxx-xxxx`` shape."""
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    return "-".join("".join(secrets.choice(alphabet) for _ in range(4)) for _ in range(4))


def new_sign_in_code() -> str:
    """A sign-in code in the reference's ``XXXXX-XXXXX`` shape."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    chars = [secrets.choice(alphabet) for _ in range(10)]
    return "".join(chars[:5]) + "-" + "".join(chars[5:])


@dataclass
class Account:
    """One account; the password is kept only to compare against."""

    did: str
    handle: str
    password: str = field(repr=False)
    email: str | None = None
    email_confirmed: bool = False
    email_auth_factor: bool = False
    takendown: bool = False
    sign_in_code: str | None = field(default=None, repr=False)
    #: app password -> whether it is privileged (may read DMs and the like)
    app_passwords: dict[str, bool] = field(default_factory=dict, repr=False)

    def password_matches(self, password: str) -> bool:
        """Compare with the account password, in constant time."""
        return hmac.compare_digest(self.password.encode("utf-8"), password.encode("utf-8"))

    def app_password_privileged(self, password: str) -> bool | None:
        """Whether ``password`` is a privileged app password; ``None`` if it is none at all.

        Like the reference, the dashes of an app password may be left out or
        written in upper case.
        """
        wanted = password.replace("-", "").lower().encode("utf-8")
        found: bool | None = None
        for app_password, privileged in self.app_passwords.items():
            if hmac.compare_digest(app_password.replace("-", "").encode("utf-8"), wanted):
                found = privileged
        return found

    def did_doc(self, pds_url: str) -> dict[str, Any]:
        """A DID document whose ``#atproto_pds`` service points at ``pds_url``."""
        return {
            "@context": [
                "https://www.w3.org/ns/did/v1",
                "https://w3id.org/security/multikey/v1",
            ],
            "id": self.did,
            "alsoKnownAs": [f"at://{self.handle}"],
            "verificationMethod": [],
            "service": [
                {
                    "id": "#atproto_pds",
                    "type": "AtprotoPersonalDataServer",
                    "serviceEndpoint": pds_url,
                }
            ],
        }

    def session_view(self, pds_url: str) -> dict[str, Any]:
        """The account fields of createSession/refreshSession/getSession answers."""
        view: dict[str, Any] = {"handle": self.handle, "did": self.did}
        if self.email is not None:
            view["email"] = self.email
        view["emailConfirmed"] = self.email_confirmed
        view["emailAuthFactor"] = self.email_auth_factor
        view["didDoc"] = self.did_doc(pds_url)
        view["active"] = not self.takendown
        if self.takendown:
            view["status"] = "takendown"
        return view


class AccountBook:
    """Accounts by DID, with lookup by handle, DID or email as createSession allows.

    Not thread-safe by itself: the fake calls it under its state lock.
    """

    def __init__(self) -> None:
        self._by_did: dict[str, Account] = {}

    def add(self, account: Account) -> None:
        """Register ``account``; handles, DIDs and emails must be unique."""
        if account.did in self._by_did:
            raise ValueError(f"an account with DID {account.did} already exists")
        if self.find(account.handle) is not None:
            raise ValueError(f"an account with handle {account.handle} already exists")
        if account.email is not None and self.find(account.email) is not None:
            raise ValueError(f"an account with email {account.email} already exists")
        self._by_did[account.did] = account

    def get(self, did: str) -> Account | None:
        """The account with this DID, if any."""
        return self._by_did.get(did)

    def require(self, did: str) -> Account:
        """The account with this DID, or ``KeyError`` naming it."""
        account = self._by_did.get(did)
        if account is None:
            raise KeyError(f"no account with DID {did}")
        return account

    def find(self, identifier: str) -> Account | None:
        """Resolve a handle, DID or email (case-insensitive for handles and emails)."""
        ident = identifier.strip()
        if ident.startswith("did:"):
            return self._by_did.get(ident)
        lowered = ident.lower()
        for account in self._by_did.values():
            if "@" in lowered:
                if account.email is not None and account.email.lower() == lowered:
                    return account
            elif account.handle.lower() == lowered:
                return account
        return None
