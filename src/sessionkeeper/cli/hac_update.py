"""``hac update data|patches|run|log``: the system update, with a live log."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from sessionkeeper.cli import hac_context as hc
from sessionkeeper.cli import hac_output as out
from sessionkeeper.hac.client import HacClient

app = typer.Typer(help="System update: data, patches, run, log.", no_args_is_help=True)


@app.command("data")
def update_data(
    ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False
) -> None:
    """Show the extensions and parameters the update offers."""
    with hc.failures(), hc.open_client(ctx) as (client, _):
        data = client.get_update_data()
    if as_json:
        from dataclasses import asdict

        out.emit_json(asdict(data))
    else:
        out.stdout.print(out.update_data_table(data))


@app.command("patches")
def update_patches(
    ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False
) -> None:
    """Show pending system patches."""
    with hc.failures(), hc.open_client(ctx) as (client, _):
        patches = client.get_pending_patches()
    if as_json:
        out.emit_json(patches)
    else:
        out.stdout.print(out.patches_table(patches))


def _parse_patches(values: list[str]) -> dict[str, str]:
    patches = {}
    for value in values:
        name, sep, choice = value.partition("=")
        if not sep or not name:
            raise hc.UsageError(f"--patch expects NAME=VALUE, got {value!r}")
        patches[name] = choice
    return patches


def _follow_log(client: HacClient, interval: float, max_wait: float) -> bool:
    """Print the update log as it grows until it reports completion; True if it did."""
    shown = ""
    deadline = time.monotonic() + max_wait
    with out.stderr.status("System update running...", spinner="dots") as status:
        while True:
            log = client.get_update_log()
            text = log.log_text
            if text.startswith(shown) and len(text) > len(shown):
                out.stdout.out(text[len(shown) :].strip("\n"), highlight=False)
            elif not text.startswith(shown):
                out.stdout.out(text, highlight=False)
            shown = text
            if log.is_complete:
                return True
            if time.monotonic() >= deadline:
                return False
            status.update(f"System update running... ({len(text.splitlines())} log lines)")
            time.sleep(interval)


@app.command("run")
def update_run(
    ctx: typer.Context,
    patch: Annotated[
        list[str] | None, typer.Option("--patch", help="NAME=VALUE (repeatable).")
    ] = None,
    essential_data: Annotated[bool, typer.Option("--essential-data")] = False,
    project_data: Annotated[bool, typer.Option("--project-data")] = False,
    localize_types: Annotated[bool, typer.Option("--localize-types")] = False,
    clear_hmc: Annotated[bool, typer.Option("--clear-hmc")] = False,
    pending_patches: Annotated[
        bool,
        typer.Option("--pending-patches/--no-pending-patches", help="Include required patches."),
    ] = True,
    follow: Annotated[
        bool, typer.Option("--follow", help="Show the log until it finishes.")
    ] = False,
    interval: Annotated[float, typer.Option("--interval", help="Seconds between log polls.")] = 1.0,
    max_wait: Annotated[
        float, typer.Option("--max-wait", help="Give up following after seconds.")
    ] = 3600.0,
) -> None:
    """Run a system update (initMethod UPDATE)."""
    with hc.failures(), hc.open_client(ctx) as (client, _):
        result = client.execute_update(
            patches=_parse_patches(patch or []),
            create_essential_data=essential_data,
            create_project_data=project_data,
            localize_types=localize_types,
            clear_hmc=clear_hmc,
            include_pending_patches=pending_patches,
        )
        if not result.success:
            out.error("HAC did not start the update (is one already running?)")
            raise typer.Exit(hc.EXIT_FAILED)
        if not follow:
            out.emit_text(result.log_text)
            return
        if not _follow_log(client, interval, max_wait):
            out.error(f"the update did not finish within {max_wait:g} s")
            raise typer.Exit(hc.EXIT_FAILED)


@app.command("log")
def update_log(
    ctx: typer.Context,
    follow: Annotated[
        bool, typer.Option("--follow", help="Keep showing until it finishes.")
    ] = False,
    interval: Annotated[float, typer.Option("--interval", help="Seconds between polls.")] = 1.0,
    max_wait: Annotated[float, typer.Option("--max-wait", help="Give up after seconds.")] = 3600.0,
) -> None:
    """Show the update/initialization log."""
    with hc.failures(), hc.open_client(ctx) as (client, _):
        if not follow:
            out.emit_text(client.get_update_log().log_text)
            return
        if not _follow_log(client, interval, max_wait):
            out.error(f"the update did not finish within {max_wait:g} s")
            raise typer.Exit(hc.EXIT_FAILED)


__all__ = ["app"]
