"""Options given on the wrong side of a subcommand, moved where they belong.

``sessionkeeper atproto whoami --did DID`` means ``sessionkeeper atproto --did
DID whoami``: an option of the group, given after the subcommand, is moved in
front of it when no command below defines an option of that name (then it is
theirs, as ``login --service`` is). Everything after ``--`` is left alone.

The other way round, ``hac --json groovy ...`` means ``hac groovy --json ...``:
an option the group does not have but the subcommand named next does is moved
after the subcommand's name (`sink`).
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


def _subcommand(group: Any, ctx: Any, name: str) -> Any:
    """The subcommand ``name`` of ``group`` (built if the group builds lazily), or ``None``."""
    if name.startswith("-") or not hasattr(group, "resolve_command"):
        return None
    try:
        _, command, _ = group.resolve_command(ctx, [name])
    except Exception:  # click's "No such command" (its own or typer's copy of click)
        return None
    return command


def _option_named(command: Any, name: str) -> Any:
    """``command``'s own option spelt ``name``, or ``None``."""
    for param in command.params:
        if _is_option(param) and name in (*param.opts, *param.secondary_opts):
            return param
    return None


def sink(
    group: Any, ctx: Any, args: list[str], name: str, *, nested: bool = False
) -> list[str] | None:
    """``args`` with ``name``, an option of a subcommand they name, moved after that name.

    The option (with its value, if it takes one) goes right after the first
    subcommand named behind it, or deeper (``--json sessions list``) when that
    subcommand is a group whose own subcommand defines it. ``None`` when no
    subcommand there defines it: click's own error then stands.
    """
    spelt = [word.split("=", 1)[0] for word in args]
    if name not in spelt or ("--" in args and args.index("--") < spelt.index(name)):
        return None
    index = spelt.index(name)
    for after in range(index + 1, len(args)):
        moved = _sink_before(group, ctx, args, name, index, after, nested)
        if moved is not None:
            return moved
    return None


def _sink_before(
    group: Any, ctx: Any, args: list[str], name: str, index: int, after: int, nested: bool
) -> list[str] | None:
    """`sink`, when ``args[after]`` is the subcommand the option at ``index`` belongs to."""
    command = _subcommand(group, ctx, args[after])
    if command is None:
        return None
    option = _option_named(command, name)
    if option is None:
        if not hasattr(command, "resolve_command"):
            return None
        # Only a flag (or --name=value) travels down more than one level: a separate
        # value would have to be told apart from the words between.
        deeper = sink(command, ctx, [args[index], *args[after + 1 :]], name, nested=True)
        if deeper is None:
            return None
        width = 1
    else:
        width = 2 if _takes_value(option) and "=" not in args[index] else 1
        if nested and width == 2:
            return None
        if index + width > after:  # its value would be the subcommand's name
            return None
        deeper = [*args[index : index + width], *args[after + 1 :]]
    return [*args[:index], *args[index + width : after], args[after], *deeper]


class HoistingGroup(TyperGroup):
    """A typer group that takes its options after its subcommand, and theirs before it."""

    def parse_args(self, ctx: Any, args: list[str]) -> Any:
        """Hoist, then parse as usual; a subcommand's option given too early is moved to it."""
        from sessionkeeper.cli.hac.late_options import NoSuchOption

        args = hoist(self, ctx, args)
        while True:
            try:
                return super().parse_args(ctx, list(args))
            except NoSuchOption as error:
                moved = sink(self, ctx, args, error.option_name)
                if moved is None:
                    raise
                args = moved
