"""The fake HAC behaves like SAP Commerce HAC, driven with plain httpx."""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from sessionkeeper.clock import ManualClock
from sessionkeeper.testing import FakeHac
from sessionkeeper.testing.fake_hac import GroovyRun, spawn
from sessionkeeper.testing.fake_hac._groovy import run_script
from sessionkeeper.testing.fake_hac._sessions import (
    csrf_token_matches,
    mask_csrf_token,
    unmask_csrf_token,
)

pytestmark = pytest.mark.timeout(60)

META_TOKEN = re.compile(r'<meta name="_csrf" content="([^"]+)">')
INPUT_TOKEN = re.compile(r'<input type="hidden" name="_csrf" value="([^"]+)">')
FORM = "application/x-www-form-urlencoded; charset=UTF-8"


def token_of(html: str) -> str:
    match = META_TOKEN.search(html)
    assert match, "page carries no _csrf meta tag"
    return match.group(1)


def set_cookies(response: httpx.Response, name: str) -> list[str]:
    return [c for c in response.headers.get_list("set-cookie") if c.startswith(f"{name}=")]


def cookie_value(header: str) -> str:
    return header.split(";", 1)[0].split("=", 1)[1]


def login(client: httpx.Client, fake: FakeHac, password: str = "nimda") -> str:
    """Log in through the real form flow; return the token of the authenticated page."""
    page = client.get(f"{fake.web_root}/login")
    response = client.post(
        f"{fake.web_root}/j_spring_security_check",
        data={"j_username": "admin", "j_password": password, "_csrf": token_of(page.text)},
    )
    assert response.status_code == 302
    home = client.get(response.headers["location"])
    assert home.status_code == 200
    return token_of(home.text)


def ajax(token: str) -> dict[str, str]:
    return {
        "X-CSRF-TOKEN": token,
        "X-Requested-With": "XMLHttpRequest",
        "Content-Type": FORM,
    }


def groovy(
    client: httpx.Client, fake: FakeHac, token: str, script: str, **extra: str
) -> httpx.Response:
    data = {"script": script, "scriptType": "groovy", "commit": "false", **extra}
    return client.post(f"{fake.web_root}/console/scripting/execute", data=data, headers=ajax(token))


@pytest.fixture
def fake() -> Iterator[FakeHac]:
    with FakeHac() as server:
        yield server


@pytest.fixture
def client(fake: FakeHac) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake.url) as http:
        yield http


# ----- login ---------------------------------------------------------------


def test_login_page_carries_csrf_twice_the_form_and_a_session_cookie(
    fake: FakeHac, client: httpx.Client
) -> None:
    page = client.get("/hac/login")
    assert page.status_code == 200
    html = page.text
    assert '<meta name="_csrf_parameter" content="_csrf">' in html
    assert '<meta name="_csrf_header" content="X-CSRF-TOKEN">' in html
    assert 'action="/hac/j_spring_security_check"' in html
    assert '<input type="text" name="j_username"' in html
    assert '<input type="password" name="j_password"' in html
    assert "<!-- redirect_detection - do not remove! -->" in html
    assert token_of(html) == INPUT_TOKEN.search(html).group(1)  # type: ignore[union-attr]
    [cookie] = set_cookies(page, "JSESSIONID")
    attributes = [a.strip().lower() for a in cookie.split(";")[1:]]
    assert "path=/hac" in attributes
    assert "httponly" in attributes
    assert not any(a.startswith("domain") for a in attributes)
    # A live session gets no second cookie.
    assert set_cookies(client.get("/hac/login"), "JSESSIONID") == []


def test_masked_tokens_differ_per_render_yet_all_validate(
    fake: FakeHac, client: httpx.Client
) -> None:
    renders = [token_of(client.get("/hac/login").text) for _ in range(3)]
    assert len(set(renders)) == 3
    # The oldest rendering still logs in.
    response = client.post(
        "/hac/j_spring_security_check",
        data={"j_username": "admin", "j_password": "nimda", "_csrf": renders[0]},
    )
    assert response.status_code == 302
    pages = [token_of(client.get("/hac/").text) for _ in range(3)]
    assert len(set(pages)) == 3
    for token in pages:
        assert groovy(client, fake, token, "return 1").json()["executionResult"] == "1"


