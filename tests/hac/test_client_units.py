"""HAC client building blocks on literal inputs: URLs, cookies, pages, models, auth."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from sessionkeeper.hac import operations as ops
from sessionkeeper.hac.auth import BasicAuthHandler
from sessionkeeper.hac.client import HacClient
from sessionkeeper.hac.cookies import CookieJar, parse_set_cookie, split_route_cookie
from sessionkeeper.hac.errors import HacAuthenticationError, HacClientError
from sessionkeeper.hac.log_redaction import redact_cookies
from sessionkeeper.hac.models import (
    FlexibleSearchResult,
    GroovyScriptResult,
    ImpexResult,
    ProjectData,
    SessionInfo,
    UpdateData,
    UpdateLog,
    UpdateParameter,
    UpdateResult,
)
from sessionkeeper.hac.pages import (
    extract_csrf_token,
    is_login_page,
    login_error_text,
    parse_impex_import,
    parse_impex_validation,
)
from sessionkeeper.hac.transport import tls_verification
from sessionkeeper.hac.urls import HacUrls
from sessionkeeper.stores.memory import MemoryStore

LOGIN_PAGE = """<!DOCTYPE html><html><head>
<meta name="_csrf" content="META-TOKEN">
<meta name="_csrf_parameter" content="_csrf">
<meta name="_csrf_header" content="X-CSRF-TOKEN">
</head><body><!-- redirect_detection - do not remove! -->
<div id="loginErrors">Login failed: Bad   credentials</div>
<form action="/hac/j_spring_security_check" method="POST">
<input type="text" name="j_username"><input type="password" name="j_password">
<input type="hidden" name="_csrf" value="FORM-TOKEN"></form></body></html>"""


@pytest.mark.parametrize(
    ("base_url", "root"),
    [
        ("https://h:9002", "https://h:9002/hac"),
        ("https://h:9002/", "https://h:9002/hac"),
        ("https://h:9002/hac", "https://h:9002/hac"),
        ("https://h:9002/hac/", "https://h:9002/hac"),
        ("https://h:9002/admin", "https://h:9002/admin"),
        ("http://localhost/admin/console/", "http://localhost/admin/console"),
    ],
)
def test_base_url_without_path_means_hac_and_any_path_is_the_root(base_url: str, root: str) -> None:
    urls = HacUrls.parse(base_url)
    assert urls.root == root
    assert urls.url("/login") == root + "/login"


def test_base_url_must_be_http() -> None:
    with pytest.raises(ValueError, match="must look like"):
        HacUrls.parse("h:9002")
    with pytest.raises(ValueError):
        HacUrls.parse("ftp://h/hac")
    with pytest.raises(ValueError, match="must look like") as caught:
        HacUrls.parse("htp://gate:s3cret@h:9002")
    assert "s3cret" not in str(caught.value)


def test_redirect_target_keeps_our_origin_and_the_path() -> None:
    urls = HacUrls.parse("https://h:9002/admin")
    assert urls.same_origin("http://internal:8080/admin/?x=1") == "https://h:9002/admin/?x=1"
    assert urls.same_origin("/admin/") == "https://h:9002/admin/"
    assert urls.same_origin("") == "https://h:9002/admin/"


def test_client_keeps_the_original_cache_key_and_its_attributes() -> None:
    client = HacClient(
        "https://h:9002/",
        BasicAuthHandler("admin", "nimda"),
        environment="dev",
        timeout=7,
        session_manager=None,
        store=MemoryStore(),
    )
    try:
        assert client.base_url == "https://h:9002"
        assert client.urls.root == "https://h:9002/hac"
        assert client.environment == "dev"
        assert client.timeout == 7
        assert client.session_info is None
        assert client.session_manager is not None
        assert "nimda" not in repr(client)
    finally:
        client.close()
    no_cache = HacClient("https://h:9002", BasicAuthHandler("a", "b"), session_persistence=False)
    assert no_cache.session_manager is None
    no_cache.close()


def test_set_cookie_parsing_ignores_domain_and_honours_max_age_zero() -> None:
    assert parse_set_cookie("JSESSIONID=ABC; Path=/hac; Secure; HttpOnly") == (
        "JSESSIONID",
        "ABC",
        False,
    )
    assert parse_set_cookie('ROUTE=".node1"; Domain=localhost') == ("ROUTE", ".node1", False)
    assert parse_set_cookie("X=1; Max-Age=0") == ("X", "1", True)
    assert parse_set_cookie("garbage") is None
    jar = CookieJar()
    changed = jar.absorb(["JSESSIONID=A; Path=/", "ROUTE=.node1; Domain=commerce-server"])
    assert changed == {"JSESSIONID", "ROUTE"}
    assert jar.absorb(["JSESSIONID=A; Path=/"]) == set()
    assert jar.header() == "JSESSIONID=A; ROUTE=.node1"
    assert jar.absorb(["ROUTE=x; Max-Age=0"]) == {"ROUTE"}
    assert jar.header() == "JSESSIONID=A"
    assert "A" not in repr(jar).replace("JSESSIONID", "")


def test_route_cookie_keeps_the_original_string_format() -> None:
    assert split_route_cookie("ROUTE=.node1") == ("ROUTE", ".node1")
    assert split_route_cookie(".node2") == ("ROUTE", ".node2")
    assert split_route_cookie(None) is None


def test_csrf_token_comes_from_the_hidden_input_then_the_meta_tag() -> None:
    assert extract_csrf_token(LOGIN_PAGE) == "FORM-TOKEN"
    assert extract_csrf_token('<meta name="_csrf" content="M&amp;1">') == "M&1"
    assert extract_csrf_token("<html><body>nothing</body></html>") is None


def test_login_page_is_recognised_by_either_marker() -> None:
    assert is_login_page(LOGIN_PAGE)
    assert is_login_page('<input name="j_username">')
    assert not is_login_page('<div id="loggedUser">You\'re admin</div>')
    assert login_error_text(LOGIN_PAGE) == "Login failed: Bad credentials"
    assert login_error_text("<html></html>") is None


def test_impex_import_success_and_failure_pages() -> None:
    ok = parse_impex_import(
        '<span id="impexResult" data-level="notice" '
        'data-result="Import finished successfully"></span>'
    )
    assert ok == ImpexResult(True, "Import finished successfully", None, [])
    failed = parse_impex_import(
        '<span id="impexResult" data-level="error" data-result="Import has encountered problems.">'
        '</span><div class="impexResult">'
        "<pre>line 2: unknown &lt;Foo&gt;\n\nline 3: bad</pre></div>"
    )
    assert not failed.success
    assert failed.error == "Import has encountered problems."
    assert failed.validation_errors == ["line 2: unknown <Foo>", "line 3: bad"]
    assert failed.output == "line 2: unknown <Foo>\n\nline 3: bad"


def test_impex_binding_errors_are_a_failed_result_and_foreign_pages_an_error() -> None:
    result = parse_impex_import(
        '<span id="validationEnum.errors" class="error">Failed to convert property</span>'
    )
    assert not result.success
    assert result.validation_errors == ["Failed to convert property"]
    with pytest.raises(HacClientError, match="impexResult"):
        parse_impex_import("<html>something else</html>")


def test_impex_validation_pages() -> None:
    valid = parse_impex_validation(
        '<span id="validationResultMsg" data-level="notice">Import script is valid</span>'
    )
    assert valid.success
    assert valid.output == "Import script is valid"
    invalid = parse_impex_validation(
        '<span id="validationResultMsg" data-level="error">'
        "Import script is invalid: unknown type Foo</span>"
    )
    assert not invalid.success
    assert invalid.error == "Import script is invalid: unknown type Foo"
    assert invalid.validation_errors == ["Import script is invalid: unknown type Foo"]


def test_models_keep_the_original_fields_and_properties() -> None:
    assert GroovyScriptResult("out", "res", "").success
    assert not GroovyScriptResult("out", "res", "java.lang.X\n at y").success
    assert GroovyScriptResult("o", "r").stacktrace_text is None
    assert FlexibleSearchResult(["a"], [["1"]], 1).success
    assert not FlexibleSearchResult([], [], 0, exception="bad").success
    assert ImpexResult(True, "ok").validation_errors == []
    parameter = UpdateParameter("Patch_X", "Patch X", {"yes": False, "no": True})
    assert parameter.selected_value == "no"
    assert parameter.available_values == ["yes", "no"]
    data = UpdateData(
        False,
        [
            ProjectData("patches", None, []),
            ProjectData("cchpatches", "d", [parameter]),
            ProjectData("core", None, []),
        ],
    )
    assert data.get_patches_extension() is not None
    assert data.get_patches_extension().name == "cchpatches"  # type: ignore[union-attr]
    assert data.get_extension("core") is not None
    assert data.extensions_with_parameters == [data.project_datas[1]]
    assert UpdateResult(True, "a<br/>b FINISHED").log_text == "a\nb FINISHED"
    assert UpdateResult(True, "done, finished").is_finished
    log = UpdateLog("Update finished<br>no errors")
    assert log.is_complete
    assert log.has_errors  # the original counts the word "errors" too
    assert not UpdateLog("running").is_complete


def test_reprs_show_no_secret() -> None:
    info = SessionInfo("SESSION1234567890", "CSRF-abcdefghijkl", "ROUTE=.n1", True)
    text = repr(info)
    assert "SESSION1234567890" not in text
    assert "CSRF-abcdefghijkl" not in text
    handler = BasicAuthHandler("admin", "s3cret-pass")
    assert "s3cret-pass" not in repr(handler)
    assert handler.get_initial_credentials() == {"j_username": "admin", "j_password": "s3cret-pass"}
    request = httpx.Request("GET", "https://h/hac/")
    assert handler.apply_auth(request) is request


def test_errors_form_one_hierarchy() -> None:
    assert issubclass(HacAuthenticationError, HacClientError)


def test_invalid_impex_modes_and_script_types_are_refused_before_any_request() -> None:
    client = HacClient(
        "http://127.0.0.1:9", BasicAuthHandler("admin", "x"), session_persistence=False
    )
    try:
        with pytest.raises(ValueError, match="validation mode"):
            client.import_impex("INSERT_UPDATE X;a", validation_mode="bogus")
        with pytest.raises(ValueError, match="max_threads"):
            client.validate_impex("x", max_threads=0)
        with pytest.raises(ValueError, match="script type"):
            client.execute_groovy("1", script_type="python")
    finally:
        client.close()


def test_network_failure_is_a_client_error_without_secrets() -> None:
    client = HacClient(
        "http://127.0.0.1:9", BasicAuthHandler("admin", "pw-secret"), session_persistence=False
    )
    try:
        with pytest.raises(HacClientError) as caught:
            client.execute_groovy("1")
        assert "pw-secret" not in str(caught.value)
        assert "cannot reach HAC" in str(caught.value)
    finally:
        client.close()


def test_httpcore_traces_show_only_cookie_prefixes() -> None:
    message = (
        "receive_response_headers.complete return_value=(b'HTTP/1.1', 302, b'Found', "
        "[(b'Set-Cookie', b'JSESSIONID=0123456789ABCDEF; Path=/hac; HttpOnly'), "
        "(b'Location', b'/hac/')])"
    )
    redacted = redact_cookies(message)
    assert "0123456789ABCDEF" not in redacted
    assert "JSESSIONID=012345..." in redacted
    assert "Path=/hac" in redacted
    assert redact_cookies("no cookies here") == "no cookies here"


def test_tls_is_verified_for_https_unless_ignored_and_skipped_for_plain_http() -> None:
    verifying = HacClient("https://h:9002", BasicAuthHandler("a", "b"), session_persistence=False)
    ignoring = HacClient(
        "https://h:9002", BasicAuthHandler("a", "b"), ignore_ssl=True, session_persistence=False
    )
    try:
        assert tls_verification("https://h:9002", ignore_ssl=False) is tls_verification(
            "https://other", ignore_ssl=False
        )
        context = tls_verification("https://h:9002", ignore_ssl=False)
        assert isinstance(context, ssl.SSLContext)
        assert context.verify_mode == ssl.CERT_REQUIRED
        assert tls_verification("https://h:9002", ignore_ssl=True) is False
        assert tls_verification("http://h:9001", ignore_ssl=False) is False
        assert verifying.ignore_ssl is False and ignoring.ignore_ssl is True
    finally:
        verifying.close()
        ignoring.close()


def test_operations_build_the_forms_hac_expects() -> None:
    assert ops.groovy_form("1", True, "beanshell") == {
        "script": "1",
        "scriptType": "beanshell",
        "commit": "true",
    }
    off = ops.impex_form(
        "x", "relaxed", enable_code_execution=False, legacy_mode=False, max_threads=2
    )
    assert off["validationEnum"] == "IMPORT_RELAXED"
    assert off["_enableCodeExecution"] == "on" and "enableCodeExecution" not in off
    on = ops.impex_form(
        "x", "IMPORT_STRICT", enable_code_execution=True, legacy_mode=True, max_threads=1
    )
    assert on["enableCodeExecution"] == "true" and on["legacyMode"] == "true"
    sql = ops.flexsearch_form("SELECT 1", 5, "de", "admin", "slave", raw_sql=True)
    assert sql["sqlQuery"] == "SELECT 1" and "flexibleSearchQuery" not in sql
    assert sql["user"] == "admin" and sql["dataSource"] == "slave" and sql["commit"] == "false"


def test_operations_read_hac_answers() -> None:
    failed = ops.flexsearch_result(
        {"exception": {"message": "bad query", "stackTrace": []}, "resultList": []}
    )
    assert failed.exception == "bad query" and failed.result_count == 0
    rows = ops.flexsearch_result(
        {"headers": ["a"], "resultList": [["&lt;b&gt; &amp;", None]], "resultCount": 1}
    )
    assert rows.rows == [["<b> &", ""]]
    groovy = ops.groovy_result(
        {"outputText": "o", "executionResult": "r", "stacktraceText": ""}, False
    )
    assert groovy.success and groovy.output_text == "o"
    patches = {"validation": [{"hash": "h1", "required": True}, {"hash": "h2", "required": False}]}
    assert ops.required_patch_hashes(patches) == {"validation": ["h1"]}
    payload = ops.update_payload(
        parameters={"Patch_X": ["yes"], "flag": "no"},
        pending={"validation": ["h1"]},
        drop_tables=False,
        clear_hmc=False,
        create_essential_data=True,
        create_project_data=False,
        localize_types=False,
    )
    assert payload["initMethod"] == "UPDATE"
    assert payload["patches"] == {"validation": ["h1"]}
    assert payload["parametersAsStringMap"] == {
        "initmethod": ["update"],
        "Patch_X": ["yes"],
        "flag": ["no"],
    }


@pytest.mark.parametrize(
    ("read", "body"),
    [
        (ops.update_data, {"projectDatas": [1]}),
        (ops.update_data, {"projectDatas": [{"parameter": [{"values": ["yes"]}]}]}),
        (ops.flexsearch_result, {"headers": 3}),
        (ops.flexsearch_result, {"resultList": 7}),
        (ops.required_patch_hashes, {"validation": ["not-a-patch"]}),
    ],
)
def test_answers_of_an_unexpected_shape_are_client_errors(
    read: Callable[[Any], object], body: dict[str, Any]
) -> None:
    with pytest.raises(HacClientError, match="unexpected shape"):
        read(body)
