"""Credential names never let one HAC environment's password serve another's."""

from __future__ import annotations

import pytest

from sessionkeeper.cli.hac.credentials import env_var_names, keyring_user, password_from_env


def test_keyring_entries_are_one_per_environment_and_user() -> None:
    assert keyring_user("a:b", "c") != keyring_user("a", "b:c")
    assert keyring_user("a%3Ab", "c") != keyring_user("a:b", "c")
    assert keyring_user("prod/eu", "admin") == "prod/eu:admin"  # existing entries keep names


def test_spelt_variables_never_stand_for_another_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HAC_PASSWORD_PROD_EU", "for-prod_eu")
    assert password_from_env("prod_eu") == "for-prod_eu"  # the original's own spelling
    # ``prod-eu`` is spelt PROD_EU only if no name with a literal '_' could mean it:
    assert "HAC_PASSWORD_PROD_EU" in env_var_names("prod-eu", "PASSWORD")
    assert "HAC_PASSWORD_PROD_EU" not in env_var_names("prod_eu-x", "PASSWORD")
    assert env_var_names("prod_eu", "PASSWORD", "b-c") == [
        "HAC_PASSWORD_PROD_EU_B-C",
        "HAC_PASSWORD_PROD_EU",
        "HAC_PASSWORD",
    ]
