"""Group options after the subcommand move in front of it, unless a command below owns the name."""

from __future__ import annotations

import pytest
import typer.main

from sessionkeeper.cli.atproto.app import app
from sessionkeeper.cli.hoisting import hoist, sink

GROUP = typer.main.get_group(app)


@pytest.mark.parametrize(
    ("given", "parsed"),
    [
        (["whoami", "--did", "did:plc:x"], ["--did", "did:plc:x", "whoami"]),
        (
            ["--store", "memory:", "sessions", "list", "--did=did:plc:x", "--json"],
            ["--store", "memory:", "--did=did:plc:x", "sessions", "list", "--json"],
        ),
        (["refresh", "-v"], ["-v", "refresh"]),
        # login has its own --service: it stays the login's.
        (["login", "alice.test", "--service", "http://x"], None),
        # A value of the command's own option that looks like one of the group's.
        (["call", "com.example.get", "--data", "-v"], None),
        (["whoami", "--", "--did", "x"], None),
        (["--did", "did:plc:x", "whoami"], None),
    ],
)
def test_group_options_are_hoisted_only_where_unambiguous(
    given: list[str], parsed: list[str] | None
) -> None:
    with typer.Context(GROUP) as ctx:
        assert hoist(GROUP, ctx, list(given)) == (parsed or given)


@pytest.mark.parametrize(
    ("given", "name", "parsed"),
    [
        (["--json", "whoami"], "--json", ["whoami", "--json"]),
        (
            ["--json", "--did", "did:plc:x", "whoami"],
            "--json",
            ["--did", "did:plc:x", "whoami", "--json"],
        ),
        # Down a nested group to the command that defines it.
        (["--json", "sessions", "list"], "--json", ["sessions", "list", "--json"]),
        # A value that spells a command's name is the option's value, not the command.
        (
            ["--data", "call", "call", "com.example.do"],
            "--data",
            ["call", "--data", "call", "com.example.do"],
        ),
        # A value-taking option is not carried down more than one level.
        (["--data", "x", "sessions", "list"], "--data", None),
        (["--nope", "whoami"], "--nope", None),
        (["whoami", "--", "--json"], "--json", None),
    ],
)
def test_a_subcommands_option_given_before_it_is_moved_after_its_name(
    given: list[str], name: str, parsed: list[str] | None
) -> None:
    with typer.Context(GROUP) as ctx:
        assert sink(GROUP, ctx, list(given), name) == parsed
