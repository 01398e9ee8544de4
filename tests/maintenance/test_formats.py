"""Every registered session format, its loader and the three store tools agree on one corpus.

For each entry of a mixed store (good, dead and bad entries of every format,
plus foreign files): it loads through its protocol's loader if and only if
``store doctor`` calls it valid and ``store migrate`` copies it, and ``store
prune`` removes exactly the loadable entries that are dead.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from sessionkeeper.atproto import AtpSessionData, OAuthSessionManager, PersistentSessionManager
from sessionkeeper.atproto.backoff import Wait, decode_wait, encode_wait, refresh_wait_name
from sessionkeeper.atproto.codec import encode_session, name_for_did
from sessionkeeper.atproto.intent import Intent, decode_intent, encode_intent, intent_name
from sessionkeeper.atproto.issuer import decode_issuer, encode_issuer, issuer_name
from sessionkeeper.atproto.listing import stored_oauth_sessions, stored_sessions
from sessionkeeper.atproto.oauth.session import OAuthSession, encode_oauth, oauth_name_for_did
from sessionkeeper.atproto.records import records_beside
from sessionkeeper.cli.atproto.state import STATE_NAME, CliState, load_state
from sessionkeeper.hac.session import SessionManager, SessionMetadata, session_name
from sessionkeeper.hac.session import encode_session as hac_bytes
from sessionkeeper.maintenance.doctor import Finding, Severity, diagnose_directory, diagnose_store
from sessionkeeper.maintenance.formats import format_of, registered_formats
from sessionkeeper.maintenance.migrate import CopyOutcome, migrate
from sessionkeeper.maintenance.prune import prune
from sessionkeeper.stores import DirectoryStore, MemoryStore, Store

NOW = time.time()
HOUR = 3600.0


def jwt(exp: float) -> str:
    def part(obj: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'ES256K'})}.{part({'exp': exp})}.c2ln"


@dataclass(frozen=True)
class Entry:
    """One stored entry of the corpus and what every tool must make of it."""

    format: str | None  # None: a foreign file
    name: str
    data: bytes
    loads: bool
    dead: bool = False


def hac(label: str, *, idle: float = 60.0, **overrides: object) -> tuple[str, bytes]:
    session = SessionMetadata(
        session_id=f"JSESSION-{label}",
        csrf_token="csrf",
        route_cookie=None,
        environment=label,
        base_url="https://hac.test:9002",
        username="admin",
        created_at=NOW - idle - 60,
        last_used_at=NOW - idle,
    )
    document = {**json.loads(hac_bytes(session)), **overrides}
    return session_name("https://hac.test:9002", "admin", label), json.dumps(document).encode()


def password(did: str, *, refresh_exp: float = NOW + HOUR) -> bytes:
    return encode_session(
        AtpSessionData(refresh_jwt=jwt(refresh_exp), access_jwt=jwt(NOW), handle="h.test", did=did)
    )


def oauth(did: str, *, refresh: str | None = "opaque", expires_at: float = NOW + HOUR) -> bytes:
    return encode_oauth(
        OAuthSession(
            did=did,
            issuer="https://issuer.test",
            token_endpoint="https://issuer.test/token",
            pds_url="https://pds.test",
            client_id="https://app.test/client.json",
            access_token=jwt(expires_at),
            dpop_jwk={"kty": "EC", "crv": "P-256", "x": "x", "y": "y", "d": "d"},
            refresh_token=refresh,
            expires_at=expires_at,
        )
    )


def corpus() -> list[Entry]:
    deep = b"[" * 100_000
    digits = b'{"did": ' + b"9" * 5000 + b"}"
    return [
        Entry("hac", *hac("fresh"), loads=True),
        Entry("hac", *hac("idle", idle=3 * HOUR), loads=True, dead=True),
        Entry("hac", *hac("extra-key", extra="a newer writer's"), loads=True),
        Entry("hac", *hac("year-5000", last_used_at=95_617_584_000.0), loads=False),
        Entry("hac", *hac("wrong-type", csrf_token=7), loads=False),
        Entry("hac", hac("deep")[0], deep, loads=False),
        Entry("atproto", name_for_did("did:plc:fresh"), password("did:plc:fresh"), loads=True),
        Entry(
            "atproto",
            name_for_did("did:plc:spent"),
            password("did:plc:spent", refresh_exp=NOW - HOUR),
            loads=True,
            dead=True,
        ),
        Entry("atproto", name_for_did("did:plc:a_b"), password("did:plc:a_b"), loads=True),
        Entry("atproto", "did_plc_a_b.json", password("did:plc:a_b"), loads=False),  # misnamed
        Entry("atproto", name_for_did("did:plc:deep"), deep, loads=False),
        Entry("atproto", name_for_did("did:plc:digits"), digits, loads=False),
        Entry("atproto", name_for_did("did:plc:shape"), b'{"did": "did:plc:shape"}', loads=False),
        Entry("atproto-oauth", oauth_name_for_did("did:plc:fresh"), oauth("did:plc:fresh"), True),
        Entry(
            "atproto-oauth",
            oauth_name_for_did("did:plc:spent"),
            oauth("did:plc:spent", refresh=None, expires_at=NOW - HOUR),
            loads=True,
            dead=True,
        ),
        Entry(
            "atproto-oauth",
            oauth_name_for_did("did:plc:jwt-refresh"),
            oauth("did:plc:jwt-refresh", refresh=jwt(NOW - HOUR)),
            loads=True,
            dead=True,
        ),
        Entry(
            "atproto-oauth",
            oauth_name_for_did("did:plc:nokey"),
            oauth("did:plc:nokey").replace(b'"dpopJwk"', b'"dpopJwk": 1, "x"'),
            loads=False,
        ),
        Entry("atproto-oauth", oauth_name_for_did("did:plc:deep"), deep, loads=False),
        Entry(
            "atproto-cli-state",
            STATE_NAME,
            CliState("did:plc:fresh", {"did:plc:fresh": "https://pds.test"}).to_bytes(),
            loads=True,
        ),
        Entry(
            "atproto-wait",
            refresh_wait_name(name_for_did("did:plc:fresh"), "did:plc:fresh"),
            encode_wait(Wait(NOW + HOUR, "rate limited")),
            loads=True,
        ),
        Entry(
            "atproto-wait",
            refresh_wait_name(name_for_did("did:plc:spent"), "did:plc:spent"),
            encode_wait(Wait(NOW - HOUR, "rate limited")),
            loads=True,
            dead=True,
        ),
        Entry(
            "atproto-wait",
            refresh_wait_name(name_for_did("did:plc:deep"), "did:plc:deep"),
            b'{"until": "soon"}',
            loads=False,
        ),
        Entry(
            "atproto-intent",
            intent_name(name_for_did("did:plc:fresh"), "did:plc:fresh"),
            encode_intent(Intent(NOW - HOUR, "ab" * 16)),
            loads=True,
        ),
        Entry(
            "atproto-intent",
            intent_name(oauth_name_for_did("did:plc:spent"), "did:plc:spent"),
            encode_intent(Intent(NOW - 91 * 24 * HOUR, "cd" * 16)),
            loads=True,
            dead=True,
        ),
        Entry(
            "atproto-intent",
            intent_name(name_for_did("did:plc:deep"), "did:plc:deep"),
            deep,
            loads=False,
        ),
        Entry(
            "atproto-issuer",
            issuer_name("did:plc:fresh"),
            encode_issuer("https://pds.test"),
            loads=True,
        ),
        Entry("atproto-issuer", issuer_name("did:plc:deep"), b'{"service": 7}', loads=False),
        Entry(None, "notes.txt", b"not a session", loads=False),
        Entry(None, "oauth_client.json", b"{}", loads=False),
    ]


def loaded_names(store: Store) -> set[str]:
    """What each protocol's own loader accepts from ``store``, as store names."""
    names = {session_name(s.base_url, s.username, s.environment) for s in _hac(store)}
    names |= {name_for_did(s.did) for s in stored_sessions(store)}
    names |= {oauth_name_for_did(s.did) for s in stored_oauth_sessions(store)}
    if load_state(store) != CliState():
        names.add(STATE_NAME)
    for name in store.names():
        record = store.get(name)
        if name.startswith("intent_") and decode_intent(record) is not None:
            names.add(name)
        if name.startswith("wait_") and decode_wait(record) is not None:
            names.add(name)
        if name.startswith("issuer_") and decode_issuer(record) is not None:
            names.add(name)
    return names


