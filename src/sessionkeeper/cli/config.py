"""The HAC CLI's TOML configuration (the original hac-client CLI's schema).

```toml
default_environment = "local"

[environments.local]
default_endpoint = "hac"  # optional; else "hac", else the first endpoint

[environments.local.endpoints.hac]
url = "https://localhost:9002"
ignore_ssl = true
timeout = 30
username = "admin"        # optional; never a password
```

The path is ``--config``, else ``$HAC_CONFIG`` or the original CLI's
``$HAC_CLIENT_CONFIG_PATH``, else ``$XDG_CONFIG_HOME/hac-client/config.toml``,
else ``~/.config/hac-client/config.toml``. A missing file is an empty configuration.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CONFIG_ENV = "HAC_CONFIG"
#: The original hac-client CLI's variable for the same path.
ORIGINAL_CONFIG_ENV = "HAC_CLIENT_CONFIG_PATH"
DEFAULT_ENVIRONMENT = "local"
DEFAULT_ENDPOINT = "hac"


class ConfigError(ValueError):
    """A configuration file or choice that cannot be used; the message names the fix."""


@dataclass(frozen=True)
class Endpoint:
    """One HAC endpoint of an environment."""

    url: str
    ignore_ssl: bool = False
    timeout: int = 30
    username: str | None = None


@dataclass(frozen=True)
class HacConfig:
    """Environments and their endpoints, as read from the TOML file."""

    path: Path
    default_environment: str = DEFAULT_ENVIRONMENT
    environments: dict[str, dict[str, Endpoint]] = field(default_factory=dict)
    #: ``default_endpoint`` of the environments that name one.
    default_endpoints: dict[str, str] = field(default_factory=dict)

    def endpoint(self, environment: str, endpoint: str | None = None) -> tuple[str, Endpoint]:
        """Return ``(endpoint name, Endpoint)`` of ``environment``; raise :class:`ConfigError`."""
        endpoints = self.environments.get(environment)
        if endpoints is None:
            known = ", ".join(sorted(self.environments)) or "none"
            raise ConfigError(
                f"environment {environment!r} is not in {self.path} (known: {known}); "
                "add it or pass --url"
            )
        if endpoint is None:
            endpoint = self.default_endpoints.get(environment)
        if endpoint is None:
            endpoint = DEFAULT_ENDPOINT if DEFAULT_ENDPOINT in endpoints else next(iter(endpoints))
        found = endpoints.get(endpoint)
        if found is None:
            raise ConfigError(
                f"environment {environment!r} has no endpoint {endpoint!r} "
                f"(known: {', '.join(sorted(endpoints))})"
            )
        return endpoint, found


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


def _endpoint(where: str, raw: object) -> Endpoint:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a table")
    url = raw.get("url")
    if not isinstance(url, str) or not url:
        raise ConfigError(f"{where}.url must be a non-empty string")
    ignore_ssl = raw.get("ignore_ssl", False)
    timeout = raw.get("timeout", 30)
    username = raw.get("username")
    if not isinstance(ignore_ssl, bool):
        raise ConfigError(f"{where}.ignore_ssl must be true or false")
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise ConfigError(f"{where}.timeout must be a positive number of seconds")
    if username is not None and not isinstance(username, str):
        raise ConfigError(f"{where}.username must be a string")
    if "password" in raw:
        raise ConfigError(
            f"{where}.password: passwords do not belong in the config file; "
            "use HAC_PASSWORD or `hac login --save-password` (OS keyring)"
        )
    return Endpoint(url=url, ignore_ssl=ignore_ssl, timeout=int(timeout), username=username)


def parse_config(data: dict[str, Any], path: Path) -> HacConfig:
    """Validate the parsed TOML ``data`` read from ``path``."""
    default = data.get("default_environment", DEFAULT_ENVIRONMENT)
    if not isinstance(default, str) or not default:
        raise ConfigError(f"{path}: default_environment must be a non-empty string")
    raw_envs = data.get("environments", {})
    if not isinstance(raw_envs, dict):
        raise ConfigError(f"{path}: [environments] must be a table")
    environments: dict[str, dict[str, Endpoint]] = {}
    default_endpoints: dict[str, str] = {}
    for env_name, env in raw_envs.items():
        where = f"{path}: environments.{env_name}"
        if not isinstance(env, dict) or not isinstance(env.get("endpoints", {}), dict):
            raise ConfigError(f"{where}.endpoints must be a table")
        endpoints = {
            name: _endpoint(f"{where}.endpoints.{name}", raw)
            for name, raw in env.get("endpoints", {}).items()
        }
        default_endpoint = env.get("default_endpoint")
        if default_endpoint is not None:
            if not isinstance(default_endpoint, str) or default_endpoint not in endpoints:
                known = ", ".join(sorted(endpoints)) or "none"
                raise ConfigError(
                    f"{where}.default_endpoint must name one of its endpoints (known: {known})"
                )
            default_endpoints[env_name] = default_endpoint
        if endpoints:
            environments[env_name] = endpoints
    return HacConfig(
        path=path,
        default_environment=default,
        environments=environments,
        default_endpoints=default_endpoints,
    )


def load_config(path: Path) -> HacConfig:
    """Read and validate ``path``; a missing file gives an empty configuration."""
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        return HacConfig(path=path)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    return parse_config(data, path)


__all__ = [
    "CONFIG_ENV",
    "DEFAULT_ENDPOINT",
    "DEFAULT_ENVIRONMENT",
    "ORIGINAL_CONFIG_ENV",
    "ConfigError",
    "Endpoint",
    "HacConfig",
    "config_path",
    "load_config",
    "parse_config",
]
