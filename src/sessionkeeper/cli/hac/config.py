"""The HAC CLI's TOML configuration, in hac-client-cli 0.3.2's schema and lookup.

```toml
default_environment = "local"

[environments.local]
default_endpoint = "hac"  # optional; else the only endpoint

[environments.local.endpoints.hac]
url = "https://localhost:9002"
ignore_ssl = true
timeout = 30
username = "admin"        # optional (ours); never a password
```

The path is ``--config``, else ``$HAC_CONFIG`` or the original CLI's
``$HAC_CLIENT_CONFIG_PATH``, else ``$XDG_CONFIG_HOME/hac-client/config.toml``,
else ``~/.config/hac-client/config.toml``. Like the original, a missing file
means one environment ``local`` with endpoint ``hac`` at ``https://localhost:9002``;
environments without endpoints are placeholders and are skipped.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sessionkeeper.errors import SessionkeeperError
from sessionkeeper.redaction import redact_url

CONFIG_ENV = "HAC_CONFIG"
#: The original hac-client CLI's variable for the same path.
ORIGINAL_CONFIG_ENV = "HAC_CLIENT_CONFIG_PATH"
DEFAULT_ENVIRONMENT = "local"
DEFAULT_ENDPOINT = "hac"
#: What the original CLI assumes when there is no config file.
MISSING_FILE_URL = "https://localhost:9002"


class ConfigError(SessionkeeperError, ValueError):
    """A configuration file or choice that cannot be used; the message names the fix."""


class UnknownEnvironmentError(ConfigError):
    """The environment asked for (or the file's default) is not in the configuration.

    ``name`` is the missing one, ``available`` the configured ones, and
    ``from_default`` says it came from ``default_environment`` rather than the
    command line, so the fix is a new default rather than a spelling.
    """

    def __init__(self, name: str, available: list[str], *, from_default: bool) -> None:
        configured = ", ".join(available) if available else "none"
        where = " (the file's default_environment)" if from_default else ""
        super().__init__(
            f"Environment '{name}' not found in configuration{where}; configured: {configured}"
        )
        self.name = name
        self.available = available
        self.from_default = from_default


def shown_url(url: str) -> str:
    """``url`` fit to print: ``https://admin:***@host`` (outputs land in CI logs).

    The user stays (it tells which login the URL carries); the password, secret
    query values and session ids go. A URL written without a scheme is masked too.
    """
    if "://" in url:
        return redact_url(url)
    return redact_url(f"http://{url}").removeprefix("http://")


@dataclass(frozen=True)
class Endpoint:
    """One HAC endpoint (node) of an environment."""

    url: str
    ignore_ssl: bool = False
    timeout: int = 30
    username: str | None = None
    #: The file held a ``password`` here; it is ignored (``config -v`` says so).
    had_password: bool = False

    @property
    def shown_url(self) -> str:
        """The URL as every output shows it: a password in its user part as ``***``."""
        return shown_url(self.url)

    def as_json(self) -> dict[str, Any]:
        """The endpoint as the ``--json`` outputs show it (hac-client-cli's fields)."""
        return {"url": self.shown_url, "ignore_ssl": self.ignore_ssl, "timeout": self.timeout}


@dataclass(frozen=True)
class Environment:
    """An environment: named endpoints and the one used by default."""

    name: str
    endpoints: dict[str, Endpoint]
    default_endpoint: str | None = None

    def endpoints_json(self) -> dict[str, dict[str, Any]]:
        """Each endpoint's `Endpoint.as_json`, by name."""
        return {name: endpoint.as_json() for name, endpoint in self.endpoints.items()}

    def as_json(self, default_environment: str | None) -> dict[str, Any]:
        """The environment as ``env show --json`` and ``config -e ENV --json`` show it."""
        return {
            "name": self.name,
            "endpoints": self.endpoints_json(),
            "default_endpoint": self.default_endpoint,
            "is_default": self.name == default_environment,
        }


@dataclass(frozen=True)
class HacConfig:
    """Environments and their endpoints, as read from the TOML file."""

    path: Path
    exists: bool = True
    default_environment: str = DEFAULT_ENVIRONMENT
    environments: dict[str, Environment] = field(default_factory=dict)

    def endpoint(
        self, environment: str | None, endpoint: str | None = None
    ) -> tuple[str, str, Endpoint]:
        """``(environment, endpoint name, Endpoint)`` chosen the original CLI's way.

        The endpoint is ``endpoint``, else the environment's ``default_endpoint``,
        else its only endpoint; anything else raises `ConfigError`.
        """
        env_name = environment or self.default_environment
        env = self.environments.get(env_name)
        if env is None:
            raise UnknownEnvironmentError(
                env_name, sorted(self.environments), from_default=not environment
            )
        name = endpoint or env.default_endpoint
        if not name:
            if len(env.endpoints) != 1:
                raise ConfigError(
                    f"Environment '{env_name}' has multiple endpoints but no default set. "
                    "Please specify --endpoint or set default_endpoint in config."
                )
            name = next(iter(env.endpoints))
        found = env.endpoints.get(name)
        if found is None:
            raise ConfigError(
                f"Endpoint '{name}' not found in environment '{env_name}'. "
                f"Available endpoints: {', '.join(env.endpoints)}"
            )
        return env_name, name, found


def config_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The configuration file to read: ``explicit``, ``$HAC_CONFIG`` or the default path."""
    if explicit:
        return Path(explicit).expanduser()
    for variable in (CONFIG_ENV, ORIGINAL_CONFIG_ENV):
        from_env = os.environ.get(variable)
        if from_env:
            return Path(from_env).expanduser()
    xdg = os.environ.get("XDG_CONFIG_HOME")
    config_home = Path(xdg) if xdg else Path.home() / ".config"
    return config_home / "hac-client" / "config.toml"


def _endpoint(where: str, raw: dict[str, Any]) -> Endpoint:
    url = raw.get("url")
    if url is None:
        raise ConfigError(f"Endpoint '{where}' missing required field 'url'")
    if not isinstance(url, str) or not url:
        raise ConfigError(f"Endpoint '{where}': url must be a non-empty string")
    ignore_ssl = raw.get("ignore_ssl", False)
    timeout = raw.get("timeout", 30)
    username = raw.get("username")
    if not isinstance(ignore_ssl, bool):
        raise ConfigError(f"Endpoint '{where}': ignore_ssl must be true or false")
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise ConfigError(f"Endpoint '{where}': timeout must be a positive number of seconds")
    if username is not None and not isinstance(username, str):
        raise ConfigError(f"Endpoint '{where}': username must be a string")
    return Endpoint(url, ignore_ssl, int(timeout), username, had_password="password" in raw)


def parse_config(data: dict[str, Any], path: Path) -> HacConfig:
    """Validate the parsed TOML ``data`` read from ``path``."""
    default = data.get("default_environment", DEFAULT_ENVIRONMENT)
    if not isinstance(default, str) or not default:
        raise ConfigError(f"{path}: default_environment must be a non-empty string")
    raw_envs = data.get("environments", {})
    if not isinstance(raw_envs, dict):
        raise ConfigError(f"{path}: [environments] must be a table")
    environments: dict[str, Environment] = {}
    for env_name, env in raw_envs.items():
        raw_endpoints = env.get("endpoints") if isinstance(env, dict) else None
        if not isinstance(raw_endpoints, dict) or not raw_endpoints:
            continue  # a placeholder, as the original treats it
        endpoints = {
            name: _endpoint(f"{env_name}/{name}", raw)
            for name, raw in raw_endpoints.items()
            if isinstance(raw, dict)
        }
        default_endpoint = env.get("default_endpoint")
        if default_endpoint is not None and not isinstance(default_endpoint, str):
            raise ConfigError(f"{path}: environments.{env_name}.default_endpoint must be a string")
        environments[env_name] = Environment(env_name, endpoints, default_endpoint or None)
    return HacConfig(path=path, default_environment=default, environments=environments)


def read_toml(path: Path) -> dict[str, Any] | None:
    """The parsed file, or ``None`` when it does not exist; `ConfigError` if unreadable."""
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        return None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc


def load_config(path: Path) -> HacConfig:
    """Read and validate ``path``; a missing file gives the original's ``local`` default."""
    data = read_toml(path)
    if data is None:
        local = Environment(
            DEFAULT_ENVIRONMENT,
            {DEFAULT_ENDPOINT: Endpoint(MISSING_FILE_URL, ignore_ssl=True)},
            DEFAULT_ENDPOINT,
        )
        return HacConfig(path=path, exists=False, environments={DEFAULT_ENVIRONMENT: local})
    return parse_config(data, path)


__all__ = [
    "CONFIG_ENV",
    "DEFAULT_ENDPOINT",
    "DEFAULT_ENVIRONMENT",
    "MISSING_FILE_URL",
    "ORIGINAL_CONFIG_ENV",
    "ConfigError",
    "Endpoint",
    "Environment",
    "HacConfig",
    "UnknownEnvironmentError",
    "config_path",
    "load_config",
    "parse_config",
    "read_toml",
    "shown_url",
]
