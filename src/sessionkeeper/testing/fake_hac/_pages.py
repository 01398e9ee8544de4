"""HTML pages of the fake HAC: login page, authenticated pages, Impex results."""

from __future__ import annotations

from html import escape

_CSRF_META = (
    '<meta name="_csrf" content="{token}">\n'
    '<meta name="_csrf_parameter" content="_csrf">\n'
    '<meta name="_csrf_header" content="X-CSRF-TOKEN">\n'
)


def _head(title: str, token: str) -> str:
    return (
        "<!DOCTYPE html>\n<html>\n<head>\n"
        '<meta charset="UTF-8">\n'
        f"<title>{escape(title)}</title>\n" + _CSRF_META.format(token=escape(token)) + "</head>\n"
    )


def login_page(web_root: str, token: str, *, login_error: bool) -> str:
    """The GET-only login page: CSRF meta tags, the login form and the redirect marker."""
    error = '<div id="loginErrors">Login failed: Bad credentials</div>\n' if login_error else ""
    return (
        _head("hybris administration console | Login", token)
        + "<body>\n<!-- redirect_detection - do not remove! -->\n"
        + '<div id="login">\n'
        + error
        + f'<form name="loginForm" action="{escape(web_root)}/j_spring_security_check"'
        ' method="POST">\n'
        '<input type="text" name="j_username" id="j_username" value="">\n'
        '<input type="password" name="j_password" id="j_password" value="">\n'
        '<input type="checkbox" name="_spring_security_remember_me">\n'
        f'<input type="hidden" name="_csrf" value="{escape(token)}">\n'
        '<button type="submit">login</button>\n'
        "</form>\n</div>\n</body>\n</html>\n"
    )


def authenticated_page(title: str, user: str, token: str, body: str = "") -> str:
    """An authenticated HAC page: the meta tags and "You're <user>"."""
    return (
        _head(f"hybris administration console | {title}", token)
        + "<body>\n"
        + f'<div id="loggedUser">You\'re {escape(user)}</div>\n'
        + '<form action="logout" method="POST" id="logoutForm">'
        f'<input type="hidden" name="_csrf" value="{escape(token)}"></form>\n'
        + f"<h2>{escape(title)}</h2>\n"
        + body
        + "</body>\n</html>\n"
    )


def impex_result_body(*, ok: bool, unresolved: list[str]) -> str:
    """The result part of the Impex import page."""
    if ok:
        return (
            '<span id="impexResult" data-level="notice"'
            ' data-result="Import finished successfully"></span>\n'
        )
    lines = "\n".join(escape(line) for line in unresolved)
    return (
        '<span id="impexResult" data-level="error"'
        ' data-result="Import has encountered problems."></span>\n'
        f'<div class="impexResult"><pre>{lines}</pre></div>\n'
    )


def impex_binding_error_body(field: str, value: str) -> str:
    """Spring's form-binding error for a field that did not convert."""
    return (
        f'<span id="{escape(field)}.errors" class="error">Failed to convert property value'
        f" of type java.lang.String to required type for property {escape(field)};"
        f" no enum constant {escape(value)}</span>\n"
    )


def impex_validation_body(reason: str | None) -> str:
    """The result part of the Impex validation page."""
    if reason is None:
        return '<span id="validationResultMsg" data-level="notice">Import script is valid</span>\n'
    return (
        '<span id="validationResultMsg" data-level="error">'
        f"Import script is invalid: {escape(reason)}</span>\n"
    )
