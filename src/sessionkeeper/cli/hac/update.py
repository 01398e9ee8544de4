"""``hac update data|patches|run|log``: the system update, as hac-client-cli 0.3.2 offers it.

Plain tab-separated lines in a pipe, rich tables on a terminal, JSON with
``--json``. ``run`` follows the log until it finishes unless ``--no-follow``.
Unlike the original, the update data is read from ``/platform/init/data``
(no trailing slash, which real HAC answers with 404), so these commands work.
"""

from __future__ import annotations

import json
import sys
import time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from sessionkeeper.cli.hac import output as out
from sessionkeeper.cli.hac.context import open_client
from sessionkeeper.cli.hac.errors import CliError, reported
from sessionkeeper.cli.hac.params import (
    EndpointName,
    Environment,
    JsonOutput,
    PlainCommand,
    PlainGroup,
    Quiet,
    QuietNames,
)

if TYPE_CHECKING:
    from sessionkeeper.hac.client import HacClient
    from sessionkeeper.hac.models import ProjectData, UpdateData

app = typer.Typer(
    cls=PlainGroup,
    help="System update and initialization",
    no_args_is_help=True,
    rich_markup_mode=None,
)

Extension = Annotated[
    str | None, typer.Option("--extension", "-x", help="Extension containing patches")
]


def _is_tty() -> bool:
    return sys.stdout.isatty()


def _extension(data: UpdateData, name: str | None) -> ProjectData | None:
    if name is None:
        return data.get_patches_extension()
    found = data.get_extension(name)
    if found is None:
        raise CliError(f"Extension '{name}' not found")
    return found


@app.command("data", cls=PlainCommand)
def list_update_data(
    ctx: typer.Context,
    environment: Environment = None,
    endpoint: EndpointName = None,
    patches_only: Annotated[
        bool, typer.Option("--patches", "-p", help="Show only patches")
    ] = False,
    with_params: Annotated[
        bool, typer.Option("--with-params", "-w", help="Show only extensions with parameters")
    ] = False,
    extension: Annotated[
        str | None, typer.Option("--extension", "-x", help="Show specific extension details")
    ] = None,
    json_output: JsonOutput = False,
    quiet: QuietNames = False,
) -> None:
    """List available update data (extensions, patches, parameters)."""
    with reported(json_output=json_output):
        with open_client(ctx, environment, endpoint) as client:
            data = client.get_update_data()
        if data.is_initializing and not json_output:
            out.markup("[yellow]System is currently initializing[/yellow]")
        if extension:
            ext = _extension(data, extension)
            assert ext is not None
            if json_output:
                out.emit_json(
                    {
                        "name": ext.name,
                        "description": ext.description,
                        "parameters": [
                            {
                                "name": p.name,
                                "label": p.label,
                                "values": p.values,
                                "selected": p.selected_value,
                                "legacy": p.legacy,
                                "multi_select": p.multi_select,
                            }
                            for p in ext.parameters
                        ],
                    }
                )
            else:
                for p in ext.parameters:
                    values = ",".join(p.available_values)
                    out.line(f"{p.name}\t{p.selected_value or ''}\t{values}")
            return
        extensions = data.project_datas
        if patches_only:
            extensions = [e for e in extensions if "patch" in e.name.lower()]
        elif with_params:
            extensions = data.extensions_with_parameters
        if json_output:
            out.emit_json(
                {
                    "is_initializing": data.is_initializing,
                    "extensions": [
                        {
                            "name": e.name,
                            "description": e.description,
                            "has_parameters": e.has_parameters,
                            "parameters": [
                                {"name": p.name, "label": p.label, "selected": p.selected_value}
                                for p in e.parameters
                            ],
                        }
                        for e in extensions
                    ],
                }
            )
        elif quiet:
            for e in extensions:
                out.line(e.name)
        elif _is_tty():
            out.table(
                [
                    ("Extension", {"style": "cyan"}),
                    ("Parameters", {"justify": "right"}),
                    ("Selected Values", {}),
                ],
                [
                    [
                        e.name,
                        str(len(e.parameters)) if e.parameters else "-",
                        ", ".join(
                            f"{p.name}={p.selected_value}" for p in e.parameters if p.selected_value
                        )
                        or "-",
                    ]
                    for e in extensions
                ],
                title="Available Extensions",
            )
            out.line(f"\nTotal: {len(extensions)} extensions")
        else:
            for e in extensions:
                params = ",".join(f"{p.name}={p.selected_value}" for p in e.parameters)
                out.line(f"{e.name}\t{params}" if e.has_parameters else e.name)


@app.command("patches", cls=PlainCommand)
def list_patches(
    ctx: typer.Context,
    environment: Environment = None,
    endpoint: EndpointName = None,
    extension: Extension = None,
    json_output: JsonOutput = False,
    quiet: QuietNames = False,
) -> None:
    """List available patches from an extension ('*patches*' unless --extension)."""
    with reported(json_output=json_output):
        with open_client(ctx, environment, endpoint) as client:
            data = client.get_update_data()
        ext = _extension(data, extension)
        if ext is None:
            if json_output:
                out.emit_json({"patches": []})
            else:
                out.line("No patches extension found")
                out.line("Use --extension to specify which extension contains patches")
            return
        if json_output:
            out.emit_json(
                {
                    "extension": ext.name,
                    "patches": [
                        {
                            "name": p.name,
                            "label": p.label,
                            "selected": p.selected_value,
                            "values": p.available_values,
                        }
                        for p in ext.parameters
                    ],
                }
            )
            return
        for p in ext.parameters:
            status = "applied" if p.selected_value == "yes" else "pending"
            out.line(p.name if quiet else f"{p.name}\t{status}")


