"""A HAC session is used only for the exact key it was saved under.

The original file name, md5("base_url:username:environment"), is kept for
compatibility; it is ambiguous, so the loaded file's own fields decide.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from sessionkeeper.hac.session import SessionManager, session_name

BASE = "https://hac.example.com"


def test_two_keys_with_one_file_name_never_share_a_session(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert session_name(BASE, "ops:prod", "eu") == session_name(BASE, "ops", "prod:eu")
    manager = SessionManager(tmp_path)
    manager.save_session(BASE, "ops:prod", "eu", "SESSION-OF-A", "csrf-a")
    with caplog.at_level(logging.WARNING):
        assert manager.load_session(BASE, "ops", "prod:eu") is None
    assert "SESSION-OF-A" not in caplog.text
    mine = manager.load_session(BASE, "ops:prod", "eu")
    assert mine is not None and mine.session_id == "SESSION-OF-A"


@pytest.mark.parametrize(
    "field", ["base_url", "username", "environment"], ids=lambda f: f"wrong-{f}"
)
def test_a_file_whose_fields_differ_from_the_key_is_not_used(tmp_path: Path, field: str) -> None:
    manager = SessionManager(tmp_path)
    key = {"base_url": BASE, "username": "admin", "environment": "dev"}
    manager.save_session(key["base_url"], key["username"], key["environment"], "S", "C")
    path = tmp_path / session_name(key["base_url"], key["username"], key["environment"])
    other = {**key, field: key[field] + "-other"}
    path.write_text(path.read_text().replace(f'"{key[field]}"', f'"{other[field]}"', 1))
    assert manager.load_session(key["base_url"], key["username"], key["environment"]) is None
    (listed,) = manager.list_sessions()  # listed as what it is: the session of another key
    assert getattr(listed, field) == other[field]
