"""How a ``hac`` command fails: ``ERROR: ...`` on stderr and exit 1, as hac-client-cli does.

With ``--json`` the failure is also one object on stdout, ``{"error": KIND,
"message": TEXT}``, so a script that parses stdout sees every outcome. Library
errors are recognised without importing the library up front: the classes are
looked up only once something went wrong.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import typer

from sessionkeeper.errors import SessionkeeperError

EXIT_FAILED = 1
EXIT_USAGE = 2


class CliError(SessionkeeperError):
    """A failure to report as ``ERROR: message``, with ``code`` as exit code.

    ``kind`` is the ``error`` of the ``--json`` object; ``shown`` says the
    command already printed its JSON result (a failed script), so no second
    object follows it.
    """

    def __init__(
        self, message: str, code: int = EXIT_FAILED, *, kind: str | None = None, shown: bool = False
    ) -> None:
        super().__init__(message)
        self.code = code
        self.kind = kind or ("usage" if code == EXIT_USAGE else "failed")
        self.shown = shown


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _tls_hint(exc: BaseException) -> str:
    """What to try when TLS itself failed: plain HTTP, or the certificate check."""
    import ssl  # only on this path: ``hac --help`` need not load it

    for cause in _causes(exc):
        if isinstance(cause, ssl.SSLCertVerificationError):
            return (
                "\nhint: the server's certificate is not trusted; for a test system give "
                "--ignore-ssl before the subcommand (or ignore_ssl = true in the config)"
            )
    text = " ".join(str(cause) for cause in _causes(exc)).upper()
    if any(sign in text for sign in ("WRONG_VERSION_NUMBER", "RECORD_LAYER", "RECORD LAYER")):
        return (
            "\nhint: the server did not answer in TLS; if it speaks plain HTTP, write "
            "its URL with http:// instead of https://"
        )
    return ""


def _classify(exc: Exception) -> tuple[str, str] | None:
    """``(kind, message)`` of an expected library error, else ``None`` (a bug: let it raise)."""
    from sessionkeeper.cli.hac.config import ConfigError
    from sessionkeeper.cli.hac.credentials import CredentialError
    from sessionkeeper.hac.errors import HacAuthenticationError, HacClientError
    from sessionkeeper.stores.errors import StoreError

    message = str(exc)
    if isinstance(exc, HacAuthenticationError):
        return "authentication", message
    if isinstance(exc, HacClientError):
        import httpx

        if any(isinstance(cause, httpx.TransportError) for cause in _causes(exc)):
            return "connection", message + _tls_hint(exc)
        return "hac", message
    if isinstance(exc, ConfigError):
        return "config", message
    if isinstance(exc, StoreError):
        return "store", message
    if isinstance(exc, CredentialError):
        return "credentials", message
    if isinstance(exc, OSError | ValueError):
        return "failed", message
    return None


def _fail(kind: str, message: str, code: int, *, json_output: bool) -> typer.Exit:
    if json_output:
        import json

        sys.stdout.write(json.dumps({"error": kind, "message": message}, indent=2) + "\n")
    sys.stderr.write(f"ERROR: {message}\n")
    return typer.Exit(code)


@contextmanager
def reported(*, json_output: bool = False) -> Iterator[None]:
    """Turn errors into ``ERROR: ...`` on stderr and exit code 1 (or the CliError's code).

    With ``json_output`` the same failure is also ``{"error", "message"}`` on stdout.
    """
    try:
        yield
    except CliError as exc:
        raise _fail(
            exc.kind, str(exc), exc.code, json_output=json_output and not exc.shown
        ) from None
    except (typer.Exit, typer.Abort, KeyboardInterrupt):
        raise
    except Exception as exc:
        classified = _classify(exc)
        if classified is None:
            raise
        raise _fail(*classified, EXIT_FAILED, json_output=json_output) from None


__all__ = ["EXIT_FAILED", "EXIT_USAGE", "CliError", "reported"]
