"""How secrets are hidden: every repr, log record and error message goes through here.

Three shapes of secret, one rule each:

* a bare secret (a token, a session id, a CSRF token) shows its first
  `SECRET_PREFIX_CHARS` characters and ``...`` (`redact_secret`);
* a URL keeps its scheme, host, port and path but loses the password of its
  user part, secret query values and ``;jsessionid=`` path parameters, each
  replaced by ``***`` (`redact_url`); a password holding an unencoded
  ``#``, ``/`` or ``?`` is hidden too;
* free text (httpx/httpcore trace lines, exception messages) has every URL,
  cookie, ``Authorization``/``DPoP`` header value and session-id parameter in it
  treated as above (`redact_text`).

`RedactingFilter` applies `redact_text` to log records;
`install_log_redaction` puts it on httpx's and httpcore's loggers, whose
DEBUG traces print raw header lists and whose INFO line prints each URL.
"""

from __future__ import annotations

import logging
import re
import threading
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

#: How much of a secret may appear in logs, reprs and messages.
SECRET_PREFIX_CHARS = 6
MASK = "***"
#: Query parameters whose values are secrets.
SECRET_QUERY_PARAMS = frozenset(
    {
        "password",
        "ssl_password",
        "sentinel_password",
        "passwd",
        "token",
        "access_token",
        "refresh_token",
        "id_token",
        "code",
        "client_secret",
        "secret",
        "key",
        "api_key",
        "apikey",
        "jsessionid",
        "sig",
        "signature",
    }
)
#: Headers whose values are credentials (names in lower case).
SECRET_HEADERS = frozenset(
    {"cookie", "set-cookie", "authorization", "dpop", "x-csrf-token", "proxy-authorization"}
)
#: Cookie attributes: not secrets, shown as they are.
_COOKIE_ATTRIBUTES = frozenset(
    {"path", "domain", "expires", "max-age", "samesite", "secure", "httponly"}
)
#: httpx/httpcore loggers: DEBUG traces with header lists, an INFO line per request URL.
HTTP_LOGGERS = (
    "httpx",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.connection",
    "httpcore.proxy",
    "httpcore.socks",
)

_WEB_SCHEMES = frozenset({"http", "https", "ws", "wss"})
#: One ``host[:port]`` of a URL's authority (an IPv6 literal in brackets, or a name).
HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~%-]*)(?::([^:]*))?$")
_JSESSIONID = re.compile(r"(?i)(;jsessionid=)[^;?#/\s'\"&]*")
_URL = re.compile(r"(?i)\b[a-z][a-z0-9+.-]*://[^\s'\"<>)\]]+")
# A header as httpcore reprs it: (b'Set-Cookie', b'NAME=VALUE; Path=/'); the value is a
# bytes literal in either quote style (Python switches to "..." when the value holds ').
_BYTES = r"""b(?:'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")"""
_HEADER_TUPLE = re.compile(rf"\(\s*b['\"]([A-Za-z0-9-]+)['\"]\s*,\s*({_BYTES})\s*\)")
# A header as text, ``Authorization: Bearer abc`` or ``Cookie: a=b``.
_HEADER_LINE = re.compile(
    r"(?im)\b(cookie|set-cookie|authorization|dpop|x-csrf-token)(\s*[:=]\s*)([^\r\n]+)"
)
_PAIR = re.compile(r"([^=;,\s]+)=([^;,]*)")
_SCHEME_WORD = re.compile(r"(?i)^(bearer|dpop|basic)\s+(.+)$")


def redact_secret(secret: str | None) -> str:
    """A short, safe stand-in for a secret: its first few characters and ``...``."""
    if not secret:
        return "<none>"
    return f"{secret[:SECRET_PREFIX_CHARS]}..."


def split_authority(rest: str) -> tuple[str, str]:
    """Split what follows ``scheme://`` into the authority and the rest (path, query)."""
    end = len(rest)
    for mark in "/?":
        at = rest.find(mark)
        if at >= 0:
            end = min(end, at)
    return rest[:end], rest[end:]


def _ports_are_numbers(authority: str) -> bool:
    for node in authority.split(","):
        match = HOST.match(node)
        if match is None or (match.group(2) is not None and not match.group(2).isdigit()):
            return False
    return True


def _mask_query(query: str) -> str:
    pairs = parse_qsl(query, keep_blank_values=True)
    if not any(name.lower() in SECRET_QUERY_PARAMS for name, _ in pairs):
        return query
    return "&".join(
        f"{quote(name, safe='')}={MASK if name.lower() in SECRET_QUERY_PARAMS else quote(value)}"
        for name, value in pairs
    )


