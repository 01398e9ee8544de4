"""Reading XRPC input: JSON bodies, query parameters and bearer tokens.

Error messages follow the reference PDS's lexicon validator word for word
(``Missing required key "password" at $``), so a client's error reporting can
be tested against the fake and behave the same against the real server.
"""

from __future__ import annotations

import json
from typing import Any

from sessionkeeper.testing.fake_pds._errors import auth_missing, invalid_request, invalid_token
from sessionkeeper.testing.fake_pds._http import HttpRequest


def _shown(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _nsid(request: HttpRequest) -> str:
    return request.path.rsplit("/", 1)[-1]


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
        raise invalid_request(f"Expected object value type (got {_shown(body)}) at $")
    return body


def no_input(request: HttpRequest) -> None:
    """Refuse a body on a procedure that takes none, as the reference does."""
    if request.body:
        raise invalid_request("A request body was provided when none was expected")


def require_str(body: dict[str, Any], key: str) -> str:
    """A required string property of the input."""
    if key not in body:
        raise invalid_request(f'Missing required key "{key}" at $')
    value = optional_str(body, key)
    if value is None:
        raise invalid_request(f"Expected string value type (got null) at $.{key}")
    return value


def optional_str(body: dict[str, Any], key: str) -> str | None:
    """An optional string property of the input."""
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise invalid_request(f"Expected string value type (got {_shown(value)}) at $.{key}")
    return value


def optional_bool(body: dict[str, Any], key: str) -> bool:
    """An optional boolean property of the input (absent means false)."""
    value = body.get(key, False)
    if not isinstance(value, bool):
        raise invalid_request(f"Expected boolean value type (got {_shown(value)}) at $.{key}")
    return value


def require_object(body: dict[str, Any], key: str) -> dict[str, Any]:
    """A required JSON object property of the input."""
    if key not in body:
        raise invalid_request(f'Missing required key "{key}" at $')
    value = body[key]
    if not isinstance(value, dict):
        raise invalid_request(f"Expected object value type (got {_shown(value)}) at $.{key}")
    return value


def require_param(request: HttpRequest, name: str) -> str:
    """A required query parameter."""
    value = request.param(name)
    if value is None:
        raise invalid_request(f'Invalid {_nsid(request)} params: Missing required key "{name}"')
    return value


def int_param(request: HttpRequest, name: str, *, default: int, low: int, high: int) -> int:
    """An integer query parameter within ``low..high``."""
    raw = request.param(name)
    if raw is None:
        return default
    prefix = f"Invalid {_nsid(request)} params"
    try:
        value = int(raw)
    except ValueError:
        raise invalid_request(
            f"{prefix}: Expected integer value type (got {_shown(raw)}) at $.{name}"
        ) from None
    if value < low:
        raise invalid_request(f"{prefix}: integer too small (minimum {low}, got {value})")
    if value > high:
        raise invalid_request(f"{prefix}: integer too big (maximum {high}, got {value})")
    return value


def bool_param(request: HttpRequest, name: str) -> bool:
    """A ``true``/``false`` query parameter (absent means false)."""
    raw = request.param(name)
    if raw is None or raw == "false":
        return False
    if raw == "true":
        return True
    raise invalid_request(
        f"Invalid {_nsid(request)} params: "
        f"Expected boolean value type (got {_shown(raw)}) at $.{name}"
    )


def float_param(request: HttpRequest, name: str) -> float:
    """A required numeric query parameter."""
    raw = require_param(request, name)
    try:
        return float(raw)
    except ValueError:
        raise invalid_request(f"{name} must be a number") from None


def bearer(request: HttpRequest) -> str:
    """The bearer token: no header is 401 AuthMissing, any other scheme 400 InvalidToken."""
    header = request.headers.get("authorization")
    if header is None:
        raise auth_missing()
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise invalid_token("Unexpected authorization type")
    if not token.strip():
        raise invalid_token("Malformed authorization header")
    return token.strip()
