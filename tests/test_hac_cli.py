"""The ``hac`` command line as a subprocess, with HOME and config in temp dirs, against FakeHac."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sessionkeeper.cli.config import ConfigError, load_config
from sessionkeeper.hac import BasicAuthHandler, HacClient
from sessionkeeper.hac.session import SessionManager
from sessionkeeper.testing.fake_hac import FakeHac

pytestmark = pytest.mark.timeout(120)

REPO = Path(__file__).resolve().parent.parent
GROOVY = "POST /console/scripting/execute"
FILE_KEYRING = "tests.test_keyring_store.FileKeyring"
FILE_KEYRING_ENV = "SESSIONKEEPER_TEST_KEYRING_FILE"


@pytest.fixture
def fake() -> Iterator[FakeHac]:
    with FakeHac(route="node1") as server:
        yield server


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


def run_hac(
    home: Path,
    *args: str,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m sessionkeeper hac ARGS`` with a clean environment."""
    clean = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("HAC_", "SESSIONKEEPER_", "PYTHON_KEYRING"))
    }
    clean.update(
        HOME=str(home),
        COLUMNS="200",
        PYTHONPATH=str(REPO),
        PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
    )
    clean.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "sessionkeeper", "hac", *args],
        env=clean,
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def write_config(home: Path, text: str) -> Path:
    path = home / ".config" / "hac-client" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def cache(home: Path) -> SessionManager:
    return SessionManager(home / ".cache" / "hac-client")


def test_login_then_a_warm_groovy_run_needs_no_password(fake: FakeHac, home: Path) -> None:
    first = run_hac(home, "--url", fake.url, "-u", "admin", "login", env={"HAC_PASSWORD": "nimda"})
    assert first.returncode == 0, first.stderr
    assert "Logged in: admin" in first.stdout
    assert fake.logins == 1
    fake.reset_counts()
    warm = run_hac(home, "--url", fake.url, "-u", "admin", "groovy", "println 'hi'\nreturn 42")
    assert warm.returncode == 0, warm.stderr
    assert warm.stdout == "hi\n42\n"
    assert dict(fake.counts) == {GROOVY: 1}
    again = run_hac(home, "--url", fake.url, "-u", "admin", "login")
    assert again.returncode == 0
    assert "Using the cached session" in again.stdout


def test_groovy_failure_exits_1_and_json_output_is_parseable(fake: FakeHac, home: Path) -> None:
    env = {"HAC_USERNAME": "admin", "HAC_PASSWORD": "nimda"}
    failed = run_hac(
        home, "--url", fake.url, "groovy", 'throw new RuntimeException("boom")', env=env
    )
    assert failed.returncode == 1
    assert "RuntimeException: boom" in failed.stderr
    as_json = run_hac(home, "--url", fake.url, "groovy", "--json", "--commit", "return 5", env=env)
    assert as_json.returncode == 0, as_json.stderr
    payload = json.loads(as_json.stdout)
    assert payload["execution_result"] == "5"
    assert payload["commit_mode"] is True
    assert payload["success"] is True
    assert fake.groovy_runs[-1].commit


def test_groovy_reads_scripts_from_files_and_stdin(
    fake: FakeHac, home: Path, tmp_path: Path
) -> None:
    env = {"HAC_USERNAME": "admin", "HAC_PASSWORD": "nimda"}
    script = tmp_path / "hello.groovy"
    script.write_text("return 'from file'")
    from_file = run_hac(home, "--url", fake.url, "groovy", "-f", str(script), env=env)
    assert from_file.stdout == "from file\n"
    from_stdin = run_hac(home, "--url", fake.url, "groovy", env=env, stdin="return 'piped'")
    assert from_stdin.stdout == "piped\n"
    nothing = run_hac(home, "--url", fake.url, "groovy", env=env)
    assert nothing.returncode == 2
    assert "no script" in nothing.stderr


