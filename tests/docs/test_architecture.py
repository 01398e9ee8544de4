"""The refresh path that ``docs/architecture.md`` writes down is the path the code takes.

For each kind of call, a session is let expire and the call is made; at the
moment the renewed session reaches the store, the modules on the stack (with
the flows the drivers are running, which are suspended generators rather than
frames) are read off. The page lists, for each kind, that module path; the
test compares the two and holds the path to at most six modules.
"""

from __future__ import annotations

import inspect
import re
import types
from collections.abc import Callable, Generator

import pytest

from sessionkeeper.atproto import (
    OAuthSession,
    OAuthSessionManager,
    PersistentSessionManager,
    generate_dpop_jwk,
)
from sessionkeeper.atproto.oauth.dpop import jwk_thumbprint
from sessionkeeper.clock import ManualClock
from sessionkeeper.hac import BasicAuthHandler, HacClient, SessionManager
from sessionkeeper.maintenance.formats import format_of
from sessionkeeper.stores import MemoryStore
from sessionkeeper.testing import FakeHac, FakeOAuth, FakePds
from tests.support import REPO

PAGE = REPO / "docs" / "architecture.md"
#: The registered formats that hold sessions (others are records kept beside them).
SESSION_FORMATS = {"atproto", "atproto-oauth", "hac"}
#: A set-up session: yields (make the call, end the session the server side or by time).
Scenario = Generator[tuple[Callable[[], object], Callable[[], object]], None, None]
MAX_MODULES = 6


def logical_stack() -> list[str]:
    """The package modules on the stack, outermost first, flows included."""
    modules: list[str] = []

    def add(name: str) -> None:
        ours = name.startswith(("sessionkeeper", "hac_client_core")) and name != __name__
        if ours and (not modules or modules[-1] != name):
            modules.append(name)

    for info in reversed(inspect.stack()):
        frame = info.frame
        add(frame.f_globals.get("__name__", ""))
        flow = frame.f_locals.get("flow") if frame.f_code.co_name == "run" else None
        while isinstance(flow, types.GeneratorType):
            if flow.gi_frame is not None:
                add(flow.gi_frame.f_globals.get("__name__", ""))
            flow = flow.gi_yieldfrom
    return modules


class RecordingStore(MemoryStore):
    """A memory store that notes the module path of every session write while armed.

    Only writes of a session format count: a refresh's own records beside the
    session (its intent, a server's wait) are not the renewed session.
    """

    def __init__(self) -> None:
        super().__init__()
        self.armed = False
        self.paths: list[list[str]] = []

    def put(self, name: str, data: bytes) -> None:
        found = format_of(name)
        if self.armed and found is not None and found.name in SESSION_FORMATS:
            self.paths.append(logical_stack())
        super().put(name, data)


def documented_paths() -> dict[str, list[str]]:
    """The page's ``- **kind**: `a` → `b` → ...`` lines (module names without the package)."""
    found = {}
    for kind, path in re.findall(r"^- \*\*(.+?)\*\*: (`.+`)$", PAGE.read_text(), re.M):
        found[kind] = [part.strip().strip("`") for part in path.split("→")]
    return found


def _expire(clock: ManualClock) -> Callable[[], None]:
    # Past every access token's life, well inside the refresh token's.
    return lambda: clock.advance(3 * 3600)


def _password(clock: ManualClock, store: RecordingStore) -> Scenario:
    with FakePds(clock=clock, grace_period=0) as pds:
        pds.create_account("alice.test", "alice-pass")
        with PersistentSessionManager(None, pds.url, store=store, clock=clock) as manager:
            manager.login("alice.test", "alice-pass")
            yield (lambda: manager.query("com.atproto.server.getSession"), _expire(clock))


def _oauth(clock: ManualClock, store: RecordingStore) -> Scenario:
    with FakeOAuth(clock=clock) as server:
        key = generate_dpop_jwk()
        did = "did:plc:oauthalice"
        answer = server.issue(did, jwk_thumbprint({k: key[k] for k in ("kty", "crv", "x", "y")}))
        session = OAuthSession.from_token_response(
            answer,
            issuer=server.url,
            token_endpoint=f"{server.url}/oauth/token",
            pds_url=server.url,
            client_id="http://localhost",
            dpop_jwk=key,
            now=clock.time(),
        )
        with OAuthSessionManager(None, store=store, clock=clock) as manager:
            manager.store_session(session)
            yield (lambda: manager.query("com.atproto.server.getSession"), _expire(clock))


def _marshalx(clock: ManualClock, store: RecordingStore) -> Scenario:
    from sessionkeeper.atproto.marshalx import MARSHALX_REFRESH_MARGIN, persistent_client

    with FakePds(clock=clock, grace_period=0) as pds:
        pds.create_account("alice.test", "alice-pass")
        with PersistentSessionManager(
            None, pds.url, store=store, clock=clock, refresh_margin=MARSHALX_REFRESH_MARGIN
        ) as manager:
            client = persistent_client(manager, "alice.test", "alice-pass")
            yield (lambda: client.com.atproto.server.get_session(), _expire(clock))


def _hac(clock: ManualClock, store: RecordingStore) -> Scenario:
    with FakeHac() as fake:
        manager = SessionManager(store=store, clock=clock)
        auth = BasicAuthHandler("admin", "nimda")
        with HacClient(fake.url, auth, session_manager=manager, clock=clock) as client:
            client.execute_groovy("return 1")
            yield (lambda: client.execute_groovy("return 2"), fake.kill_all_sessions)


SCENARIOS = {
    "An app-password call": _password,
    "An OAuth call": _oauth,
    "A MarshalX call": _marshalx,
    "A HAC call": _hac,
}


@pytest.mark.parametrize("kind", list(SCENARIOS))
def test_the_documented_module_path_is_the_one_a_refresh_takes(kind: str) -> None:
    clock = ManualClock()
    store = RecordingStore()
    scenario = SCENARIOS[kind](clock, store)
    call, end_session = next(scenario)
    end_session()
    store.armed = True
    call()
    store.armed = False
    scenario.close()
    assert store.paths, "the renewed session was stored"
    # Each module once, in the order the call first reaches it; the store ends the path.
    path = [m.removeprefix("sessionkeeper.") for m in dict.fromkeys(store.paths[0])]
    path.append("stores")
    assert len(path) <= MAX_MODULES, path
    assert documented_paths().get(kind) == path, f"the page says otherwise; the code takes {path}"