def test_mask_roundtrip_and_raw_token_validate() -> None:
    raw = "3f0c8a34-8ab5-4f9e-9d51-1c2a6a9f7e10"
    masked = mask_csrf_token(raw)
    assert masked != raw
    assert unmask_csrf_token(masked) == raw
    assert csrf_token_matches(raw, masked)
    assert csrf_token_matches(raw, raw)
    assert not csrf_token_matches(raw, mask_csrf_token("another-token-of-some-length-xxxxxxx"))
    assert not csrf_token_matches(raw, "not base64 !!")
    assert not csrf_token_matches(raw, None)


def test_login_issues_a_new_session_id_and_a_new_csrf_secret(
    fake: FakeHac, client: httpx.Client
) -> None:
    page = client.get("/hac/login")
    old_id = client.cookies["JSESSIONID"]
    old_token = token_of(page.text)
    response = client.post(
        "/hac/j_spring_security_check",
        data={"j_username": "admin", "j_password": "nimda", "_csrf": old_token},
    )
    assert response.status_code == 302
    assert response.headers["location"] == "/hac/"
    [cookie] = set_cookies(response, "JSESSIONID")
    new_id = cookie_value(cookie)
    assert new_id != old_id
    assert "Path=/hac" in cookie
    assert fake.logins == 1
    # The new session rejects the token rendered before login.
    assert groovy(client, fake, old_token, "return 1").status_code == 405
    new_token = token_of(client.get("/hac/").text)
    assert groovy(client, fake, new_token, "return 1").status_code == 200
    # The pre-login id is dead.
    with httpx.Client(base_url=fake.url, cookies={"JSESSIONID": old_id}) as stale:
        assert stale.get("/hac/").status_code == 302


def test_bad_credentials_redirect_to_login_error_which_the_page_shows(
    fake: FakeHac, client: httpx.Client
) -> None:
    page = client.get("/hac/login")
    response = client.post(
        "/hac/j_spring_security_check",
        data={"j_username": "admin", "j_password": "wrong", "_csrf": token_of(page.text)},
    )
    assert response.status_code == 302
    assert response.headers["location"] == "/hac/login?login_error=1"
    error_page = client.get(response.headers["location"])
    assert '<div id="loginErrors">Login failed: Bad credentials</div>' in error_page.text
    assert "loginErrors" not in client.get("/hac/login").text
    assert fake.logins == 0
    assert fake.active_sessions() == 0
    assert client.get("/hac/").status_code == 302


@pytest.mark.parametrize(("mode", "status"), [("2211", 405), ("legacy", 403)])
def test_login_without_a_valid_csrf_token_is_refused(mode: str, status: int) -> None:
    with FakeHac(mode=mode) as fake, httpx.Client(base_url=fake.url) as client:  # type: ignore[arg-type]
        client.get("/hac/login")
        for token in (None, "forged"):
            data = {"j_username": "admin", "j_password": "nimda"}
            if token:
                data["_csrf"] = token
            response = client.post("/hac/j_spring_security_check", data=data)
            assert response.status_code == status
            if mode == "legacy":
                assert 'name="j_username"' in response.text
        assert fake.logins == 0


def test_home_redirects_to_login_until_logged_in_then_greets_the_user(
    fake: FakeHac, client: httpx.Client
) -> None:
    response = client.get("/hac/")
    assert response.status_code == 302
    assert response.headers["location"] == "/hac/login"
    assert client.get("/hac").headers["location"] == "/hac/"
    login(client, fake)
    home = client.get("/hac/")
    assert home.status_code == 200
    assert "You're admin" in home.text
    assert '<meta name="_csrf_header" content="X-CSRF-TOKEN">' in home.text


def test_login_returns_to_the_page_first_asked_for(fake: FakeHac, client: httpx.Client) -> None:
    assert client.get("/hac/platform/update").status_code == 302
    page = client.get("/hac/login")
    response = client.post(
        "/hac/j_spring_security_check",
        data={"j_username": "admin", "j_password": "nimda", "_csrf": token_of(page.text)},
    )
    assert response.headers["location"] == "/hac/platform/update"


