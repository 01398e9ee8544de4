"""``hac env``/``hac endpoint`` changes to the config file, written as the original writes it.

The layout is hac-client-cli 0.3.2's (``default_environment``, then each
``[environments.NAME]`` with ``default_endpoint``, then its
``[environments.NAME.endpoints.EP]`` tables; ``ignore_ssl`` only when true,
``timeout`` only when not 30), with two fixes: strings and keys are quoted
properly, and the file is replaced atomically so a crash never leaves half a file.
Keys the original does not know (an endpoint's ``username``) are kept.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from sessionkeeper.cli.hac.config import ConfigError, read_toml

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_WRITTEN = ("url", "ignore_ssl", "timeout")


def _key(name: str) -> str:
    return name if _BARE_KEY.match(name) else json.dumps(name)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value))


def render(config: dict[str, Any]) -> str:
    """The TOML text of ``config`` in the original's layout."""
    lines: list[str] = []
    if "default_environment" in config:
        lines += [f"default_environment = {_value(config['default_environment'])}", ""]
    for env_name, env in config.get("environments", {}).items():
        if not isinstance(env, dict):
            continue
        lines.append(f"[environments.{_key(env_name)}]")
        if env.get("default_endpoint"):
            lines.append(f"default_endpoint = {_value(env['default_endpoint'])}")
        lines.append("")
        for ep_name, ep in env.get("endpoints", {}).items():
            if not isinstance(ep, dict):
                continue
            lines.append(f"[environments.{_key(env_name)}.endpoints.{_key(ep_name)}]")
            lines.append(f"url = {_value(ep['url'])}")
            if ep.get("ignore_ssl", False):
                lines.append("ignore_ssl = true")
            if ep.get("timeout", 30) != 30:
                lines.append(f"timeout = {_value(ep['timeout'])}")
            for extra, value in ep.items():
                if extra not in _WRITTEN and extra != "password" and value is not None:
                    lines.append(f"{_key(extra)} = {_value(value)}")
            lines.append("")
    return "\n".join(lines)


class ConfigFile:
    """Load, change and atomically save the raw config file at ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, Any] = read_toml(path) or {
            "default_environment": "local",
            "environments": {},
        }

    @property
    def environments(self) -> dict[str, Any]:
        """The ``[environments]`` table (created if missing)."""
        envs = self.data.setdefault("environments", {})
        if not isinstance(envs, dict):
            raise ConfigError(f"{self.path}: [environments] must be a table")
        return envs

    def environment(self, name: str) -> dict[str, Any]:
        """The raw table of environment ``name``; `ConfigError` if absent."""
        env = self.environments.get(name)
        if not isinstance(env, dict):
            raise ConfigError(f"Environment '{name}' not found")
        return env

    def endpoints(self, env_name: str) -> dict[str, Any]:
        """The raw endpoint tables of ``env_name``."""
        endpoints = self.environment(env_name).setdefault("endpoints", {})
        if not isinstance(endpoints, dict):
            raise ConfigError(f"{self.path}: environments.{env_name}.endpoints must be a table")
        return endpoints

    def endpoint(self, env_name: str, endpoint_name: str) -> dict[str, Any]:
        """The raw table of one endpoint; `ConfigError` if absent."""
        endpoint = self.endpoints(env_name).get(endpoint_name)
        if not isinstance(endpoint, dict):
            raise ConfigError(f"Endpoint '{endpoint_name}' not found in environment '{env_name}'")
        return endpoint

    def add_environment(self, name: str, *, set_default: bool) -> None:
        """Add an empty environment; the default too if asked or if there is none."""
        if name in self.environments:
            raise ConfigError(f"Environment '{name}' already exists")
        self.environments[name] = {"endpoints": {}}
        if set_default or not self.data.get("default_environment"):
            self.data["default_environment"] = name

    def remove_environment(self, name: str) -> None:
        """Remove an environment that is not the default."""
        self.environment(name)
        if self.data.get("default_environment") == name:
            raise ConfigError(
                f"Cannot remove default environment '{name}'. Set another default first."
            )
        del self.environments[name]

    def set_default_environment(self, name: str) -> None:
        """Make ``name`` the default environment."""
        self.environment(name)
        self.data["default_environment"] = name

    def add_endpoint(
        self,
        env_name: str,
        name: str,
        url: str,
        *,
        ignore_ssl: bool,
        timeout: int,
        set_default: bool,
    ) -> None:
        """Add an endpoint; it becomes the default if asked or if there is none."""
        if "://" in name:
            raise ConfigError(
                f"Endpoint name cannot be a URL: '{name}'\n"
                f'Did you mean: hac endpoint add {env_name} <name> --url "{name}"?\n'
                "Note: endpoint name comes BEFORE --url option"
            )
        _check_url(url)
        endpoints = self.endpoints(env_name)
        if name in endpoints:
            raise ConfigError(f"Endpoint '{name}' already exists in environment '{env_name}'")
        endpoints[name] = {"url": url, "ignore_ssl": ignore_ssl, "timeout": timeout}
        env = self.environment(env_name)
        if set_default or not env.get("default_endpoint"):
            env["default_endpoint"] = name

    def update_endpoint(
        self,
        env_name: str,
        name: str,
        *,
        url: str | None,
        ignore_ssl: bool | None,
        timeout: int | None,
    ) -> None:
        """Change the given settings of an endpoint."""
        if url is not None:
            _check_url(url)
        endpoint = self.endpoint(env_name, name)
        for key, value in (("url", url), ("ignore_ssl", ignore_ssl), ("timeout", timeout)):
            if value is not None:
                endpoint[key] = value

    def remove_endpoint(self, env_name: str, name: str) -> None:
        """Remove an endpoint; the first remaining one becomes the default if it was."""
        self.endpoint(env_name, name)
        endpoints = self.endpoints(env_name)
        del endpoints[name]
        env = self.environment(env_name)
        if env.get("default_endpoint") == name:
            env["default_endpoint"] = next(iter(endpoints), None)

    def set_default_endpoint(self, env_name: str, name: str) -> None:
        """Make ``name`` the default endpoint of ``env_name``."""
        self.endpoint(env_name, name)
        self.environment(env_name)["default_endpoint"] = name

    def save(self) -> None:
        """Write the file atomically (a temporary file renamed over it)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".config-", suffix=".toml")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(render(self.data))
                handle.flush()
                os.fsync(handle.fileno())
            if self.path.exists():
                os.chmod(tmp, self.path.stat().st_mode & 0o777)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _check_url(url: str) -> None:
    if "://" not in url:
        raise ConfigError(f"URL must be a valid URL (should contain '://'): '{url}'")


__all__ = ["ConfigFile", "render"]
