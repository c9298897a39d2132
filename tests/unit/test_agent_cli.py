"""sensu-agent's command line: subcommands, flags, one-line errors and exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent import config as cfgmod
from agent.cli import main, parse_start_args, version_string


@pytest.fixture(autouse=True)
def no_default_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cfgmod, "DEFAULT_CONFIG_FILE", str(tmp_path / "absent-default.yml"))
    for name in ("SENSU_CONFIG_FILE", "SENSU_API_PORT", "SENSU_BACKEND_URL", "SENSU_NAME"):
        monkeypatch.delenv(name, raising=False)


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["version"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("sensu-agent version 6.9.2+ce, community edition")
    assert out.strip() == version_string()


def test_help_texts(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    assert "Available Commands" in capsys.readouterr().out
    assert main(["help", "start"]) == 0
    out = capsys.readouterr().out
    assert "--backend-url strings" in out and "-c, --config-file string" in out
    assert "Accepted for compatibility, no effect" in out
    assert main(["start", "--help"]) == 0


def test_unknown_command_and_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["strat"]) == 2
    assert capsys.readouterr().err == 'sensu-agent: unknown command "strat" for "sensu-agent" (did you mean "start"?)\n'
    assert main(["start", "--backend-ur", "ws://x"]) == 2
    assert capsys.readouterr().err == "sensu-agent: unknown flag: --backend-ur (did you mean --backend-url?)\n"


def test_config_errors_are_one_line_each(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "agent.yml"
    path.write_text("api-port: http\nbackend-url: [ftp://x]\n")
    assert main(["start", "-c", str(path)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f'sensu-agent: {path}: api-port: expected an integer, got "http"',
        f'sensu-agent: {path}: backend-url: invalid URL "ftp://x": scheme must be ws or wss',
    ]


def test_repeated_and_boolean_flags() -> None:
    wants_help, typed = parse_start_args([
        "--backend-url", "ws://a", "--backend-url=ws://b", "--deregister", "--disable-api=false",
        "--labels", "a=1", "--labels", "b=2", "-c", "/x.yml"])
    assert not wants_help
    assert typed == {"backend-url": ["ws://a", "ws://b"], "deregister": "true", "disable-api": "false",
                     "labels": ["a=1", "b=2"], "config-file": "/x.yml"}
