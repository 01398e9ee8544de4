"""KeyringStore with real keyring backends: in-test ones, the null and fail backends."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import keyring.backend
import keyring.backends.fail
import keyring.backends.null
import keyring.errors
import pytest
from filelock import FileLock

from sessionkeeper.stores import Store, StoreError, StoreUnavailableError
from sessionkeeper.stores.keyring import CHUNK_CHARS, KeyringStore
from sessionkeeper.testing.store_conformance import SharedStoreConformance

pytestmark = pytest.mark.timeout(120)

FILE_ENV = "SESSIONKEEPER_TEST_KEYRING_FILE"


class DictKeyring(keyring.backend.KeyringBackend):
    """A keyring in a dict, refusing secrets over Windows Credential Manager's size."""

    priority = 1
    limit = 1280  # characters: 2560 bytes of UTF-16

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        if len(password) > self.limit:
            raise keyring.errors.PasswordSetError(f"secret of {len(password)} chars is too long")
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.entries.pop((service, username), None) is None:
            raise keyring.errors.PasswordDeleteError("no such password")


class FileKeyring(keyring.backend.KeyringBackend):
    """A keyring in a JSON file named by an environment variable, shared by processes."""

    priority = 1

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]

    def _path(self) -> Path:
        return Path(os.environ[FILE_ENV])

    def _load(self) -> dict[str, str]:
        try:
            data: dict[str, str] = json.loads(self._path().read_text())
        except FileNotFoundError:
            return {}
        return data

    def _save(self, data: dict[str, str]) -> None:
        temp = self._path().with_suffix(".tmp")
        temp.write_text(json.dumps(data))
        os.replace(temp, self._path())

    def get_password(self, service: str, username: str) -> str | None:
        with FileLock(str(self._path()) + ".lock"):
            return self._load().get(f"{service}\0{username}")

    def set_password(self, service: str, username: str, password: str) -> None:
        with FileLock(str(self._path()) + ".lock"):
            data = self._load()
            data[f"{service}\0{username}"] = password
            self._save(data)

    def delete_password(self, service: str, username: str) -> None:
        with FileLock(str(self._path()) + ".lock"):
            data = self._load()
            if data.pop(f"{service}\0{username}", None) is None:
                raise keyring.errors.PasswordDeleteError("no such password")
            self._save(data)


