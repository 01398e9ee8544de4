"""What a user of ``hac`` expects of its messages: hints that paste, options where they
are typed, ``--json`` on every outcome, ``--version`` and shell completion.

Each runs ``hac`` as a subprocess against FakeHac on 127.0.0.1.
"""

from __future__ import annotations

import json
import shlex
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from sessionkeeper import __version__
from sessionkeeper.testing.fake_hac import FakeHac
from tests.cli.hac.helpers import run_hac, write_config

pytestmark = pytest.mark.timeout(120)

LOGIN = {"HAC_USERNAME": "admin", "HAC_PASSWORD": "nimda"}


@pytest.fixture
def fake() -> Iterator[FakeHac]:
    with FakeHac() as server:
        yield server


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _hint(stderr: str, start: str) -> list[str]:
    """The argv of the first hint line of ``stderr`` that begins with ``start``."""
    for line in stderr.splitlines():
        if line.strip().startswith(start):
            return shlex.split(line.strip())
    raise AssertionError(f"no hint starting {start!r} in:\n{stderr}")


def test_the_no_session_hint_pastes_with_the_invocations_config_and_store(
    fake: FakeHac, home: Path, tmp_path: Path
) -> None:
    # A config and a store away from the defaults: a hint without them would
    # start a session the failing command never finds.
    config = tmp_path / "odd place" / "hac.toml"
    config.parent.mkdir()
    config.write_text(f'[environments.qa.endpoints.node1]\nurl = "{fake.url}"\n')
    store = f"dir:{tmp_path / 'sessions'}"
    argv = ["--config", str(config), "--store", store, "groovy", "return 7", "-e", "qa"]
    first = run_hac(home, *argv, env={"HAC_USERNAME": "admin"})
    assert first.returncode == 1
    pasted = _hint(first.stderr, "hac ")
    assert pasted[:5] == ["hac", "--config", str(config), "--store", store]
    assert pasted[5:] == ["session", "start", "qa", "--endpoint", "node1", "--username", "admin"]
    started = run_hac(home, *pasted[1:], stdin="nimda\n")
    assert started.returncode == 0, started.stderr
    again = run_hac(home, *argv)
    assert (again.returncode, again.stdout) == (0, "7\n"), again.stderr


