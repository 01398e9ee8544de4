"""Reading XRPC input: JSON bodies, query parameters and bearer tokens."""

from __future__ import annotations

import json
from typing import Any

from sessionkeeper.testing.fake_pds._errors import auth_missing, invalid_request
from sessionkeeper.testing.fake_pds._http import HttpRequest


def json_input(request: HttpRequest) -> dict[str, Any]:
    """The JSON object body of a procedure, or 400 InvalidRequest as the reference words it."""
    if not request.body:
        raise invalid_request("Request encoding (Content-Type) required but not provided")
    content_type = request.headers.get("content-type", "")
    if content_type.split(";", 1)[0].strip().lower() != "application/json":
        raise invalid_request(f"Wrong request encoding (Content-Type): {content_type}")
    try:
        body = json.loads(request.body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise invalid_request("Request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise invalid_request("Input must be an object")
    return body


def no_input(request: HttpRequest) -> None:
    """Refuse a body on a procedure that takes none, as the reference does."""
    if request.body:
        raise invalid_request("A request body was provided when none was expected")


def require_str(body: dict[str, Any], key: str) -> str:
    """A required string property of the input."""
    if key not in body:
        raise invalid_request(f'Input must have the property "{key}"')
    value = body[key]
    if not isinstance(value, str):
        raise invalid_request(f"Input/{key} must be a string")
    return value


def optional_str(body: dict[str, Any], key: str) -> str | None:
    """An optional string property of the input."""
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise invalid_request(f"Input/{key} must be a string")
    return value


def require_param(request: HttpRequest, name: str) -> str:
    """A required query parameter."""
    value = request.param(name)
    if value is None:
        raise invalid_request(f'Params must have the property "{name}"')
    return value


def int_param(request: HttpRequest, name: str, *, default: int, low: int, high: int) -> int:
    """An integer query parameter within ``low..high``."""
    raw = request.param(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise invalid_request(f"{name} must be an integer") from None
    if value < low:
        raise invalid_request(f"{name} can not be less than {low}")
    if value > high:
        raise invalid_request(f"{name} can not be greater than {high}")
    return value


def bool_param(request: HttpRequest, name: str) -> bool:
    """A ``true``/``false`` query parameter (absent means false)."""
    raw = request.param(name)
    if raw is None or raw == "false":
        return False
    if raw == "true":
        return True
    raise invalid_request(f"{name} must be a boolean")


def float_param(request: HttpRequest, name: str) -> float:
    """A required numeric query parameter."""
    raw = require_param(request, name)
    try:
        return float(raw)
    except ValueError:
        raise invalid_request(f"{name} must be a number") from None


def bearer(request: HttpRequest) -> str:
    """The bearer token, or 401 AuthMissing."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise auth_missing()
    return token.strip()