class HangingKeyring(DictKeyring):
    """A backend whose every read blocks, like a keychain waiting for an unlock dialog."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def get_password(self, service: str, username: str) -> str | None:
        self.release.wait(60)
        return None


class BrokenKeyring(DictKeyring):
    """A backend that fails every call, like Secret Service without a session bus."""

    def get_password(self, service: str, username: str) -> str | None:
        raise keyring.errors.KeyringError("org.freedesktop.DBus.Error.ServiceUnknown")


class TestKeyringStoreConformance(SharedStoreConformance):
    @pytest.fixture
    def store(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
        monkeypatch.setenv(FILE_ENV, str(tmp_path / "keyring.json"))
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
        monkeypatch.setenv("PYTHON_KEYRING_BACKEND", f"{__name__}.FileKeyring")
        return KeyringStore("sessionkeeper-test", backend=FileKeyring())

    @pytest.fixture
    def store_url(self, store: Store) -> str:
        return "keyring:sessionkeeper-test"


def make_store(tmp_path: Path, backend: keyring.backend.KeyringBackend) -> KeyringStore:
    return KeyringStore("svc", backend=backend, lock_dir=tmp_path / "locks")


def test_large_values_are_chunked_below_the_windows_limit(tmp_path: Path) -> None:
    backend = DictKeyring()
    store = make_store(tmp_path, backend)
    value = os.urandom(50_000)
    store.put("big", value)
    assert store.get("big") == value
    assert all(len(secret) <= CHUNK_CHARS for secret in backend.entries.values())
    chunks = [user for (_svc, user) in backend.entries if user.startswith(".chunk:")]
    assert len(chunks) >= 50_000 * 4 // 3 // CHUNK_CHARS


def test_rewriting_or_deleting_a_chunked_value_leaves_no_chunks_behind(tmp_path: Path) -> None:
    backend = DictKeyring()
    store = make_store(tmp_path, backend)
    store.put("big", os.urandom(10_000))
    store.put("big", os.urandom(20_000))
    store.put("big", b"small now")
    assert store.get("big") == b"small now"
    assert not [u for (_s, u) in backend.entries if u.startswith(".chunk:")]
    store.put("big", os.urandom(10_000))
    assert store.delete("big") is True
    assert set(backend.entries) == {("svc", ".index")}
    assert store.names() == []


def test_index_lists_names_and_grows_past_one_entry(tmp_path: Path) -> None:
    backend = DictKeyring()
    store = make_store(tmp_path, backend)
    names = [f"did_plc_{i:040d}.json" for i in range(60)]  # an index of ~3 KiB
    for name in names:
        store.put(name, b"{}")
    assert store.names() == sorted(names)
    assert backend.entries[("svc", ".index")].startswith("chunks:")
    assert KeyringStore("svc", backend=backend, lock_dir=tmp_path / "l2").names() == sorted(names)


def test_a_listed_name_without_a_value_is_not_reported(tmp_path: Path) -> None:
    backend = DictKeyring()
    store = make_store(tmp_path, backend)
    store.put("a", b"1")
    store.put("b", b"2")
    del backend.entries[("svc", "b")]  # what a crash between value and index leaves
    assert store.names() == ["a"]


def test_services_are_separate(tmp_path: Path) -> None:
    backend = DictKeyring()
    one = KeyringStore("one", backend=backend, lock_dir=tmp_path / "1")
    two = KeyringStore("two", backend=backend, lock_dir=tmp_path / "2")
    one.put("k", b"1")
    assert two.get("k") is None
    assert two.names() == []


def test_foreign_entries_give_a_named_error(tmp_path: Path) -> None:
    backend = DictKeyring()
    store = make_store(tmp_path, backend)
    backend.entries[("svc", "foreign")] = "hunter2"
    with pytest.raises(StoreError, match="not written by sessionkeeper"):
        store.get("foreign")
    backend.entries[("svc", "bad64")] = "b64:!!!"
    with pytest.raises(StoreError, match="not valid base64"):
        store.get("bad64")


def test_the_fail_backend_is_refused_with_the_fix() -> None:
    with pytest.raises(StoreUnavailableError, match=r"fail\.Keyring.*install a keyring backend"):
        KeyringStore("svc", backend=keyring.backends.fail.Keyring())  # type: ignore[no-untyped-call]


def test_the_null_backend_is_refused_because_it_stores_nothing() -> None:
    with pytest.raises(StoreUnavailableError, match="stores nothing"):
        KeyringStore("svc", backend=keyring.backends.null.Keyring())  # type: ignore[no-untyped-call]


def test_a_hanging_backend_is_refused_after_the_probe_timeout() -> None:
    backend = HangingKeyring()
    try:
        with pytest.raises(StoreUnavailableError, match=r"did not answer within 0\.2 s"):
            KeyringStore("svc", backend=backend, probe_timeout=0.2)
    finally:
        backend.release.set()


def test_a_failing_backend_is_refused_naming_the_backend() -> None:
    with pytest.raises(StoreUnavailableError, match="BrokenKeyring failed: KeyringError"):
        KeyringStore("svc", backend=BrokenKeyring())


def test_a_write_the_backend_refuses_is_a_store_unavailable_error(tmp_path: Path) -> None:
    backend = DictKeyring()
    store = make_store(tmp_path, backend)
    backend.limit = 10
    with pytest.raises(StoreUnavailableError, match="failed to write"):
        store.put("k", b"a value longer than ten characters")


NO_BACKEND = """
import sys
from sessionkeeper.stores.url import open_store
from sessionkeeper.stores import StoreUnavailableError
try:
    open_store("keyring:svc")
except StoreUnavailableError as exc:
    print(exc)
    sys.exit(7)
