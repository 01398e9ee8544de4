"""What ``hac`` prints of the config file, and what it writes to it.

A password in an endpoint URL's user part never reaches the output (those
outputs land in CI logs), and an edit never leaves a file the reader cannot read.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sessionkeeper.cli.hac.config import ConfigError, load_config
from sessionkeeper.cli.hac.config_edit import ConfigFile, render
from tests.cli.hac.helpers import run_hac, write_config

pytestmark = pytest.mark.timeout(120)

SECRET = "s3cret-Pa55"
CONFIG = f"""default_environment = "prod"

[environments.prod]
default_endpoint = "node1"

[environments.prod.endpoints.node1]
url = "https://deployer:{SECRET}@hac.example.com:9002/hac"

[environments.prod.endpoints.node2]
url = "https://hac2.example.com"
"""

SHOWING_URLS = [
    ["config"],
    ["config", "--json"],
    ["config", "-e", "prod"],
    ["config", "-e", "prod", "--json"],
    ["env", "show", "prod"],
    ["env", "show", "prod", "--json"],
    ["env", "list", "-f", "json"],
    ["endpoint", "list", "prod"],
    ["endpoint", "list", "prod", "-f", "json"],
    ["endpoint", "show", "prod", "node1"],
]


@pytest.mark.parametrize("args", SHOWING_URLS, ids=" ".join)
def test_no_command_prints_the_password_of_an_endpoint_url(home: Path, args: list[str]) -> None:
    write_config(home, CONFIG)
    done = run_hac(home, *args)
    assert done.returncode == 0, done.stderr
    assert SECRET not in done.stdout + done.stderr
    # The user stays, so the reader still sees which login the URL carries.
    assert "https://deployer:***@hac.example.com:9002/hac" in done.stdout


def test_a_url_refused_by_name_does_not_print_its_password(home: Path) -> None:
    write_config(home, CONFIG)
    as_name = run_hac(home, "endpoint", "add", "prod", f"https://u:{SECRET}@h", "--url", "x")
    no_scheme = run_hac(home, "endpoint", "add", "prod", "n3", "--url", f"u:{SECRET}@h")
    for done in (as_name, no_scheme):
        assert done.returncode == 1
        assert "u:***@h" in done.stderr
        assert SECRET not in done.stdout + done.stderr


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


def test_names_beyond_ascii_are_written_as_toml_and_read_back(home: Path) -> None:
    config = write_config(home, CONFIG)
    added = run_hac(home, "env", "add", "qa-🧪")
    assert added.returncode == 0, added.stderr
    endpoint = run_hac(home, "endpoint", "add", "qa-🧪", 'nœud "1"', "--url", "https://h/é")
    assert endpoint.returncode == 0, endpoint.stderr
    assert "\\ud83e" not in config.read_text(encoding="utf-8")  # no JSON surrogate escape
    loaded = load_config(config)
    assert loaded.environments["qa-🧪"].endpoints['nœud "1"'].url == "https://h/é"
    # And every later command still works on the file.
    listed = run_hac(home, "env", "list", "-q")
    assert listed.stdout.split() == ["prod", "qa-🧪"], listed.stderr


@pytest.mark.parametrize(
    ("name", "problem"),
    [("", "must not be empty"), ("a\nb", "control character"), ("qa-\udcff", "not valid UTF-8")],
)
def test_a_name_the_file_cannot_hold_is_refused_by_name_and_nothing_is_written(
    home: Path, name: str, problem: str
) -> None:
    config = write_config(home, CONFIG)
    file = ConfigFile(config)
    with pytest.raises(ConfigError, match=problem):
        file.add_environment(name, set_default=False)
    assert config.read_text() == CONFIG


def test_a_file_that_would_not_read_back_is_never_written(home: Path) -> None:
    config = write_config(home, CONFIG)
    file = ConfigFile(config)
    # A value the writer cannot express (a nested table under an endpoint) and a
    # string that is not UTF-8: each is refused before the file is replaced.
    file.endpoint("prod", "node2")["headers"] = {"X-Gate": "1"}
    with pytest.raises(ConfigError, match="would not read back"):
        file.save()
    file = ConfigFile(config)
    file.endpoint("prod", "node2")["url"] = "https://h/\udcff"
    with pytest.raises(ConfigError, match="not valid UTF-8"):
        file.save()
    assert config.read_text() == CONFIG
    assert not [p for p in config.parent.iterdir() if p.name != "config.toml"]


def test_the_written_layout_is_unchanged_for_plain_names() -> None:
    data = {
        "default_environment": "local",
        "environments": {
            "local": {
                "default_endpoint": "hac",
                "endpoints": {
                    "hac": {"url": "https://h", "ignore_ssl": True, "timeout": 30},
                    "two": {"url": "https://i", "timeout": 60, "username": "u"},
                },
            },
            "empty": {"endpoints": {}},
        },
    }
    assert render(data) == (
        'default_environment = "local"\n\n[environments.local]\ndefault_endpoint = "hac"\n\n'
        '[environments.local.endpoints.hac]\nurl = "https://h"\nignore_ssl = true\n\n'
        '[environments.local.endpoints.two]\nurl = "https://i"\ntimeout = 60\nusername = "u"\n\n'
        "[environments.empty]\n"
    )
