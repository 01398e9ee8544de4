"""HacClient against the fake HAC on 127.0.0.1: every request the server sees is counted."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from sessionkeeper.hac.auth import AuthHandler, BasicAuthHandler
from sessionkeeper.hac.client import HacClient
from sessionkeeper.hac.errors import HacAuthenticationError, HacClientError
from sessionkeeper.hac.session import SessionManager, encode_session, session_name
from sessionkeeper.stores.directory import DirectoryStore
from sessionkeeper.stores.errors import StoreUnavailableError
from sessionkeeper.stores.memory import MemoryStore
from sessionkeeper.testing.fake_hac import FakeHac

pytestmark = pytest.mark.timeout(60)

LOGIN_REQUESTS = {"GET /login": 1, "POST /j_spring_security_check": 1, "GET /": 1}
GROOVY = "POST /console/scripting/execute"

MakeClient = Callable[..., HacClient]


@pytest.fixture
def fake() -> Iterator[FakeHac]:
    with FakeHac(route="node1") as server:
        yield server


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
def make_client(fake: FakeHac, cache_dir: Path) -> Iterator[MakeClient]:
    made: list[HacClient] = []

    def make(
        base_url: str | None = None,
        *,
        password: str = "nimda",
        auth: AuthHandler | None = None,
        **kwargs: object,
    ) -> HacClient:
        if "session_persistence" not in kwargs and "session_manager" not in kwargs:
            kwargs["session_manager"] = SessionManager(cache_dir)
        client = HacClient(
            base_url or fake.url,
            auth or BasicAuthHandler("admin", password),
            **kwargs,  # type: ignore[arg-type]
        )
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def test_cold_run_logs_in_with_three_requests_then_runs_the_operation(
    fake: FakeHac, make_client: MakeClient, cache_dir: Path
) -> None:
    result = make_client().execute_groovy("println 'hello'\nreturn 1 + 2")
    assert result.success
    assert result.output_text == "hello\n"
    assert result.execution_result == "3"
    assert dict(fake.counts) == {**LOGIN_REQUESTS, GROOVY: 1}
    assert fake.logins == 1
    cached = SessionManager(cache_dir).load_session(fake.url, "admin", "local")
    assert cached is not None
    assert cached.route_cookie == "ROUTE=.node1"


def test_warm_run_sends_exactly_one_request_and_touches_a_session_idle_for_a_while(
    fake: FakeHac, make_client: MakeClient, cache_dir: Path
) -> None:
    make_client().execute_groovy("return 1")
    manager = SessionManager(cache_dir)
    before = manager.load_session(fake.url, "admin", "local")
    assert before is not None
    # Make the session look idle for a minute.
    before.last_used_at -= 60
    manager.store.put(session_name(fake.url, "admin", "local"), encode_session(before))
    fake.reset_counts()
    warm = make_client()
    assert warm.execute_groovy("return 2").execution_result == "2"
    assert dict(fake.counts) == {GROOVY: 1}
    after = manager.load_session(fake.url, "admin", "local")
    assert after is not None
    assert after.session_id == before.session_id
    assert after.created_at == before.created_at
    assert after.last_used_at > before.last_used_at + 30


def test_a_session_used_moments_ago_is_not_rewritten_unless_asked(
    fake: FakeHac, make_client: MakeClient, cache_dir: Path
) -> None:
    make_client().login()
    manager = SessionManager(cache_dir)
    name = session_name(fake.url, "admin", "local")
    written = manager.store.get(name)
    make_client().execute_groovy("return 1")
    assert manager.store.get(name) == written  # within touch_interval: no durable write
    every_time = make_client()
    every_time.touch_interval = 0
    every_time.execute_groovy("return 1")
    touched = manager.load_session(fake.url, "admin", "local")
    assert touched is not None
    assert manager.store.get(name) != written


def test_login_trusts_the_cached_session_without_a_validation_request(
    fake: FakeHac, make_client: MakeClient
) -> None:
    make_client().login()
    assert fake.logins == 1
    fake.reset_counts()
    client = make_client()
    client.login()
    assert fake.total_requests == 0
    assert client.session_info is not None and client.session_info.is_authenticated


def test_forced_login_checks_the_credentials_again(fake: FakeHac, make_client: MakeClient) -> None:
    client = make_client()
    client.login()
    first = client.session_info
    assert first is not None
    client.login(force=True)
    assert fake.logins == 2
    assert client.session_info is not None
    assert client.session_info.session_id != first.session_id


def test_every_operation_of_a_warm_run_uses_the_cached_session(
    fake: FakeHac, make_client: MakeClient
) -> None:
    make_client().login()
    fake.reset_counts()
    client = make_client()
    search = client.execute_flexiblesearch("SELECT {code}, {name} FROM {Product}")
    imported = client.import_impex("INSERT_UPDATE Title;code[unique=true]\n;mr")
    validated = client.validate_impex("INSERT_UPDATE Title;code[unique=true]\n;dr")
    update_data = client.get_update_data()
    patches = client.get_pending_patches()
    log = client.get_update_log()
    assert search.success and search.result_count == 5
    assert imported.success, imported
    assert validated.success, validated
    assert update_data.get_patches_extension() is not None
    assert "validation" in patches
    assert isinstance(log.log_html, str)
    assert fake.logins == 0
    assert fake.total_requests == 6


@pytest.mark.parametrize("mode", ["2211", "legacy"])
def test_dead_session_is_renewed_once_and_the_operation_retried(
    mode: str, cache_dir: Path, tmp_path: Path
) -> None:
    with FakeHac(mode=mode) as fake:  # type: ignore[arg-type]
        manager = SessionManager(cache_dir)
        with HacClient(fake.url, BasicAuthHandler("admin", "nimda"), session_manager=manager) as c:
            c.login()
            old = c.session_info
            assert old is not None
            fake.kill_all_sessions()
            fake.reset_counts()
            result = c.execute_groovy("return 'again'")
            assert result.execution_result == "again"
            assert dict(fake.counts) == {**LOGIN_REQUESTS, GROOVY: 2}
            assert len(fake.groovy_runs) == 1  # the dead request did not run
            cached = manager.load_session(fake.url, "admin", "local")
            assert cached is not None
            assert cached.session_id != old.session_id
            assert c.session_info is not None
            assert cached.session_id == c.session_info.session_id


def test_dead_session_on_a_get_is_detected_by_the_redirect_to_login(
    fake: FakeHac, make_client: MakeClient
) -> None:
    client = make_client()
    client.login()
    fake.kill_all_sessions()
    fake.reset_counts()
    data = client.get_update_data()
    assert data.project_datas
    assert fake.counts["GET /platform/init/data"] == 2
    assert fake.logins == 1


def test_dead_session_during_impex_is_renewed_with_the_new_csrf_token_in_the_form(
    fake: FakeHac, make_client: MakeClient
) -> None:
    client = make_client()
    client.login()
    fake.kill_all_sessions()
    result = client.import_impex("INSERT_UPDATE Title;code[unique=true]\n;prof")
    assert result.success, result
    assert fake.counts["POST /console/impex/import"] == 2


def test_wrong_password_fails_at_once_without_a_loop(
    fake: FakeHac, make_client: MakeClient
) -> None:
    client = make_client(password="wrong-password")
    with pytest.raises(HacAuthenticationError) as caught:
        client.execute_groovy("return 1")
    assert str(caught.value) == (
        f"Login failed for user 'admin' at {fake.hac_url}: check the username and password"
    )
    assert dict(fake.counts) == {"GET /login": 1, "POST /j_spring_security_check": 1}
    assert fake.groovy_runs == []


class CorruptingCsrf(AuthHandler):
    """User code that breaks every operation's CSRF header: HAC refuses even fresh sessions."""

    def __init__(self) -> None:
        self.inner = BasicAuthHandler("admin", "nimda")

    def apply_auth(self, request: httpx.Request) -> httpx.Request:
        if "x-csrf-token" in request.headers:
            request.headers["X-CSRF-TOKEN"] = "not-the-token"
        return request

    def get_initial_credentials(self) -> dict[str, str]:
        return self.inner.get_initial_credentials()