"""


def test_open_store_without_any_backend_fails_fast_with_a_clear_error(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    result = subprocess.run(
        [sys.executable, "-c", NO_BACKEND], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 7, result.stderr
    assert "no keyring backend is available" in result.stdout
    assert "use another store" in result.stdout


def test_open_store_uses_the_configured_backend(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(FILE_ENV, str(tmp_path / "k.json"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    store = KeyringStore("url-svc", backend=FileKeyring())
    store.put("k", b"from the test")
    script = (
        "from sessionkeeper.stores.url import open_store; "
        "print(open_store('keyring:url-svc').get('k').decode())"
    )
    env = {**os.environ, "PYTHON_KEYRING_BACKEND": f"{__name__}.FileKeyring"}
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.stdout.strip() == "from the test", result.stderr


CHUNKED_WRITER = """
import sys
from sessionkeeper.stores.keyring import KeyringStore
from tests.stores.test_keyring import FileKeyring
store = KeyringStore("mix-svc", backend=FileKeyring(), lock_dir=sys.argv[1])
for i in range(int(sys.argv[2])):
    store.put("big", (b"a" if i % 2 else b"b") * 6000)
print("done", flush=True)
"""


def test_a_reader_never_sees_parts_of_two_chunked_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(FILE_ENV, str(tmp_path / "k.json"))
    store = KeyringStore("mix-svc", backend=FileKeyring(), lock_dir=tmp_path / "locks")
    store.put("big", b"b" * 6000)
    writer = subprocess.Popen(
        [sys.executable, "-c", CHUNKED_WRITER, str(tmp_path / "locks"), "40"],
        stdout=subprocess.PIPE,
        text=True,
    )
    reads = 0
    while writer.poll() is None and reads < 2000:
        value = store.get("big")
        assert value in (b"a" * 6000, b"b" * 6000)
        reads += 1
    assert writer.wait(timeout=60) == 0
    assert store.get("big") == b"a" * 6000  # the last of 40 writes
    assert reads > 0


class FlakyKeyring(DictKeyring):
    """A backend whose reads of chosen entries fail, like a keychain locked mid-listing."""

    def __init__(self) -> None:
        super().__init__()
        self.unreadable: set[str] = set()

    def get_password(self, service: str, username: str) -> str | None:
        if username in self.unreadable:
            raise keyring.errors.KeyringError("the keychain was locked")
        return super().get_password(service, username)


def test_a_backend_failing_during_a_listing_is_an_error_not_a_shorter_list(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    backend = FlakyKeyring()
    store = make_store(tmp_path, backend)
    for name in ("a", "b", "c"):
        store.put(name, name.encode())
    backend.entries[("svc", "b")] = "not ours"
    with caplog.at_level("WARNING"):
        assert list(store.items()) == [("a", b"a"), ("c", b"c")]  # foreign data is skipped...
    assert "'b'" in caplog.text and "not written by sessionkeeper" in caplog.text  # ...and said
    backend.unreadable.add("c")
    with pytest.raises(StoreUnavailableError, match="locked"):
        list(store.items())


class MeddlingKeyring(DictKeyring):
    """Each time a reader reads the first chunk of a value, another writer replaces it."""

    def __init__(self) -> None:
        super().__init__()
        self.writer: Callable[[], None] | None = None
        self.threads: list[threading.Thread] = []

    def get_password(self, service: str, username: str) -> str | None:
        value = super().get_password(service, username)
        if self.writer is not None and username.startswith(".chunk:") and ":0:" in username:
            thread = threading.Thread(target=self.writer)
            thread.start()
            self.threads.append(thread)
            thread.join(0.5)  # a writer that must wait for a lock waits; the read goes on
        return value


def test_a_reader_overtaken_by_writers_reads_under_the_lock_instead_of_failing(
    tmp_path: Path,
) -> None:
    backend = MeddlingKeyring()
    reader = make_store(tmp_path, backend)
    writer = make_store(tmp_path, backend)  # its own lock handles, like another process
    values = [b"a" * 6000, b"b" * 6000]
    writer.put("big", values[0])
    writes = iter(range(1, 1000))
    backend.writer = lambda: writer.put("big", values[next(writes) % 2])
    try:
        assert reader.get("big") in values
    finally:
        backend.writer = None
        for thread in backend.threads:
            thread.join(30)
    assert reader.get("big") in values