# ----- dead sessions -------------------------------------------------------


@pytest.mark.parametrize(("mode", "status"), [("2211", 405), ("legacy", 403)])
def test_dead_session_post_is_refused_and_get_redirects(mode: str, status: int) -> None:
    with FakeHac(mode=mode) as fake, httpx.Client(base_url=fake.url) as client:  # type: ignore[arg-type]
        token = login(client, fake)
        fake.kill_all_sessions()
        response = groovy(client, fake, token, "return 1")
        assert response.status_code == status
        if mode == "legacy":
            assert "j_spring_security_check" in response.text
            assert 'name="j_username"' in response.text
        else:
            assert "j_username" not in response.text
        for path in ("/hac/", "/hac/platform/init/data"):
            got = client.get(path, headers={"X-Requested-With": "XMLHttpRequest"})
            assert got.status_code == 302
            assert got.headers["location"] == "/hac/login"
        assert fake.groovy_runs == []


def test_missing_or_invalid_csrf_header_is_refused_but_the_session_survives(
    fake: FakeHac, client: httpx.Client
) -> None:
    token = login(client, fake)
    url = "/hac/console/scripting/execute"
    data = {"script": "return 1", "scriptType": "groovy"}
    assert client.post(url, data=data).status_code == 405
    assert client.post(url, data=data, headers={"X-CSRF-TOKEN": "nope"}).status_code == 405
    assert groovy(client, fake, token, "return 1").status_code == 200
    assert len(fake.groovy_runs) == 1


def test_session_dies_after_inactivity_measured_by_the_injected_clock() -> None:
    clock = ManualClock(start=1_000_000.0)
    with (
        FakeHac(clock=clock, session_timeout=600) as fake,
        httpx.Client(base_url=fake.url) as client,
    ):
        token = login(client, fake)
        assert fake.active_sessions() == 1
        clock.advance(599)
        assert groovy(client, fake, token, "return 1").status_code == 200
        clock.advance(599)  # idle time counts from the last use
        assert groovy(client, fake, token, "return 2").status_code == 200
        clock.advance(601)
        assert fake.active_sessions() == 0
        assert groovy(client, fake, token, "return 3").status_code == 405
        assert client.get("/hac/").status_code == 302
        assert [r.script for r in fake.groovy_runs] == ["return 1", "return 2"]


def test_kill_all_sessions_acts_like_a_restart(fake: FakeHac) -> None:
    clients = [httpx.Client(base_url=fake.url) for _ in range(3)]
    try:
        tokens = [login(c, fake) for c in clients]
        assert fake.active_sessions() == 3
        fake.kill_all_sessions()
        assert fake.active_sessions() == 0
        for c, t in zip(clients, tokens, strict=True):
            assert groovy(c, fake, t, "return 1").status_code == 405
        # A fresh login works again.
        token = login(clients[0], fake)
        assert groovy(clients[0], fake, token, "return 1").status_code == 200
        assert fake.logins == 4
    finally:
        for c in clients:
            c.close()


def test_route_cookie_pins_the_node_and_failover_kills_its_sessions() -> None:
    with FakeHac(route="node1") as fake, httpx.Client(base_url=fake.url) as client:
        first = client.get("/hac/login")
        [route] = set_cookies(first, "ROUTE")
        assert cookie_value(route) == ".node1"
        assert "Path=/" in route
        token = login(client, fake)
        assert set_cookies(client.get("/hac/"), "ROUTE") == []  # already carried
        fake.failover("node2")
        response = groovy(client, fake, token, "return 1")
        assert response.status_code == 405
        [route] = set_cookies(response, "ROUTE")
        assert cookie_value(route) == ".node2"
        assert client.cookies["ROUTE"] == ".node2"
        token = login(client, fake)
        assert groovy(client, fake, token, "return 1").status_code == 200
        assert fake.active_sessions() == 1


