"""Running a command line: click's own usage errors answer ``--json`` callers in JSON too.

A script that runs ``sessionkeeper ... --json`` reads one object on stdout
whatever happens; a misspelt option or a missing argument is reported by click
before any command runs, so it is caught here, once for both console scripts.
"""

from __future__ import annotations

import sys
from typing import Any

import typer

try:  # typer >= 0.2x carries its own click
    from typer._click.exceptions import ClickException, UsageError
except ImportError:  # pragma: no cover - typer on the click package
    from click.exceptions import ClickException, UsageError  # type: ignore[assignment]


def wants_json(args: list[str]) -> bool:
    """Whether ``--json`` is among ``args`` as an option (not after ``--``)."""
    words = args[: args.index("--")] if "--" in args else args
    return "--json" in words


def run(app: typer.Typer, prog_name: str) -> None:
    """Run ``app`` as a console script and exit with its code."""
    command: Any = typer.main.get_command(app)
    try:
        code = command.main(prog_name=prog_name, standalone_mode=False)
    except UsageError as exc:
        if wants_json(sys.argv[1:]):
            from sessionkeeper.cli.hints import json_error  # only now: it loads more

            json_error("usage", exc.format_message())
        exc.show()
        sys.exit(exc.exit_code)
    except ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except typer.Abort:
        print("Aborted!", file=sys.stderr)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


__all__ = ["run", "wants_json"]