def test_wrong_or_missing_password_exits_3(fake: FakeHac, home: Path) -> None:
    wrong = run_hac(home, "--url", fake.url, "-u", "admin", "-p", "bad-pass", "groovy", "return 1")
    assert wrong.returncode == 3
    assert "Login failed for user 'admin'" in wrong.stderr
    assert "bad-pass" not in wrong.stderr + wrong.stdout
    missing = run_hac(home, "--url", fake.url, "-u", "admin", "groovy", "return 1")
    assert missing.returncode == 3
    assert "HAC_PASSWORD" in missing.stderr
    assert fake.logins == 0


def test_usage_problems_exit_2(fake: FakeHac, home: Path) -> None:
    no_target = run_hac(home, "-u", "admin", "groovy", "return 1")
    assert no_target.returncode == 2
    assert "--url" in no_target.stderr
    no_user = run_hac(home, "--url", fake.url, "groovy", "return 1")
    assert no_user.returncode == 2
    assert "HAC_USERNAME" in no_user.stderr
    write_config(home, '[environments.local.endpoints.hac]\nurl = "http://127.0.0.1:9"\n')
    unknown_env = run_hac(home, "--env", "prod", "-u", "admin", "groovy", "return 1")
    assert unknown_env.returncode == 2
    assert "'prod'" in unknown_env.stderr
    env = {"HAC_USERNAME": "admin", "HAC_PASSWORD": "nimda"}
    both = run_hac(home, "--url", fake.url, "flexsearch", "x", "--csv", "--json", env=env)
    assert both.returncode == 2
    bad_option = run_hac(home, "--url", fake.url, "groovy", "--no-such-option", env=env)
    assert bad_option.returncode == 2
    assert fake.total_requests == 0


def test_flexsearch_prints_tables_csv_and_json_and_fails_on_query_errors(
    fake: FakeHac, home: Path
) -> None:
    env = {"HAC_USERNAME": "admin", "HAC_PASSWORD": "nimda"}
    query = "SELECT {code}, {name} FROM {Product}"
    table = run_hac(home, "--url", fake.url, "flexsearch", query, env=env)
    assert table.returncode == 0, table.stderr
    assert "5 row(s)" in table.stdout
    assert 'Lens <b>&"Pro"' in table.stdout
    as_csv = run_hac(home, "--url", fake.url, "flexsearch", query, "--csv", "--max", "2", env=env)
    assert as_csv.stdout.splitlines() == ["p_code,p_name", "P-1000,Camera", "P-1001,Tripod"]
    as_json = run_hac(home, "--url", fake.url, "flexsearch", "SELECT p_code FROM products", "--sql",
                      "--json", env=env)  # fmt: skip
    assert json.loads(as_json.stdout)["result_count"] == 5
    broken = run_hac(home, "--url", fake.url, "flexsearch", "SELECT {x} FROM {Nope}", env=env)
    assert broken.returncode == 1
    assert "FlexibleSearchException" in broken.stderr
    assert fake.logins == 1


def test_impex_import_validation_and_failures(fake: FakeHac, home: Path, tmp_path: Path) -> None:
    env = {"HAC_USERNAME": "admin", "HAC_PASSWORD": "nimda"}
    good = tmp_path / "good.impex"
    good.write_text("INSERT_UPDATE Title;code[unique=true]\n;mr\n")
    bad = tmp_path / "bad.impex"
    bad.write_text("INSERT_UPDATE NoSuchType;code[unique=true]\n;x\n")
    imported = run_hac(home, "--url", fake.url, "impex", str(good), "--enable-code-execution",
                       env=env)  # fmt: skip
    assert imported.returncode == 0, imported.stderr
    assert "Import finished successfully" in imported.stdout
    assert fake.last_impex is not None and fake.last_impex.enable_code_execution
    validated = run_hac(home, "--url", fake.url, "impex", str(good), "--validate-only", env=env)
    assert validated.returncode == 0
    assert "Import script is valid" in validated.stdout
    failed = run_hac(home, "--url", fake.url, "impex", str(bad), env=env)
    assert failed.returncode == 1
    assert "Import has encountered problems." in failed.stderr
    piped = run_hac(home, "--url", fake.url, "impex", "-", "--validation", "relaxed", env=env,
                    stdin=good.read_text())  # fmt: skip
    assert piped.returncode == 0
    assert fake.last_impex.validation_mode == "IMPORT_RELAXED"
    bogus = run_hac(home, "--url", fake.url, "impex", str(good), "--validation", "bogus", env=env)
    assert bogus.returncode == 2