def test_logout_kills_the_session(fake: FakeHac, client: httpx.Client) -> None:
    token = login(client, fake)
    response = client.post("/hac/logout", headers={"X-CSRF-TOKEN": token})
    assert response.status_code == 302
    assert response.headers["location"].startswith("/hac/login")
    assert fake.active_sessions() == 0
    assert groovy(client, fake, token, "return 1").status_code == 405
    token = login(client, fake)
    assert client.get("/hac/logout").status_code == 302
    assert client.get("/hac/").status_code == 302


# ----- operations ----------------------------------------------------------


def test_groovy_returns_output_result_and_empty_stacktrace(
    fake: FakeHac, client: httpx.Client
) -> None:
    token = login(client, fake)
    response = groovy(client, fake, token, "println 'hi'\nprintln \"there\"\nreturn 42")
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {
        "outputText": "hi\nthere\n",
        "executionResult": "42",
        "stacktraceText": "",
    }
    failed = groovy(
        client,
        fake,
        token,
        'println "before"\nthrow new IllegalStateException("boom")',
        commit="true",
    ).json()
    assert failed["outputText"] == "before\n"
    assert failed["executionResult"] == ""
    assert failed["stacktraceText"] == (
        "java.lang.IllegalStateException: boom\n\tat Script1.run(Script1.groovy:2)"
    )
    assert fake.groovy_runs[-1] == GroovyRun(
        'println "before"\nthrow new IllegalStateException("boom")', "groovy", True
    )
    for script_type in ("beanshell", "javascript"):
        assert groovy(client, fake, token, "return 1", scriptType=script_type).status_code == 200
    assert groovy(client, fake, token, "return 1", scriptType="python").status_code == 400
    assert [r.script_type for r in fake.groovy_runs] == [
        "groovy",
        "groovy",
        "beanshell",
        "javascript",
    ]


def test_the_script_engine_handles_variables_concatenation_and_unknown_names() -> None:
    clock = ManualClock(start=0.0)
    outcome = run_script(
        "def name = 'World'\nint n = 2 + 3; println 'Hello ' + name\n// note\nreturn n", clock
    )
    assert (outcome.output_text, outcome.execution_result) == ("Hello World\n", "5")
    missing = run_script("println x", clock)
    assert missing.stacktrace_text.startswith(
        "groovy.lang.MissingPropertyException: No such property: x for class: Script1"
    )
    assert run_script("println 'a'", clock).execution_result == ""
    assert run_script('return "text"', clock).execution_result == "text"
    assert run_script("Thread.sleep(1500)\nreturn true", clock).execution_result == "true"
    assert clock.time() == 1.5


def flexsearch(
    client: httpx.Client, token: str, query: str, field: str = "flexibleSearchQuery", **extra: str
) -> dict[str, object]:
    data = {field: query, "maxCount": "200", "user": "admin", "locale": "en", "commit": "false"}
    data.update(extra)
    response = client.post("/hac/console/flexsearch/execute", data=data, headers=ajax(token))
    assert response.status_code == 200
    result: dict[str, object] = response.json()
    return result


FLEX_KEYS = {
    "query",
    "executionTime",
    "resultCount",
    "exception",
    "resultList",
    "headers",
    "rawExecution",
    "dataSourceId",
    "exceptionStackTrace",
    "parametersAsString",
    "catalogVersionsAsString",
}


def test_flexsearch_answers_every_key_and_escapes_cells(
    fake: FakeHac, client: httpx.Client
) -> None:
    token = login(client, fake)
    result = flexsearch(client, token, "SELECT {code},{name} FROM {Product}")
    assert set(result) == FLEX_KEYS
    assert result["exception"] is None
    assert result["dataSourceId"] == "master"
    assert result["headers"] == ["p_code", "p_name"]
    assert result["resultCount"] == 5
    rows = result["resultList"]
    assert isinstance(rows, list)
    assert ["P-1002", "Lens &lt;b&gt;&amp;&quot;Pro&quot;"] in rows
    where = flexsearch(client, token, "SELECT {name} FROM {Product} WHERE {code}='P-1001'")
    assert where["resultList"] == [["Tripod"]]
    limited = flexsearch(client, token, "SELECT * FROM {Product}", maxCount="2")
    assert limited["resultCount"] == 2
    assert limited["headers"] == ["PK", "p_code", "p_name"]
    users = flexsearch(client, token, "SELECT {uid} FROM {User} WHERE {uid} = 'admin'")
    assert users["resultList"] == [["admin"]]
    sql = flexsearch(client, token, "SELECT p_isocode FROM languages", field="sqlQuery")
    assert sql["resultList"] == [["en"], ["de"], ["fr"]]
    assert sql["rawExecution"] is True
    other = flexsearch(client, token, "SELECT {pk} FROM {Language}", dataSource="slave")
    assert other["dataSourceId"] == "slave"


