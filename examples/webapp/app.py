"""The example web app: ATProto OAuth sign-in, a profile, posting, sign out, on Starlette.

Starlette because it is small, well kept and plain ASGI: every route below is
an ``async def`` on the async OAuth client, with no framework magic to learn
first. Each browser that starts a sign-in gets a random value in a cookie,
and the same value goes to ``authorize(..., state=...)``; the callback accepts
the sign-in only when ``callback_with_state()`` hands back the value this
browser carries (login CSRF, RFC 9700 §4.7). Signed in, the browser carries
a signed cookie naming the account's DID; the OAuth session itself lives in
the store the worker (``worker.py``) shares.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import hmac
import logging
import secrets
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from examples.webapp.pages import error_page, home_page, sign_in_page
from examples.webapp.settings import Settings
from sessionkeeper.atproto import (
    AsyncOAuthSessionManager,
    NoSessionError,
    OAuthCallbackError,
    OAuthError,
    OAuthResolutionError,
    SessionExpiredError,
    SessionNetworkError,
)
from sessionkeeper.errors import SessionkeeperError

logger = logging.getLogger(__name__)

STATE_COOKIE = "oauth_state"
USER_COOKIE = "user"
POST = "app.bsky.feed.post"


def post_record(text: str) -> dict[str, Any]:
    """A post record as the app and the worker write it."""
    created = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {"$type": POST, "text": text, "createdAt": created}


class WebApp:
    """The routes, the OAuth client and a manager per signed-in account."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = settings.open_store()
        self.client = settings.async_client(self.store)
        self._cookie_key = settings.cookie_key()
        self._managers: dict[str, AsyncOAuthSessionManager] = {}

    # -- cookies ----------------------------------------------------------------------

    def _cookie(self, response: Response, name: str, value: str, max_age: int) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            httponly=True,
            samesite="lax",  # sent on the server's redirect back (a top-level GET), not on POSTs
            secure=self.settings.confidential,
        )

    def _signed(self, did: str) -> str:
        encoded = base64.urlsafe_b64encode(did.encode()).decode().rstrip("=")
        mac = hmac.new(self._cookie_key, encoded.encode(), hashlib.sha256).hexdigest()
        return f"{encoded}.{mac}"

    def _signed_in_did(self, request: Request) -> str | None:
        encoded, _, mac = request.cookies.get(USER_COOKIE, "").partition(".")
        good = hmac.new(self._cookie_key, encoded.encode(), hashlib.sha256).hexdigest()
        if not encoded or not hmac.compare_digest(mac.encode(), good.encode()):
            return None
        return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()

    async def _manager(self, request: Request) -> AsyncOAuthSessionManager | None:
        """The manager of the browser's account, kept across requests; ``None`` if signed out."""
        did = self._signed_in_did(request)
        if did is None:
            return None
        manager = self._managers.get(did)
        if manager is not None:
            return manager
        try:
            manager = await self.client.restore(did)
        except NoSessionError:
            return None
        kept = self._managers.setdefault(did, manager)
        if kept is not manager:  # another request restored it meanwhile
            await manager.aclose()
        return kept

    async def _forget(self, did: str) -> None:
        manager = self._managers.pop(did, None)
        if manager is not None:
            await manager.aclose()

    # -- routes -----------------------------------------------------------------------

    async def home(self, request: Request) -> Response:
        """The profile and posts of the signed-in account, or the sign-in form."""
        manager = await self._manager(request)
        if manager is None:
            return HTMLResponse(sign_in_page())
        who = await manager.query("com.atproto.server.getSession")
        did = str(who["did"])
        listed = await manager.query(
            "com.atproto.repo.listRecords", {"repo": did, "collection": POST, "limit": 10}
        )
        session = manager.session
        profile = {**who, "pds": session.pds_url if session else ""}
        return HTMLResponse(home_page(profile, list(listed.get("records", []))))

    async def login(self, request: Request) -> Response:
        """Start a sign-in: bind it to this browser, send the browser to the server."""
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
        handle = form.get("handle", "").strip()
        if not handle:
            return HTMLResponse(error_page("Sign-in failed", "Enter your handle."), 400)
        browser_state = secrets.token_urlsafe(24)
        url = await self.client.authorize(handle, state=browser_state)
        response = RedirectResponse(url, status_code=303)
        self._cookie(response, STATE_COOKIE, browser_state, max_age=600)
        return response

    async def callback(self, request: Request) -> Response:
        """Finish a sign-in, only in the browser that started it."""
        manager, app_state = await self.client.callback_with_state(dict(request.query_params))
        carried = request.cookies.get(STATE_COOKIE, "")
        if app_state is None or not hmac.compare_digest(app_state.encode(), carried.encode()):
            # Someone else's sign-in opened in this browser: end it, sign nobody in.
            with contextlib.suppress(SessionkeeperError):
                await manager.logout()
            await manager.aclose()
            message = (
                "This sign-in was not started in this browser, so it was refused. "
                "If you were signing in, start again from this page."
            )
            return HTMLResponse(error_page("Sign-in refused", message), 403)
        session = manager.session
        assert session is not None  # the callback made it current
        await self._forget(session.did)  # a manager of an earlier sign-in holds spent tokens
        self._managers[session.did] = manager
        response = RedirectResponse("/", status_code=303)
        self._cookie(response, USER_COOKIE, self._signed(session.did), max_age=30 * 86400)
        response.delete_cookie(STATE_COOKIE)
        logger.info("signed in %s", session.did)
        return response

    async def post(self, request: Request) -> Response:
        """Create a post as the signed-in account."""
        manager = await self._manager(request)
        if manager is None:
            return RedirectResponse("/", status_code=303)
        text = dict(parse_qsl((await request.body()).decode("utf-8", "replace"))).get("text", "")
        if not text.strip():
            return HTMLResponse(error_page("Nothing posted", "Write something first."), 400)
        session = manager.session
        assert session is not None
        await manager.procedure(
            "com.atproto.repo.createRecord",
            {"repo": session.did, "collection": POST, "record": post_record(text.strip())},
        )
        return RedirectResponse("/", status_code=303)

    async def logout(self, request: Request) -> Response:
        """Revoke the account's session at its server and forget it here."""
        manager = await self._manager(request)
        response = RedirectResponse("/", status_code=303)
        response.delete_cookie(USER_COOKIE)
        if manager is not None and manager.session is not None:
            did = manager.session.did
            await manager.logout()
            await self._forget(did)
        return response

    async def client_metadata(self, request: Request) -> Response:
        """The client metadata document, served at the client_id (confidential only)."""
        if not self.settings.confidential:
            return HTMLResponse(error_page("Not found", "A loopback client has none."), 404)
        return JSONResponse(self.client.client_metadata)

    async def jwks(self, request: Request) -> Response:
        """The public key the client's assertions are signed with (confidential only)."""
        if not self.settings.confidential:
            return HTMLResponse(error_page("Not found", "A loopback client has none."), 404)
        return JSONResponse(self.client.jwks)

    async def failed(self, request: Request, exc: Exception) -> Response:
        """Library errors as pages: say what went wrong, never a traceback."""
        if isinstance(exc, OAuthCallbackError) and exc.error == "access_denied":
            title, status = "Sign-in declined", 400
            message = "You declined the sign-in on your server's page. Nothing was stored."
        elif isinstance(exc, SessionNetworkError) or (
            isinstance(exc, OAuthResolutionError) and exc.unavailable
        ):
            # Nothing was refused: a server did not answer (signed in, the session is kept).
            title, status, message = "Your server is unreachable", 503, str(exc)
        elif isinstance(exc, OAuthResolutionError):
            title, status, message = "Account not found", 400, str(exc)
        elif isinstance(exc, OAuthError):
            title, status, message = "Sign-in failed", 400, str(exc)
        elif isinstance(exc, SessionExpiredError | NoSessionError):
            title, status = "Signed out", 401
            message = "Your session ended (revoked or expired). Sign in again."
        else:
            title, status, message = "Your server refused", 502, str(exc)
        logger.warning("%s: %s", title, exc)
        response = HTMLResponse(error_page(title, message), status)
        if status == 401:
            did = self._signed_in_did(request)
            if did is not None:
                await self._forget(did)  # its manager holds a session that is gone
            response.delete_cookie(USER_COOKIE)
        return response

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        """Close every manager and the client when the server stops."""
        try:
            yield
        finally:
            for did in list(self._managers):
                await self._forget(did)
            await self.client.aclose()


def create_app(settings: Settings | None = None) -> Starlette:
    """The ASGI app for ``settings`` (by default read from the environment)."""
    web = WebApp(settings or Settings.from_env())
    routes = [
        Route("/", web.home),
        Route("/login", web.login, methods=["POST"]),
        Route("/oauth/callback", web.callback),
        Route("/post", web.post, methods=["POST"]),
        Route("/logout", web.logout, methods=["POST"]),
        Route("/client-metadata.json", web.client_metadata),
        Route("/jwks.json", web.jwks),
    ]
    return Starlette(
        routes=routes,
        exception_handlers={SessionkeeperError: web.failed},
        lifespan=web.lifespan,
    )