def test_a_second_dead_answer_after_relogin_is_an_authentication_error(
    fake: FakeHac, make_client: MakeClient
) -> None:
    client = make_client(auth=CorruptingCsrf())
    with pytest.raises(HacAuthenticationError, match="rejected a fresh session"):
        client.execute_groovy("return 1")
    assert fake.counts[GROOVY] == 2
    assert fake.logins == 2  # the cold login and exactly one re-login
    assert fake.groovy_runs == []


def test_an_adopted_session_that_is_dead_too_is_replaced_by_one_login(
    fake: FakeHac, make_client: MakeClient, cache_dir: Path
) -> None:
    client = make_client()
    client.login()
    # Another process saved a session since, and then the server restarted: the
    # session in memory and the one in the cache are both dead, and differ.
    SessionManager(cache_dir).save_session(fake.url, "admin", "local", "DEADBEEF", "stale")
    fake.kill_all_sessions()
    fake.reset_counts()
    assert client.execute_groovy("return 3").execution_result == "3"
    assert fake.logins == 1
    assert fake.counts[GROOVY] == 3  # dead, dead after adopting, then the fresh login's run
    saved = SessionManager(cache_dir).load_session(fake.url, "admin", "local")
    assert saved is not None and client.session_info is not None
    assert saved.session_id == client.session_info.session_id != "DEADBEEF"


