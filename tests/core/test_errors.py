"""Every library error derives from SessionkeeperError, and the root module's docstring
draws the whole tree."""

from __future__ import annotations

import importlib
import inspect

import pytest

import sessionkeeper
from sessionkeeper.errors import SessionkeeperError

ERROR_MODULES = [
    "sessionkeeper.stores.errors",
    "sessionkeeper.hac.errors",
    "sessionkeeper.atproto.errors",
    "sessionkeeper.atproto.did_resolution",
    "sessionkeeper.http_limits.errors",
    "sessionkeeper.jwt",
]


def _errors_defined_in(module_name: str) -> list[type[BaseException]]:
    module = importlib.import_module(module_name)
    return [
        value
        for value in vars(module).values()
        if inspect.isclass(value)
        and issubclass(value, BaseException)
        and value.__module__ == module_name
    ]


@pytest.mark.parametrize("module_name", ERROR_MODULES)
def test_every_error_derives_from_the_root_and_is_in_the_documented_tree(module_name: str) -> None:
    errors = _errors_defined_in(module_name)
    assert errors, f"{module_name} defines no error"
    doc = inspect.getdoc(importlib.import_module("sessionkeeper.errors")) or ""
    for error in errors:
        assert issubclass(error, SessionkeeperError), error
        assert error.__name__ in doc, f"{error.__name__} is missing from the hierarchy"


def test_the_root_is_exported_from_the_package() -> None:
    assert sessionkeeper.SessionkeeperError is SessionkeeperError
    assert "SessionkeeperError" in sessionkeeper.__all__
