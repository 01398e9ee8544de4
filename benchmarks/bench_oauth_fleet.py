"""OAuth sessions of a few accounts used by worker processes, on the reference PDS, side by side.

Ours: ``OAuthSessionManager`` on a RedisStore. The peer: ``@atproto/oauth-client-node``
as a TypeScript team would build it for many processes: a Redis session store and
its ``requestLock`` on a Redis mutex (``redis-semaphore``, see
``oauth_node_fleet_worker.mjs``). Each client gets its own sign-ins of the same
accounts. Each round, every worker makes a few ``getSession`` calls as accounts
picked at random, restoring the session from the store for each call; between
rounds every stored token set is marked expired, so the first call of a round
for each account refreshes and the others must adopt. The reference PDS's
request log counts successful token refreshes; afterwards each stored session is
probed (alive, or lost). Targets for ours: one refresh per (account, expiry)
used, nothing lost, nothing failed. The sizes are small: the reference PDS and
Node workers on a 2-core machine.

    python benchmarks/bench_oauth_fleet.py [--accounts 8] [--workers 8] [--quick]
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
from dataclasses import replace
from pathlib import Path
from typing import Any

import redis

from _report import await_ready, markdown_table, percentile_ms, write_outputs
from _table import print_line, print_table, verdict
from bench_oauth import (
    GET_SESSION,
    NODE_TOOLS,
    alive,
    node_binary,
    node_document,
    signed_in,
    successful_token_calls,
)
from sessionkeeper.atproto import OAuthSession
from sessionkeeper.atproto.oauth.session import decode_oauth, encode_oauth, oauth_name_for_did
from sessionkeeper.testing import RedisServer
from sessionkeeper.testing.reference_pds import ReferencePds, ReferencePdsUnavailable, is_installed

NODE_WORKER = Path(__file__).resolve().parent / "oauth_node_fleet_worker.mjs"
PREFIX = "ours:"
KINDS = ("ours", "node")
LABELS = {"ours": "sessionkeeper", "node": "@atproto/oauth-client-node + Redis mutex"}


def our_worker(redis_url: str, dids_json: str, calls: int, seed: int) -> int:
    """Our worker: one manager per account on one RedisStore; rounds as the Node worker's."""
    import random

    from sessionkeeper.atproto import OAuthSessionManager
    from sessionkeeper.stores.redis.store import RedisStore

    dids: list[str] = json.loads(dids_json)
    picker = random.Random(seed)
    store = RedisStore(redis_url, prefix=PREFIX)
    managers = {i: OAuthSessionManager(None, store=store) for i in range(len(dids))}
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() == "stop":
            break
        report: dict[str, Any] = {"ok": 0, "failed": [], "touched": [], "seconds": []}
        touched: set[int] = set()
        for _ in range(calls):
            index = picker.randrange(len(dids))
            touched.add(index)
            try:
                began = time.perf_counter()
                managers[index].load_session(dids[index])  # restore from the store, as Node does
                managers[index].query(GET_SESSION)
                report["seconds"].append(time.perf_counter() - began)
                report["ok"] += 1
            except Exception as exc:
                report["failed"].append(f"{type(exc).__name__}: {str(exc)[:160]}")
        report["touched"] = sorted(touched)
        print(json.dumps(report), flush=True)
    return 0


def node_key(did: str) -> str:
    return f"node:{did}"


def put_session(kind: str, client: redis.Redis[bytes], session: OAuthSession) -> None:
    """Store ``session`` where ``kind``'s workers read it (ours through the RedisStore's keys)."""
    if kind == "ours":
        client.set(f"{PREFIX}v:{oauth_name_for_did(session.did)}", encode_oauth(session))
    else:
        assert session.expires_at is not None
        client.set(node_key(session.did), json.dumps(node_document(session, session.expires_at)))


def get_session(
    kind: str, client: redis.Redis[bytes], template: OAuthSession
) -> OAuthSession | None:
    """The token set ``kind``'s workers left in Redis, as an OAuthSession."""
    if kind == "ours":
        name = oauth_name_for_did(template.did)
        data = client.get(f"{PREFIX}v:{name}")
        return decode_oauth(data, name=name) if data is not None else None
    data = client.get(node_key(template.did))
    if data is None:
        return None
    tokens = json.loads(data)["tokenSet"]
    stamp = dt.datetime.fromisoformat(tokens["expires_at"].replace("Z", "+00:00"))
    return replace(
        template,
        access_token=tokens["access_token"],
        refresh_token=tokens.get("refresh_token"),
        expires_at=stamp.timestamp(),
    )


def expire_all(kind: str, client: redis.Redis[bytes], sessions: list[OAuthSession]) -> None:
    """Mark every stored token set of ``kind`` expired (its current tokens kept)."""
    for template in sessions:
        current = get_session(kind, client, template)
        if current is not None:
            put_session(kind, client, replace(current, expires_at=time.time() - 10))