@pytest.mark.parametrize(
    "query", ["SELECT {code} FROM {NoSuchType}", "this is not a query", "SELECT {x} FROM {Product}"]
)
def test_flexsearch_error_is_200_with_an_exception_object(
    fake: FakeHac, client: httpx.Client, query: str
) -> None:
    token = login(client, fake)
    result = flexsearch(client, token, query)
    assert set(result) == FLEX_KEYS
    exception = result["exception"]
    assert isinstance(exception, dict)
    assert set(exception) == {"message", "localizedMessage", "stackTrace", "cause", "suppressed"}
    assert exception["cause"] is None
    assert exception["suppressed"] == []
    assert exception["stackTrace"]
    assert result["resultList"] == []
    assert result["headers"] == []
    assert result["resultCount"] == 0


def impex(
    client: httpx.Client, token: str, script: str, *, validate: bool = False, **fields: str
) -> httpx.Response:
    data = {
        "scriptContent": script,
        "validationEnum": "IMPORT_STRICT",
        "encoding": "UTF-8",
        "maxThreads": "1",
        **fields,
    }
    path = "/hac/console/impex/import" + ("/validate" if validate else "")
    headers = {"X-CSRF-TOKEN": token, "Content-Type": FORM}
    return client.post(path, data=data, headers=headers)


def test_impex_import_succeeds_and_its_rows_are_searchable(
    fake: FakeHac, client: httpx.Client
) -> None:
    token = login(client, fake)
    script = (
        "$lang=en\n# products\nINSERT_UPDATE Product;code[unique=true];name[lang=$lang]\n"
        ";NEW-1;Drone\n;P-1000;Camera II\n"
    )
    response = impex(client, token, script)
    assert response.status_code == 200
    assert (
        '<span id="impexResult" data-level="notice" data-result="Import finished successfully">'
        in response.text
    )
    assert 'class="impexResult"' not in response.text
    found = flexsearch(client, token, "SELECT {code},{name} FROM {Product} WHERE {code}='NEW-1'")
    assert found["resultList"] == [["NEW-1", "Drone"]]
    updated = flexsearch(client, token, "SELECT {name} FROM {Product} WHERE {code}='P-1000'")
    assert updated["resultList"] == [["Camera II"]]


@pytest.mark.parametrize(
    ("script", "bad_line"),
    [
        (";orphan;line", ";orphan;line"),
        ("INSERT_UPDATE UnknownType;code\n;x", "INSERT_UPDATE UnknownType;code"),
        ("#%groovy% println 'x'\nINSERT Language;isocode\n;es", "#%groovy% println 'x'"),
        ("#% impex.setLocale(Locale.GERMAN)", "#% impex.setLocale(Locale.GERMAN)"),
    ],
)
def test_impex_problems_list_the_unresolved_lines(
    fake: FakeHac, client: httpx.Client, script: str, bad_line: str
) -> None:
    token = login(client, fake)
    response = impex(client, token, script, _enableCodeExecution="on")
    assert 'data-level="error" data-result="Import has encountered problems."' in response.text
    pre = re.search(r'<div class="impexResult"><pre>(.*?)</pre></div>', response.text, re.S)
    assert pre is not None
    assert bad_line.replace("'", "&#x27;") in pre.group(1)
    assert fake.last_impex is not None
    assert fake.last_impex.enable_code_execution is False


