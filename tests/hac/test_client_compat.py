"""Drop-in compatibility with hac-client-core 0.1.2, checked against the real original.

The original runs in its own venv (a subprocess): its public signatures and
model fields must all exist here with the same names, order and defaults, and
a session one library caches must serve the other's next run.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import hac_client_core
from sessionkeeper.hac.auth import BasicAuthHandler
from sessionkeeper.hac.client import HacClient
from sessionkeeper.hac.session import SessionManager
from sessionkeeper.testing.fake_hac import FakeHac
from tests.support import original_hac_python

pytestmark = pytest.mark.timeout(300)

GROOVY = "POST /console/scripting/execute"
CLASSES = [
    "HacClient",
    "BasicAuthHandler",
    "AuthHandler",
    "GroovyScriptResult",
    "FlexibleSearchResult",
    "ImpexResult",
    "SessionInfo",
    "UpdateData",
    "UpdateParameter",
    "ProjectData",
    "UpdateLog",
    "UpdateResult",
    "SessionManager",
    "SessionMetadata",
]

DESCRIBE = """
import dataclasses, inspect, json
import hac_client_core as lib

def describe(cls):
    methods = {}
    for name, member in inspect.getmembers(cls):
        if name.startswith("_") and name != "__init__":
            continue
        if inspect.isfunction(member):
            params = []
            for p in inspect.signature(member).parameters.values():
                default = None if p.default is inspect.Parameter.empty else repr(p.default)
                params.append([p.name, str(p.kind), default])
            methods[name] = params
    properties = sorted(n for n, m in inspect.getmembers(cls) if isinstance(m, property))
    fields = (
        [[f.name, repr(f.default) if f.default is not dataclasses.MISSING else None]
         for f in dataclasses.fields(cls)]
        if dataclasses.is_dataclass(cls) else None
    )
    return {"methods": methods, "properties": properties, "fields": fields}

print(json.dumps({
    "all": sorted(lib.__all__),
    "classes": {name: describe(getattr(lib, name)) for name in NAMES},
    "errors": {
        "auth_is_client_error": issubclass(lib.HacAuthenticationError, lib.HacClientError),
    },
}))
"""


@pytest.fixture(scope="module")
def original() -> dict[str, Any]:
    python = original_hac_python()
    code = f"NAMES = {CLASSES!r}\n" + DESCRIBE
    done = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
    described: dict[str, Any] = json.loads(done.stdout)
    return described


def test_every_public_name_of_the_original_is_exported(original: dict[str, Any]) -> None:
    assert set(original["all"]) <= set(hac_client_core.__all__)
    assert issubclass(hac_client_core.HacAuthenticationError, hac_client_core.HacClientError)
    assert original["errors"]["auth_is_client_error"]


@pytest.mark.parametrize("name", CLASSES)
def test_signatures_keep_every_original_parameter_in_place(
    name: str, original: dict[str, Any]
) -> None:
    theirs = original["classes"][name]
    ours_cls = getattr(hac_client_core, name)
    for method, their_params in theirs["methods"].items():
        member = getattr(ours_cls, method, None)
        assert member is not None, f"{name}.{method} is missing"
        ours = [
            [p.name, str(p.kind), None if p.default is inspect.Parameter.empty else repr(p.default)]
            for p in inspect.signature(member).parameters.values()
        ]
        assert ours[: len(their_params)] == their_params, f"{name}.{method} differs"
        extra = ours[len(their_params) :]
        # Additions are keyword-only or defaulted, so every original call still binds.
        assert all(kind == "KEYWORD_ONLY" or default is not None for _, kind, default in extra), (
            f"{name}.{method} adds a required parameter: {extra}"
        )
    missing = set(theirs["properties"]) - {
        n for n, m in inspect.getmembers(ours_cls) if isinstance(m, property)
    }
    assert not missing, f"{name} lacks properties {missing}"
    if theirs["fields"] is not None:
        ours_fields = [
            [f.name, repr(f.default) if f.default is not dataclasses.MISSING else None]
            for f in dataclasses.fields(ours_cls)
        ]
        assert [f[0] for f in ours_fields] == [f[0] for f in theirs["fields"]]
        for (field_name, our_default), (_, their_default) in zip(
            ours_fields, theirs["fields"], strict=True
        ):
            if their_default is not None:
                assert our_default == their_default, f"{name}.{field_name} default differs"


ORIGINAL_RUN = textwrap.dedent(
    """
    import json, sys
    from hac_client_core import BasicAuthHandler, HacClient
    client = HacClient(sys.argv[1], BasicAuthHandler("admin", "nimda"), quiet=True)
    client.login()
    result = client.execute_groovy("return 'original'")
    print(json.dumps({"result": result.execution_result}))
    """
)


@pytest.fixture
def fake() -> Iterator[FakeHac]:
    with FakeHac(route="node1") as server:
        yield server


def run_original(home: Path, url: str) -> str:
    python = original_hac_python()
    done = subprocess.run(
        [python, "-c", ORIGINAL_RUN, url],
        env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result: str = json.loads(done.stdout)["result"]
    return result


def test_a_session_the_original_cached_serves_our_next_run_with_one_request(
    fake: FakeHac, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    assert run_original(home, fake.url + "/") == "original"
    assert fake.logins == 1
    fake.reset_counts()
    manager = SessionManager(home / ".cache" / "hac-client")
    with HacClient(
        fake.url + "/", BasicAuthHandler("admin", "nimda"), session_manager=manager
    ) as c:
        assert c.execute_groovy("return 'ours'").execution_result == "ours"
    assert dict(fake.counts) == {GROOVY: 1}


def test_a_session_we_cached_serves_the_original_without_a_login(
    fake: FakeHac, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    manager = SessionManager(home / ".cache" / "hac-client")
    with HacClient(fake.url, BasicAuthHandler("admin", "nimda"), session_manager=manager) as c:
        c.login()
    fake.reset_counts()
    assert run_original(home, fake.url) == "original"
    assert fake.logins == 0
    # The original validates the session first (GET /), then runs the script.
    assert dict(fake.counts) == {"GET /": 1, GROOVY: 1}
