"""Every Python and shell example in README.md and docs/ runs, against the bundled fakes.

The examples are parsed by Sybil. Each document runs top to bottom in one namespace
and one fresh working directory, with ``HOME`` and the XDG directories inside it, and
its own FakeHac and FakePds (plus a real redis-server when the page uses Redis). The
public addresses the examples show are replaced by the fakes' before a block runs:

- ``https://localhost:9002`` (a HAC) becomes FakeHac's URL;
- ``https://bsky.social`` (a PDS) becomes FakePds's URL, where ``alice.bsky.social``
  (password ``app-password``) and ``bob.bsky.social`` (``bob-password``) exist;
- ``redis://localhost:6379`` becomes the redis-server's URL.

A block that cannot run here (``make test`` itself, a Redis Cluster) is preceded by
``<!-- skip: next "why" -->``, which states the reason in the page itself, and not run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import unittest
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from sybil import Example, Sybil
from sybil.parsers.markdown import CodeBlockParser, SkipParser

from sessionkeeper.testing import FakeHac, FakePds
from sessionkeeper.testing.redis_server import RedisServer
from tests.redis_fixture import require_redis_server
from tests.support import REPO

ROOT = REPO
DOCUMENTS = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
BIN = Path(sys.executable).parent
SHELL_TIMEOUT = 60.0

HAC_URL = "https://localhost:9002"
PDS_URL = "https://bsky.social"
REDIS_URL = "redis://localhost:6379"


def _substitute(source: str, namespace: dict[str, object]) -> str:
    urls: dict[str, str] = namespace["__urls__"]  # type: ignore[assignment]
    for public, fake in urls.items():
        source = source.replace(public, fake)
    return source


def _pad(source: str, example: Example) -> str:
    # Blank lines in front keep tracebacks pointing at the document's own line numbers.
    padding: int = example.line + example.parsed.line_offset
    return "\n" * padding + source


def evaluate_python(example: Example) -> None:
    """Run a ```python block in the document's namespace."""
    __tracebackhide__ = True
    source = _substitute(str(example.parsed), example.namespace)
    code = compile(_pad(source, example), example.path, "exec", dont_inherit=True)
    exec(code, example.namespace)  # the documentation's own example
    example.namespace.pop("__builtins__", None)


def evaluate_shell(example: Example) -> None:
    """Run a ```bash block with ``bash -euo pipefail`` in the document's directory."""
    source = _substitute(str(example.parsed), example.namespace)
    env: dict[str, str] = example.namespace["__env__"]
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", source],
        cwd=str(example.namespace["__cwd__"]),
        env=env,
        capture_output=True,
        text=True,
        timeout=SHELL_TIMEOUT,
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(
            f"{example.path}:{example.line}: exit {done.returncode}\n"
            f"--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
        )


DOCS_SYBIL = Sybil(
    parsers=[
        CodeBlockParser(language="python", evaluator=evaluate_python),
        CodeBlockParser(language="bash", evaluator=evaluate_shell),
        SkipParser(),
    ],
)


def _environment(work: Path, urls: dict[str, str]) -> dict[str, str]:
    home = work / "home"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("HAC_", "ATP_", "SESSIONKEEPER_", "XDG_"))
    }
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_STATE_HOME=str(home / ".local" / "state"),
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        HAC_URL=urls[HAC_URL],
        ATP_SERVICE=urls[PDS_URL],
    )
    home.mkdir(parents=True)
    return env


@pytest.fixture
def servers() -> Iterator[ExitStack]:
    """Everything a document starts, stopped after it."""
    with ExitStack() as stack:
        yield stack


@pytest.mark.parametrize("path", DOCUMENTS, ids=[str(p.relative_to(ROOT)) for p in DOCUMENTS])
def test_document_examples_run(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, servers: ExitStack
) -> None:
    text = path.read_text(encoding="utf-8")
    hac = servers.enter_context(FakeHac())
    pds = servers.enter_context(FakePds())
    pds.create_account("alice.bsky.social", "app-password")
    pds.create_account("bob.bsky.social", "bob-password")
    urls = {HAC_URL: hac.url, PDS_URL: pds.url}
    if re.search(r"redis(\+\w+)?://", text):
        require_redis_server()
        redis = servers.enter_context(RedisServer())
        urls[REDIS_URL] = re.sub(r"(/\d+)?/?$", "", redis.url)

    work = tmp_path / "work"
    work.mkdir()
    env = _environment(work, urls)
    for key in list(os.environ):
        if key.startswith(("HAC_", "ATP_", "SESSIONKEEPER_", "XDG_")):
            monkeypatch.delenv(key)
    for key in ("HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "HAC_URL"):
        monkeypatch.setenv(key, env[key])
    monkeypatch.setenv("ATP_SERVICE", env["ATP_SERVICE"])
    monkeypatch.chdir(work)

    document = DOCS_SYBIL.parse(path)
    document.namespace.update(__urls__=urls, __env__=env, __cwd__=work)
    for example in document.examples():
        try:
            example.evaluate()
        except unittest.SkipTest:
            continue  # an illustrative block, marked so with its reason
