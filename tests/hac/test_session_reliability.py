"""HAC sessions under crashes and concurrency, proven with real processes."""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import signal
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hac_client_core import SessionManager
from sessionkeeper.hac.session import session_name

URL, USER = "https://hac.example.com:9002", "admin"
FORK = multiprocessing.get_context("fork")


def _save_forever(cache: str) -> None:
    manager = SessionManager(Path(cache))
    counter = 0
    while True:
        counter += 1
        manager.save_session(URL, USER, "crash", f"SID{counter:09d}" * 8, f"CSRF{counter}" * 8)


@pytest.mark.timeout(240)
def test_sigkill_at_random_moments_never_leaves_a_torn_session(tmp_path: Path) -> None:
    manager = SessionManager(tmp_path)
    manager.save_session(URL, USER, "crash", "SEED", "SEED")
    rng = random.Random(20261122)
    for _ in range(200):
        writer = FORK.Process(target=_save_forever, args=(str(tmp_path),))
        writer.start()
        time.sleep(rng.uniform(0.0, 0.03))
        assert writer.pid is not None
        os.kill(writer.pid, signal.SIGKILL)
        writer.join()
        loaded = manager.load_session(URL, USER, "crash")
        assert loaded is not None, "a killed writer lost the session"
        assert loaded.session_id == "SEED" or len(loaded.session_id) == 8 * 12
    assert [s.environment for s in manager.list_sessions()] == ["crash"]
    # Every file that is a name is complete JSON; leftovers are hidden temp files only.
    for path in tmp_path.iterdir():
        if not path.name.startswith("."):
            json.loads(path.read_text())


SHARED = "shared"


def _mixed_workload(
    cache: str, worker: int, operations: int, errors: multiprocessing.Queue[str]
) -> None:
    manager = SessionManager(Path(cache))
    rng = random.Random(worker)
    own = f"own-{worker}"
    own_exists = False
    try:
        for step in range(operations):
            op = rng.choice(["save", "touch", "load", "list", "remove", "shared"])
            if op == "save":
                manager.save_session(URL, USER, own, f"sid-{worker}-{step}", "csrf")
                own_exists = True
            elif op == "touch":
                manager.touch_session(URL, USER, own)
                manager.touch_session(URL, USER, SHARED)
            elif op == "load":
                loaded = manager.load_session(URL, USER, own)
                if own_exists and loaded is None:
                    raise AssertionError(f"worker {worker}: own session vanished at step {step}")
                if not own_exists and loaded is not None:
                    raise AssertionError(f"worker {worker}: removed session came back")
                if manager.load_session(URL, USER, SHARED) is None:
                    raise AssertionError(f"worker {worker}: shared session read as None")
            elif op == "list":
                environments = {s.environment for s in manager.list_sessions()}
                if SHARED not in environments or (own_exists and own not in environments):
                    raise AssertionError(f"worker {worker}: list missed a session")
            elif op == "remove":
                manager.remove_session(URL, USER, own)
                own_exists = False
            else:
                manager.save_session(URL, USER, SHARED, f"shared-{worker}-{step}", "csrf")
    except BaseException as exc:
        errors.put(f"{type(exc).__name__}: {exc}")
        raise


@pytest.mark.timeout(240)
def test_eight_processes_mixing_every_operation_never_see_a_missing_or_torn_session(
    tmp_path: Path,
) -> None:
    SessionManager(tmp_path).save_session(URL, USER, SHARED, "initial", "csrf")
    errors: multiprocessing.Queue[str] = FORK.Queue()
    workers = [
        FORK.Process(target=_mixed_workload, args=(str(tmp_path), i, 500, errors)) for i in range(8)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=200)
    problems = []
    while not errors.empty():
        problems.append(errors.get())
    assert problems == []
    assert [worker.exitcode for worker in workers] == [0] * 8
    for path in tmp_path.glob("session_*.json"):
        data = json.loads(path.read_text())
        assert set(data) >= {"session_id", "csrf_token", "created_at"}


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(content=st.binary(max_size=2048))
def test_any_bytes_in_a_session_file_load_as_none_or_a_session(
    tmp_path: Path, content: bytes
) -> None:
    _assert_loads_safely(tmp_path, content)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([1e300, -1e300, -5.0])
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = [
    "session_id",
    "csrf_token",
    "route_cookie",
    "environment",
    "base_url",
    "username",
    "created_at",
    "last_used_at",
    "is_authenticated",
]


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(document=st.fixed_dictionaries({}, optional={f: json_values for f in FIELDS}))
def test_any_json_shape_loads_as_none_or_a_session(
    tmp_path: Path, document: dict[str, object]
) -> None:
    _assert_loads_safely(tmp_path, json.dumps(document).encode())


def _assert_loads_safely(cache: Path, content: bytes) -> None:
    (cache / session_name(URL, USER, "fuzz")).write_bytes(content)
    loaded = SessionManager(cache).load_session(URL, USER, "fuzz")
    if loaded is not None:
        assert isinstance(loaded.session_id, str) and isinstance(loaded.created_at, float)
        assert loaded.created_at_formatted  # the properties work on what was loaded
    else:
        assert not (cache / session_name(URL, USER, "fuzz")).exists()
