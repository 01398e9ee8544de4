"""Our ``hac`` additions as a subprocess (HOME and config in temp dirs) against FakeHac.

What it shares with hac-client-cli 0.3.2 is proven in test_hac_cli_differential.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sessionkeeper.cli.hac.config import ConfigError, load_config
from sessionkeeper.cli.hac.config_edit import ConfigFile
from sessionkeeper.hac.session import SessionManager
from sessionkeeper.testing.fake_hac import FakeHac
from tests.cli.hac.helpers import run_hac, write_config
from tests.support import REPO, missing_component

pytestmark = pytest.mark.timeout(120)

GROOVY = "POST /console/scripting/execute"
FILE_KEYRING = "tests.stores.test_keyring.FileKeyring"
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


def cache(home: Path) -> SessionManager:
    return SessionManager(home / ".cache" / "hac-client")


LOGIN = {"HAC_USERNAME": "admin", "HAC_PASSWORD": "nimda"}
KEY = "local/hac"  # the session key with --url and no -e/-n


def test_session_start_then_a_warm_groovy_run_needs_no_password(fake: FakeHac, home: Path) -> None:
    first = run_hac(
        home, "--url", fake.url, "session", "start", "local", "-u", "admin", stdin="nimda\n"
    )
    assert first.returncode == 0, first.stderr
    assert "Session started for 'local/hac'" in first.stdout
    assert fake.logins == 1
    fake.reset_counts()
    warm = run_hac(home, "--url", fake.url, "groovy", "println 'hi'\nreturn 42")
    assert warm.returncode == 0, warm.stderr
    assert (warm.stdout, warm.stderr.strip()) == ("42\n", "hi")
    assert dict(fake.counts) == {GROOVY: 1}


def test_a_command_logs_in_on_demand_when_a_password_is_at_hand(fake: FakeHac, home: Path) -> None:
    cold = run_hac(home, "--url", fake.url, "groovy", "return 'cold'", env=LOGIN)
    assert (cold.returncode, cold.stdout) == (0, "cold\n"), cold.stderr
    assert cache(home).load_session(fake.url, "admin", KEY) is not None
    fake.kill_all_sessions()
    healed = run_hac(home, "--url", fake.url, "groovy", "return 'healed'", env=LOGIN)
    assert healed.stdout == "healed\n", healed.stderr
    assert fake.logins == 2


def test_groovy_failure_exits_1_and_json_is_printed_even_then(fake: FakeHac, home: Path) -> None:
    failed = run_hac(
        home, "--url", fake.url, "groovy", 'throw new RuntimeException("boom")', "--json", env=LOGIN
    )
    assert failed.returncode == 1
    assert "RuntimeException: boom" in failed.stderr
    payload = json.loads(failed.stdout)
    assert payload["success"] is False and "boom" in payload["stacktrace_text"]
    as_json = run_hac(home, "--url", fake.url, "groovy", "--json", "-c", "return 5", env=LOGIN)
    payload = json.loads(as_json.stdout)
    assert (payload["execution_result"], payload["commit_mode"]) == ("5", True)
    assert fake.groovy_runs[-1].commit


def test_groovy_reads_scripts_from_groovy_files_and_stdin(
    fake: FakeHac, home: Path, tmp_path: Path
) -> None:
    script = tmp_path / "hello.groovy"
    script.write_text("return 'from file'")
    from_file = run_hac(home, "--url", fake.url, "groovy", str(script), env=LOGIN)
    assert from_file.stdout == "from file\n"
    assert fake.groovy_runs[-1].script == "return 'from file'"
    from_stdin = run_hac(home, "--url", fake.url, "groovy", env=LOGIN, stdin="return 'piped'")
    assert from_stdin.stdout == "piped\n"
    dash = run_hac(home, "--url", fake.url, "groovy", "-", env=LOGIN, stdin="return 'dash'")
    assert dash.stdout == "dash\n"
    missing = run_hac(home, "--url", fake.url, "groovy", "nope.groovy", env=LOGIN)
    assert missing.returncode == 1
    assert "Script file not found: nope.groovy" in missing.stderr


def test_wrong_or_missing_password_exits_1_without_the_secret(fake: FakeHac, home: Path) -> None:
    wrong = run_hac(home, "--url", fake.url, "-u", "admin", "-p", "bad-pass", "groovy", "return 1")
    assert wrong.returncode == 1
    assert "Login failed for user 'admin'" in wrong.stderr
    assert "bad-pass" not in wrong.stderr + wrong.stdout
    missing = run_hac(home, "--url", fake.url, "-u", "admin", "groovy", "return 1")
    assert missing.returncode == 1
    assert "No active session for 'local/hac'" in missing.stderr
    assert fake.logins == 0


def test_usage_problems_exit_2_and_reach_no_server(fake: FakeHac, home: Path) -> None:
    bad_option = run_hac(home, "--url", fake.url, "groovy", "--no-such-option", env=LOGIN)
    assert bad_option.returncode == 2
    no_query = run_hac(home, "--url", fake.url, "flexsearch", env=LOGIN)
    assert no_query.returncode == 2
    not_a_number = run_hac(home, "--url", fake.url, "flexsearch", "x", "-m", "many", env=LOGIN)
    assert not_a_number.returncode == 2
    assert "'many' is not a valid integer" in not_a_number.stderr
    no_script = run_hac(home, "--url", fake.url, "groovy", env=LOGIN, stdin="  ")
    assert no_script.returncode == 2
    assert "no script" in no_script.stderr
    assert fake.total_requests == 0


def test_flexsearch_extras_and_quoted_csv(fake: FakeHac, home: Path) -> None:
    rows = run_hac(
        home,
        "--url",
        fake.url,
        "flexsearch",
        "SELECT {pk}, {uid} FROM {User}",
        "--max",
        "1",
        "--as-user",
        "admin",
        env=LOGIN,
    )
    assert rows.returncode == 0, rows.stderr
    assert len(rows.stdout.splitlines()) == 2
    failed = run_hac(
        home, "--url", fake.url, "flexsearch", "SELECT {x} FROM {Nope}", "--json", env=LOGIN
    )
    assert failed.returncode == 1
    assert json.loads(failed.stdout)["success"] is False


def test_impex_import_validation_and_failures(fake: FakeHac, home: Path, tmp_path: Path) -> None:
    good = tmp_path / "good.impex"
    good.write_text("INSERT_UPDATE Title;code[unique=true]\n;mr\n")
    bad = tmp_path / "bad.impex"
    bad.write_text("INSERT_UPDATE NoSuchType;code[unique=true]\n;x\n")
    imported = run_hac(
        home, "--url", fake.url, "impex", "-f", str(good), "--enable-code-execution", env=LOGIN
    )
    assert imported.returncode == 0, imported.stderr
    assert "Import finished successfully" in imported.stdout
    assert fake.last_impex is not None and fake.last_impex.enable_code_execution
    validated = run_hac(home, "--url", fake.url, "impex", str(good), "--validate-only", env=LOGIN)
    assert "Import script is valid" in validated.stdout
    failed = run_hac(home, "--url", fake.url, "impex", "-f", str(bad), env=LOGIN)
    assert failed.returncode == 1
    assert "ERROR: Impex import failed" in failed.stderr
    piped = run_hac(
        home, "--url", fake.url, "impex", "-", "-v", "relaxed", env=LOGIN, stdin=good.read_text()
    )
    assert piped.returncode == 0, piped.stderr
    assert fake.last_impex.validation_mode == "IMPORT_RELAXED"


def test_update_run_follows_the_log_until_it_finishes(fake: FakeHac, home: Path) -> None:
    fake.update_step = 0.05
    data = run_hac(home, "--url", fake.url, "update", "data", "--json", env=LOGIN)
    assert data.returncode == 0, data.stderr
    assert "cchpatches" in [e["name"] for e in json.loads(data.stdout)["extensions"]]
    patches = run_hac(home, "--url", fake.url, "update", "patches", "-q", env=LOGIN)
    assert patches.stdout.split() == ["cchpatches_Patch_MVP", "cchpatches_Patch_Release2"]
    run = run_hac(
        home,
        "--url",
        fake.url,
        "update",
        "run",
        "-p",
        "cchpatches_Patch_MVP",
        "--interval",
        "0.05",
        env=LOGIN,
    )
    assert run.returncode == 0, run.stderr
    assert "not found" not in run.stderr
    assert "Updating the type system (schema)" in run.stdout
    assert run.stdout.rstrip().endswith("Update finished")
    log = run_hac(home, "--url", fake.url, "update", "log", env=LOGIN)
    assert "Update finished" in log.stdout
    bad_param = run_hac(home, "--url", fake.url, "update", "run", "--param", "nonsense", env=LOGIN)
    assert bad_param.returncode == 1
    assert "expected name=value" in bad_param.stderr
    assert fake.logins == 1


def test_sessions_never_show_whole_secrets(fake: FakeHac, home: Path) -> None:
    assert run_hac(home, "--url", fake.url, "groovy", "return 1", env=LOGIN).returncode == 0
    cached = cache(home).load_session(fake.url, "admin", KEY)
    assert cached is not None
    shown = [
        run_hac(home, "--url", fake.url, "session", *args)
        for args in (["list", "-f", "json"], ["show", "local"], ["show", "local", "--json"])
    ]
    everything = "".join(r.stdout + r.stderr for r in shown)
    assert "local/hac" in everything
    assert cached.session_id not in everything
    assert cached.csrf_token not in everything


def test_env_and_endpoint_edits_keep_the_file_valid_and_our_keys(home: Path) -> None:
    config = write_config(
        home, '[environments.qa.endpoints.hac]\nurl = "http://h"\nusername = "deployer"\n'
    )
    env = {"XDG_CONFIG_HOME": str(home / ".config")}
    added = run_hac(home, "env", "add", "odd name", env=env)
    assert added.returncode == 0, added.stderr
    ep = run_hac(home, "endpoint", "add", "odd name", "n 1", "--url", 'http://x/"q"', env=env)
    assert ep.returncode == 0, ep.stderr
    loaded = load_config(config)
    assert loaded.environments["odd name"].endpoints["n 1"].url == 'http://x/"q"'
    assert loaded.environments["qa"].endpoints["hac"].username == "deployer"
    assert not [p for p in config.parent.iterdir() if p.name.startswith(".config-")]
    file = ConfigFile(config)
    with pytest.raises(ConfigError, match="already exists"):
        file.add_environment("qa", set_default=False)


def test_config_files_are_validated(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    missing = load_config(path)
    assert not missing.exists
    assert missing.endpoint(None) == (
        "local",
        "hac",
        missing.environments["local"].endpoints["hac"],
    )
    path.write_text("not toml [")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)
    path.write_text('[environments.a.endpoints.hac]\nurl = "https://h"\ntimeout = -1\n')
    with pytest.raises(ConfigError, match="timeout"):
        load_config(path)
    path.write_text("[environments.a.endpoints.hac]\nignore_ssl = true\n")
    with pytest.raises(ConfigError, match="missing required field 'url'"):
        load_config(path)
    path.write_text(
        '[environments.a.endpoints.one]\nurl = "https://h"\n'
        '[environments.a.endpoints.two]\nurl = "https://i"\n[environments.empty]\n'
    )
    config = load_config(path)
    assert list(config.environments) == ["a"]
    with pytest.raises(ConfigError, match="multiple endpoints but no default"):
        config.endpoint("a")
    assert config.endpoint("a", "two")[2].url == "https://i"


def test_save_password_uses_the_os_keyring_and_never_a_file(
    fake: FakeHac, home: Path, tmp_path: Path
) -> None:
    keyring_file = tmp_path / "keyring.json"
    env = {"PYTHON_KEYRING_BACKEND": FILE_KEYRING, FILE_KEYRING_ENV: str(keyring_file)}
    saved = run_hac(
        home,
        "--url",
        fake.url,
        "session",
        "start",
        "local",
        "-u",
        "admin",
        "--save-password",
        env={**env, "HAC_PASSWORD": "nimda"},
    )
    assert saved.returncode == 0, saved.stderr
    fake.kill_all_sessions()
    relogin = run_hac(home, "--url", fake.url, "groovy", "return 'k'", env=env)
    assert relogin.returncode == 0, relogin.stderr
    assert relogin.stdout == "k\n"
    assert fake.logins == 2
    for path in home.rglob("*"):
        if path.is_file():
            assert b"nimda" not in path.read_bytes(), path


def test_store_option_puts_sessions_where_it_says(
    fake: FakeHac, home: Path, tmp_path: Path
) -> None:
    store_dir = tmp_path / "sessions"
    result = run_hac(
        home, "--url", fake.url, "--store", f"dir:{store_dir}", "groovy", "return 1", env=LOGIN
    )
    assert result.returncode == 0, result.stderr
    assert [p.name for p in store_dir.iterdir() if p.name.startswith("session_")]
    assert not (home / ".cache" / "hac-client").exists() or cache(home).list_sessions() == []
    sqlite = run_hac(
        home,
        "--url",
        fake.url,
        "groovy",
        "return 2",
        env={**LOGIN, "SESSIONKEEPER_STORE": f"sqlite:{tmp_path / 's.db'}"},
    )
    assert sqlite.returncode == 0, sqlite.stderr
    assert (tmp_path / "s.db").exists()


def test_logout_ends_the_server_session_and_the_cache(fake: FakeHac, home: Path) -> None:
    assert run_hac(home, "--url", fake.url, "groovy", "return 1", env=LOGIN).returncode == 0
    assert fake.active_sessions() == 1
    out = run_hac(home, "--url", fake.url, "logout", env=LOGIN)
    assert out.returncode == 0, out.stderr
    assert fake.active_sessions() == 0
    assert cache(home).list_sessions() == []


def test_the_store_variable_is_the_one_the_store_module_reads() -> None:
    from sessionkeeper.cli.hac.context import STORE_ENV
    from sessionkeeper.stores import url

    assert STORE_ENV == url.STORE_ENV


def test_the_hac_console_script_is_installed(home: Path) -> None:
    script = Path(sys.executable).parent / "hac"
    if not script.exists():
        missing_component("the hac console script is not installed in this environment")
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


IMPORTS_PROBE = """
import sys
if sys.argv[1] == "root":
    from sessionkeeper.cli import main
    sys.argv = ["sessionkeeper", "hac", *sys.argv[2:]]
