"""hac_client_core is a drop-in for the original 0.1.2: same modules, names, signatures, fields."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import json
import subprocess
import sys

from tests.support import original_hac_python

DESCRIBE = r"""
import dataclasses, importlib, inspect, json
out = {}
for module_name in ["hac_client_core", "hac_client_core.client", "hac_client_core.session",
                    "hac_client_core.models", "hac_client_core.auth"]:
    module = importlib.import_module(module_name)
    names = getattr(module, "__all__", None) or [
        n for n, v in vars(module).items()
        if inspect.isclass(v) and v.__module__.startswith("hac_client_core")]
    for name in names:
        obj = getattr(module, name)
        if not inspect.isclass(obj):
            continue
        entry = {"module": module_name}
        if dataclasses.is_dataclass(obj):
            entry["fields"] = [f.name for f in dataclasses.fields(obj)]
        entry["members"] = {}
        for member, value in inspect.getmembers(obj):
            if member.startswith("_") and member != "__init__":
                continue
            if isinstance(inspect.getattr_static(obj, member), property):
                entry["members"][member] = "property"
            elif callable(value):
                try:
                    params = list(inspect.signature(value).parameters.values())
                except (TypeError, ValueError):
                    continue
                entry["members"][member] = [
                    [p.name, p.kind.name, None if p.default is inspect.Parameter.empty
                     else repr(p.default)] for p in params]
        out[f"{module_name}.{name}"] = entry
print(json.dumps(out))
"""


def describe_original() -> dict[str, dict[str, object]]:
    output = subprocess.run(
        [original_hac_python(), "-c", DESCRIBE], capture_output=True, text=True, check=True
    ).stdout
    described: dict[str, dict[str, object]] = json.loads(output)
    return described


def test_every_public_class_of_the_original_exists_with_compatible_api() -> None:
    problems: list[str] = []
    for qualified, entry in describe_original().items():
        module_name, _, name = qualified.rpartition(".")
        ours = getattr(importlib.import_module(module_name), name, None)
        if ours is None:
            problems.append(f"{qualified} is missing")
            continue
        if "fields" in entry:
            our_fields = [f.name for f in dataclasses.fields(ours)]
            if our_fields[: len(entry["fields"])] != entry["fields"]:  # type: ignore[arg-type]
                problems.append(f"{qualified} fields {our_fields} != {entry['fields']}")
        members = entry["members"]
        assert isinstance(members, dict)
        for member, spec in members.items():
            ours_member = getattr(ours, member, None)
            if ours_member is None:
                problems.append(f"{qualified}.{member} is missing")
                continue
            if spec == "property":
                continue
            our_params = list(inspect.signature(ours_member).parameters.values())
            for index, (param_name, _kind, default) in enumerate(spec):
                if index >= len(our_params) or our_params[index].name != param_name:
                    problems.append(f"{qualified}.{member}: parameter {index} is not {param_name}")
                    break
                ours_default = our_params[index].default
                if default is not None and (
                    ours_default is inspect.Parameter.empty or repr(ours_default) != default
                ):
                    problems.append(
                        f"{qualified}.{member}({param_name}) default {ours_default!r} != {default}"
                    )
            for extra in our_params[len(spec) :]:
                if extra.default is inspect.Parameter.empty and extra.kind not in (
                    inspect.Parameter.VAR_POSITIONAL,
                    inspect.Parameter.VAR_KEYWORD,
                ):
                    problems.append(f"{qualified}.{member}: new required parameter {extra.name}")
    assert problems == [], "\n".join(problems)


_LOADED_AFTER = """
import sys
import hac_client_core
from hac_client_core import BasicAuthHandler, HacClient
imported = sorted(m for m in ("httpx", "httpcore", "filelock") if m in sys.modules)
client = HacClient("http://127.0.0.1:9/hac", BasicAuthHandler("admin", "nimda"),
                   session_persistence=False)
built = sorted(m for m in ("httpx", "httpcore") if m in sys.modules)
client.close()
print(",".join(imported) + "|" + ",".join(built))
"""


def test_the_http_stack_loads_with_the_first_client_not_with_the_import() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _LOADED_AFTER], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "|httpcore,httpx"
