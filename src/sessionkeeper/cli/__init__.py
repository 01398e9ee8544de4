"""The ``sessionkeeper`` command: one group per protocol, plus store maintenance.

Only the group a command line names is imported: ``sessionkeeper hac ...``
never loads the ATProto stack. ``app`` (every group) is built on first use.
"""

from __future__ import annotations

import sys
from typing import Any

import typer

from sessionkeeper import __version__

# httpx imports its own command line (click and rich) on import whenever click is
# installed, which typer and some SDKs bring along: a third of a HAC command's start.
# These commands never run httpx's CLI, so its module is marked absent here, in the
# command's process only (httpx then falls back to a stub ``httpx.main``).
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

GROUPS = ("hac", "atproto", "store")


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"sessionkeeper {__version__}")
        raise typer.Exit()


def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log what happens (no secrets)."),
    version: bool = typer.Option(
        False, "--version", callback=_show_version, is_eager=True, help="Show the version."
    ),
) -> None:
    """Keep authenticated API sessions alive across runs, processes and machines."""
    import logging

    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


def build_app(groups: tuple[str, ...] = GROUPS) -> typer.Typer:
    """The root command with the named groups registered."""
    from sessionkeeper.cli.hac.params import PlainGroup
    from sessionkeeper.cli.hoisting import HoistingGroup

    class RootGroup(HoistingGroup, PlainGroup):
        """Plain option parsing; ``-v`` accepted after the subcommand too."""

    root = typer.Typer(
        cls=RootGroup,
        name="sessionkeeper",
        help="Keep authenticated API sessions alive across runs, processes and machines.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
    )
    root.callback()(_root)
    from sessionkeeper.cli.where import where

    root.command("where")(where)
    for group in groups:
        if group == "hac":
            from sessionkeeper.cli.hac.app import app as hac_app

            root.add_typer(hac_app, name="hac")
        elif group == "atproto":
            from sessionkeeper.cli.atproto.app import app as atproto_app

            root.add_typer(atproto_app, name="atproto")
        else:
            from sessionkeeper.cli.store import app as store_app

            root.add_typer(store_app, name="store")
    return root


def _named_group(argv: list[str]) -> tuple[str, ...]:
    """The one group ``argv`` runs, or every group (for help and errors)."""
    for arg in argv:
        if not arg.startswith("-"):
            if arg == "where":
                return ()
            return (arg,) if arg in GROUPS else GROUPS
    return GROUPS


def __getattr__(name: str) -> Any:
    if name == "app":
        return build_app()
    raise AttributeError(name)


def main() -> None:
    """Entry point of the ``sessionkeeper`` console script."""
    build_app(_named_group(sys.argv[1:]))()