def spawn(
    kind: str, redis_url: str, pds: ReferencePds, sessions: list[OAuthSession], calls: int, n: int
) -> subprocess.Popen[str]:
    dids = json.dumps([s.did for s in sessions])
    if kind == "ours":
        command = [sys.executable, __file__, "worker", redis_url, dids, str(calls), str(n)]
    else:
        node = node_binary()
        assert node is not None
        command = [
            *(node, str(NODE_WORKER), str(NODE_TOOLS), redis_url, pds.url, pds.plc_url),
            *(sessions[0].client_id, dids, str(calls), str(n + 1)),
        ]
    return subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def run(
    kind: str, pds: ReferencePds, server: RedisServer, args: argparse.Namespace
) -> dict[str, Any]:
    """Sign in, run the rounds with ``kind``'s workers, count refreshes, failures, losses."""
    client: redis.Redis[bytes] = redis.Redis.from_url(server.url)
    tag = f"{kind[0]}{os.getpid() % 1000}"
    sessions = []
    with tempfile.TemporaryDirectory(prefix="bench-oauth-fleet-") as name:
        for i in range(args.accounts):
            sessions.append(signed_in(pds, Path(name) / str(i), f"of{tag}x{i}.test"))
    for session in sessions:
        put_session(kind, client, session)
    workers = [spawn(kind, server.url, pds, sessions, args.calls, n) for n in range(args.workers)]
    await_ready(workers, kind)
    pds.reset_counts()
    ok = 0
    seconds: list[float] = []
    failed: list[str] = []
    expected = 0
    for round_number in range(args.rounds):
        if round_number:
            expire_all(kind, client, sessions)
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("round\n")
            worker.stdin.flush()
        touched: set[int] = set()
        for worker in workers:
            assert worker.stdout is not None
            report = json.loads(worker.stdout.readline())
            ok += report["ok"]
            seconds += report["seconds"]
            failed += report["failed"]
            touched.update(report["touched"])
        if round_number:
            expected += len(touched)
    for worker in workers:
        assert worker.stdin is not None
        worker.stdin.write("stop\n")
        worker.stdin.close()
        worker.wait(60)
    refreshes = successful_token_calls(pds)
    lost = sum(not alive(get_session(kind, client, s)) for s in sessions)
    client.close()
    for message in sorted(set(failed))[:3]:
        print(f"  {kind}: failed call: {message}", file=sys.stderr)
    return {
        "client": kind,
        "accounts": args.accounts,
        "workers": args.workers,
        "rounds": args.rounds,
        "calls": ok + len(failed),
        "failed": len(failed),
        "refreshes": refreshes,
        "expected_refreshes": expected,
        "lost": lost,
        "p50_ms": percentile_ms(seconds, 0.50),
        "p99_ms": percentile_ms(seconds, 0.99),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=8)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=6, help="per worker per round")
    parser.add_argument("--quick", action="store_true", help="no docs written")
    args = parser.parse_args(argv)
    if not is_installed():
        print("bench_oauth_fleet: the reference PDS is not installed (make reference-pds)")
        return 1
    if RedisServer.find_binary() is None:
        raise SystemExit("redis-server is not installed: run `make redis-server`")
    kinds = [k for k in KINDS if k == "ours" or node_binary()]
    if "node" not in kinds:
        print("bench_oauth_fleet: @atproto/oauth-client-node missing; measuring ours alone")
    try:
        pds = ReferencePds().start()
    except ReferencePdsUnavailable as exc:
        print(f"bench_oauth_fleet: {exc}")
        return 1
    try:
        with RedisServer(appendonly=False) as server:
            results = [run(kind, pds, server, args) for kind in kinds]
    finally:
        pds.stop()
    columns = [
        "client",
        "successful refreshes / expiries used (1)",
        "sessions lost (0)",
        "failed calls (0)",
        "call p50 / p99 ms",
    ]
    rows = [
        [
            LABELS[r["client"]],
            f"{r['refreshes']} / {r['expected_refreshes']}",
            f"{r['lost']} of {r['accounts']}",
            f"{r['failed']} of {r['calls']}",
            f"{r['p50_ms']:.1f} / {r['p99_ms']:.1f}",
        ]
        for r in results
    ]
    title = (
        f"OAuth on the reference PDS: {args.accounts} accounts, {args.workers} workers, "
        f"{args.rounds} rounds ({args.rounds - 1} expiries)"
    )
    ours = results[0]
    met = (
        ours["refreshes"] == ours["expected_refreshes"]
        and ours["lost"] == 0
        and ours["failed"] == 0
    )
    print_table(title, columns, rows)
    print_line(f"target ours, one refresh per expiry used, 0 lost, 0 failed: {verdict(met)}")
    if not args.quick:
        table = f"{title}.\n\n" + markdown_table(columns, rows)
        write_outputs("oauth-fleet", table, {"runs": results})
    return 0 if met else 1


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        sys.exit(our_worker(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])))
    sys.exit(main(sys.argv[1:]))
