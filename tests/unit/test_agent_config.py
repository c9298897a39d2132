"""agent.config: layering (flag > env > file > default), types, cross-checks and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent import config as cfgmod
from agent.config import AgentConfig, ConfigError, load_config, normalize_backend_url


@pytest.fixture(autouse=True)
def no_default_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep a real /etc/sensu/agent.yml on the test machine out of every test."""
    monkeypatch.setattr(cfgmod, "DEFAULT_CONFIG_FILE", str(tmp_path / "absent-default.yml"))


def write(tmp_path: Path, text: str, name: str = "agent.yml") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def load(flags: dict[str, object] | None = None, env: dict[str, str] | None = None) -> AgentConfig:
    return load_config(flags or {}, env or {}, hostname=lambda: "host-1")


def error_of(flags: dict[str, object] | None = None, env: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load(flags, env)
    return info.value


def test_defaults() -> None:
    c = load()
    assert c.name == "host-1"
    assert c.namespace == "default"
    assert c.backend_url == ("ws://127.0.0.1:8081",)
    assert (c.user, c.password) == ("agent", "P@ssw0rd!")
    assert (c.keepalive_interval, c.keepalive_warning_timeout, c.keepalive_critical_timeout) == (20, 120, 0)
    assert (c.api_host, c.api_port, c.disable_api) == ("127.0.0.1", 3031, False)
    assert c.cache_dir == "/var/cache/sensu/sensu-agent"
    assert (c.backend_handshake_timeout, c.backend_heartbeat_interval, c.backend_heartbeat_timeout) == (15, 30, 45)
    assert (c.retry_min, c.retry_max, c.retry_multiplier) == (1.0, 120.0, 2.0)
    assert "password" in c.redact and "secret" in c.redact
    assert c.log_level == "info"
    assert c.source_of("api-port") == "default"
    assert "P@ssw0rd" not in repr(c)


def test_hostname_fallback_is_a_uuid() -> None:
    c = load_config({}, {}, hostname=lambda: "")
    assert len(c.name) == 36 and c.name.count("-") == 4


def test_flag_beats_env_beats_file_beats_default(tmp_path: Path) -> None:
    path = write(tmp_path, "api-port: 4001\nnamespace: fromfile\nname: filename\nlog-level: debug\n")
    c = load({"config-file": path, "api-port": "4003"},
             {"SENSU_API_PORT": "4002", "SENSU_NAMESPACE": "fromenv"})
    assert c.api_port == 4003 and c.source_of("api-port") == "flag --api-port"
    assert c.namespace == "fromenv" and c.source_of("namespace") == "env SENSU_NAMESPACE"
    assert c.name == "filename" and c.source_of("name") == path
    assert c.log_level == "debug"
    assert c.keepalive_interval == 20 and c.source_of("keepalive-interval") == "default"


def test_config_file_from_env_variable(tmp_path: Path) -> None:
    path = write(tmp_path, "subscriptions: [linux, web]\n")
    c = load(env={"SENSU_CONFIG_FILE": path})
    assert c.subscriptions == ("linux", "web")
    assert c.config_file == path


def test_missing_named_file_is_an_error_missing_default_is_fine(tmp_path: Path) -> None:
    err = error_of({"config-file": str(tmp_path / "nope.yml")})
    assert "config file not found" in str(err)
    assert load().config_file_loaded is False


def test_lists_and_maps_from_every_layer(tmp_path: Path) -> None:
    path = write(tmp_path, "labels:\n  region: eu\nbackend-url:\n  - ws://a\n  - wss://b:9000/path\n")
    c = load({"config-file": path})
    assert c.backend_url == ("ws://a:8081", "wss://b:9000/path")
    assert dict(c.labels) == {"region": "eu"}
    c = load(env={"SENSU_BACKEND_URL": "ws://x ws://y:1", "SENSU_LABELS": '{"a": "b"}',
                  "SENSU_SUBSCRIPTIONS": "linux,web"})
    assert c.backend_url == ("ws://x:8081", "ws://y:1")
    assert dict(c.labels) == {"a": "b"}
    assert c.subscriptions == ("linux", "web")
    c = load({"backend-url": ["ws://p", "ws://q"], "labels": ["a=1,b=2", "c=3"], "annotations": ["k=v"]})
    assert c.backend_url == ("ws://p:8081", "ws://q:8081")
    assert dict(c.labels) == {"a": "1", "b": "2", "c": "3"}


def test_durations_accept_go_syntax_and_bare_seconds() -> None:
    c = load({"retry-min": "250ms", "retry-max": "2m", "max-session-length": "90"})
    assert (c.retry_min, c.retry_max, c.max_session_length) == (0.25, 120.0, 90.0)


def test_unknown_key_in_file_names_key_and_file(tmp_path: Path) -> None:
    path = write(tmp_path, "backend-urls: [ws://a]\n")
    err = error_of({"config-file": path})
    assert str(err) == f'{path}: backend-urls: unknown key (did you mean "backend-url"?)'


def test_wrong_type_names_key_and_source(tmp_path: Path) -> None:
    path = write(tmp_path, "api-port: eighty\n")
    assert str(error_of({"config-file": path})) == f'{path}: api-port: expected an integer, got "eighty"'
    assert str(error_of(env={"SENSU_KEEPALIVE_INTERVAL": "x"})) == (
        'env SENSU_KEEPALIVE_INTERVAL: expected an integer, got "x"')
    assert str(error_of({"deregister": "maybe"})) == (
        'flag --deregister: expected a boolean (true or false), got "maybe"')


def test_all_errors_are_collected(tmp_path: Path) -> None:
    path = write(tmp_path, "api-port: 0\nlog-level: loud\nbogus: 1\n")
    err = error_of({"config-file": path})
    lines = [str(e) for e in err.errors]
    assert f"{path}: bogus: unknown key" in lines
    assert any("api-port: must be between 1 and 65535" in line for line in lines)
    assert any("log-level: expected one of" in line for line in lines)


def test_backend_url_rules() -> None:
    assert normalize_backend_url("ws://h") == "ws://h:8081"
    assert normalize_backend_url("wss://[::1]") == "wss://[::1]:8081"
    assert normalize_backend_url("ws://h:9/x") == "ws://h:9/x"
    assert "scheme must be ws or wss" in str(error_of({"backend-url": ["http://h:8081"]}))
    assert "credentials" in str(error_of({"backend-url": ["ws://u:p@h"]}))


def test_keepalive_timeouts_are_checked_together() -> None:
    assert "must be greater than keepalive-interval" in str(error_of({"keepalive-warning-timeout": "20"}))
    assert "must be at least 5" in str(error_of({"keepalive-warning-timeout": "4"}))
    err = error_of({"keepalive-critical-timeout": "60"})
    assert "must not be less than keepalive-warning-timeout" in str(err)
    c = load({"keepalive-critical-timeout": "300"})
    assert c.keepalive_critical_timeout == 300


def test_keepalive_timeout_is_the_50_alias(tmp_path: Path) -> None:
    c = load({"keepalive-timeout": "60"})
    assert c.keepalive_warning_timeout == 60 and c.keepalive_timeout == 60
    # a later layer's new name beats an earlier layer's old name
    path = write(tmp_path, "keepalive-timeout: 60\n")
    assert load({"config-file": path, "keepalive-warning-timeout": "90"}).keepalive_warning_timeout == 90
    err = error_of({"keepalive-timeout": "60", "keepalive-warning-timeout": "90"})
    assert "5.0 name of keepalive-warning-timeout; set only one" in str(err)


def test_names_and_subscriptions_are_validated() -> None:
    assert "cannot contain spaces" in str(error_of({"name": "my host"}))
    assert "invalid subscription" in str(error_of({"subscriptions": ["a:b:c"]}))
    assert load({"subscriptions": ["entity:web-01"]}).subscriptions == ("entity:web-01",)


def test_tls_pairs_and_retry_bounds() -> None:
    assert "cert-file and key-file must be set together (key-file is empty)" in str(error_of({"cert-file": "c.pem"}))
    assert "retry-max (1s) must not be less than retry-min (2s)" in str(
        error_of({"retry-min": "2s", "retry-max": "1s"}))
    assert "must be at least 1" in str(error_of({"retry-multiplier": "0.5"}))


def test_heartbeat_timeout_not_above_interval_becomes_interval_times_10_over_6() -> None:
    c = load({"backend-heartbeat-interval": "30", "backend-heartbeat-timeout": "10"})
    assert c.effective_heartbeat_timeout == pytest.approx(50.0)
    assert load().effective_heartbeat_timeout == 45.0


def test_ignored_keys_are_accepted_and_reported(tmp_path: Path) -> None:
    path = write(tmp_path, "socket-port: 3030\nstatsd-disable: true\ndisable-assets: true\n")
    c = load({"config-file": path})
    ignored = c.ignored_settings()
    assert set(ignored) == {"socket-port", "statsd-disable", "disable-assets"}
    assert "no socket listener" in ignored["socket-port"]


def test_allow_list_is_refused() -> None:
    err = error_of({"allow-list": "/etc/sensu/allow.yml"})
    assert str(err) == "flag --allow-list: not supported by this agent (it cannot enforce an allow list; remove the key)"


def test_config_file_key_inside_file_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "config-file: /x.yml\n")
    assert "cannot be set inside the config file" in str(error_of({"config-file": path}))


def test_environment_is_captured_for_checks() -> None:
    c = load_config({}, {"PATH": "/bin", "FOO": "1"}, hostname=lambda: "h")
    assert dict(c.process_env) == {"PATH": "/bin", "FOO": "1"}
    assert c.to_mapping()["password"] == "REDACTED"