def _parameters(
    data: UpdateData, patch: list[str], extension: str | None, param: list[str]
) -> dict[str, Any]:
    """The original's ``allParameters``: selections kept, chosen patches ``yes``, others ``no``."""
    chosen: dict[str, Any] = {}
    for ext in data.project_datas:
        for p in ext.parameters:
            value = p.selected_value or (p.available_values[0] if p.available_values else None)
            if value:
                chosen[f"{ext.name}_{p.name}"] = [value]
    if patch:
        patches_ext = _extension(data, extension)
        if patches_ext is None:
            out.err("Warning: No patches extension found. Use --extension to specify.")
        else:
            chosen[f"{patches_ext.name}_sample"] = "true"
            known = {p.name for p in patches_ext.parameters}
            for name in known:
                chosen[f"{patches_ext.name}_{name}"] = ["no"]
            for name in patch:
                if name in known:
                    chosen[f"{patches_ext.name}_{name}"] = ["yes"]
                else:
                    out.err(f"Warning: Patch '{name}' not found in {patches_ext.name}")
    for item in param:
        name, sep, value = item.partition("=")
        if not sep:
            raise CliError(f"Invalid parameter format: {item} (expected name=value)")
        chosen[name] = [value]
    return chosen


def _follow_log(client: HacClient, json_output: bool, interval: float, max_wait: float) -> None:
    """Print the log as it grows until it reports completion (or ``max_wait`` passes)."""
    last = ""
    deadline = time.monotonic() + max_wait
    while True:
        log = client.get_update_log()
        current = log.log_text
        if current != last:
            if json_output:
                payload = {
                    "log": current,
                    "is_complete": log.is_complete,
                    "has_errors": log.has_errors,
                    "timestamp": time.time(),
                }
                out.line(json.dumps(payload))
            else:
                new = current[len(last) :].strip() if last else current
                if new:
                    out.line(new)
            last = current
        if log.is_complete:
            return
        if time.monotonic() >= deadline:
            out.err("Warning: Timeout waiting for update to complete")
            return
        time.sleep(interval)


Interval = Annotated[float, typer.Option("--interval", help="Seconds between log polls")]
MaxWait = Annotated[float, typer.Option("--max-wait", help="Stop following after seconds")]


@app.command("run", cls=PlainCommand)
def run_update(
    ctx: typer.Context,
    environment: Environment = None,
    endpoint: EndpointName = None,
    patch: Annotated[
        list[str] | None, typer.Option("--patch", "-p", help="Patch to run (can be repeated)")
    ] = None,
    extension: Extension = None,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", help="Parameter as ext_param=value (can be repeated)"),
    ] = None,
    drop_tables: Annotated[
        bool, typer.Option("--drop-tables", help="Drop all tables (DANGEROUS)")
    ] = False,
    clear_hmc: Annotated[bool, typer.Option("--clear-hmc", help="Clear HMC configuration")] = False,
    create_essential_data: Annotated[
        bool, typer.Option("--create-essential-data", help="Create essential data")
    ] = False,
    create_project_data: Annotated[
        bool, typer.Option("--create-project-data", help="Create project data")
    ] = False,
    localize_types: Annotated[
        bool, typer.Option("--localize-types", help="Localize types")
    ] = False,
    follow: Annotated[
        bool, typer.Option("--follow/--no-follow", "-f", help="Follow update log")
    ] = True,
    json_output: JsonOutput = False,
    quiet: Quiet = False,
    pending_patches: Annotated[
        bool,
        typer.Option("--pending-patches/--no-pending-patches", help="Include required patches"),
    ] = True,
    interval: Interval = 2.0,
    max_wait: MaxWait = 3600.0,
) -> None:
    """Execute system update (patches, essential/project data, type system update)."""
    with reported(json_output=json_output), open_client(ctx, environment, endpoint) as client:
        data = client.get_update_data()
        parameters = _parameters(data, patch or [], extension, param or [])
        if not quiet:
            out.line("Starting system update...")
            if patch:
                out.line(f"  Patches: {', '.join(patch)}")
            if drop_tables:
                out.line("  DROP TABLES ENABLED")
        result = client.execute_update(
            all_parameters=parameters,
            drop_tables=drop_tables,
            clear_hmc=clear_hmc,
            create_essential_data=create_essential_data,
            create_project_data=create_project_data,
            localize_types=localize_types,
            include_pending_patches=pending_patches,
        )
        if not result.success:
            if json_output:
                out.emit_json({"success": False, "finished": True, "log": result.log_text})
            elif result.log_html:
                out.line(result.log_text)
            raise CliError("Update failed", kind="update_failed", shown=json_output)
        if json_output:
            payload = {"success": True, "finished": result.is_finished, "log": result.log_text}
            out.emit_json(payload)
        else:
            out.line(result.log_text)
        if follow and not result.is_finished:
            if not quiet and not json_output:
                out.line("\nWaiting for update to complete...")
            _follow_log(client, json_output, interval, max_wait)


@app.command("log", cls=PlainCommand)
def show_log(
    ctx: typer.Context,
    environment: Environment = None,
    endpoint: EndpointName = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Follow log (poll for updates)")
    ] = False,
    json_output: JsonOutput = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Plain text output")] = False,
    interval: Interval = 2.0,
    max_wait: MaxWait = 3600.0,
) -> None:
    """Show update/initialization log."""
    with reported(json_output=json_output), open_client(ctx, environment, endpoint) as client:
        if follow:
            _follow_log(client, json_output, interval, max_wait)
            return
        log = client.get_update_log()
        if json_output:
            out.emit_json(
                {"log": log.log_text, "is_complete": log.is_complete, "has_errors": log.has_errors}
            )
        else:
            out.line(log.log_text)


__all__ = ["app"]