def test_impex_checkbox_semantics_and_binding_errors(fake: FakeHac, client: httpx.Client) -> None:
    token = login(client, fake)
    code = "#%groovy% println 'x'\nINSERT_UPDATE Language;isocode[unique=true]\n;it"
    enabled = impex(
        client,
        token,
        code,
        enableCodeExecution="true",
        _enableCodeExecution="on",
        _legacyMode="on",
        validationEnum="IMPORT_RELAXED",
    )
    assert 'data-level="notice"' in enabled.text
    assert fake.last_impex is not None
    assert fake.last_impex.enable_code_execution is True
    assert fake.last_impex.legacy_mode is False
    assert fake.last_impex.validation_mode == "IMPORT_RELAXED"
    impex(client, token, ";x", legacyMode="true")
    assert fake.last_impex.legacy_mode is True
    before = fake.last_impex
    bad = impex(client, token, "INSERT Language;isocode\n;xx", validationEnum="STRICT")
    assert bad.status_code == 200
    assert 'class="error"' in bad.text
    assert 'id="impexResult"' not in bad.text
    assert fake.last_impex is before  # the unbound form imported nothing
    relaxed = impex(
        client, token, "INSERT Language;isocode;color\n;pt;red", validationEnum="IMPORT_RELAXED"
    )
    assert 'data-level="notice"' in relaxed.text
    strict = impex(client, token, "INSERT Language;isocode;color\n;pl;red")
    assert 'data-level="error"' in strict.text


def test_impex_validate_says_valid_or_why_not(fake: FakeHac, client: httpx.Client) -> None:
    token = login(client, fake)
    good = impex(client, token, "INSERT_UPDATE Product;code[unique=true]\n;V-1", validate=True)
    assert '<span id="validationResultMsg"' in good.text
    assert ">Import script is valid</span>" in good.text
    bad = impex(client, token, "INSERT_UPDATE Nope;code\n;x", validate=True)
    assert "Import script is invalid: " in bad.text
    assert "Nope" in bad.text
    # Validation stores nothing.
    result = flexsearch(client, token, "SELECT {code} FROM {Product} WHERE {code}='V-1'")
    assert result["resultList"] == []


def test_update_data_and_pending_patches_shapes(fake: FakeHac, client: httpx.Client) -> None:
    token = login(client, fake)
    headers = {"Accept": "application/json", "X-CSRF-TOKEN": token}
    data = client.get("/hac/platform/init/data", headers=headers).json()
    assert set(data) == {"isInitializing", "initInfo", "tenantID", "projectDatas"}
    assert data["tenantID"] == "master"
    assert data["isInitializing"] is False
    names = [p["name"] for p in data["projectDatas"]]
    assert {"cchpatches", "electronicsstore"} <= set(names)
    parameter = data["projectDatas"][0]["parameter"][0]
    assert {"name", "label", "values", "multiSelect", "default"} <= set(parameter)
    assert parameter["values"] == {"yes": True, "no": False}
    assert client.get("/hac/platform/init/data/", headers=headers).status_code == 404
    patches = client.get("/hac/platform/init/pendingPatches", headers=headers).json()
    assert patches
    for patch_list in patches.values():
        for patch in patch_list:
            assert set(patch) == {"hash", "name", "description", "required", "process"}


@pytest.mark.timeout(30)
def test_system_update_log_grows_until_finished(fake: FakeHac, client: httpx.Client) -> None:
    fake.update_step = 0.3
    token = login(client, fake)
    body = {
        "dropTables": False,
        "clearHMC": False,
        "createEssentialData": True,
        "createProjectData": False,
        "localizeTypes": False,
        "initMethod": "UPDATE",
        "allParameters": {},
        "patches": {"validation": ["6f1ed002ab5595859014ebf0951522d9"]},
        "parametersAsStringMap": {"initmethod": ["update"]},
    }
    headers = {
        "Accept": "application/json",
        "Content-Type": "application/json; charset=UTF-8",
        "X-CSRF-TOKEN": token,
        "X-Requested-With": "XMLHttpRequest",
    }
    answer = client.post("/hac/platform/init/execute", content=json.dumps(body), headers=headers)
    assert answer.status_code == 200
    result = answer.json()
    assert set(result) == {"success", "log", "initUpdateData"}
    assert result["success"] is True
    assert "Update finished" not in result["log"]
    snapshots = [result["log"]]
    # The log answers without any session at all.
    with httpx.Client(base_url=fake.url) as anonymous:
        while "Update finished" not in snapshots[-1]:
            got = anonymous.get("/hac/initlog/log", params={"_": "1"})
            assert got.status_code == 200
            if got.json()["log"] != snapshots[-1]:
                snapshots.append(got.json()["log"])
    assert len(snapshots) >= 3
    for earlier, later in itertools.pairwise(snapshots):
        assert later.startswith(earlier)
    assert "<br/>" in snapshots[-1]
    assert fake.counts["GET /initlog/log"] >= 2