def test_update_commands_show_data_patches_and_follow_the_log(fake: FakeHac, home: Path) -> None:
    env = {"HAC_USERNAME": "admin", "HAC_PASSWORD": "nimda"}
    fake.update_step = 0.05
    data = run_hac(home, "--url", fake.url, "update", "data", "--json", env=env)
    assert data.returncode == 0, data.stderr
    assert "cchpatches" in [pd["name"] for pd in json.loads(data.stdout)["project_datas"]]
    patches = run_hac(home, "--url", fake.url, "update", "patches", env=env)
    assert "Validation constraints" in patches.stdout
    run = run_hac(home, "--url", fake.url, "update", "run", "--patch", "cchpatches_Patch_MVP=yes",
                  "--follow", "--interval", "0.05", env=env)  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "Updating the type system (schema)" in run.stdout
    assert run.stdout.rstrip().endswith("Update finished")
    log = run_hac(home, "--url", fake.url, "update", "log", env=env)
    assert "Update finished" in log.stdout
    bad_patch = run_hac(home, "--url", fake.url, "update", "run", "--patch", "nonsense", env=env)
    assert bad_patch.returncode == 2
    assert fake.logins == 1


def test_sessions_list_show_clear_and_clear_all(fake: FakeHac, home: Path) -> None:
    env = {"HAC_USERNAME": "admin", "HAC_PASSWORD": "nimda"}
    assert run_hac(home, "--url", fake.url, "login", env=env).returncode == 0
    assert run_hac(home, "--url", fake.url, "--env", "qa", "login", env=env).returncode == 0
    cached = cache(home).load_session(fake.url, "admin", "qa")
    assert cached is not None
    listed = run_hac(home, "sessions", "list", "--json")
    sessions = json.loads(listed.stdout)
    assert sorted(s["environment"] for s in sessions) == ["local", "qa"]
    table = run_hac(home, "sessions", "list")
    assert "2 cached HAC session(s)" in table.stdout
    shown = run_hac(home, "--url", fake.url, "--env", "qa", "sessions", "show", "--json", env=env)
    assert json.loads(shown.stdout)["environment"] == "qa"
    everything = listed.stdout + table.stdout + shown.stdout
    assert cached.session_id not in everything
    assert cached.csrf_token not in everything
    cleared = run_hac(home, "--url", fake.url, "--env", "qa", "sessions", "clear", env=env)
    assert "Removed 1 session" in cleared.stdout
    assert cache(home).load_session(fake.url, "admin", "qa") is None
    missing = run_hac(home, "--url", fake.url, "--env", "qa", "sessions", "show", env=env)
    assert missing.returncode == 1
    all_cleared = run_hac(home, "sessions", "clear-all")
    assert "Removed 1 session(s)" in all_cleared.stdout
    assert cache(home).list_sessions() == []


def test_config_environments_and_per_environment_credentials(fake: FakeHac, home: Path) -> None:
    config = write_config(
        home,
        f"""
default_environment = "local"

[environments.local.endpoints.hac]
url = "http://127.0.0.1:9"

[environments.qa.endpoints.hac]
url = "{fake.url}"
timeout = 10

[environments.qa.endpoints.admin]
url = "{fake.url}/hac/"
username = "admin"
""",
    )
    env = {"HAC_QA_USERNAME": "admin", "HAC_QA_PASSWORD": "nimda", "HAC_PASSWORD": "wrong"}
    qa = run_hac(home, "--env", "qa", "groovy", "return 'qa'", env=env)
    assert qa.returncode == 0, qa.stderr
    assert qa.stdout == "qa\n"
    # The original hac-client CLI's cache key: environment/endpoint.
    assert cache(home).load_session(fake.url, "admin", "qa/hac") is not None
    endpoint = run_hac(home, "-e", "qa", "--endpoint", "admin", "groovy", "return 'ep'", env=env)
    assert endpoint.stdout == "ep\n", endpoint.stderr
    assert cache(home).load_session(fake.url + "/hac", "admin", "qa/admin") is not None
    moved = home / "elsewhere.toml"
    config.rename(moved)
    via_env = run_hac(
        home, "--env", "qa", "groovy", "return 1", env={**env, "HAC_CONFIG": str(moved)}
    )
    assert via_env.returncode == 0, via_env.stderr
    via_option = run_hac(home, "--config", str(moved), "-e", "qa", "groovy", "return 1", env=env)
    assert via_option.returncode == 0, via_option.stderr
    assert fake.logins == 2