else:
    from sessionkeeper.cli.hac.app import main
    sys.argv = ["hac", *sys.argv[2:]]
try:
    main()
except SystemExit:
    pass
heavy = sorted({m.split(".")[0] + ("." + m.split(".")[1] if m.startswith("sessionkeeper.") else "")
                for m in sys.modules if m.startswith(("rich", "sessionkeeper.atproto", "pydantic",
                                                      "cryptography"))})
print("HEAVY=" + ",".join(heavy), file=sys.stderr)
"""


@pytest.mark.parametrize(
    ("entry", "args"),
    [
        ("hac", ["--help"]),
        ("hac", ["groovy", "--help"]),
        ("hac", ["groovy", "return 1"]),
        ("hac", ["flexsearch", "SELECT 1"]),
        ("root", ["groovy", "return 1"]),
    ],
)
def test_a_hac_command_imports_neither_atproto_nor_rich_nor_pydantic(
    fake: FakeHac, home: Path, entry: str, args: list[str]
) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("HAC_")}
    env.update(HOME=str(home), PYTHONPATH=str(REPO), **LOGIN)
    done = subprocess.run(
        [sys.executable, "-c", IMPORTS_PROBE, entry, "--url", fake.url, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    heavy = [line for line in done.stderr.splitlines() if line.startswith("HEAVY=")]
    assert heavy == ["HEAVY="], done.stderr


def test_verbose_logging_shows_what_happens_but_no_secret(fake: FakeHac, home: Path) -> None:
    first = run_hac(home, "-v", "--url", fake.url, "groovy", "return 1", env=LOGIN)
    assert first.returncode == 0, first.stderr
    assert "Authenticated to HAC" in first.stderr
    fake.kill_all_sessions()
    second = run_hac(home, "-v", "--url", fake.url, "groovy", "return 2", env=LOGIN)
    assert "no longer valid" in second.stderr
    cached = cache(home).load_session(fake.url, "admin", KEY)
    assert cached is not None
    output = first.stdout + first.stderr + second.stdout + second.stderr
    for secret in ("nimda", cached.session_id, cached.csrf_token):
        assert secret not in output


def test_the_password_is_prompted_for_only_on_a_terminal(fake: FakeHac, home: Path) -> None:
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
            [
                sys.executable,
                "-m",
                "sessionkeeper",
                "hac",
                "--url",
                fake.url,
                "session",
                "start",
                "local",
                "-u",
                "admin",
            ],
            stdin=terminal_fd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,
        )
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
    assert b"Session started for 'local/hac'" in stdout
    assert b"nimda" not in stdout + stderr
    assert fake.logins == 1


def test_the_hac_group_builds_only_the_command_a_line_names() -> None:
    import typer.main

    from sessionkeeper.cli.hac.app import app

    group = typer.main.get_command(app)
    ctx = group.make_context("hac", ["groovy", "return 1"], resilient_parsing=True)
    name, command, _ = group.resolve_command(ctx, ["groovy", "return 1"])  # type: ignore[attr-defined]
    assert name == "groovy" and command is not None and command.name == "groovy"
    assert set(group.commands) == {"groovy"}  # type: ignore[attr-defined]
    # Help lists every command, in the original's order, commands before groups.
    assert group.list_commands(ctx) == [  # type: ignore[attr-defined]
        "config",
        "groovy",
        "flexsearch",
        "impex",
        "logout",
        "status",
        "env",
        "endpoint",
        "session",
        "update",
    ]


def test_a_mistyped_command_is_refused_with_the_closest_name(home: Path) -> None:
    done = run_hac(home, "grovy", "return 1")
    assert done.returncode == 2
    assert "No such command 'grovy'" in done.stderr and "'groovy'" in done.stderr


def _start(
    home: Path, url: str, *extra: str, password: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return run_hac(
        home, "--url", url, "session", "start", "local", "-u", "admin", *extra,
        env={**(env or {}), "HAC_PASSWORD": password},
    )  # fmt: skip


def test_save_password_checks_the_password_even_when_a_cached_session_works(
    fake: FakeHac, home: Path, tmp_path: Path
) -> None:
    keyring_file = tmp_path / "keyring.json"
    env = {"PYTHON_KEYRING_BACKEND": FILE_KEYRING, FILE_KEYRING_ENV: str(keyring_file)}
    assert _start(home, fake.url, password="nimda").returncode == 0
    wrong = _start(home, fake.url, "--save-password", password="not-it", env=env)
    assert wrong.returncode == 1, wrong.stdout
    assert "Traceback" not in wrong.stderr
    assert not keyring_file.exists() or b"not-it" not in keyring_file.read_bytes()


def test_a_keyring_that_cannot_store_is_reported_without_a_traceback(
    fake: FakeHac, home: Path
) -> None:
    failed = _start(home, fake.url, "--save-password", password="nimda")  # the fail backend
    assert failed.returncode == 1
    assert failed.stderr.startswith("ERROR: ") and "Traceback" not in failed.stderr


def test_session_start_keeps_the_urls_basic_login_for_a_gate_in_front_of_hac(
    fake: FakeHac, home: Path
) -> None:
    gated = fake.url.replace("http://", "http://gate:pw@")
    started = _start(home, gated, password="nimda")
    assert started.returncode == 0, started.stderr
    assert "pw@" not in started.stdout + started.stderr
    sent = {request.headers.get("authorization") for request in fake.recent_requests}
    assert sent == {"Basic Z2F0ZTpwdw=="}  # base64 of gate:pw, on every request


def test_session_start_replaces_a_cached_session_hac_dropped(fake: FakeHac, home: Path) -> None:
    argv = ["--url", fake.url, "session", "start", "local", "-u", "admin"]
    assert run_hac(home, *argv, stdin="nimda\n").returncode == 0
    fake.kill_all_sessions()
    again = run_hac(home, *argv, stdin="nimda\n")
    assert again.returncode == 0, again.stderr
    assert fake.logins == 2  # the dead session was seen as dead, and replaced
    # So the next command runs on it without a password.
    used = run_hac(home, "--url", fake.url, "groovy", "return 'alive'")
    assert (used.returncode, used.stdout) == (0, "alive\n"), used.stderr
