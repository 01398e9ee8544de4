"""``hac env list|show|add|remove|set-default`` and ``hac endpoint ...``: the config file.

Output and messages are hac-client-cli 0.3.2's. Unlike it, both groups read
the same file (``env`` there ignores ``HAC_CLIENT_CONFIG_PATH``), errors go to
stderr, and the file is replaced atomically.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from sessionkeeper.cli.hac import output as out
from sessionkeeper.cli.hac.config import ConfigError, Environment, config_path, parse_config
from sessionkeeper.cli.hac.config_edit import ConfigFile
from sessionkeeper.cli.hac.context import group_options, quoted
from sessionkeeper.cli.hac.errors import CliError, reported
from sessionkeeper.cli.hac.params import EnvironmentArgument as EnvName
from sessionkeeper.cli.hac.params import JsonOutput, PlainCommand, PlainGroup, QuietNames

env_app = typer.Typer(
    cls=PlainGroup, help="Manage HAC environments", no_args_is_help=True, rich_markup_mode=None
)
endpoint_app = typer.Typer(
    cls=PlainGroup, help="Manage HAC endpoints", no_args_is_help=True, rich_markup_mode=None
)

Format = Annotated[str, typer.Option("--format", "-f", help="Output format: table, json")]
NoHeaders = Annotated[bool, typer.Option("--no-headers", help="Suppress column headers")]
EndpointArg = Annotated[str, typer.Argument(help="Endpoint name")]


def _done(json_output: bool, payload: dict[str, Any], text: str) -> None:
    """An edit's outcome: ``payload`` as JSON with ``--json``, else the original's line."""
    if json_output:
        out.emit_json(payload)
    else:
        out.line(text)


def _file(ctx: typer.Context) -> ConfigFile:
    return ConfigFile(config_path(group_options(ctx).config))


def _all_environments(file: ConfigFile) -> tuple[list[Environment], str | None]:
    """Every environment, placeholders included, sorted by name; and the default."""
    parsed = parse_config(file.data, file.path)
    environments = []
    for name in sorted(file.environments):
        env = parsed.environments.get(name)
        raw = file.environments[name]
        default_ep = raw.get("default_endpoint") if isinstance(raw, dict) else None
        environments.append(env or Environment(name, {}, default_ep))
    return environments, file.data.get("default_environment")


@env_app.command("list", cls=PlainCommand)
def list_environments(
    ctx: typer.Context,
    format: Format = "table",
    no_headers: NoHeaders = False,
    quiet: QuietNames = False,
) -> None:
    """List all configured environments."""
    with reported(json_output=format == "json"):
        environments, default = _all_environments(_file(ctx))
        if not environments:
            if format == "json":
                out.line("[]")
                return
            options = group_options(ctx)
            out.markup("[yellow]No environments configured[/yellow]")
            out.markup("\nAdd an environment with endpoints:")
            out.markup(f"  {options.command('env add local')}")
            out.markup(
                f"  {options.command('endpoint add local hac --url https://localhost:9002')}"
            )
            return
        if format == "json":
            out.emit_json([env.as_json(default) for env in environments])
        elif quiet:
            for env in environments:
                out.line(env.name)
        else:
            out.table(
                [
                    ("NAME", {"style": "cyan"}),
                    ("ENDPOINTS", {"justify": "right"}),
                    ("DEFAULT-ENDPOINT", {}),
                    ("DEFAULT", {"justify": "center"}),
                ],
                [
                    [
                        env.name,
                        str(len(env.endpoints)),
                        env.default_endpoint or "-",
                        "✓" if env.name == default else "",
                    ]
                    for env in environments
                ],
                show_header=not no_headers,
            )


def _environment(file: ConfigFile, name: str) -> tuple[Environment, str | None]:
    environments, default = _all_environments(file)
    for env in environments:
        if env.name == name:
            return env, default
    raise CliError(f"Environment '{name}' not found", kind="config")


@env_app.command("show", cls=PlainCommand)
def show_environment(
    ctx: typer.Context,
    name: EnvName,
    json_output: Annotated[bool, typer.Option("--json", help="Output as JSON")] = False,
) -> None:
    """Show details of a specific environment with all endpoints."""
    with reported(json_output=json_output):
        options = group_options(ctx)
        env, default = _environment(_file(ctx), name)
        if json_output:
            out.emit_json(env.as_json(default))
            return
        out.line(f"Environment: {env.name}{' (default)' if env.name == default else ''}")
        out.line()
        if not env.endpoints:
            out.line("  No endpoints configured")
            added = options.command(f"endpoint add {quoted(env.name)} hac --url https://...")
            out.line(f"\n  Add an endpoint: {added}")
            return
        out.line(f"  Endpoints ({len(env.endpoints)}):")
        out.line()
        for ep_name, ep in sorted(env.endpoints.items()):
            marker = " (default)" if ep_name == env.default_endpoint else ""
            out.line(f"    {ep_name}{marker}")
            out.line(f"      URL:        {ep.shown_url}")
            out.line(f"      Ignore SSL: {ep.ignore_ssl}")
            out.line(f"      Timeout:    {ep.timeout}s")
            out.line()
        chosen = "" if env.default_endpoint else " --endpoint <endpoint-name>"
        start = options.command(f"session start {quoted(env.name)}{chosen} --username <user>")
        out.line(f"  Start session: {start}")


@env_app.command("add", cls=PlainCommand)
def add_environment(
    ctx: typer.Context,
    name: EnvName,
    set_default: Annotated[
        bool, typer.Option("--set-default", "-d", help="Set as default environment")
    ] = False,
    json_output: JsonOutput = False,
) -> None:
    """Add a new environment (add endpoints separately with 'hac endpoint add')."""
    with reported(json_output=json_output):
        file = _file(ctx)
        file.add_environment(name, set_default=set_default)
        file.save()
        if json_output:
            out.emit_json({"added": name, "default_environment": file.data["default_environment"]})
            return
        out.line(f"Environment '{name}' added{' (set as default)' if set_default else ''}")
        out.line("\nNext: Add endpoints to this environment")
        options = group_options(ctx)
        out.line(
            f"  {options.command(f'endpoint add {quoted(name)} <endpoint-name> --url https://...')}"
        )


@env_app.command("remove", cls=PlainCommand)
def remove_environment(ctx: typer.Context, name: EnvName, json_output: JsonOutput = False) -> None:
    """Remove an environment."""
    with reported(json_output=json_output):
        file = _file(ctx)
        file.remove_environment(name)
        file.save()
        _done(json_output, {"removed": name}, f"Environment '{name}' removed")


@env_app.command("set-default", cls=PlainCommand)
def set_default_environment(
    ctx: typer.Context, name: EnvName, json_output: JsonOutput = False
) -> None:
    """Set the default environment."""
    with reported(json_output=json_output):
        file = _file(ctx)
        file.set_default_environment(name)
        file.save()
        _done(json_output, {"default_environment": name}, f"Default environment set to '{name}'")


@endpoint_app.command("list", cls=PlainCommand)
def list_endpoints(
    ctx: typer.Context,
    environment: EnvName,
    format: Format = "table",
    no_headers: NoHeaders = False,
    quiet: QuietNames = False,
) -> None:
    """List all endpoints in an environment."""
    with reported(json_output=format == "json"):
        env, _ = _environment(_file(ctx), environment)
        endpoints = sorted(env.endpoints.items())
        if not endpoints:
            if format == "json":
                out.line("[]")
            else:
                out.markup(
                    f"[yellow]No endpoints configured for environment '{environment}'[/yellow]"
                )
            return
        if format == "json":
            out.emit_json(
                [
                    {"name": name, **ep.as_json(), "is_default": name == env.default_endpoint}
                    for name, ep in endpoints
                ]
            )
        elif quiet:
            for name, _ep in endpoints:
                out.line(name)
        else:
            out.table(
                [
                    ("NAME", {"style": "cyan"}),
                    ("URL", {}),
                    ("SSL", {}),
                    ("TIMEOUT", {"justify": "right"}),
                    ("DEFAULT", {"justify": "center"}),
                ],
                [
                    [
                        name,
                        ep.shown_url,
                        "[yellow]ignore[/yellow]" if ep.ignore_ssl else "[green]verify[/green]",
                        f"{ep.timeout}s",
                        "✓" if name == env.default_endpoint else "",
                    ]
                    for name, ep in endpoints
                ],
                show_header=not no_headers,
            )


@endpoint_app.command("show", cls=PlainCommand)
def show_endpoint(
    ctx: typer.Context,
    environment: EnvName,
    endpoint: EndpointArg,
    json_output: Annotated[bool, typer.Option("--json", help="Output as JSON")] = False,
) -> None:
    """Show details of a specific endpoint."""
    with reported(json_output=json_output):
        env, _ = _environment(_file(ctx), environment)
        ep = env.endpoints.get(endpoint)
        if ep is None:
            raise ConfigError(f"Endpoint '{endpoint}' not found in environment '{environment}'")
        if json_output:
            out.emit_json(
                {
                    "environment": environment,
                    "name": endpoint,
                    **ep.as_json(),
                    "is_default": endpoint == env.default_endpoint,
                }
            )
            return
        out.line(f"Endpoint: {environment}/{endpoint}")
        if endpoint == env.default_endpoint:
            out.line("Status: default")
        out.line()
        out.line(f"URL:        {ep.shown_url}")
        out.line(f"Ignore SSL: {ep.ignore_ssl}")
        out.line(f"Timeout:    {ep.timeout}s")


@endpoint_app.command("add", cls=PlainCommand)
def add_endpoint(
    ctx: typer.Context,
    environment: EnvName,
    endpoint: EndpointArg,
    url: Annotated[str, typer.Option("--url", "-u", help="HAC base URL")],
    ignore_ssl: Annotated[
        bool, typer.Option("--ignore-ssl", help="Ignore SSL certificate errors")
    ] = False,
    timeout: Annotated[int, typer.Option("--timeout", help="HTTP timeout in seconds")] = 30,
    set_default: Annotated[
        bool, typer.Option("--set-default", help="Set as default endpoint")
    ] = False,
    json_output: JsonOutput = False,
) -> None:
    """Add a new endpoint to an environment."""
    with reported(json_output=json_output):
        file = _file(ctx)
        file.add_endpoint(
            environment,
            endpoint,
            url,
            ignore_ssl=ignore_ssl,
            timeout=timeout,
            set_default=set_default,
        )
        file.save()
        if json_output:
            default = file.environment(environment).get("default_endpoint")
            out.emit_json(
                {"environment": environment, "added": endpoint, "default_endpoint": default}
            )
            return
        marker = " (set as default)" if set_default else ""
        out.line(f"Added endpoint '{endpoint}' to environment '{environment}'{marker}")
        start = group_options(ctx).command(
            f"session start {quoted(environment)} --endpoint {quoted(endpoint)} --username <user>"
        )
        out.line(f"\nStart session: {start}")


@endpoint_app.command("update", cls=PlainCommand)
def update_endpoint(
    ctx: typer.Context,
    environment: EnvName,
    endpoint: EndpointArg,
    url: Annotated[str | None, typer.Option("--url", "-u", help="HAC base URL")] = None,
    ignore_ssl: Annotated[
        bool | None, typer.Option("--ignore-ssl/--no-ignore-ssl", help="Ignore SSL errors")
    ] = None,
    timeout: Annotated[
        int | None, typer.Option("--timeout", help="HTTP timeout in seconds")
    ] = None,
    json_output: JsonOutput = False,
) -> None:
    """Update an existing endpoint."""
    with reported(json_output=json_output):
        file = _file(ctx)
        file.update_endpoint(environment, endpoint, url=url, ignore_ssl=ignore_ssl, timeout=timeout)
        file.save()
        _done(
            json_output,
            {"environment": environment, "updated": endpoint},
            f"Updated endpoint '{endpoint}' in environment '{environment}'",
        )


@endpoint_app.command("remove", cls=PlainCommand)
def remove_endpoint(
    ctx: typer.Context,
    environment: EnvName,
    endpoint: EndpointArg,
    json_output: JsonOutput = False,
) -> None:
    """Remove an endpoint from an environment."""
    with reported(json_output=json_output):
        file = _file(ctx)
        file.remove_endpoint(environment, endpoint)
        file.save()
        _done(
            json_output,
            {"environment": environment, "removed": endpoint},
            f"Removed endpoint '{endpoint}' from environment '{environment}'",
        )


@endpoint_app.command("set-default", cls=PlainCommand)
def set_default_endpoint(
    ctx: typer.Context,
    environment: EnvName,
    endpoint: Annotated[str, typer.Argument(help="Endpoint name to set as default")],
    json_output: JsonOutput = False,
) -> None:
    """Set the default endpoint for an environment."""
    with reported(json_output=json_output):
        file = _file(ctx)
        file.set_default_endpoint(environment, endpoint)
        file.save()
        _done(
            json_output,
            {"environment": environment, "default_endpoint": endpoint},
            f"Set '{endpoint}' as default endpoint for environment '{environment}'",
        )


__all__ = ["endpoint_app", "env_app"]
