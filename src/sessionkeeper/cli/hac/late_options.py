"""Options of ``hac`` itself given after the subcommand: taken where that is unambiguous.

(An option of the subcommand given before it is moved after it: `sink`.)

``hac groovy 'return 1' -u admin`` means ``hac -u admin groovy 'return 1'``
whenever the subcommand has no ``-u`` of its own (then the subcommand's
meaning wins, as click decides). The value is stored as if it had been given
before the subcommand. What cannot be taken (no value, given twice, or an
option of the program around ``hac``) is refused with a message that says
where the option goes.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from sessionkeeper.cli.hac.context import META_KEY, Options, enable_verbose_logging
from sessionkeeper.cli.hoisting import sink

try:  # typer >= 0.2x carries its own click
    from typer._click.exceptions import NoSuchOption, UsageError
except ImportError:  # pragma: no cover - typer on the click package
    from click.exceptions import NoSuchOption, UsageError  # type: ignore[assignment]


def _owner(ctx: Any, name: str) -> tuple[Any, Any] | None:
    """The closest enclosing command context with an option spelt ``name``, and the option."""
    current = ctx.parent
    while current is not None:
        for param in current.command.params:
            if name in (*getattr(param, "opts", ()), *getattr(param, "secondary_opts", ())):
                return current, param
        current = current.parent
    return None


def _where(owner: Any, name: str, ctx: Any) -> str:
    below = ctx.command_path[len(owner.command_path) :].strip()
    return (
        f"{name} is an option of '{owner.command_path}' itself: give it before the "
        f"subcommand, as in '{owner.command_path} {name} VALUE {below} ...'"
    )


def _take(args: list[str], name: str, needs_value: bool) -> tuple[list[str], str | None] | None:
    """``args`` without ``name`` (and its value), and the value; ``None`` if not found whole."""
    for index, arg in enumerate(args):
        if arg == "--":
            return None
        if arg == name:
            if not needs_value:
                return [*args[:index], *args[index + 1 :]], None
            if index + 1 >= len(args):
                return None
            return [*args[:index], *args[index + 2 :]], args[index + 1]
        if needs_value and name.startswith("--") and arg.startswith(f"{name}="):
            return [*args[:index], *args[index + 1 :]], arg[len(name) + 1 :]
        if needs_value and not name.startswith("--") and arg.startswith(name) and len(arg) > 2:
            return [*args[:index], *args[index + 1 :]], arg[len(name) :]
    return None


def _converted(field: str, text: str, name: str, ctx: Any) -> Any:
    from sessionkeeper.cli.hac.params import plain_value

    try:
        return plain_value(typing.get_type_hints(Options)[field], text)
    except ValueError:
        raise UsageError(f"{name}: {text!r} is not a valid value", ctx=ctx) from None


def adopt(ctx: Any, error: NoSuchOption, args: list[str]) -> list[str]:
    """``args`` without the ``hac`` option ``error`` names, its value stored in the Options.

    Raises ``error`` again for an option nothing above knows, and a usage error
    that says where the option goes when it cannot be taken here.
    """
    name = error.option_name
    found = _owner(ctx, name)
    if found is None:
        moved = sink(ctx.command, ctx, args, name)  # hac --json groovy: the subcommand's
        if moved is None:
            raise error
        return moved
    owner, param = found
    fields = {field.name: field for field in dataclasses.fields(Options)}
    options = ctx.meta.get(META_KEY)
    if not isinstance(options, Options) or param.name not in fields:
        raise UsageError(_where(owner, name, ctx), ctx=ctx)
    taken = _take(args, name, needs_value=not param.is_flag)
    if taken is None:
        raise UsageError(_where(owner, name, ctx), ctx=ctx)
    rest, text = taken
    if param.is_flag:
        value: Any = name not in getattr(param, "secondary_opts", ())
    else:
        assert text is not None
        value = _converted(param.name, text, name, ctx)
    before = getattr(options, param.name)
    if before not in (fields[param.name].default, value):
        raise UsageError(
            f"{name} is given both before and after the subcommand; give it once, "
            "before the subcommand",
            ctx=ctx,
        )
    if param.name == "verbose" and value:
        enable_verbose_logging()
    ctx.meta[META_KEY] = dataclasses.replace(options, **{param.name: value})
    return rest


__all__ = ["NoSuchOption", "adopt"]
