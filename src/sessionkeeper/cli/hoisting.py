"""A command group whose own options may also come after its subcommand.

``sessionkeeper atproto whoami --did DID`` means ``sessionkeeper atproto --did
DID whoami``: an option of the group, given after the subcommand, is moved in
front of it when no command below defines an option of that name (then it is
theirs, as ``login --service`` is). Everything after ``--`` is left alone.
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperGroup

# Typed loosely on purpose: typer ships its own copy of click (``typer._click``) in
# some versions and uses the installed click in others; both have these attributes.


def _is_option(param: Any) -> bool:
    return getattr(param, "param_type_name", None) == "option"


def _options_below(command: Any, ctx: Any) -> dict[str, Any]:
    """Every option ``command`` and the commands below it define, by name."""
    options: dict[str, Any] = {}
    for param in command.params:
        if _is_option(param):
            options |= dict.fromkeys((*param.opts, *param.secondary_opts), param)
    if hasattr(command, "list_commands"):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None:
                options |= _options_below(sub, ctx)
    return options


def _takes_value(option: Any) -> bool:
    return not option.is_flag and not option.count


def hoist(group: Any, ctx: Any, args: list[str]) -> list[str]:
    """``args`` with the group's options that follow its subcommand moved before it."""
    own: dict[str, Any] = {}
    for param in group.params:
        if _is_option(param):
            for name in (*param.opts, *param.secondary_opts):
                own[name] = param
    position, index = None, 0
    while index < len(args):
        word = args[index]
        if word == "--":
            return args
        option = own.get(word)
        if option is not None:
            index += 2 if _takes_value(option) else 1
            continue
        if not word.startswith("-"):
            position = index
            break
        index += 1
    if position is None:
        return args
    tail = args[position + 1 :]
    tail = tail[: tail.index("--")] if "--" in tail else tail
    if not any(word.split("=", 1)[0] in own for word in tail):
        return args  # the common case, decided without loading the commands below
    command = group.get_command(ctx, args[position])
    if command is None:
        return args
    theirs = _options_below(command, ctx)
    front: list[str] = []
    rest: list[str] = []
    index = position + 1
    while index < len(args):
        word = args[index]
        if word == "--":
            rest += args[index:]
            break
        name = word.split("=", 1)[0]
        if name in theirs:
            # Theirs, with its value (which may look like one of ours: --data -v).
            width = 2 if _takes_value(theirs[name]) and "=" not in word else 1
            rest += args[index : index + width]
            index += width
            continue
        option = own.get(name)
        if option is None:
            rest.append(word)
            index += 1
            continue
        width = 2 if _takes_value(option) and "=" not in word else 1
        front += args[index : index + width]
        index += width
    return [*args[:position], *front, args[position], *rest]


class HoistingGroup(TyperGroup):
    """A typer group that accepts its own options after its subcommand (see `hoist`)."""

    def parse_args(self, ctx: Any, args: list[str]) -> Any:
        """Hoist, then parse as usual."""
        return super().parse_args(ctx, hoist(self, ctx, args))
