"""The reference ATProto PDS for the tests: one per session, skipped only outside CI.

``tests/conftest.py`` re-exports the fixture with
``from tests.reference_pds_fixture import reference_pds  # noqa: F401``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from sessionkeeper.testing.reference_pds import ReferencePds, default_tools_dir, is_installed
from tests.support import REPO, missing_component

# This checkout's install (``make reference-pds``), for the suite and every process it starts.
os.environ.setdefault("PDS_TOOLS_DIR", str(REPO / ".tools" / "pds"))


def require_reference_pds() -> None:
    """Skip the test when the reference PDS is missing, or fail in CI where it must be there."""
    if not is_installed():
        missing_component(
            f"the reference PDS is not installed in {default_tools_dir()} "
            "(run `make reference-pds`)"
        )


@pytest.fixture(scope="session")
def reference_pds() -> Iterator[ReferencePds]:
    """``@atproto/pds`` with an in-memory PLC on free loopback ports, for the whole session."""
    require_reference_pds()
    with ReferencePds() as pds:
        yield pds