def test_hints_printed_on_success_carry_the_config_option(home: Path, tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    added = run_hac(home, "--config", str(config), "env", "add", "qa 1")
    assert added.returncode == 0, added.stderr
    hint = _hint(added.stdout, "hac ")
    assert hint[:3] == ["hac", "--config", str(config)]
    assert hint[3:6] == ["endpoint", "add", "qa 1"]  # the name quoted: it has a space


def test_a_global_option_after_the_subcommand_is_taken(fake: FakeHac, home: Path) -> None:
    done = run_hac(
        home, "groovy", "return 'late'", "--url", fake.url, "-u", "admin",
        env={"HAC_PASSWORD": "nimda"},
    )  # fmt: skip
    assert (done.returncode, done.stdout) == (0, "late\n"), done.stderr
    nested = run_hac(home, "session", "list", "-f", "json", "--url", fake.url)
    assert nested.returncode == 0, nested.stderr
    assert [s["username"] for s in json.loads(nested.stdout)] == ["admin"]
    spelt = run_hac(home, "--json", "session", "list", "--url", fake.url)  # as elsewhere
    assert spelt.returncode == 0, spelt.stderr
    assert [s["session_id"] for s in json.loads(spelt.stdout)] == [
        s["session_id"] for s in json.loads(nested.stdout)
    ]


def test_a_subcommands_option_before_the_subcommand_is_moved_to_it(
    fake: FakeHac, home: Path
) -> None:
    done = run_hac(
        home, "--json", "--url", fake.url, "-u", "admin", "--type", "groovy", "groovy",
        "return 'early'", env={"HAC_PASSWORD": "nimda"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["execution_result"] == "early"
    unknown = run_hac(home, "--jsn", "groovy", "return 1", script=True)
    assert unknown.returncode == 2
    assert "No such option: --jsn" in unknown.stderr


def test_a_global_option_that_cannot_be_taken_says_where_it_goes(fake: FakeHac, home: Path) -> None:
    no_value = run_hac(home, "groovy", "return 1", "--url", script=True)
    assert no_value.returncode == 2
    assert "--url is an option of 'hac' itself: give it before the subcommand" in no_value.stderr
    twice = run_hac(
        home, "--url", fake.url, "groovy", "return 1", "--url", "http://other", script=True
    )
    assert twice.returncode == 2
    assert "given both before and after the subcommand" in twice.stderr
    # A subcommand's own option of that spelling keeps its meaning: -u is endpoint add's --url.
    write_config(home, "")
    assert run_hac(home, "env", "add", "qa").returncode == 0
    own = run_hac(home, "endpoint", "add", "qa", "n1", "-u", fake.url)
    assert own.returncode == 0, own.stderr
    assert fake.url in run_hac(home, "endpoint", "show", "qa", "n1").stdout


def test_a_connection_failure_names_the_url_and_is_json_with_json(home: Path) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    done = run_hac(home, "--url", url, "groovy", "return 1", "--json", env=LOGIN)
    assert done.returncode == 1
    report = json.loads(done.stdout)  # one object, nothing else on stdout
    assert report["error"] == "connection"
    assert url in report["message"] and url in done.stderr
    assert "nimda" not in done.stdout + done.stderr


def test_https_against_a_plain_http_server_gets_a_hint(fake: FakeHac, home: Path) -> None:
    url = fake.url.replace("http://", "https://")
    done = run_hac(home, "--url", url, "session", "start", "local", "-u", "admin", stdin="nimda")
    assert done.returncode == 1
    assert url in done.stderr
    assert "write its URL with http:// instead of https://" in done.stderr


@pytest.mark.parametrize(
    ("args", "kind"),
    [
        (["groovy", "return 1", "--json"], "no_session"),
        (["flexsearch", "SELECT {pk} FROM {User}", "--json"], "no_session"),
        (["update", "log", "--json"], "no_session"),
        (["session", "start", "local", "-u", "admin", "--json"], "authentication"),
    ],
    ids=lambda value: value if isinstance(value, str) else " ".join(value[:2]),
)
def test_json_failures_are_one_error_object_on_stdout(
    fake: FakeHac, home: Path, args: list[str], kind: str
) -> None:
    done = run_hac(home, "--url", fake.url, *args, stdin="wrong\n")
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert set(report) == {"error", "message"}
    assert report["error"] == kind
    assert report["message"] in done.stderr  # people still read stderr


def test_session_show_without_a_session_answers_json_and_exits_0_as_the_original(
    fake: FakeHac, home: Path
) -> None:
    done = run_hac(home, "--url", fake.url, "session", "show", "local", "--json")
    assert done.returncode == 0
    assert json.loads(done.stdout) == {
        "error": "no_session",
        "message": "No active session for environment 'local/hac'",
    }


def test_a_config_failure_is_json_too(home: Path) -> None:
    done = run_hac(home, "groovy", "return 1", "--json", "-e", "nope")
    assert done.returncode == 1
    assert json.loads(done.stdout) == {
        "error": "config",
        "message": "Environment 'nope' not found in configuration; configured: local",
    }


def test_a_default_environment_the_config_lacks_names_the_fix_and_the_fix_pastes(
    fake: FakeHac, home: Path, tmp_path: Path
) -> None:
    # A first environment added to a new file leaves default_environment = "local",
    # as hac-client-cli does; a command without -e then asks for "local".
    config = str(tmp_path / "alt.toml")
    assert run_hac(home, "--config", config, "env", "add", "qa").returncode == 0
    added = run_hac(
        home, "--config", config, "endpoint", "add", "qa", "n1", "--url", fake.url, "--set-default"
    )
    assert added.returncode == 0, added.stderr
    failed = run_hac(home, "--config", config, "groovy", "return 1", "--json", env=LOGIN)
    assert failed.returncode == 1
    answer = json.loads(failed.stdout)
    assert answer["error"] == "config"
    assert "Environment 'local' not found in configuration" in answer["message"]
    assert "configured: qa" in answer["message"]
    fix = _hint(failed.stderr, "hint:")
    assert fix[fix.index("hac") :] == ["hac", "--config", config, "env", "set-default", "qa"]
    pasted = run_hac(home, *fix[fix.index("hac") + 1 :])
    assert pasted.returncode == 0, pasted.stderr
    assert run_hac(home, "--config", config, "groovy", "return 1", env=LOGIN).stdout == "1\n"
    # The overview's "show an environment" line names one the file has, and pastes.
    listed = run_hac(home, "--config", config, "config").stdout
    show = next(line for line in listed.splitlines() if "config -e" in line)
    shown = run_hac(home, *shlex.split(show.split("#")[0])[1:])
    assert shown.returncode == 0 and "Environment: qa" in shown.stdout, shown.stderr


def test_an_unknown_environment_is_a_config_failure_in_every_command(home: Path) -> None:
    for args in (["env", "show", "nope", "--json"], ["config", "-e", "nope", "--json"]):
        done = run_hac(home, *args)
        assert done.returncode == 1
        assert json.loads(done.stdout)["error"] == "config", args


def test_completion_offers_the_configured_environments(home: Path, tmp_path: Path) -> None:
    config = tmp_path / "hac.toml"
    config.write_text(
        "".join(
            f'[environments.{name}.endpoints.hac]\nurl = "http://127.0.0.1:1"\n'
            for name in ("qa", "qa2", "prod")
        )
    )

    def complete(words: str, index: int) -> list[str]:
        variables = {"_HAC_COMPLETE": "complete_bash", "COMP_WORDS": words}
        done = run_hac(home, env={**variables, "COMP_CWORD": str(index)}, script=True)
        assert done.returncode == 0, done.stderr
        return done.stdout.split()

    assert complete(f"hac --config {config} groovy -e q", 5) == ["qa", "qa2"]
    assert complete(f"hac --config {config} session start ", 5) == ["prod", "qa", "qa2"]


def test_version_and_completion(home: Path) -> None:
    version = run_hac(home, "--version", script=True)
    assert (version.returncode, version.stdout) == (0, f"hac (sessionkeeper) {__version__}\n")
    script = run_hac(home, "--show-completion", "bash", script=True)
    assert script.returncode == 0, script.stderr
    assert "_HAC_COMPLETE=complete_bash" in script.stdout
    assert "complete -o default -F _hac_completion hac" in script.stdout
    # The script asks hac itself; the lazily built group still offers every command.
    offered = run_hac(
        home,
        env={"_HAC_COMPLETE": "complete_bash", "COMP_WORDS": "hac st", "COMP_CWORD": "1"},
        script=True,
    )
    assert offered.stdout.split() == ["status"], offered.stderr


def test_a_dead_session_without_a_password_names_the_whole_start_command(
    fake: FakeHac, home: Path, tmp_path: Path
) -> None:
    store = f"dir:{tmp_path / 'sessions'}"
    first = run_hac(home, "--store", store, "--url", fake.url, "groovy", "return 1", env=LOGIN)
    assert first.returncode == 0, first.stderr
    fake.kill_all_sessions()
    dead = run_hac(home, "--store", store, "--url", fake.url, "groovy", "return 1")
    assert dead.returncode == 1
    assert (
        f"run `hac --url {fake.url} --store {store} session start local --endpoint hac "
        "--username admin` again"
    ) in dead.stderr


def test_every_edit_and_session_command_answers_one_json_object(fake: FakeHac, home: Path) -> None:
    write_config(home, "")
    steps: list[tuple[list[str], dict[str, object]]] = [
        (["env", "add", "qa", "--json"], {"added": "qa", "default_environment": "local"}),
        (["env", "set-default", "qa", "--json"], {"default_environment": "qa"}),
        (
            ["endpoint", "add", "qa", "n1", "--url", fake.url, "--json"],
            {"environment": "qa", "added": "n1", "default_endpoint": "n1"},
        ),
        (
            ["endpoint", "update", "qa", "n1", "--timeout", "60", "--json"],
            {"environment": "qa", "updated": "n1"},
        ),
        (
            ["endpoint", "set-default", "qa", "n1", "--json"],
            {"environment": "qa", "default_endpoint": "n1"},
        ),
        (["session", "clear", "qa", "--json"], {"environment": "qa/n1", "cleared": False}),
        (
            ["session", "start", "qa", "-u", "admin", "--json"],
            {"started": "qa/n1", "username": "admin", "url": fake.url},
        ),
        (["session", "clear", "qa", "--json"], {"environment": "qa/n1", "cleared": True}),
        (["session", "clear-all", "-f", "--json"], {"cleared": 0}),
        (["endpoint", "remove", "qa", "n1", "--json"], {"environment": "qa", "removed": "n1"}),
    ]
    for args, expected in steps:
        done = run_hac(home, *args, stdin="nimda\n")
        assert done.returncode == 0, (args, done.stderr)
        assert json.loads(done.stdout) == expected, args
    refused = run_hac(home, "session", "clear-all", "--json")
    assert refused.returncode == 2
    assert json.loads(refused.stdout)["error"] == "usage"


def test_a_hint_never_repeats_a_password_given_in_the_url(fake: FakeHac, home: Path) -> None:
    url = fake.url.replace("http://", "http://gate:s3cret-gate@")
    done = run_hac(home, "--url", url, "groovy", "return 1", "--json")
    assert done.returncode == 1
    assert "s3cret-gate" not in done.stdout + done.stderr
    pasted = _hint(json.loads(done.stdout)["message"], "hac ")
    assert pasted[:3] == ["hac", "--url", fake.url.replace("http://", "http://gate:***@")]
