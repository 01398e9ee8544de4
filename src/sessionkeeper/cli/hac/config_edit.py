"""``hac env``/``hac endpoint`` changes to the config file, written as the original writes it.

The layout is hac-client-cli 0.3.2's (``default_environment``, then each
``[environments.NAME]`` with ``default_endpoint``, then its
``[environments.NAME.endpoints.EP]`` tables; ``ignore_ssl`` only when true,
``timeout`` only when not 30), with two fixes: strings and keys are quoted
properly, and the file is replaced atomically so a crash never leaves half a file.
Keys the original does not know (an endpoint's ``username``) are kept.
"""

from __future__ import annotations

import os
import re
import tempfile
import tomllib
from pathlib import Path
from typing import Any

from sessionkeeper.cli.hac.config import ConfigError, parse_config, read_toml, shown_url

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_WRITTEN = ("url", "ignore_ssl", "timeout")
#: What a TOML basic string must escape: ``"``, ``\\`` and the control characters.
_TOML_ESCAPE = re.compile(r'["\\\x00-\x1f\x7f]')
_SHORT_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}


def _string(text: str) -> str:
    """``text`` as a TOML basic string: every other character is written as itself.

    JSON's escapes are not TOML's: JSON writes an emoji as a surrogate pair
    (``\\ud83e\\uddea``), which TOML forbids, so the file would not read back.
    """

    def escape(match: re.Match[str]) -> str:
        char = match.group(0)
        return _SHORT_ESCAPES.get(char, f"\\u{ord(char):04x}")

    return f'"{_TOML_ESCAPE.sub(escape, text)}"'


def _key(name: str) -> str:
    return name if _BARE_KEY.match(name) else _string(name)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return _string(str(value))


def check_name(what: str, name: str) -> None:
    """Refuse a name the config cannot hold: empty, control characters, or not text."""
    if not name.strip():
        raise ConfigError(f"{what} name must not be empty")
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in name):
        raise ConfigError(f"{what} name {name!r} holds a control character; choose another name")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate: bytes of the command line that are not UTF-8.
        raise ConfigError(
            f"{what} name {name!r} is not valid UTF-8 text; choose another name"
        ) from None


def written(config: dict[str, Any]) -> dict[str, Any]:
    """What `render` writes of ``config``: the original's layout, our extra keys kept.

    Placeholders that are not tables are dropped, ``password`` is never written,
    ``ignore_ssl`` only when true and ``timeout`` only when not 30.
    """
    result: dict[str, Any] = {}
    if "default_environment" in config:
        result["default_environment"] = config["default_environment"]
    environments: dict[str, Any] = {}
    for env_name, env in config.get("environments", {}).items():
        if not isinstance(env, dict):
            continue
        table: dict[str, Any] = {}
        if env.get("default_endpoint"):
            table["default_endpoint"] = env["default_endpoint"]
        endpoints: dict[str, Any] = {}
        for ep_name, ep in env.get("endpoints", {}).items():
            if not isinstance(ep, dict):
                continue
            entry: dict[str, Any] = {"url": ep["url"]}
            if ep.get("ignore_ssl", False):
                entry["ignore_ssl"] = True
            if ep.get("timeout", 30) != 30:
                entry["timeout"] = ep["timeout"]
            for extra, value in ep.items():
                if extra not in _WRITTEN and extra != "password" and value is not None:
                    entry[extra] = value
            endpoints[ep_name] = entry
        if endpoints:
            table["endpoints"] = endpoints
        environments[env_name] = table
    if environments:
        result["environments"] = environments
    return result


def render(config: dict[str, Any]) -> str:
    """The TOML text of ``config`` in the original's layout."""
    lines: list[str] = []
    shown = written(config)
    if "default_environment" in shown:
        lines += [f"default_environment = {_value(shown['default_environment'])}", ""]
    for env_name, env in shown.get("environments", {}).items():
        lines.append(f"[environments.{_key(env_name)}]")
        if "default_endpoint" in env:
            lines.append(f"default_endpoint = {_value(env['default_endpoint'])}")
        lines.append("")
        for ep_name, ep in env.get("endpoints", {}).items():
            lines.append(f"[environments.{_key(env_name)}.endpoints.{_key(ep_name)}]")
            lines += [f"{_key(key)} = {_value(value)}" for key, value in ep.items()]
            lines.append("")
    return "\n".join(lines)


def checked_render(config: dict[str, Any], path: Path) -> str:
    """`render`, read back with the reader: text that reads as ``config`` or an error.

    A file the reader cannot parse would stop every later ``hac`` command, so
    it is refused before anything is written.
    """
    text = render(config)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate: command-line bytes that are not UTF-8.
        raise ConfigError(
            f"not saved: a value holds text that is not valid UTF-8 ({path})"
        ) from None
    try:
        parsed = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not saved: {path} would not read back as TOML ({exc})") from None
    if parsed != written(config):
        raise ConfigError(f"not saved: {path} would not read back as the configuration meant")
    parse_config(parsed, path)
    return text


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
        check_name("Environment", name)
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
                f"Endpoint name cannot be a URL: '{shown_url(name)}'\n"
                f'Did you mean: hac endpoint add {env_name} <name> --url "{shown_url(name)}"?\n'
                "Note: endpoint name comes BEFORE --url option"
            )
        check_name("Endpoint", name)
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
        """Write the file atomically (a temporary file renamed over it), once it reads back."""
        text = checked_render(self.data, self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".config-", suffix=".toml")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
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
        raise ConfigError(f"URL must be a valid URL (should contain '://'): '{shown_url(url)}'")


__all__ = ["ConfigFile", "check_name", "checked_render", "render", "written"]
