"""Public names that load on first use: one ``__getattr__`` shape for every package."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_names(
    package: str, namespace: dict[str, Any], module_of: Mapping[str, str]
) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports ``module_of[name]`` on first use of ``name``.

    The value is kept in ``namespace`` (the package's globals), so each name
    costs one import and later lookups are plain attribute reads.
    """

    def load(name: str) -> Any:
        module = module_of.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    return load
