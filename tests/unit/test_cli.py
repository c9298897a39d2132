"""backend.cli: the real ``sensu-backend`` command run as a child process, plus in-process seams.

``start`` is only exercised up to the point where it would hand over to
``backend.node.run``: every path here fails (or prints) before that import.
"""

from __future__ import annotations

import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

import backend
from backend import cli
from backend.config import BackendConfig

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 60


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENSU_")}
    env.update(extra)
    return env


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "backend.cli", *args],
        cwd=REPO, env=env or clean_env(), capture_output=True, text=True, timeout=TIMEOUT, check=False,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def empty_config(tmp_path: Path) -> str:
    path = tmp_path / "backend.yml"
    path.write_text("# empty\n", encoding="utf-8")
    return str(path)


def test_version() -> None:
    proc = run_cli("version")
    assert proc.returncode == 0, proc.stderr
    line = proc.stdout.strip()
    assert line.startswith("sensu-backend version 6.9.2+ce, community edition, ")
    assert line.endswith(f"built with Python {'.'.join(map(str, sys.version_info[:3]))}")
    assert "build " not in line


def test_version_reports_build_sha() -> None:
    proc = run_cli("version", env=clean_env(SENSU_BUILD_SHA="abc1234"))
    assert proc.returncode == 0
    assert ", build abc1234, built with Python " in proc.stdout


@pytest.mark.parametrize("args", [("help",), ("--help",), ("-h",), ()])
def test_help(args: tuple[str, ...]) -> None:
    proc = run_cli(*args)
    assert proc.returncode == 0, proc.stderr
    for command in ("start", "init", "version", "help"):
        assert f"\n  {command} " in proc.stdout


@pytest.mark.parametrize("args", [("start", "--help"), ("start", "-h"), ("help", "start")])
def test_start_help(args: tuple[str, ...]) -> None:
    proc = run_cli(*args)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "General Flags:" in out and "Store Flags:" in out
    assert out.index("General Flags:") < out.index("--state-dir") < out.index("Store Flags:")
    assert out.index("Store Flags:") < out.index("--etcd-initial-cluster ")
    assert '--etcd-initial-cluster string' in out and '(default "default=http://127.0.0.1:2380")' in out
    assert '-d, --state-dir string' in out and '(default "/var/lib/sensu/sensu-backend")' in out
    assert '-c, --config-file string' in out
    assert "--agent-port int" in out and "(default 8081)" in out
    assert "--etcd-heartbeat-interval int" in out and "--eventd-workers int" in out


def test_init_help() -> None:
    proc = run_cli("init", "--help")
    assert proc.returncode == 0
    for flag in ("--cluster-admin-username", "--cluster-admin-password", "--cluster-admin-api-key",
                 "--interactive", "--ignore-already-initialized", "--timeout", "--wait", "--api-url"):
        assert flag in proc.stdout


def test_bad_flag_value_exits_2_with_one_line(empty_config: str) -> None:
    proc = run_cli("start", "-c", empty_config, "--agent-port", "x")
    assert proc.returncode == 2
    assert proc.stderr == 'sensu-backend: flag --agent-port: expected an integer, got "x"\n'


def test_bad_bool_flag_value(empty_config: str) -> None:
    proc = run_cli("start", "-c", empty_config, "--debug=maybe")
    assert proc.returncode == 2
    assert proc.stderr == 'sensu-backend: flag --debug: expected a boolean (true or false), got "maybe"\n'


def test_bad_yaml_key_exits_2_naming_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "backend.yml"
    path.write_text("agent-prot: 8081\n", encoding="utf-8")
    proc = run_cli("start", "--config-file", str(path))
    assert proc.returncode == 2
    assert proc.stderr == f'sensu-backend: {path}: agent-prot: unknown key (did you mean "agent-port"?)\n'


def test_config_file_from_env_var(tmp_path: Path) -> None:
    path = tmp_path / "backend.yml"
    path.write_text("agent-port: 80a\n", encoding="utf-8")
    proc = run_cli("start", env=clean_env(SENSU_BACKEND_CONFIG_FILE=str(path)))
    assert proc.returncode == 2
    assert proc.stderr == f'sensu-backend: {path}: agent-port: expected an integer, got "80a"\n'


def test_no_embed_etcd_is_refused(empty_config: str) -> None:
    proc = run_cli("start", "-c", empty_config, "--no-embed-etcd")
    assert proc.returncode != 0
    assert proc.stderr.startswith("sensu-backend: flag --no-embed-etcd: not supported by this backend")
    assert len(proc.stderr.splitlines()) == 1


def test_unknown_flag_and_missing_value(empty_config: str) -> None:
    proc = run_cli("start", "-c", empty_config, "--agnet-port", "1")
    assert proc.returncode == 2
    assert proc.stderr == "sensu-backend: unknown flag: --agnet-port (did you mean --agent-port?)\n"
    proc = run_cli("start", "-c", empty_config, "--agent-port")
    assert proc.returncode == 2
    assert proc.stderr.startswith("sensu-backend: flag --agent-port: ")


def test_unknown_command() -> None:
    proc = run_cli("strat")
    assert proc.returncode == 2
    assert proc.stderr == 'sensu-backend: unknown command "strat" for "sensu-backend" (did you mean "start"?)\n'


def test_init_without_credentials_exits_2(empty_config: str) -> None:
    proc = run_cli("init", "-c", empty_config, "--cluster-admin-username", "admin")
    assert proc.returncode == 2
    assert proc.stderr.startswith("sensu-backend: cluster-admin-password: required")


# --- in-process seams ----------------------------------------------------------------


def test_start_hands_the_config_to_node_run(monkeypatch: pytest.MonkeyPatch, empty_config: str) -> None:
    """The handover contract with backend.node: run(config) -> exit code."""
    seen: list[BackendConfig] = []

    def fake_run(config: BackendConfig) -> int:
        seen.append(config)
        return 7

    fake = types.ModuleType("backend.node")
    fake.run = fake_run  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "backend.node", fake)
    monkeypatch.setattr(backend, "node", fake, raising=False)
    for key in [k for k in os.environ if k.startswith("SENSU_")]:
        monkeypatch.delenv(key)
    code = cli.main(["start", "-c", empty_config, "--debug", "--etcd-listen-peer-urls", "http://127.0.0.1:2390",
                     "--etcd-initial-advertise-peer-urls=http://127.0.0.1:2390",
                     "--etcd-initial-cluster", "default=http://127.0.0.1:2390", "--log-level", "error"])
    assert code == 7
    (config,) = seen
    assert config.debug is True and config.source_of("debug") == "flag --debug"
    assert config.etcd_listen_peer_urls == ("http://127.0.0.1:2390",)
    assert config.log_level == "error"


def test_bool_flag_does_not_take_a_separate_value(capsys: pytest.CaptureFixture[str], empty_config: str) -> None:
    assert cli.main(["start", "-c", empty_config, "--debug", "false"]) == 2
    assert capsys.readouterr().err == 'sensu-backend: unexpected argument "false"\n'
