"""``store doctor`` on encrypted stores, ``doctor --fix``, and ``--json`` on doctor, prune and
migrate: real subprocesses on real directory stores."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

import pytest

from sessionkeeper.stores import DirectoryStore, EncryptedStore
from sessionkeeper.stores.encrypted import generate_key
from tests.cli.test_store import (
    HOUR,
    atproto_name,
    atproto_session,
    hac_name,
    hac_session,
    write,
)
from tests.support import run_store_cli

pytestmark = pytest.mark.timeout(120)

#: No OS keyring in these runs: a key comes from SESSIONKEEPER_KEY or nowhere.
NO_KEYRING = {"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}


def encrypted_store(path: Path, key: str) -> list[str]:
    store = EncryptedStore(DirectoryStore(path), key)
    names = [atproto_name("did:plc:alice"), hac_name("https://h", "u", "dev")]
    store.put(names[0], atproto_session("did:plc:alice", refresh_expires_in=HOUR))
    store.put(names[1], hac_session(idle=60))
    return names


def test_doctor_names_encrypted_entries_and_never_advises_removing_them(tmp_path: Path) -> None:
    key = generate_key()
    names = encrypted_store(tmp_path / "enc", key)
    env = {"SESSIONKEEPER_KEY": "", **NO_KEYRING}

    plain = run_store_cli("doctor", "--store", f"dir:{tmp_path / 'enc'}", env=env)
    assert plain.returncode == 0, plain.stdout
    assert plain.stdout.count("is encrypted (sessionkeeper's AES-GCM format)") == 2
    assert (
        f"SESSIONKEEPER_KEY=<key> sessionkeeper store doctor --store 'dir:{tmp_path}/enc?encrypt=1'"
        in plain.stdout
    )
    assert "remove" not in plain.stdout and "corrupt" not in plain.stdout

    url = f"dir:{tmp_path / 'enc'}?encrypt=1"
    no_key = run_store_cli("doctor", "--store", url, env=env)
    assert no_key.returncode == 1
    assert "cannot be opened: ?encrypt=1 needs a key" in no_key.stdout
    assert "fix: set SESSIONKEEPER_KEY" in no_key.stdout

    wrong = run_store_cli(
        "doctor", "--store", url, env={**env, "SESSIONKEEPER_KEY": generate_key()}
    )
    assert wrong.returncode == 1
    assert wrong.stdout.count("cannot be decrypted with this key") == 2
    assert "set SESSIONKEEPER_KEY to the key it was written with" in wrong.stdout
    assert "remove" not in wrong.stdout

    right = run_store_cli("doctor", "--store", url, env={**env, "SESSIONKEEPER_KEY": key})
    assert right.returncode == 0, right.stdout
    assert "0 problems, 0 notes" in right.stdout
    assert sorted(DirectoryStore(tmp_path / "enc").names()) == sorted(names)


def test_doctor_fix_applies_only_fixes_that_cannot_lose_a_session(tmp_path: Path) -> None:
    directory = tmp_path / "loose"
    good = write(directory, hac_name("https://h", "u", "ok"), hac_session(idle=60), 0o644)
    corrupt = write(directory, hac_name("https://h", "u", "bad"), b"{ not json")
    dead = write(
        directory,
        atproto_name("did:plc:old"),
        atproto_session("did:plc:old", refresh_expires_in=-HOUR),
    )
    temp = write(directory, ".x.json.abcdef.tmp", b"{")
    os.utime(temp, (time.time() - 60, time.time() - 60))
    directory.chmod(0o755)
    url = f"dir:{directory}"

    advice = run_store_cli("doctor", "--store", url)
    assert (
        f"3 of them can be fixed safely: sessionkeeper store doctor --store {url} --fix"
        in advice.stdout
    )
    assert f"fix: sessionkeeper store prune --store {url}" in advice.stdout

    fixed = run_store_cli("doctor", "--store", url, "--fix", "--json")
    assert fixed.returncode == 1  # the corrupt entry is still a problem: it is not removed
    report = json.loads(fixed.stdout)
    assert sorted(Path(f["subject"]).name for f in report["findings"] if f["fixed"]) == sorted(
        [directory.name, good.name, temp.name]
    )
    assert report["problems"] == 1 and report["notes"] == 1
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(good.stat().st_mode) == 0o600
    assert not temp.exists()
    assert corrupt.exists() and dead.exists()  # readable or not, no session is removed


def test_json_on_prune_and_migrate_and_json_errors(tmp_path: Path) -> None:
    source = tmp_path / "src"
    write(
        source, atproto_name("did:plc:ok"), atproto_session("did:plc:ok", refresh_expires_in=HOUR)
    )
    write(
        source,
        atproto_name("did:plc:old"),
        atproto_session("did:plc:old", refresh_expires_in=-HOUR),
    )

    pruned = run_store_cli("prune", "--store", f"dir:{source}", "--dry-run", "--json")
    assert pruned.returncode == 0, pruned.stderr
    report = json.loads(pruned.stdout)
    assert [r["name"] for r in report["removed"]] == [atproto_name("did:plc:old")]
    assert report["kept"] == 1 and report["dry_run"] is True

    migrated = run_store_cli(
        "migrate", "--from", f"dir:{source}", "--to", f"sqlite:{tmp_path}/s.db", "--json"
    )
    assert migrated.returncode == 0, migrated.stderr
    assert json.loads(migrated.stdout)["counts"]["copied"] == 2

    unknown = run_store_cli("prune", "--json", "--store", "nope:x")
    assert unknown.returncode == 2
    error = json.loads(unknown.stdout)
    assert error["error"] == "usage"
    assert "unknown store scheme 'nope'" in error["message"]
    unopenable = run_store_cli("doctor", "--json", "--store", "nope:x")
    assert json.loads(unopenable.stdout)["problems"] == 1
