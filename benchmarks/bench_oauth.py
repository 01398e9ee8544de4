"""N processes sharing one ATProto OAuth session cross its expiry together, on the reference PDS.

Side by side with @atproto/oauth-client-node (``scripts/oauth-client-node/install.sh``),
run as its README shows: a file session store shared by the processes and its
default lock (in-process only; it warns "Credentials might get revoked"). For
each trial a fresh account signs in (sign-in and consent over HTTP), the shared
stored token set is marked expired, N processes start at one signal and each
makes one ``getSession`` call. The PDS's request log counts the successful
token refreshes; afterwards the stored session is probed: alive, or lost.

Targets (ours): 1 refresh, 0 sessions lost, 0 failed calls. Also the cost of a
fresh process's first call: the requests the PDS saw for one ``getSession``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _table import print_line, print_table, verdict
from sessionkeeper.atproto import (
    OAuthClient,
    OAuthSession,
    OAuthSessionManager,
    SessionError,
    SessionExpiredError,
)
from sessionkeeper.atproto.oauth.session import decode_oauth, encode_oauth, oauth_name_for_did
from sessionkeeper.stores.memory import MemoryStore
from sessionkeeper.testing.oauth_consent import sign_in_and_consent
from sessionkeeper.testing.reference_pds import ReferencePds, ReferencePdsUnavailable, is_installed

HERE = Path(__file__).resolve()
REPO = HERE.parent.parent
NODE_TOOLS = Path(os.environ.get("OAUTH_NODE_TOOLS_DIR", REPO / ".tools" / "oauth-client-node"))
NODE_WORKER = HERE.parent / "oauth_node_worker.mjs"
PASSWORD = "bench-oauth-pass-1"
GET_SESSION = "com.atproto.server.getSession"


@dataclass
class Trial:
    """What one trial of one implementation gave."""

    refreshes: int
    lost: bool
    failed: int


def node_binary() -> str | None:
    try:
        path = (NODE_TOOLS / "node-bin").read_text().strip()
    except OSError:
        return None
    package = NODE_TOOLS / "node_modules" / "@atproto" / "oauth-client-node" / "package.json"
    return path if package.is_file() else None


def signed_in(pds: ReferencePds, where: Path, handle: str) -> OAuthSession:
    pds.create_account(handle, PASSWORD)
    with OAuthClient(where, handle_resolver=pds.url, plc_directory=pds.plc_url) as client:
        redirect = sign_in_and_consent(client.authorize(handle), handle, PASSWORD)
        with client.callback(redirect) as manager:
            assert manager.session is not None
            return manager.session


def node_document(session: OAuthSession, expires_at: float) -> dict[str, object]:
    """The session as @atproto/oauth-client-node stores it (same key, same tokens)."""
    stamp = dt.datetime.fromtimestamp(expires_at, tz=dt.UTC).isoformat().replace("+00:00", "Z")
    return {
        "dpopJwk": session.dpop_jwk,
        "authMethod": {"method": "none"},
        "tokenSet": {
            "iss": session.issuer,
            "sub": session.did,
            "aud": session.pds_url,
            "scope": session.scope,
            "refresh_token": session.refresh_token,
            "access_token": session.access_token,
            "token_type": "DPoP",
            "expires_at": stamp,
        },
    }


def node_file(where: Path, did: str) -> Path:
    return where / f"node_{did.replace(':', '_')}.json"


def share(kind: str, where: Path, session: OAuthSession, expires_at: float) -> None:
    """Write the shared stored session for ``kind`` with its expiry set to ``expires_at``."""
    if kind == "ours":
        (where / oauth_name_for_did(session.did)).write_bytes(
            encode_oauth(replace(session, expires_at=expires_at))
        )
    else:
        node_file(where, session.did).write_text(json.dumps(node_document(session, expires_at)))


def stored(kind: str, where: Path, template: OAuthSession) -> OAuthSession | None:
    """The token set the processes left in the store, as an OAuthSession."""
    if kind == "ours":
        name = oauth_name_for_did(template.did)
        path = where / name
        return decode_oauth(path.read_bytes(), name=name) if path.exists() else None
    path = node_file(where, template.did)
    if not path.exists():
        return None
    tokens = json.loads(path.read_text())["tokenSet"]
    return replace(
        template, access_token=tokens["access_token"], refresh_token=tokens.get("refresh_token")
    )


def alive(session: OAuthSession | None) -> bool:
    """Whether the PDS still honours the session (its access token, else its refresh token)."""
    if session is None:
        return False
    with OAuthSessionManager(None, store=MemoryStore(), auto_refresh=False) as probe:
        probe.store_session(session)
        try:
            probe.query(GET_SESSION)
            return True
        except SessionError:
            pass
        try:
            probe.refresh_token()
            return True
        except SessionExpiredError:
            return False


def spawn(
    kind: str, where: Path, pds: ReferencePds, session: OAuthSession, go: str
) -> subprocess.Popen[str]:
    if kind == "ours":
        command = [sys.executable, str(HERE), "worker", str(where), session.did, go]
    else:
        node = node_binary()
        assert node is not None
        command = [
            node,
            str(NODE_WORKER),
            str(NODE_TOOLS),
            str(where),
            session.did,
            go,
            pds.url,
            pds.plc_url,
            session.client_id,
        ]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def reports_of(workers: list[subprocess.Popen[str]]) -> list[dict[str, object]]:
    reports = []
    for worker in workers:
        out, err = worker.communicate(timeout=180)
        lines = [line for line in out.splitlines() if line.startswith("{")]
        reports.append(json.loads(lines[-1]) if lines else {"ok": False, "error": err[-300:]})
    return reports


def successful_token_calls(pds: ReferencePds) -> int:
    return sum(1 for r in pds.requests() if r.url.startswith("/oauth/token") and r.status == 200)


def trial(kind: str, pds: ReferencePds, processes: int, serial: int) -> Trial:
    with tempfile.TemporaryDirectory(prefix=f"bench-oauth-{kind}-") as tmp:
        where = Path(tmp)
        session = signed_in(pds, where / "signin", f"bo{kind[0]}{serial}x{os.getpid() % 1000}.test")
        where.joinpath("shared").mkdir()
        shared = where / "shared"
        share(kind, shared, session, time.time() - 10)
        pds.reset_counts()
        go = where / "go"
        workers = [spawn(kind, shared, pds, session, str(go)) for _ in range(processes)]
        deadline = time.monotonic() + 120
        while len(list(where.glob("go.ready-*"))) < processes:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{kind} workers did not get ready")
            time.sleep(0.01)
        go.touch()
        reports = reports_of(workers)
        refreshes = successful_token_calls(pds)
        lost = not alive(stored(kind, shared, session))
        failed = sum(1 for r in reports if not r.get("ok"))
        for r in reports:
            if not r.get("ok"):
                print(f"  {kind} failure: {r.get('error') or r.get('status')}", file=sys.stderr)
        return Trial(refreshes, lost, failed)


def first_call_requests(kind: str, pds: ReferencePds) -> int:
    """getSession requests the PDS answered for one fresh process's first call."""
    with tempfile.TemporaryDirectory(prefix=f"bench-oauth-first-{kind}-") as tmp:
        where = Path(tmp)
        session = signed_in(pds, where / "signin", f"bf{kind[0]}x{os.getpid() % 1000}.test")
        share(kind, where, session, time.time() + 3000)
        pds.reset_counts()
        (report,) = reports_of([spawn(kind, where, pds, session, "none")])
        if not report.get("ok"):
            raise RuntimeError(f"{kind} first call failed: {report}")
        return pds.count(GET_SESSION)


