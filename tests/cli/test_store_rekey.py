"""``sessionkeeper store rekey``: old key to new key in place, per entry under the store lock,
while another process keeps writing (real processes on a real directory store)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sessionkeeper.stores import DirectoryStore, EncryptedStore
from sessionkeeper.stores.encrypted import generate_key
from sessionkeeper.stores.errors import DecryptionError
from sessionkeeper.stores.redis.store import RedisStore
from sessionkeeper.stores.url import parse_store_url, with_encryption
from sessionkeeper.testing.redis_server import RedisServer
from tests.cli.test_store import HOUR, atproto_name, atproto_session
from tests.support import run_store_cli

pytestmark = pytest.mark.timeout(120)

NO_KEYRING = {"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}


def test_rekey_reseals_every_entry_and_a_second_run_changes_nothing(tmp_path: Path) -> None:
    old, new = generate_key(), generate_key()
    store = EncryptedStore(DirectoryStore(tmp_path / "s"), old)
    values = {
        atproto_name(f"did:plc:u{n}"): atproto_session(f"did:plc:u{n}", refresh_expires_in=HOUR)
        for n in range(3)
    }
    for name, data in values.items():
        store.put(name, data)
    url = f"dir:{tmp_path / 's'}?encrypt=1"
    env = {**NO_KEYRING, "SESSIONKEEPER_KEY": old, "SESSIONKEEPER_NEW_KEY": new}

    first = run_store_cli("rekey", "--store", url, env=env)
    assert first.returncode == 0, first.stderr
    assert "3 rekeyed" in first.stdout
    assert old not in first.stdout + first.stderr and new not in first.stdout + first.stderr
    with_new = EncryptedStore(DirectoryStore(tmp_path / "s"), new)
    assert {name: with_new.get(name) for name in values} == values
    with pytest.raises(DecryptionError):
        store.get(next(iter(values)))

    again = run_store_cli("rekey", "--store", url, "--json", env={**env, "SESSIONKEEPER_KEY": new})
    assert again.returncode == 2  # the new key is the old key now: nothing to rotate
    assert json.loads(again.stdout)["error"] == "usage"
    strangers = {"SESSIONKEEPER_KEY": generate_key(), "SESSIONKEEPER_NEW_KEY": generate_key()}
    second = run_store_cli("rekey", "--store", url, "--json", env={**env, **strangers})
    assert second.returncode == 1
    assert json.loads(second.stdout)["counts"]["failed"] == 3  # a wrong old key touches nothing
    assert {name: with_new.get(name) for name in values} == values

    no_new = run_store_cli("rekey", "--store", url, env={**NO_KEYRING, "SESSIONKEEPER_KEY": new})
    assert no_new.returncode == 2 and "set SESSIONKEEPER_NEW_KEY" in no_new.stderr


WRITER = """
    import sys
    from sessionkeeper.stores import DirectoryStore, EncryptedStore
    from sessionkeeper.stores.errors import DecryptionError

    path, key, new_key, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    names = sys.argv[5:]
    inner = DirectoryStore(path)
    store, rekeyed = EncryptedStore(inner, key), EncryptedStore(inner, new_key)

    def current(name):
        try:
            return store.get(name)
        except DecryptionError:
            return rekeyed.get(name)

    for n in range(1, rounds + 1):
        for name in names:
            with inner.lock(name):
                # The value must be this writer's last one, under either key: a rekey
                # that wrote back what it read before this writer's write shows here.
                seen = current(name)
                if seen != str(n - 1).encode():
                    print(f"LOST {name}: {seen!r} after writing {n - 1}", flush=True)
                    sys.exit(1)
                store.put(name, str(n).encode())  # the bot still has the old key
    print("done", flush=True)
"""


def test_rekey_beside_a_writer_loses_no_write_and_leaves_no_entry_unreadable(
    tmp_path: Path,
) -> None:
    old, new = generate_key(), generate_key()
    path = tmp_path / "s"
    names = [f"entry-{n}" for n in range(6)]
    store = EncryptedStore(DirectoryStore(path), old)
    for name in names:
        store.put(name, b"0")
    rounds = 150
    writer = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(WRITER), str(path), old, new, str(rounds), *names],
        stdout=subprocess.PIPE,
        text=True,
    )
    env = {**NO_KEYRING, "SESSIONKEEPER_KEY": old, "SESSIONKEEPER_NEW_KEY": new}
    url = f"dir:{path}?encrypt=1"
    runs = 0
    while writer.poll() is None or runs == 0:
        result = run_store_cli("rekey", "--store", url, "--json", env=env)
        assert result.returncode == 0, result.stdout + result.stderr
        runs += 1
    assert writer.communicate(timeout=60)[0].strip() == "done"

    # Each entry holds the writer's last value, under one key or the other: a rekey that
    # read outside the lock would have put an older value back over a newer write.
    keyed = {
        "old": EncryptedStore(DirectoryStore(path), old),
        "new": EncryptedStore(DirectoryStore(path), new),
    }
    for name in names:
        values = []
        for candidate in keyed.values():
            try:
                values.append(candidate.get(name))
            except DecryptionError:
                continue
        assert values == [str(rounds).encode()], name

    final = run_store_cli("rekey", "--store", url, "--json", env=env)
    assert final.returncode == 0
    assert all(keyed["new"].get(name) == str(rounds).encode() for name in names)


def test_rekey_keeps_the_stores_other_options(redis_server: RedisServer) -> None:
    """``?encrypt=1&prefix=app:`` re-seals the entries under that prefix, not another namespace."""
    old, new = generate_key(), generate_key()
    prefix = "rekey-options:"
    store = EncryptedStore(RedisStore(redis_server.url, prefix=prefix), old)
    name = atproto_name("did:plc:kept")
    data = atproto_session("did:plc:kept", refresh_expires_in=HOUR)
    store.put(name, data)
    url = f"{redis_server.url}?encrypt=1&prefix={prefix}"
    env = {**NO_KEYRING, "SESSIONKEEPER_KEY": old, "SESSIONKEEPER_NEW_KEY": new}
    done = run_store_cli("rekey", "--store", url, "--json", env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["counts"]["rekeyed"] == 1
    assert EncryptedStore(RedisStore(redis_server.url, prefix=prefix), new).get(name) == data


def test_with_encryption_keeps_every_other_option() -> None:
    url = "redis://h:6379/0?encrypt=1&prefix=app:&lease=30"
    assert parse_store_url(with_encryption(url, False)).params == {"prefix": "app:", "lease": "30"}
    assert not parse_store_url(with_encryption(url, False)).encrypt
    assert parse_store_url(with_encryption("dir:./s", True)).encrypt
    assert with_encryption("dir:./s?encrypt=1", False) == "dir:./s"