def _hac(store: Store) -> list[SessionMetadata]:
    return SessionManager(store=store).list_sessions()


def problem_names(findings: list[Finding], root: Path | None = None) -> set[str]:
    return {
        Path(f.subject).name if root is not None else f.subject
        for f in findings
        if f.severity is Severity.PROBLEM
    }


@pytest.mark.timeout(120)
@pytest.mark.parametrize("cli_state_ok", [True, False], ids=["good-state", "bad-state"])
def test_loaders_doctor_migrate_and_prune_agree_on_every_format(
    tmp_path: Path, cli_state_ok: bool
) -> None:
    entries = corpus()
    if not cli_state_ok:
        entries = [e for e in entries if e.name != STATE_NAME]
        entries.append(Entry("atproto-cli-state", STATE_NAME, b'{"services": []}', loads=False))
    assert {e.format for e in entries if e.format} == {f.name for f in registered_formats()}, (
        "every registered format needs good and bad entries in this corpus"
    )
    store = DirectoryStore(tmp_path / "store")
    for entry in entries:
        store.put(entry.name, entry.data)
        found = format_of(entry.name)
        assert (found.name if found else None) == entry.format, entry.name

    loads = loaded_names(store)
    assert loads == {e.name for e in entries if e.loads}

    # store doctor: a session-format entry is a problem iff it does not load.
    not_loading = {e.name for e in entries if e.format and not e.loads}
    assert problem_names(diagnose_store(store)) == not_loading
    assert problem_names(diagnose_directory(store.path), store.path) == not_loading

    # store migrate: copies what loads, fails what does not, ignores foreign files.
    destination = MemoryStore()
    report = migrate(store, destination)
    outcome = {result.name: result.outcome for result in report.results}
    for entry in entries:
        expected = (
            CopyOutcome.IGNORED
            if entry.format is None
            else CopyOutcome.COPIED
            if entry.loads
            else CopyOutcome.FAILED
        )
        assert outcome[entry.name] is expected, entry.name
    assert loaded_names(destination) == loads  # the copies load the same way

    # store prune: removes exactly the loadable entries that are dead; keeps every bad one.
    pruned = prune(store, dry_run=True)
    assert {r.name for r in pruned.removed} == {e.name for e in entries if e.dead}
    prune(store)
    assert set(store.names()) == {e.name for e in entries if not e.dead}