def test_a_session_renewed_by_another_client_is_adopted_without_logging_in(
    fake: FakeHac, make_client: MakeClient
) -> None:
    first = make_client()
    second = make_client()
    first.login()
    second.login()
    assert fake.logins == 1
    fake.kill_all_sessions()
    first.execute_groovy("return 1")  # renews and saves the new session
    assert fake.logins == 2
    fake.reset_counts()
    assert second.execute_groovy("return 2").execution_result == "2"
    # Its dead request, then the retry with the adopted session: no login requests.
    assert dict(fake.counts) == {GROOVY: 2}
    assert second.session_info is not None and first.session_info is not None
    assert second.session_info.session_id == first.session_info.session_id


def test_threads_sharing_a_cold_client_log_in_once(fake: FakeHac, make_client: MakeClient) -> None:
    fake.latency = 0.02
    client = make_client()
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            assert client.execute_groovy(f"return {n}").execution_result == str(n)
        except BaseException as exc:  # collected and re-raised in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert fake.logins == 1
    assert len(fake.groovy_runs) == 6


WORKER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from sessionkeeper.hac.auth import BasicAuthHandler
    from sessionkeeper.hac.client import HacClient
    from sessionkeeper.hac.session import SessionManager, encode_session, session_name

    url, cache, n, start = sys.argv[1], Path(sys.argv[2]), sys.argv[3], Path(sys.argv[4])
    while not start.exists():
        pass
    manager = SessionManager(cache)
    with HacClient(url, BasicAuthHandler("admin", "nimda"), session_manager=manager) as client:
        result = client.execute_groovy("return " + n)
    assert result.execution_result == n, result
    """
)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("processes", [2, 4])
def test_processes_starting_without_a_session_log_in_once_between_them(
    processes: int, fake: FakeHac, tmp_path: Path, cache_dir: Path
) -> None:
    fake.latency = 0.02
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    start = tmp_path / "go"
    workers = [
        subprocess.Popen(
            [sys.executable, str(script), fake.url, str(cache_dir), str(n), str(start)],
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(processes)
    ]
    start.touch()
    for worker in workers:
        _, stderr = worker.communicate(timeout=90)
        assert worker.returncode == 0, stderr
    assert fake.logins == 1
    assert fake.counts["GET /login"] == 1
    assert sorted(run.script for run in fake.groovy_runs) == sorted(
        f"return {n}" for n in range(processes)
    )


def test_a_changed_route_cookie_is_persisted(
    fake: FakeHac, make_client: MakeClient, cache_dir: Path
) -> None:
    make_client().login()
    manager = SessionManager(cache_dir)
    cached = manager.load_session(fake.url, "admin", "local")
    assert cached is not None and cached.route_cookie == "ROUTE=.node1"
    # A cache written without the route: the next answer sets it and it is saved.
    manager.save_session(fake.url, "admin", "local", cached.session_id, cached.csrf_token, None)
    fake.reset_counts()
    make_client().execute_groovy("return 1")
    assert dict(fake.counts) == {GROOVY: 1}
    updated = manager.load_session(fake.url, "admin", "local")
    assert updated is not None
    assert updated.route_cookie == "ROUTE=.node1"
    assert updated.session_id == cached.session_id


def test_failover_to_another_node_renews_the_session_and_saves_the_new_route(
    fake: FakeHac, make_client: MakeClient, cache_dir: Path
) -> None:
    client = make_client()
    client.login()
    fake.failover("node2")
    assert client.execute_groovy("return 'moved'").execution_result == "moved"
    cached = SessionManager(cache_dir).load_session(fake.url, "admin", "local")
    assert cached is not None
    assert cached.route_cookie == "ROUTE=.node2"


def test_without_persistence_nothing_is_shared(fake: FakeHac, make_client: MakeClient) -> None:
    first = make_client(session_persistence=False)
    assert first.session_manager is None
    first.execute_groovy("return 1")
    make_client(session_persistence=False).execute_groovy("return 1")
    assert fake.logins == 2


@pytest.mark.parametrize("suffix", ["", "/", "/hac", "/hac/"])
def test_base_url_spellings_reach_hac(suffix: str, fake: FakeHac, make_client: MakeClient) -> None:
    assert make_client(fake.url + suffix).execute_groovy("return 7").execution_result == "7"


def test_trailing_slash_does_not_split_the_cache(fake: FakeHac, make_client: MakeClient) -> None:
    make_client(fake.url).login()
    fake.reset_counts()
    make_client(fake.url + "/").execute_groovy("return 1")
    assert dict(fake.counts) == {GROOVY: 1}


def test_a_custom_web_root_is_the_hac_root(cache_dir: Path) -> None:
    with FakeHac(web_root="/admin") as fake:
        manager = SessionManager(cache_dir)
        auth = BasicAuthHandler("admin", "nimda")
        with HacClient(fake.url + "/admin", auth, session_manager=manager) as client:
            assert client.execute_groovy("return 'x'").execution_result == "x"
        assert fake.counts[GROOVY] == 1
        assert fake.logins == 1


def test_groovy_failures_carry_the_stacktrace(fake: FakeHac, make_client: MakeClient) -> None:
    result = make_client().execute_groovy(
        'throw new IllegalStateException("boom")', commit=True, script_type="groovy"
    )
    assert not result.success
    assert result.commit_mode
    assert "IllegalStateException" in (result.stacktrace_text or "")
    assert fake.groovy_runs[-1].commit


def test_flexiblesearch_rows_are_unescaped_and_errors_are_messages(
    fake: FakeHac, make_client: MakeClient
) -> None:
    client = make_client()
    rows = client.execute_flexiblesearch("SELECT {name} FROM {Product} WHERE {code} = 'P-1002'")
    assert rows.rows == [['Lens <b>&"Pro"']]
    sql = client.execute_flexiblesearch("SELECT p_code FROM products", raw_sql=True, max_count=2)
    assert sql.success and sql.result_count == 2
    broken = client.execute_flexiblesearch("SELECT {nope} FROM {NoSuchType}")
    assert not broken.success
    assert isinstance(broken.exception, str)
    assert "FlexibleSearchException" in broken.exception


def test_impex_code_execution_is_off_unless_asked(fake: FakeHac, make_client: MakeClient) -> None:
    client = make_client()
    client.import_impex("INSERT_UPDATE Title;code[unique=true]\n;a", validation_mode="relaxed")
    assert fake.last_impex is not None
    assert not fake.last_impex.enable_code_execution
    assert fake.last_impex.validation_mode == "IMPORT_RELAXED"
    client.import_impex(
        "INSERT_UPDATE Title;code[unique=true]\n;b",
        enable_code_execution=True,
        legacy_mode=True,
        max_threads=3,
    )
    assert fake.last_impex.enable_code_execution
    assert fake.last_impex.legacy_mode
    assert fake.last_impex.max_threads == 3


def test_impex_problems_are_reported_not_raised(fake: FakeHac, make_client: MakeClient) -> None:
    client = make_client()
    failed = client.import_impex("INSERT_UPDATE NoSuchType;code[unique=true]\n;x")
    assert not failed.success
    assert failed.error == "Import has encountered problems."
    assert failed.validation_errors
    invalid = client.validate_impex("INSERT_UPDATE NoSuchType;code[unique=true]\n;x")
    assert not invalid.success
    assert invalid.error is not None and "invalid" in invalid.error


def test_system_update_runs_with_init_method_update(fake: FakeHac, make_client: MakeClient) -> None:
    fake.synchronous_update = True
    client = make_client()
    result = client.execute_update(patches={"cchpatches_Patch_MVP": "yes"})
    assert result.success
    assert "skipped" not in result.log_text
    assert "Patches requested: validation" in result.log_text
    log = client.get_update_log()
    assert log.is_complete
    assert "Updating the type system (schema)" in log.log_text


def test_logout_ends_the_session_on_the_server_and_in_the_cache(
    fake: FakeHac, make_client: MakeClient, cache_dir: Path
) -> None:
    client = make_client()
    client.login()
    assert fake.active_sessions() == 1
    client.logout()
    assert fake.active_sessions() == 0
    assert client.session_info is None
    assert SessionManager(cache_dir).load_session(fake.url, "admin", "local") is None


def test_results_errors_reprs_and_logs_carry_no_secret(
    fake: FakeHac, make_client: MakeClient, cache_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secrets: set[str] = {"nimda"}
    texts: list[str] = []
    client = make_client()
    texts.append(repr(client.execute_groovy("return 1")))
    assert client.session_info is not None
    secrets |= {client.session_info.session_id, client.session_info.csrf_token}
    texts += [repr(client), repr(client.session_info), repr(client.auth_handler)]
    fake.kill_all_sessions()
    texts.append(repr(client.execute_flexiblesearch("SELECT {uid} FROM {User}")))
    assert client.session_info is not None
    secrets |= {client.session_info.session_id, client.session_info.csrf_token}
    cached = SessionManager(cache_dir).load_session(fake.url, "admin", "local")
    texts.append(repr(cached))
    with pytest.raises(HacAuthenticationError) as caught:
        make_client(password="nimda-but-wrong", session_persistence=False).login()
    secrets.add("nimda-but-wrong")
    texts += [str(caught.value), repr(caught.value)]
    with pytest.raises(HacAuthenticationError) as rejected:
        make_client(auth=CorruptingCsrf(), session_persistence=False).execute_groovy("return 1")
    texts += [str(rejected.value), repr(rejected.value)]
    texts += [record.getMessage() for record in caplog.records]
    joined = "\n".join(texts)
    assert len(caplog.records) > 5
    for secret in secrets:
        assert secret not in joined, f"secret {secret[:3]}... leaked"


def test_threads_meeting_a_dead_session_renew_it_once(
    fake: FakeHac, make_client: MakeClient
) -> None:
    client = make_client()
    client.login()
    fake.kill_all_sessions()
    fake.latency = 0.02
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            assert client.execute_groovy(f"return {n}").execution_result == str(n)
        except BaseException as exc:  # collected and re-raised in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert fake.logins == 2  # the first login and exactly one renewal
    assert len(fake.groovy_runs) == 6


def test_a_store_given_to_the_client_holds_its_sessions(fake: FakeHac, tmp_path: Path) -> None:
    store = DirectoryStore(tmp_path / "elsewhere")
    with HacClient(fake.url, BasicAuthHandler("admin", "nimda"), store=store) as client:
        client.login()
        assert client.session_manager is not None
        assert client.session_manager.store is store
    assert [name for name in store.names() if name.startswith("session_")]
    fake.reset_counts()
    with HacClient(fake.url, BasicAuthHandler("admin", "nimda"), store=store) as client:
        client.execute_groovy("return 1")
    assert dict(fake.counts) == {GROOVY: 1}


def test_a_closed_client_says_so(fake: FakeHac, make_client: MakeClient) -> None:
    client = make_client()
    client.close()
    with pytest.raises(HacClientError, match="was closed"):
        client.execute_groovy("return 1")


def test_the_shared_http_client_never_holds_a_cookie_another_thread_could_send(
    fake: FakeHac, make_client: MakeClient
) -> None:
    client = make_client()
    shared_jar: list[dict[str, str]] = []
    client.http_session.event_hooks["response"].append(
        lambda response: shared_jar.append(dict(client.http_session.cookies))
    )
    client.execute_groovy("return 1")  # a login (three answers set cookies) and the script
    assert len(shared_jar) == 4
    assert all(cookies == {} for cookies in shared_jar)


def test_cookies_work_on_a_bare_host_name(fake: FakeHac, make_client: MakeClient) -> None:
    bare = f"http://localhost:{fake.port}"
    assert make_client(bare).execute_groovy("return 1").execution_result == "1"
    fake.reset_counts()
    assert make_client(bare).execute_groovy("return 2").execution_result == "2"
    assert dict(fake.counts) == {GROOVY: 1}


def test_a_store_failing_at_logout_is_a_client_error(
    fake: FakeHac, make_client: MakeClient
) -> None:
    class BrokenDeleteStore(MemoryStore):
        def delete(self, name: str) -> bool:
            raise StoreUnavailableError("backend down")

    client = make_client(session_manager=SessionManager(store=BrokenDeleteStore()))
    client.login()
    with pytest.raises(HacClientError, match="could not be removed: backend down"):
        client.logout()
    assert client.session_info is None
    assert fake.active_sessions() == 0


class _CountingStore(MemoryStore):
    """A memory store that counts its reads."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def get(self, name: str) -> bytes | None:
        self.reads += 1
        return super().get(name)


def test_use_session_starts_from_a_session_already_read_without_reading_it_again(
    fake: FakeHac, make_client: MakeClient
) -> None:
    store = _CountingStore()
    manager = SessionManager(store=store)
    with make_client(session_manager=manager) as first:
        first.login()
    cached = manager.load_session(first.base_url, "admin", "local")
    assert cached is not None
    client = make_client(session_manager=manager)
    client.use_session(cached)
    store.reads = 0
    assert client.execute_groovy("return 5").execution_result == "5"
    assert store.reads == 0
    assert fake.logins == 1
