"""Reading HAC's HTML pages: CSRF tokens, login pages and Impex results."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sessionkeeper.hac.errors import HacClientError
from sessionkeeper.hac.models import ImpexResult

if TYPE_CHECKING:
    from selectolax.lexbor import LexborHTMLParser


def _parse(page: str) -> LexborHTMLParser:
    # Imported on first use: a warm run reads only JSON and never pays for the parser.
    from selectolax.lexbor import LexborHTMLParser

    return LexborHTMLParser(page)


#: Either marker in a body means HAC answered with its login page.
LOGIN_PAGE_MARKERS = ("j_spring_security_check", 'name="j_username"')


def is_login_page(body: str) -> bool:
    """True when ``body`` is (or embeds) the HAC login form."""
    return any(marker in body for marker in LOGIN_PAGE_MARKERS)


def extract_csrf_token(page: str) -> str | None:
    """The CSRF token of a page: the form's hidden ``_csrf`` input, else the ``_csrf`` meta tag."""
    tree = _parse(page)
    node = tree.css_first('input[name="_csrf"]')
    if node is not None and node.attributes.get("value"):
        return node.attributes["value"]
    node = tree.css_first('meta[name="_csrf"]')
    if node is not None and node.attributes.get("content"):
        return node.attributes["content"]
    return None


def login_error_text(page: str) -> str | None:
    """The ``#loginErrors`` text of a login page ("Login failed: ..."), if shown."""
    node = _parse(page).css_first("#loginErrors")
    if node is None:
        return None
    text = " ".join(node.text(separator=" ").split())
    return text or None


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _binding_errors(tree: LexborHTMLParser) -> list[str]:
    errors = []
    for node in tree.css("span.error"):
        text = " ".join(node.text(separator=" ").split())
        if text:
            errors.append(text)
    return errors


def _binding_failure(binding: list[str]) -> ImpexResult:
    return ImpexResult(
        success=False, output="\n".join(binding), error=binding[0], validation_errors=binding
    )


def _detail(tree: LexborHTMLParser) -> str:
    node = tree.css_first("div.impexResult pre")
    return node.text().strip() if node is not None else ""


def parse_impex_import(page: str) -> ImpexResult:
    """Read ``span#impexResult`` (level and summary) and the unresolved lines below it."""
    tree = _parse(page)
    span = tree.css_first("span#impexResult")
    if span is None:
        binding = _binding_errors(tree)
        if binding:
            return _binding_failure(binding)
        raise HacClientError("HAC's Impex import answer has no span#impexResult; is this HAC?")
    level = span.attributes.get("data-level") or ""
    summary = span.attributes.get("data-result") or span.text().strip()
    success = level != "error"
    detail = _detail(tree)
    return ImpexResult(
        success=success,
        output=detail or summary,
        error=None if success else summary,
        validation_errors=[] if success else _lines(detail),
    )


def parse_impex_validation(page: str) -> ImpexResult:
    """Read ``span#validationResultMsg`` ("Import script is valid" or "... invalid: ...")."""
    tree = _parse(page)
    span = tree.css_first("span#validationResultMsg")
    if span is None:
        binding = _binding_errors(tree)
        if binding:
            return _binding_failure(binding)
        raise HacClientError(
            "HAC's Impex validation answer has no span#validationResultMsg; is this HAC?"
        )
    message = " ".join(span.text(separator=" ").split()) or (
        span.attributes.get("data-result") or ""
    )
    level = span.attributes.get("data-level") or ""
    success = level != "error" and "invalid" not in message.lower()
    detail = _detail(tree)
    errors = _lines(detail) if detail else ([] if success else [message])
    return ImpexResult(
        success=success,
        output=detail or message,
        error=None if success else message,
        validation_errors=[] if success else errors,
    )


__all__ = [
    "LOGIN_PAGE_MARKERS",
    "extract_csrf_token",
    "is_login_page",
    "login_error_text",
    "parse_impex_import",
    "parse_impex_validation",
]