def test_the_managers_prune_by_the_rule_store_prune_and_doctor_apply(tmp_path: Path) -> None:
    entries = corpus()
    store = DirectoryStore(tmp_path / "store")
    for entry in entries:
        store.put(entry.name, entry.data)
    dead = {e.name for e in entries if e.dead}

    noted_dead = {f.subject for f in diagnose_store(store) if "is a dead session" in f.message}
    assert noted_dead == dead

    by_tool = {r.name for r in prune(store, dry_run=True).removed}
    assert by_tool == dead

    with PersistentSessionManager(None, "https://pds.test", store=store) as passwords:
        pruned_passwords = passwords.prune_expired_sessions()
    with OAuthSessionManager(None, store=store) as oauths:
        pruned_oauth = oauths.prune_expired_sessions()
    by_managers = {name_for_did(did) for did in pruned_passwords}
    by_managers |= {oauth_name_for_did(did) for did in pruned_oauth}
    sessions = {"atproto", "atproto-oauth"}
    assert by_managers == {e.name for e in entries if e.dead and e.format in sessions}
    # The managers removed their dead sessions' records with them; the tool finds the rest.
    records = {
        record for did in pruned_passwords for record in records_beside(name_for_did(did), did)
    } | {record for did in pruned_oauth for record in records_beside(oauth_name_for_did(did), did)}
    assert {r.name for r in prune(store, dry_run=True).removed} == {
        e.name for e in entries if e.dead and e.format not in sessions
    } - records