def test_update_with_null_init_method_skips_the_schema(fake: FakeHac, client: httpx.Client) -> None:
    fake.synchronous_update = True
    fake.update_step = 0.01
    token = login(client, fake)
    headers = {"Content-Type": "application/json", "X-CSRF-TOKEN": token}
    body = json.dumps({"initMethod": None, "patches": {}})
    result = client.post("/hac/platform/init/execute", content=body, headers=headers).json()
    assert "skipped" in result["log"]
    assert "Update finished" in result["log"]
    assert "schema)" not in result["log"]
    bad = client.post("/hac/platform/init/execute", content="{not json", headers=headers)
    assert bad.status_code == 400


# ----- counters, latency, HTTP robustness ------------------------------------


def test_counts_are_keyed_by_method_and_path_under_the_web_root(
    fake: FakeHac, client: httpx.Client
) -> None:
    token = login(client, fake)
    groovy(client, fake, token, "return 1")
    client.get("/hac/initlog/log?_=123")
    assert fake.counts["GET /login"] == 1
    assert fake.counts["POST /j_spring_security_check"] == 1
    assert fake.counts["GET /"] == 1
    assert fake.counts["POST /console/scripting/execute"] == 1
    assert fake.counts["GET /initlog/log"] == 1
    assert fake.total_requests == 5
    assert fake.logins == 1
    fake.reset_counts()
    assert fake.total_requests == 0
    assert fake.logins == 0
    assert len(fake.groovy_runs) == 1


def test_web_root_can_be_empty_or_custom() -> None:
    for root in ("", "/admin"):
        with FakeHac(web_root=root) as fake, httpx.Client(base_url=fake.url) as client:
            assert fake.hac_url == fake.url + root
            token = login(client, fake)
            response = client.post(
                f"{root}/console/scripting/execute",
                data={"script": "return 7", "scriptType": "groovy"},
                headers=ajax(token),
            )
            assert response.json()["executionResult"] == "7"
            assert fake.counts["POST /console/scripting/execute"] == 1
            cookie = next(c for c in client.cookies.jar if c.name == "JSESSIONID")
            assert cookie.path == (root or "/")
            if root:
                assert client.get("/hac/login").status_code == 404


def test_latency_is_slept_on_every_request(fake: FakeHac, client: httpx.Client) -> None:
    fake.latency = 0.2
    started = time.monotonic()
    client.get("/hac/login")
    client.get("/hac/login")
    assert time.monotonic() - started >= 0.4  # a lower bound: sleeping is guaranteed
    fake.latency = 0.0


def test_unknown_paths_are_404_and_broken_requests_are_400(
    fake: FakeHac, client: httpx.Client
) -> None:
    assert client.get("/nothing/here").status_code == 404
    token = login(client, fake)
    assert client.get("/hac/no/such/page").status_code == 404
    assert client.get("/hac/console/scripting/execute").status_code == 405
    with socket.create_connection(("127.0.0.1", fake.port), timeout=10) as raw:
        raw.sendall(
            b"POST /hac/console/scripting/execute HTTP/1.1\r\nHost: x\r\n"
            b"Content-Length: banana\r\n\r\n"
        )
        reply = raw.recv(4096)
    assert reply.startswith(b"HTTP/1.1 400")
    assert b"Traceback" not in reply
    # The server is still fine, and reads a chunked body too.
    assert groovy(client, fake, token, "return 1").status_code == 200
    chunked = client.post(
        "/hac/console/scripting/execute",
        content=iter([b"script=return+", b"5&scriptType=groovy"]),
        headers=ajax(token),
    )
    assert chunked.json()["executionResult"] == "5"


