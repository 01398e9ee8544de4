"""Every library error derives from SessionkeeperError, and the root module's docstring
draws the whole tree."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import hac_client_core
import sessionkeeper
from sessionkeeper.errors import SessionkeeperError

ERROR_MODULES = [
    "sessionkeeper.stores.errors",
    "sessionkeeper.hac.errors",
    "sessionkeeper.atproto.errors",
    "sessionkeeper.atproto.did_resolution",
    "sessionkeeper.http_limits.errors",
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


def _all_modules() -> list[str]:
    names = []
    for package in (sessionkeeper, hac_client_core):
        for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            if not info.name.endswith("__main__"):
                names.append(info.name)
    return names


def test_every_exception_class_in_the_package_derives_from_the_root() -> None:
    outside = [
        f"{name}.{error.__name__}"
        for name in _all_modules()
        for error in _errors_defined_in(name)
        if not issubclass(error, SessionkeeperError)
    ]
    assert outside == []
