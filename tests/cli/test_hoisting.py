"""Group options after the subcommand move in front of it, unless a command below owns the name."""

from __future__ import annotations

import pytest
import typer.main

from sessionkeeper.cli.atproto.app import app
from sessionkeeper.cli.hoisting import hoist

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
