"""Command-line values of the ``hac`` command converted without pydantic.

Typer (0.2x) converts every option value through a pydantic ``TypeAdapter``;
building the first one imports pydantic, about a third of a warm ``hac groovy``
run. The ``hac`` command's parameters are all plain (``str``, ``int``,
``float``, ``bool``, ``Path``, optional or repeated), so its commands convert
them directly, with the same error as typer's for a bad number. Other typer
versions (without that hook) simply keep their own conversion.

`LazyGroup` builds only the subcommand a command line runs.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, ClassVar, Union, get_args, get_origin

import typer
import typer.main
from typer.core import TyperCommand, TyperGroup

try:  # typer >= 0.2x converts through this hook
    from typer._coercion import RuntimeParam
except ImportError:  # pragma: no cover - older typer: nothing to replace
    RuntimeParam = None  # type: ignore[assignment,misc]

_PLAIN: tuple[type, ...] = (str, int, float, bool, Path)


def complete_environment(ctx: typer.Context, incomplete: str) -> list[str]:
    """Shell completion: the configured environments that start with ``incomplete``."""
    # Here, not at import: only a completion request reads the config file.
    from sessionkeeper.cli.hac.config import ConfigError, config_path, load_config

    try:
        config = load_config(config_path(ctx.find_root().params.get("config")))
    except ConfigError:
        return []  # a broken file completes nothing; the command itself names the problem
    return [name for name in sorted(config.environments) if name.startswith(incomplete)]


#: The options hac-client-cli gives every HAC command.
Environment = Annotated[
    str | None,
    typer.Option(
        "--environment", "-e", help="Environment name", autocompletion=complete_environment
    ),
]
#: An environment given as an argument (``hac session start ENV``, ``hac env show ENV``).
EnvironmentArgument = Annotated[
    str, typer.Argument(help="Environment name", autocompletion=complete_environment)
]
EndpointName = Annotated[str | None, typer.Option("--endpoint", "-n", help="Endpoint name")]
JsonOutput = Annotated[bool, typer.Option("--json", help="Output as JSON")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Suppress informational messages")]
QuietNames = Annotated[bool, typer.Option("--quiet", "-q", help="Minimal output (names only)")]


def _plain_type(annotation: Any) -> tuple[type, bool] | None:
    """``(type, repeated)`` when ``annotation`` is plain (maybe optional or a list), else None."""
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        return _plain_type(members[0]) if len(members) == 1 else None
    if origin is list:
        inner = get_args(annotation)
        return (inner[0], True) if len(inner) == 1 and inner[0] in _PLAIN else None
    return (annotation, False) if annotation in _PLAIN else None


def plain_value(annotation: Any, text: str) -> Any:
    """``text`` converted to the plain ``annotation`` (``int | None``, ``Path``, ...)."""
    plain = _plain_type(annotation)
    if plain is None or plain[1]:
        raise ValueError(f"{annotation!r} is not a plain single value")
    return _convert(plain[0], text)


def _convert(kind: type, value: Any) -> Any:
    if isinstance(value, kind):
        return value
    if kind is bool:
        text = str(value).strip().lower()
        if text in {"1", "true", "yes", "on", "y", "t"}:
            return True
        if text in {"0", "false", "no", "off", "n", "f"}:
            return False
        raise ValueError(f"{value!r} is not a valid boolean")
    return kind(value)


if RuntimeParam is not None:

    class PlainRuntimeParam(RuntimeParam):
        """Converts a plain parameter's value the way typer would, without pydantic."""

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            plain = _plain_type(self.annotation)
            assert plain is not None
            kind, repeated = plain
            try:
                if repeated:
                    return [_convert(kind, item) for item in value]
                return _convert(kind, value)
            except ValueError:
                names = {int: "integer", float: "float", bool: "boolean"}
                raise typer.BadParameter(
                    f"{value!r} is not a valid {names.get(kind, kind.__name__)}.",
                    ctx=ctx,
                    param=param,
                ) from None


def _install(params: list[Any]) -> None:
    if RuntimeParam is None:
        return
    for param in params:
        descriptor = getattr(param, "type_descriptor", None)
        if descriptor is None or getattr(param, "_runtime_param", True) is not None:
            continue
        if _plain_type(descriptor.annotation) is not None:
            param._runtime_param = PlainRuntimeParam(
                parameter_info=descriptor.parameter_info, annotation=descriptor.annotation
            )


def _parse(parse: Callable[[Any, list[str]], list[str]], ctx: Any, args: list[str]) -> list[str]:
    """``parse`` the arguments; an option of ``hac`` itself given here is taken, then again."""
    from sessionkeeper.cli.hac.late_options import NoSuchOption, adopt

    while True:
        try:
            return parse(ctx, list(args))
        except NoSuchOption as error:
            args = adopt(ctx, error, args)  # raises unless the option was taken


class PlainCommand(TyperCommand):
    """A typer command whose plain parameters skip pydantic; it takes ``hac``'s own options too."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        """Install the plain conversion, then parse as typer does."""
        _install(self.get_params(ctx))
        return _parse(super().parse_args, ctx, args)


class PlainGroup(TyperGroup):
    """A typer group whose own plain options skip pydantic; it takes ``hac``'s own options too."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        """Install the plain conversion, then parse as typer does."""
        _install(self.get_params(ctx))
        return _parse(super().parse_args, ctx, args)


def _builders(registry: typer.Typer) -> dict[str, Callable[[], Any]]:
    """How to build each of ``registry``'s commands and groups, by name, in typer's order."""
    builders: dict[str, Callable[[], Any]] = {}
    for info in registry.registered_commands:
        name = info.name or typer.main.get_command_name(info.callback.__name__)  # type: ignore[union-attr]
        one = typer.Typer(add_completion=False, rich_markup_mode=None)
        one.registered_commands.append(info)
        builders[name] = functools.partial(typer.main.get_command, one)
    for group in registry.registered_groups:
        assert group.name and group.typer_instance, "register groups with add_typer(app, name=...)"
        builders[group.name] = functools.partial(typer.main.get_group, group.typer_instance)
    return builders


class LazyGroup(PlainGroup):
    """A group that builds only the subcommand a command line runs.

    Typer builds every command of a group from its function's signature before
    it runs one, a tenth of a warm ``hac groovy``. Subclasses name a
    ``registry`` (a ``typer.Typer`` holding the commands and groups); a command
    is built when the command line names it, and every one is built for help,
    completion, or an unknown name (so typer can suggest the closest).
    """

    registry: ClassVar[typer.Typer]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._unbuilt = _builders(self.registry)
        self._order = list(self._unbuilt)

    def _build(self, names: list[str]) -> None:
        for name in names:
            command = self._unbuilt.pop(name)()
            command.name = name
            self.commands[name] = command

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        """Build the command ``args`` names (every one for an unknown name), then resolve."""
        if args and args[0] not in self.commands:
            self._build([args[0]] if args[0] in self._unbuilt else list(self._unbuilt))
        return super().resolve_command(ctx, args)

    def list_commands(self, ctx: Any) -> list[str]:
        """Every command's name, in registration order (help builds them all)."""
        self._build(list(self._unbuilt))
        return [*self._order, *(name for name in self.commands if name not in self._order)]


__all__ = [
    "EndpointName",
    "Environment",
    "JsonOutput",
    "LazyGroup",
    "PlainCommand",
    "PlainGroup",
    "Quiet",
    "QuietNames",
    "plain_value",
]
