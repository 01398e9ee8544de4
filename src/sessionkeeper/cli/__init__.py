"""The ``sessionkeeper`` command: one group per protocol, store maintenance, and keepalive.

Only the group a command line names is imported: ``sessionkeeper hac ...``
never loads the ATProto stack, and ``sessionkeeper --help`` loads none.
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

#: The root's subcommands: the module whose ``app`` each is, and the line
#: ``sessionkeeper --help`` shows for it. Help lists them from here, so it imports no
#: group; running a subcommand imports that group's module alone.
COMMANDS: dict[str, tuple[str, str]] = {
    "hac": ("sessionkeeper.cli.hac.app", "SAP Commerce HAC client."),
    "atproto": (
        "sessionkeeper.cli.atproto.app",
        "Bluesky / ATProto sessions: log in once, refresh exactly once, call XRPC.",
    ),
    "store": (
        "sessionkeeper.cli.store",
        "Maintain session stores: migrate, prune, doctor, rekey, keygen.",
    ),
    "where": (
        "sessionkeeper.cli.where",
        "Print the store sessions are kept in, and why that one.",
    ),
    "keepalive": (
        "sessionkeeper.cli.keepalive",
        "Refresh sessions that would lapse soon; list those that need a sign-in.",
    ),
}

#: Subcommands that are one command, not a group of them.
SINGLE_COMMANDS = frozenset({"where", "keepalive"})


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


def _root_group() -> type[Any]:
    from sessionkeeper.cli.hac.params import PlainGroup
    from sessionkeeper.cli.hoisting import HoistingGroup

    class RootGroup(HoistingGroup, PlainGroup):
        """The root group: subcommands are imported when named, listed from `COMMANDS`.

        ``-v`` given after the subcommand is accepted too (see `HoistingGroup`).
        """

        def list_commands(self, ctx: Any) -> list[str]:
            """Every subcommand's name, without importing any."""
            return list(COMMANDS)

        def get_command(self, ctx: Any, cmd_name: str) -> Any:
            """Import and build the named group on first use."""
            if cmd_name not in self.commands and cmd_name in COMMANDS:
                import importlib

                sub_app = importlib.import_module(COMMANDS[cmd_name][0]).app
                build = (
                    typer.main.get_command if cmd_name in SINGLE_COMMANDS else typer.main.get_group
                )
                command = build(sub_app)
                command.name = cmd_name
                self.commands[cmd_name] = command
            return self.commands.get(cmd_name)

        def format_commands(self, ctx: Any, formatter: Any) -> None:
            """List the subcommands from their one-line help, importing none of them."""
            with formatter.section("Commands"):
                formatter.write_dl([(name, line) for name, (_, line) in COMMANDS.items()])

    return RootGroup


def build_app() -> typer.Typer:
    """The root command; each subcommand group is imported when a command line names it."""
    root = typer.Typer(
        cls=_root_group(),
        name="sessionkeeper",
        help="Keep authenticated API sessions alive across runs, processes and machines.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
    )
    root.callback()(_root)
    return root


def __getattr__(name: str) -> Any:
    if name == "app":
        return build_app()
    raise AttributeError(name)


def main() -> None:
    """Entry point of the ``sessionkeeper`` console script."""
    from sessionkeeper.cli.entry import run

    run(build_app(), "sessionkeeper")
