"""``hac config [-l] [-v] [-p] [-x] [-e ENV] [--json]``: find and inspect the config file.

hac-client-cli 0.3.2's command, fixed: the original crashes ("'EnvironmentConfig'
object has no attribute 'password'") on every view that shows an environment,
and its ``--example`` shows a schema its own loader ignores. Ours shows each
environment's endpoints and prints an example in the schema that is read.
"""

from __future__ import annotations

from typing import Annotated

import typer

from sessionkeeper.cli.hac import output as out
from sessionkeeper.cli.hac.config import HacConfig, config_path, load_config
from sessionkeeper.cli.hac.context import Options, group_options, quoted
from sessionkeeper.cli.hac.errors import CliError, reported

EXAMPLE = """\
# HAC Client Configuration
# Save to: ~/.config/hac-client/config.toml
# Or set: export HAC_CLIENT_CONFIG_PATH=/path/to/config.toml
# Passwords never go here: use HAC_PASSWORD[_<ENV>[_<ENDPOINT>]] or stdin.

# Default environment to use
default_environment = "local"

[environments.local]
default_endpoint = "hac"

[environments.local.endpoints.hac]
url = "https://localhost:9002"
ignore_ssl = true
timeout = 30

[environments.prod]
default_endpoint = "node1"

[environments.prod.endpoints.node1]
url = "https://prod-node1.example.com"
timeout = 120

[environments.prod.endpoints.node2]
url = "https://prod-node2.example.com"
timeout = 120
"""


def _issues(config: HacConfig) -> list[str]:
    issues = []
    if not config.exists:
        issues.append("Configuration file does not exist")
    if not config.environments:
        issues.append("No environments configured")
    if config.default_environment not in config.environments:
        issues.append(
            f"Default environment '{config.default_environment}' not found in configured "
            "environments"
        )
    for name, env in config.environments.items():
        if env.default_endpoint and env.default_endpoint not in env.endpoints:
            issues.append(f"Environment '{name}': default_endpoint names no endpoint")
        for ep_name, ep in env.endpoints.items():
            if not ep.url.startswith("http"):
                issues.append(
                    f"Endpoint '{name}/{ep_name}': URL should start with http:// or https://"
                )
            if ep.had_password:
                issues.append(
                    f"Endpoint '{name}/{ep_name}': a password in the config file is ignored "
                    f"(use HAC_PASSWORD_{name.upper()} or stdin)"
                )
    return issues


def config_command(
    ctx: typer.Context,
    list_environments: Annotated[
        bool, typer.Option("--list", "-l", help="List configured environments")
    ] = False,
    validate: Annotated[
        bool, typer.Option("--validate", "-v", help="Validate configuration")
    ] = False,
    show_path: Annotated[bool, typer.Option("--path", "-p", help="Show config file path")] = False,
    show_example: Annotated[
        bool, typer.Option("--example", "-x", help="Show example configuration")
    ] = False,
    environment: Annotated[
        str | None, typer.Option("--env", "-e", help="Show specific environment")
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Output as JSON")] = False,
) -> None:
    """Discover, inspect, and manage HAC client configuration."""
    with reported(json_output=json_output):
        options = group_options(ctx)
        path = config_path(options.config)
        if show_path:
            if json_output:
                out.emit_json({"config_path": str(path), "exists": path.exists()})
            else:
                out.line(f"Configuration file: {path}")
                out.line(f"Status: {'exists' if path.exists() else 'not found'}")
            return
        if show_example:
            out.line(EXAMPLE)
            return
        config = load_config(path)
        if validate:
            issues = _issues(config)
            if json_output:
                out.emit_json({"valid": not issues, "issues": issues})
            elif issues:
                out.line("Configuration has issues:\n")
                for issue in issues:
                    out.line(f"  - {issue}")
                out.line(f"\nConfiguration file: {path}")
                out.line(
                    f"Run '{options.command('config --example')}' to see example configuration"
                )
                raise typer.Exit(1)
            else:
                out.line("Configuration is valid")
                out.line(f"  - {len(config.environments)} environment(s) configured")
                out.line(f"  - Default: {config.default_environment}")
            return
        if environment:
            _show_environment(config, environment, json_output)
        elif list_environments:
            _list(config, json_output)
        else:
            _show_all(config, json_output, options)


def _marker(config: HacConfig, name: str, text: str = " (default)") -> str:
    return text if name == config.default_environment else ""


def _show_environment(config: HacConfig, name: str, json_output: bool) -> None:
    env = config.environments.get(name)
    if env is None:
        available = "".join(
            f"\n  - {other}{_marker(config, other)}" for other in config.environments
        )
        raise CliError(
            f"Environment '{name}' not found\n\nAvailable environments:{available}", kind="config"
        )
    if json_output:
        out.emit_json(env.as_json(config.default_environment))
        return
    out.line(f"Environment: {name}{_marker(config, name)}")
    for ep_name, ep in env.endpoints.items():
        default = " (default)" if ep_name == env.default_endpoint else ""
        out.line(f"  Endpoint: {ep_name}{default}")
        out.line(f"    URL: {ep.shown_url}")
        out.line(f"    Ignore SSL: {ep.ignore_ssl}")
        out.line(f"    Timeout: {ep.timeout}s")


def _list(config: HacConfig, json_output: bool) -> None:
    if json_output:
        out.emit_json(
            {"environments": list(config.environments), "default": config.default_environment}
        )
        return
    out.line("Configured environments:")
    for name in sorted(config.environments):
        out.line(f"  - {name}{_marker(config, name)}")


def _show_all(config: HacConfig, json_output: bool, options: Options) -> None:
    if json_output:
        out.emit_json(
            {
                "config_path": str(config.path),
                "default_environment": config.default_environment,
                "environments": {
                    name: {
                        "endpoints": env.endpoints_json(),
                        "default_endpoint": env.default_endpoint,
                    }
                    for name, env in config.environments.items()
                },
            }
        )
        return
    out.line(f"Configuration file: {config.path}")
    out.line(f"Status: {'exists' if config.exists else 'not found (using defaults)'}")
    out.line(f"\nDefault environment: {config.default_environment}")
    out.line(f"\nEnvironments ({len(config.environments)}):")
    for name in sorted(config.environments):
        env = config.environments[name]
        out.line(f"  {name}{_marker(config, name, ' <- default')}")
        for ep_name, ep in env.endpoints.items():
            default = " (default)" if ep_name == env.default_endpoint else ""
            ssl = "ignore" if ep.ignore_ssl else "verify"
            out.line(f"    {ep_name}{default}: {ep.shown_url} (SSL: {ssl}, timeout {ep.timeout}s)")
    out.line("\nCommands:")
    # The environment to show is one the file has (the default, else the first), so the
    # line pastes; the comments line up however long --config makes the commands.
    shown = config.default_environment
    if shown not in config.environments and config.environments:
        shown = sorted(config.environments)[0]
    commands = [
        (options.command(rest), what)
        for rest, what in (
            ("config -l", "List environments"),
            (f"config -e {quoted(shown)}", "Show environment details"),
            ("config -v", "Validate configuration"),
            ("config -x", "Show example config"),
        )
    ]
    width = max(22, *(len(command) for command, _ in commands))
    for command, what in commands:
        out.line(f"  {command:<{width}} # {what}")


__all__ = ["EXAMPLE", "config_command"]
