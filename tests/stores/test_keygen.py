"""``sessionkeeper store keygen``: keys for encrypted stores, printed or kept in the keyring."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sessionkeeper.stores import EncryptedStore, MemoryStore
from tests.stores.test_keyring import FILE_ENV
from tests.support import REPO


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sessionkeeper", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
        check=False,
    )


def test_keygen_prints_a_key_an_encrypted_store_accepts() -> None:
    result = run(["store", "keygen"], dict(os.environ))
    assert result.returncode == 0, result.stderr
    key = result.stdout.strip()
    store = EncryptedStore(MemoryStore(), key)
    store.put("k", b"v")
    assert store.get("k") == b"v"
    assert run(["store", "keygen"], dict(os.environ)).stdout.strip() != key


def test_a_saved_key_serves_encrypted_store_urls(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if key != "SESSIONKEEPER_KEY"} | {
        "PYTHON_KEYRING_BACKEND": "tests.stores.test_keyring.FileKeyring",
        FILE_ENV: str(tmp_path / "keyring.json"),
        "PYTHONPATH": str(REPO),
    }
    saved = run(["store", "keygen", "--save"], env)
    assert saved.returncode == 0, saved.stderr
    assert "saved a new key" in saved.stdout
    script = (
        "import sys; from sessionkeeper.stores import open_store; "
        "s = open_store(sys.argv[1]); s.put('k', b'secret'); print(s.get('k').decode())"
    )
    url = f"dir:{tmp_path / 'store'}?encrypt=1"
    result = subprocess.run(
        [sys.executable, "-c", script, url], capture_output=True, text=True, env=env, check=False
    )
    assert result.stdout.strip() == "secret", result.stderr
    assert (tmp_path / "store" / "k").read_bytes().startswith(b"SKE1")


def test_keygen_save_without_a_usable_keyring_fails_clearly() -> None:
    env = dict(os.environ) | {"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    result = run(["store", "keygen", "--save"], env)
    assert result.returncode == 1
    assert "cannot save the key in the keyring" in result.stderr