def worker(directory: str, did: str, go: str) -> int:
    """One of our processes: load the shared session, wait for go, make one call."""
    with OAuthSessionManager(directory) as manager:
        manager.load_session(did)
        if go != "none":
            Path(f"{go}.ready-{os.getpid()}").touch()
            while not os.path.exists(go):
                time.sleep(0.002)
        try:
            manager.query(GET_SESSION)
            print(json.dumps({"ok": True}))
        except SessionError as exc:
            print(json.dumps({"ok": False, "error": f"{type(exc).__name__}: {exc}"}))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--trials", type=int, default=3)
    args = parser.parse_args()
    if not is_installed():
        print("bench_oauth: the reference PDS is not installed (make reference-pds)")
        return 1
    kinds = ["ours"] + (["node"] if node_binary() else [])
    if "node" not in kinds:
        print(
            "bench_oauth: @atproto/oauth-client-node missing "
            "(run scripts/oauth-client-node/install.sh); measuring ours alone"
        )
    try:
        pds = ReferencePds().start()
    except ReferencePdsUnavailable as exc:
        print(f"bench_oauth: {exc}")
        return 1
    try:
        results = {k: [trial(k, pds, args.processes, n) for n in range(args.trials)] for k in kinds}
        first = {k: first_call_requests(k, pds) for k in kinds}
    finally:
        pds.stop()
    names = {"ours": "sessionkeeper", "node": "@atproto/oauth-client-node"}
    rows = []
    for kind, trials in results.items():
        rows.append(
            [
                names[kind],
                " ".join(str(t.refreshes) for t in trials),
                f"{sum(t.lost for t in trials)} of {len(trials)}",
                " ".join(str(t.failed) for t in trials),
                str(first[kind] - 1),
            ]
        )
    print_table(
        f"{args.processes} processes cross one OAuth session's expiry together "
        f"({args.trials} trials, reference PDS)",
        [
            "client",
            "successful refreshes",
            "sessions lost",
            "failed calls",
            "extra round trips, fresh process's first call",
        ],
        rows,
        save="oauth",
    )
    ours = results["ours"]
    met = all(t.refreshes == 1 and not t.lost and t.failed == 0 for t in ours)
    print_line(f"target ours 1 refresh / 0 lost / 0 failed per trial: {verdict(met)}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "worker":
        sys.exit(worker(sys.argv[2], sys.argv[3], sys.argv[4]))
    sys.exit(main())