def test_sessions_variables_and_config_of_the_original_cli_serve_us(
    fake: FakeHac, home: Path
) -> None:
    config = home / "original.toml"
    config.write_text(
        f"""
default_environment = "dev"

[environments.dev]
default_endpoint = "node2"

[environments.dev.endpoints.node1]
url = "http://127.0.0.1:9"

[environments.dev.endpoints.node2]
url = "{fake.url}"
"""
    )
    # What `hac session start dev` of the original CLI leaves in the cache.
    with HacClient(
        fake.url,
        BasicAuthHandler("admin", "nimda"),
        environment="dev/node2",
        session_manager=cache(home),
    ) as client:
        client.login()
    fake.reset_counts()
    env = {"HAC_CLIENT_CONFIG_PATH": str(config), "HAC_USERNAME_DEV": "admin"}
    warm = run_hac(home, "groovy", "return 'warm'", env=env)
    assert warm.stdout == "warm\n", warm.stderr
    assert dict(fake.counts) == {GROOVY: 1}
    cache(home).clear_all_sessions()
    cold = run_hac(home, "groovy", "return 'cold'", env={**env, "HAC_PASSWORD_DEV_NODE2": "nimda"})
    assert cold.stdout == "cold\n", cold.stderr
    assert fake.logins == 1  # since the reset: the cold run's own login
    assert cache(home).load_session(fake.url, "admin", "dev/node2") is not None


def test_config_files_are_validated(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    assert load_config(path).environments == {}
    path.write_text('[environments.a.endpoints.hac]\nurl = "https://h"\npassword = "x"\n')
    with pytest.raises(ConfigError, match="passwords do not belong"):
        load_config(path)
    path.write_text("not toml [")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)
    path.write_text('[environments.a.endpoints.hac]\nurl = "https://h"\ntimeout = -1\n')
    with pytest.raises(ConfigError, match="timeout"):
        load_config(path)
    path.write_text(
        'default_environment = "a"\n[environments.a.endpoints.hac]\nurl = "https://h"\n'
    )
    config = load_config(path)
    assert config.endpoint("a") == ("hac", config.environments["a"]["hac"])
    path.write_text(
        '[environments.a]\ndefault_endpoint = "b"\n[environments.a.endpoints.hac]\nurl = "https://h"\n'
    )
    with pytest.raises(ConfigError, match="default_endpoint"):
        load_config(path)
    assert config.environments["a"]["hac"].timeout == 30


def test_save_password_uses_the_os_keyring_and_never_a_file(
    fake: FakeHac, home: Path, tmp_path: Path
) -> None:
    keyring_file = tmp_path / "keyring.json"
    env = {"PYTHON_KEYRING_BACKEND": FILE_KEYRING, FILE_KEYRING_ENV: str(keyring_file)}
    saved = run_hac(home, "--url", fake.url, "-u", "admin", "login", "--save-password",
                    env={**env, "HAC_PASSWORD": "nimda"})  # fmt: skip
    assert saved.returncode == 0, saved.stderr
    assert "saved in the OS keyring" in saved.stderr
    fake.kill_all_sessions()
    relogin = run_hac(home, "--url", fake.url, "-u", "admin", "groovy", "return 'k'", env=env)
    assert relogin.returncode == 0, relogin.stderr
    assert relogin.stdout == "k\n"
    assert fake.logins == 2
    for path in home.rglob("*"):
        if path.is_file():
            assert b"nimda" not in path.read_bytes(), path


