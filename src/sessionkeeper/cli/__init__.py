"""The ``sessionkeeper`` command: one group per protocol, plus store maintenance."""

from __future__ import annotations

import logging

import typer

from sessionkeeper import __version__
from sessionkeeper.cli import atproto, hac, store

app = typer.Typer(
    name="sessionkeeper",
    help="Keep authenticated API sessions alive across runs, processes and machines.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


app.add_typer(hac.app, name="hac")
app.add_typer(atproto.app, name="atproto")
app.add_typer(store.app, name="store")


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"sessionkeeper {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log what happens (no secrets)."),
    version: bool = typer.Option(
        False, "--version", callback=_show_version, is_eager=True, help="Show the version."
    ),
) -> None:
    """Keep authenticated API sessions alive across runs, processes and machines."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


def main() -> None:
    """Entry point of the ``sessionkeeper`` console script."""
    app()