def test_a_client_that_hangs_up_before_the_answer_is_no_server_error(
    fake: FakeHac, client: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG", logger="sessionkeeper.testing.fake_hac._http")
    fake.latency = 0.3
    with socket.create_connection(("127.0.0.1", fake.port), timeout=10) as raw:
        raw.sendall(b"GET /hac/login HTTP/1.1\r\nHost: x\r\n\r\n")
        # Close with a reset, as a killed process does, before the answer comes.
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not any(
        "went away" in r.getMessage() or "failed on" in r.getMessage() for r in caplog.records
    ):
        time.sleep(0.05)
    fake.latency = 0.0
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == []
    assert any("went away" in r.getMessage() for r in caplog.records)
    assert client.get("/hac/login").status_code == 200


def test_a_stopped_fake_answers_nothing_even_on_pooled_connections() -> None:
    fake = FakeHac().start()
    with httpx.Client(base_url=fake.url) as client:
        assert client.get("/hac/login").status_code == 200
        fake.stop()
        with pytest.raises(httpx.TransportError):
            client.get("/hac/login")


def test_concurrent_logins_and_scripts_are_all_counted(fake: FakeHac) -> None:
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            with httpx.Client(base_url=fake.url) as http:
                token = login(http, fake)
                assert groovy(http, fake, token, f"return {n}").json()["executionResult"] == str(n)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert fake.logins == 8
    assert fake.active_sessions() == 8
    assert sorted(r.script for r in fake.groovy_runs) == sorted(f"return {n}" for n in range(8))


# ----- the process entry point -----------------------------------------------


@pytest.mark.timeout(60)
def test_runs_as_a_process_with_control_endpoints() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "sessionkeeper.testing.fake_hac", "--route", "node1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "error::RuntimeWarning"},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        assert line.startswith("FAKE_HAC_URL=http://127.0.0.1:")
        url = line.split("=", 1)[1]
        with httpx.Client(base_url=url) as client:
            page = client.get("/hac/login")
            assert client.cookies["ROUTE"] == ".node1"
            response = client.post(
                "/hac/j_spring_security_check",
                data={"j_username": "admin", "j_password": "nimda", "_csrf": token_of(page.text)},
            )
            assert response.status_code == 302
            token = token_of(client.get("/hac/").text)
            ran = client.post(
                "/hac/console/scripting/execute",
                data={"script": "return 3", "commit": "true"},
                headers=ajax(token),
            )
            assert ran.json()["executionResult"] == "3"
            runs = client.get("/__fake__/groovy-runs").json()["groovy_runs"]
            assert runs == [{"script": "return 3", "script_type": "groovy", "commit": True}]
            latency = client.post("/__fake__/latency", params={"seconds": "0.01"}).json()
            assert latency == {"ok": True, "latency": 0.01}
            counts = client.get("/__fake__/counts").json()
            assert counts["logins"] == 1
            assert counts["counts"]["POST /j_spring_security_check"] == 1
            assert counts["active_sessions"] == 1
            assert "GET /__fake__/counts" not in counts["counts"]
            assert client.post("/__fake__/kill-sessions").status_code == 200
            dead = client.post(
                "/hac/console/scripting/execute", data={"script": "1"}, headers=ajax(token)
            )
            assert dead.status_code == 405
            assert client.post("/__fake__/reset-counts").json() == {"ok": True}
            assert client.get("/__fake__/counts").json()["counts"] == {}
            assert client.post("/__fake__/failover", params={"route": "node2"}).status_code == 200
            assert set_cookies(client.get("/hac/login"), "ROUTE")[0].startswith("ROUTE=.node2")
            assert client.get("/__fake__/nope").status_code == 404
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
        assert process.stderr is not None
        assert "Warning" not in process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.timeout(60)
def test_spawn_starts_the_fake_as_a_process_and_reports_its_url() -> None:
    process, url = spawn("--web-root", "/admin")
    try:
        with httpx.Client(base_url=url) as client:
            assert client.get("/admin/login").status_code == 200
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0
    with pytest.raises(RuntimeError, match="ended without serving"):
        spawn("--mode", "no-such-mode")
