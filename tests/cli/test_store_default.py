"""``store prune|doctor|rekey`` without ``--store`` work on the one default store, and say so.

Real subprocesses with HOME in a temp dir (no XDG variable, no inherited store),
so the user's own directories are never touched.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.test_store import HOUR, atproto_name, atproto_session, write

pytestmark = pytest.mark.timeout(120)

DEAD = "did:plc:dead"
LIVE = "did:plc:live"


def user_env(home: Path, **extra: str) -> dict[str, str]:
    """A user's environment: HOME in tmp, no XDG overrides, no store or key variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SESSIONKEEPER_", "XDG_"))}
    return env | {"HOME": str(home), "COLUMNS": "250", **extra}


def store_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sessionkeeper", "store", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=90,
        check=False,
    )


def default_dir(home: Path) -> Path:
    return home / ".local" / "share" / "sessionkeeper" / "atproto"


def test_prune_doctor_and_rekey_use_the_default_store_and_say_which_and_why(
    tmp_path: Path,
) -> None:
    env = user_env(tmp_path)
    sessions = default_dir(tmp_path)
    sessions.mkdir(mode=0o700, parents=True)
    write(sessions, atproto_name(DEAD), atproto_session(DEAD, refresh_expires_in=-HOUR))
    write(sessions, atproto_name(LIVE), atproto_session(LIVE, refresh_expires_in=HOUR))
    where = json.loads(
        subprocess.run(
            [sys.executable, "-m", "sessionkeeper", "where", "--json"],
            capture_output=True,
            text=True,
            env=env,
            timeout=90,
            check=True,
        ).stdout
    )["atproto"]
    said = f"store: {where['store']} ({where['why']})"

    doctor = store_cli(env, "doctor", "--json")
    assert doctor.returncode == 0, doctor.stderr
    assert said in doctor.stderr
    report = json.loads(doctor.stdout)  # stdout stays one JSON object
    assert report["store"] == f"dir:{sessions}" and report["exists"] is True
    dead = [f for f in report["findings"] if f["subject"].endswith(atproto_name(DEAD))]
    # The fix pastes as it stands: the same default is found without --store.
    assert [f["fix"] for f in dead] == ["sessionkeeper store prune"]

    pruned = store_cli(env, "prune")
    assert pruned.returncode == 0, pruned.stderr
    assert said in pruned.stderr
    assert "removed 1 (0 idle HAC, 1 expired ATProto, 0 temp files); kept 1" in pruned.stdout
    assert sorted(p.name for p in sessions.glob("did_*.json")) == [atproto_name(LIVE)]

    keys = [store_cli(env, "keygen").stdout.strip() for _ in range(2)]
    rekeyed = store_cli(
        env | {"SESSIONKEEPER_KEY": keys[0], "SESSIONKEEPER_NEW_KEY": keys[1]}, "rekey", "--json"
    )
    assert rekeyed.returncode == 0, rekeyed.stderr
    assert said in rekeyed.stderr
    assert json.loads(rekeyed.stdout)["counts"]["plain"] == 1


def test_a_store_from_the_variable_is_not_announced_and_its_fixes_need_no_store_option(
    tmp_path: Path,
) -> None:
    sessions = tmp_path / "elsewhere"
    sessions.mkdir(mode=0o700)
    write(sessions, atproto_name(DEAD), atproto_session(DEAD, refresh_expires_in=-HOUR))
    env = user_env(tmp_path, SESSIONKEEPER_STORE=f"dir:{sessions}")
    doctor = store_cli(env, "doctor")
    assert doctor.returncode == 0, doctor.stderr
    assert "store:" not in doctor.stderr
    assert "fix: sessionkeeper store prune\n" in doctor.stdout
    flagged = store_cli(user_env(tmp_path), "doctor", "--store", f"dir:{sessions}")
    assert f"fix: sessionkeeper store prune --store dir:{sessions}\n" in flagged.stdout


def test_a_default_store_not_created_yet_is_reported_empty(tmp_path: Path) -> None:
    env = user_env(tmp_path)
    doctor = store_cli(env, "doctor")
    assert doctor.returncode == 0, doctor.stderr
    assert "0 problems, 0 notes" in doctor.stdout and "no session stored yet" in doctor.stdout
    as_json = json.loads(store_cli(env, "doctor", "--json").stdout)
    assert as_json["exists"] is False and as_json["findings"] == []
    assert not (tmp_path / ".local").exists()  # the doctor only reads

    pruned = store_cli(env, "prune", "--json")
    assert pruned.returncode == 0, pruned.stderr
    assert json.loads(pruned.stdout)["removed"] == []
    # Opened as every command opens it: created owner-only, empty.
    assert default_dir(tmp_path).is_dir() and not list(default_dir(tmp_path).iterdir())
    assert default_dir(tmp_path).stat().st_mode & 0o777 == 0o700

    # A store that is named must exist: a mistyped path is an error, not an empty store.
    missing = store_cli(env, "prune", "--store", f"dir:{tmp_path / 'typo'}")
    assert missing.returncode == 1 and "does not exist" in missing.stderr


def test_sessions_an_older_cli_left_are_noted_by_doctor_and_adopted_by_prune(
    tmp_path: Path,
) -> None:
    env = user_env(tmp_path)
    old = tmp_path / ".config" / "sessionkeeper" / "atproto"
    old.mkdir(mode=0o700, parents=True)
    write(old, atproto_name(LIVE), atproto_session(LIVE, refresh_expires_in=HOUR))

    doctor = store_cli(env, "doctor")
    assert doctor.returncode == 0, doctor.stderr
    assert f"{old}: holds 1 entry of an older sessionkeeper CLI" in doctor.stdout
    assert "no session stored yet" not in doctor.stdout
    assert (old / atproto_name(LIVE)).exists()  # the doctor moves nothing

    pruned = store_cli(env, "prune")
    assert pruned.returncode == 0, pruned.stderr
    assert "kept 1 sessions" in pruned.stdout
    assert (default_dir(tmp_path) / atproto_name(LIVE)).exists()
    assert not (old / atproto_name(LIVE)).exists()