def _mask_credentials(url: str) -> str:
    """The password of the user part and secret query values hidden, even in a malformed URL.

    When a password holds an unencoded ``/``, ``?`` or ``#``, where it ends
    cannot be told for sure, so everything up to the last ``@`` is hidden; a
    fragment is hidden then too.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        base, mark, query = url.partition("?")
        return f"{base}{mark}{_mask_query(query)}" if mark else url
    rest, hash_sign, _fragment = rest.partition("#")
    fragment = f"#{MASK}" if hash_sign else ""
    authority, tail = split_authority(rest)
    if "@" in authority:
        userinfo, _, hosts = authority.rpartition("@")
        user = userinfo.split(":", 1)[0]
        authority = f"{user}:{MASK}@{hosts}" if ":" in userinfo else authority
    elif scheme.lower() not in _WEB_SCHEMES and ("@" in tail or "@" in _fragment):
        # A password with an unencoded '/', '?' or '#' pushed its '@' past the host (a
        # store URL never has an '@' in its path, a web URL may: ``/profile/@alice``).
        whole = rest + hash_sign + _fragment
        before, _, after = whole.rpartition("@")
        user = before.split(":", 1)[0] if ":" in before else ""
        hosts, after_tail = split_authority(after)
        path, question, query = after_tail.partition("?")
        return f"{scheme}://{user}:{MASK}@{hosts}{path}{question}{_mask_query(query)}"
    elif not _ports_are_numbers(authority):
        # ``redis://user:pa`` is what is left of ``redis://user:pa?ss@host`` cut at '?'.
        authority = authority.split(":", 1)[0] + f":{MASK}"
    path, question, query = tail.partition("?")
    return f"{scheme}://{authority}{path}{question}{_mask_query(query)}{fragment}"


def redact_url(url: str) -> str:
    """``url`` without its password, secret query values and ``;jsessionid=`` parameters."""
    return _JSESSIONID.sub(rf"\g<1>{MASK}", _mask_credentials(url))


def without_userinfo(url: str) -> str:
    """``url`` with no user part at all: for keys and files that must never hold one."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def origin(url: str) -> str:
    """``scheme://host[:port]`` of ``url``: what an error may name without any secret."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host  # an IPv6 address keeps its brackets
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}" if parts.scheme else redact_url(url)


def redact_cookie_pairs(value: str) -> str:
    """Shorten each ``name=value`` of a ``Cookie``/``Set-Cookie`` value, attributes kept."""

    def shorten(match: re.Match[str]) -> str:
        name, secret = match.group(1), match.group(2)
        if name.lower() in _COOKIE_ATTRIBUTES or not secret:
            return match.group(0)
        return f"{name}={redact_secret(secret)}"

    return _PAIR.sub(shorten, value)


def redact_header(name: str, value: str) -> str:
    """The loggable form of one header value: secrets shortened, anything else as is."""
    lowered = name.lower()
    if lowered in {"cookie", "set-cookie"}:
        return redact_cookie_pairs(value)
    if lowered == "location":
        return redact_url(value)
    if lowered in SECRET_HEADERS:
        scheme = _SCHEME_WORD.match(value.strip())
        if scheme:
            return f"{scheme.group(1)} {redact_secret(scheme.group(2))}"
        return redact_secret(value)
    return value


def _redact_header_tuple(match: re.Match[str]) -> str:
    name, literal = match.group(1), match.group(2)
    if name.lower() not in SECRET_HEADERS | {"location"}:
        return match.group(0)
    quote_char = literal[1]
    body = literal[2:-1]
    shown = redact_header(name, body).replace("\\", "").replace(quote_char, "")
    return f"(b'{name}', b{quote_char}{shown}{quote_char})"


def _redact_header_line(match: re.Match[str]) -> str:
    return match.group(1) + match.group(2) + redact_header(match.group(1), match.group(3))


def redact_text(text: str) -> str:
    """``text`` with every URL, cookie, credential header and session id in it hidden."""
    text = _HEADER_TUPLE.sub(_redact_header_tuple, text)
    text = _HEADER_LINE.sub(_redact_header_line, text)
    text = _URL.sub(lambda m: redact_url(m.group(0)), text)
    return _JSESSIONID.sub(rf"\g<1>{MASK}", text)


class RedactingFilter(logging.Filter):
    """Rewrites each record's message with `redact_text`; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact the record in place (its arguments are merged into the message)."""
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True  # a broken format string: leave it for logging to report
        redacted = redact_text(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


_installed: set[str] = set()
_install_guard = threading.Lock()


def install_log_redaction(names: tuple[str, ...] = HTTP_LOGGERS) -> None:
    """Attach one `RedactingFilter` to each named logger (once per process)."""
    with _install_guard:
        for name in names:
            if name not in _installed:
                logging.getLogger(name).addFilter(RedactingFilter())
                _installed.add(name)


__all__ = [
    "HTTP_LOGGERS",
    "MASK",
    "SECRET_PREFIX_CHARS",
    "RedactingFilter",
    "install_log_redaction",
    "origin",
    "redact_cookie_pairs",
    "redact_header",
    "redact_secret",
    "redact_text",
    "redact_url",
    "without_userinfo",
]
