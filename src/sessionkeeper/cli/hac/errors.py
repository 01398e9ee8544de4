"""How a ``hac`` command fails: ``ERROR: ...`` on stderr and exit 1, as hac-client-cli does.

Library errors are recognised without importing the library up front: the
classes are looked up only once something went wrong.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import typer

from sessionkeeper.errors import SessionkeeperError

EXIT_FAILED = 1


class CliError(SessionkeeperError):
    """A failure to report as ``ERROR: message``, with ``code`` as exit code."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code


def _expected(exc: Exception) -> bool:
    from sessionkeeper.cli.hac.credentials import CredentialError
    from sessionkeeper.hac.errors import HacClientError
    from sessionkeeper.stores.errors import StoreError

    return isinstance(exc, HacClientError | StoreError | CredentialError | OSError | ValueError)


@contextmanager
def reported() -> Iterator[None]:
    """Turn errors into ``ERROR: ...`` on stderr and exit code 1 (or the CliError's code)."""
    try:
        yield
    except CliError as exc:
        sys.stderr.write(f"ERROR: {exc}\n")
        raise typer.Exit(exc.code) from None
    except (typer.Exit, typer.Abort, KeyboardInterrupt):
        raise
    except Exception as exc:
        if not _expected(exc):
            raise
        sys.stderr.write(f"ERROR: {exc}\n")
        raise typer.Exit(EXIT_FAILED) from None


__all__ = ["EXIT_FAILED", "CliError", "reported"]