def test_store_option_puts_sessions_where_it_says(
    fake: FakeHac, home: Path, tmp_path: Path
) -> None:
    env = {"HAC_USERNAME": "admin", "HAC_PASSWORD": "nimda"}
    store_dir = tmp_path / "sessions"
    result = run_hac(home, "--url", fake.url, "--store", f"dir:{store_dir}", "groovy", "return 1",
                     env=env)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert [p.name for p in store_dir.iterdir() if p.name.startswith("session_")]
    assert not (home / ".cache" / "hac-client").exists() or cache(home).list_sessions() == []
    sqlite = run_hac(home, "--url", fake.url, "groovy", "return 2",
                     env={**env, "SESSIONKEEPER_STORE": f"sqlite:{tmp_path / 's.db'}"})  # fmt: skip
    assert sqlite.returncode == 0, sqlite.stderr
    assert (tmp_path / "s.db").exists()


def test_logout_ends_the_server_session_and_the_cache(fake: FakeHac, home: Path) -> None:
    env = {"HAC_USERNAME": "admin", "HAC_PASSWORD": "nimda"}
    assert run_hac(home, "--url", fake.url, "login", env=env).returncode == 0
    assert fake.active_sessions() == 1
    out = run_hac(home, "--url", fake.url, "logout", env=env)
    assert out.returncode == 0, out.stderr
    assert fake.active_sessions() == 0
    assert cache(home).list_sessions() == []


def test_the_hac_console_script_is_installed(home: Path) -> None:
    script = Path(sys.executable).parent / "hac"
    if not script.exists():
        pytest.skip("the hac console script is not installed in this environment")
    result = subprocess.run(
        [str(script), "--help"],
        env={**os.environ, "HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0
    assert "groovy" in result.stdout


def test_verbose_logging_shows_what_happens_but_no_secret(fake: FakeHac, home: Path) -> None:
    env = {"HAC_USERNAME": "admin", "HAC_PASSWORD": "nimda"}
    first = run_hac(home, "-v", "--url", fake.url, "groovy", "return 1", env=env)
    assert first.returncode == 0, first.stderr
    assert "Authenticated to HAC" in first.stderr
    fake.kill_all_sessions()
    second = run_hac(home, "-v", "--url", fake.url, "groovy", "return 2", env=env)
    assert "no longer valid" in second.stderr
    cached = cache(home).load_session(fake.url, "admin", "local")
    assert cached is not None
    output = first.stdout + first.stderr + second.stdout + second.stderr
    for secret in ("nimda", cached.session_id, cached.csrf_token):
        assert secret not in output


def test_credentials_are_prompted_for_only_on_a_terminal(fake: FakeHac, home: Path) -> None:
    import pty
    import select

    main_fd, terminal_fd = pty.openpty()
    try:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("HAC_", "SESSIONKEEPER_", "PYTHON_KEYRING"))
        }
        env.update(HOME=str(home), PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")
        # A new session has no controlling terminal, so getpass reads the pty on stdin.
        prompted = subprocess.Popen(
            [sys.executable, "-m", "sessionkeeper", "hac", "--url", fake.url, "login"],
            stdin=terminal_fd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,
        )
        os.write(main_fd, b"admin\n")
        # getpass flushes pending terminal input before prompting: answer the prompt.
        assert prompted.stderr is not None
        seen = b""
        while b"password" not in seen:
            ready, _, _ = select.select([prompted.stderr], [], [], 60)
            assert ready, f"no password prompt; stderr so far: {seen!r}"
            chunk = os.read(prompted.stderr.fileno(), 1024)
            assert chunk, f"the command ended without prompting: {seen!r}"
            seen += chunk
        os.write(main_fd, b"nimda\n")
        stdout, stderr = prompted.communicate(timeout=90)
        stderr = seen + stderr
    finally:
        os.close(main_fd)
        os.close(terminal_fd)
    assert prompted.returncode == 0, stderr
    assert b"Logged in: admin" in stdout
    assert b"nimda" not in stdout + stderr
    assert fake.logins == 1
