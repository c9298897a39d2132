"""backend.config: layering, types, validation and the exact one-line errors operators see."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from backend import config as cfgmod
from backend.config import (
    OPTIONS,
    BackendConfig,
    ConfigError,
    format_duration,
    load_config,
    load_init_options,
    parse_duration,
    parse_host_port,
    parse_initial_cluster,
    url_host_port,
)


@pytest.fixture(autouse=True)
def no_default_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep a real /etc/sensu/backend.yml on the test machine out of every test."""
    monkeypatch.setattr(cfgmod, "DEFAULT_CONFIG_FILE", str(tmp_path / "absent-default.yml"))


def write(tmp_path: Path, text: str, name: str = "backend.yml") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def load_file(tmp_path: Path, text: str, **flags: object) -> BackendConfig:
    path = write(tmp_path, text)
    return load_config({"config-file": path, **flags}, {})


def error_of(tmp_path: Path | None, text: str | None = None, *, flags: dict[str, object] | None = None,
             env: dict[str, str] | None = None) -> ConfigError:
    argv = dict(flags or {})
    if text is not None and tmp_path is not None:
        argv["config-file"] = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(argv, env or {})
    return info.value


# --- layering ----------------------------------------------------------------------


def test_defaults_without_any_file() -> None:
    config = load_config({}, {})
    assert config.agent_host == "[::]"
    assert config.agent_port == 8081
    assert config.api_listen_address == "[::]:8080"
    assert config.api_url == "http://localhost:8080"
    assert config.state_dir == "/var/lib/sensu/sensu-backend"
    assert config.cache_dir == "/var/cache/sensu/sensu-backend"
    assert config.log_level == "warn"
    assert config.etcd_initial_cluster == "default=http://127.0.0.1:2380"
    assert config.etcd_listen_peer_urls == ("http://127.0.0.1:2380",)
    assert config.etcd_advertise_client_urls == ("http://localhost:2379",)
    assert config.etcd_heartbeat_interval == 300
    assert config.etcd_election_timeout == 3000
    assert config.etcd_max_request_bytes == 1572864
    assert config.etcd_quota_backend_bytes == 4294967296
    assert config.eventd_workers == 100 and config.pipelined_buffer_size == 1000
    assert config.api_write_timeout == 15.0
    assert config.default_silenced_expiry_time == 1440 * 60
    assert config.event_log_buffer_wait == pytest.approx(0.01)
    assert config.assets_rate_limit == pytest.approx(1.39)
    assert config.store_fsync is True and config.etcd_unsafe_no_fsync is False
    assert dict(config.labels) == {}
    assert config.config_file_loaded is False
    assert all(config.source_of(o.key) == "default" for o in OPTIONS)


def test_precedence_flags_over_env_over_file_over_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, "agent-port: 1111\ndashboard-port: 2222\napi-request-limit: 3333\n")
    env = {
        "SENSU_BACKEND_DASHBOARD_PORT": "4444",
        "SENSU_BACKEND_API_REQUEST_LIMIT": "5555",
        "SENSU_BACKEND_UNRELATED_THING": "ignored",
        "PATH": "/bin",
    }
    config = load_config({"config-file": path, "api-request-limit": "6666"}, env)
    assert config.agent_port == 1111 and config.source_of("agent-port") == path
    assert config.dashboard_port == 4444
    assert config.source_of("dashboard-port") == "env SENSU_BACKEND_DASHBOARD_PORT"
    assert config.api_request_limit == 6666 and config.source_of("api-request-limit") == "flag --api-request-limit"
    assert config.cache_dir == "/var/cache/sensu/sensu-backend" and config.source_of("cache-dir") == "default"
    assert config.config_file == path and config.source_of("config-file") == "flag --config-file"
    assert config.config_file_loaded is True


def test_config_file_from_env(tmp_path: Path) -> None:
    path = write(tmp_path, "log-level: debug\n")
    config = load_config({}, {"SENSU_BACKEND_CONFIG_FILE": path})
    assert config.log_level == "debug"
    assert config.source_of("config-file") == "env SENSU_BACKEND_CONFIG_FILE"


def test_flag_config_file_beats_env(tmp_path: Path) -> None:
    a = write(tmp_path, "log-level: debug\n", "a.yml")
    b = write(tmp_path, "log-level: info\n", "b.yml")
    assert load_config({"config-file": a}, {"SENSU_BACKEND_CONFIG_FILE": b}).log_level == "debug"


def test_empty_env_value_is_ignored(tmp_path: Path) -> None:
    config = load_file(tmp_path, "agent-port: 1234\n")
    assert config.agent_port == 1234
    assert load_config({"config-file": config.config_file}, {"SENSU_BACKEND_AGENT_PORT": ""}).agent_port == 1234


def test_snake_case_flag_keys_accepted() -> None:
    assert load_config({"agent_port": "9999"}, {}).agent_port == 9999


def test_null_value_in_file_keeps_default(tmp_path: Path) -> None:
    config = load_file(tmp_path, "cert-file:\nagent-port: 9000\n")
    assert config.cert_file == "" and config.source_of("cert-file") == "default"


def test_empty_file_and_comment_only_file(tmp_path: Path) -> None:
    assert load_file(tmp_path, "").agent_port == 8081
    assert load_file(tmp_path, "# nothing\n").config_file_loaded is True


def test_config_is_frozen() -> None:
    config = load_config({}, {})
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.agent_port = 1  # type: ignore[misc]


def test_every_option_is_an_attribute() -> None:
    names = {f.name for f in dataclasses.fields(BackendConfig)} - {"sources", "config_file_loaded"}
    assert names == {o.attr for o in OPTIONS}
    assert len({o.key for o in OPTIONS}) == len(OPTIONS)


def test_5_0_and_6x_flags_are_all_known() -> None:
    keys = {o.key for o in OPTIONS}
    five_oh = {
        "agent-host", "agent-port", "api-listen-address", "api-url", "cache-dir", "cert-file", "config-file",
        "dashboard-host", "dashboard-port", "debug", "deregistration-handler", "insecure-skip-tls-verify",
        "key-file", "log-level", "state-dir", "trusted-ca-file", "etcd-advertise-client-urls",
        "etcd-cert-file", "etcd-client-cert-auth", "etcd-initial-advertise-peer-urls", "etcd-initial-cluster",
        "etcd-initial-cluster-state", "etcd-initial-cluster-token", "etcd-key-file", "etcd-listen-client-urls",
        "etcd-listen-peer-urls", "etcd-name", "etcd-peer-cert-file", "etcd-peer-client-cert-auth",
        "etcd-peer-key-file", "etcd-peer-trusted-ca-file", "etcd-trusted-ca-file", "no-embed-etcd",
    }
    six_x = {
        "agent-write-timeout", "agent-serve-wait-time", "api-request-limit", "api-write-timeout",
        "api-serve-wait-time", "assets-rate-limit", "assets-burst-limit", "dashboard-cert-file",
        "dashboard-key-file", "dashboard-write-timeout", "eventd-workers", "keepalived-workers",
        "pipelined-workers", "eventd-buffer-size", "keepalived-buffer-size", "pipelined-buffer-size",
        "jwt-private-key-file", "jwt-public-key-file", "labels", "annotations", "log-millisecond-timestamps",
        "disable-platform-metrics", "platform-metrics-logging-interval", "platform-metrics-log-file",
        "event-log-file", "event-log-buffer-size", "event-log-buffer-wait", "event-log-parallel-encoders",
        "default-silenced-expiry-time", "max-silenced-expiry-time-allowed", "etcd-client-urls",
        "etcd-discovery", "etcd-discovery-srv", "etcd-cipher-suites", "etcd-max-request-bytes",
        "etcd-quota-backend-bytes", "etcd-heartbeat-interval", "etcd-election-timeout", "etcd-log-level",
        "etcd-client-log-level", "etcd-unsafe-no-fsync",
    }
    ours = {"store-fsync", "debug-listen-address"}
    assert five_oh | six_x | ours == keys


# --- types ---------------------------------------------------------------------------


def test_bad_int_in_file_names_file_and_key(tmp_path: Path) -> None:
    err = error_of(tmp_path, "agent-port: 80a\n")
    path = str(tmp_path / "backend.yml")
    assert str(err) == f'{path}: agent-port: expected an integer, got "80a"'
    assert (err.key, err.source) == ("agent-port", path)


def test_bad_int_in_env_names_variable() -> None:
    err = error_of(None, env={"SENSU_BACKEND_AGENT_PORT": "x"})
    assert str(err) == 'env SENSU_BACKEND_AGENT_PORT: expected an integer, got "x"'


def test_bad_int_in_flag_names_flag() -> None:
    err = error_of(None, flags={"agent-port": "x"})
    assert str(err) == 'flag --agent-port: expected an integer, got "x"'
    assert "\n" not in str(err)


def test_yaml_types_are_checked(tmp_path: Path) -> None:
    path = str(tmp_path / "backend.yml")
    assert str(error_of(tmp_path, "debug: maybe\n")) == (
        f'{path}: debug: expected a boolean (true or false), got "maybe"')
    assert str(error_of(tmp_path, "agent-port: true\n")) == f"{path}: agent-port: expected an integer, got true"
    assert str(error_of(tmp_path, "state-dir: [a, b]\n")) == f'{path}: state-dir: expected a string, got ["a", "b"]'
    assert str(error_of(tmp_path, "assets-rate-limit: fast\n")) == (
        f'{path}: assets-rate-limit: expected a number, got "fast"')


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("15s", 15.0), ("1440m", 86400.0), ("1h30m", 5400.0), ("10ms", 0.01), ("2.5s", 2.5), ("20", 20.0)],
)
def test_durations(tmp_path: Path, text: str, seconds: float) -> None:
    assert load_config({"agent-write-timeout": text}, {}).agent_write_timeout == pytest.approx(seconds)


def test_duration_int_in_yaml_is_seconds(tmp_path: Path) -> None:
    assert load_file(tmp_path, "agent-write-timeout: 30\n").agent_write_timeout == 30.0


def test_bad_and_negative_durations() -> None:
    assert str(error_of(None, flags={"api-write-timeout": "soon"})) == (
        'flag --api-write-timeout: expected a duration such as 15s or 10m, got "soon"')
    assert str(error_of(None, flags={"api-write-timeout": "-5s"})) == (
        'flag --api-write-timeout: must be at least 0s, got "-5s"')


def test_parse_and_format_duration() -> None:
    assert parse_duration("1h0m30s") == 3630.0
    assert parse_duration(" 5 ") == 5.0
    with pytest.raises(ValueError):
        parse_duration("5 parsecs")
    assert [format_duration(s) for s in (0, 15, 60, 86400, 0.01, 90.5)] == [
        "0s", "15s", "1m0s", "24h0m0s", "10ms", "1m30.5s"]


def test_string_lists_from_yaml_list_comma_string_and_repeated_flags(tmp_path: Path) -> None:
    config = load_file(tmp_path, "etcd-listen-peer-urls:\n  - http://127.0.0.1:2379\n  - http://10.0.0.1:2379\n")
    assert config.etcd_listen_peer_urls == ("http://127.0.0.1:2379", "http://10.0.0.1:2379")
    config = load_file(tmp_path, 'etcd-initial-advertise-peer-urls: "http://a:1, http://b:2"\n')
    assert config.etcd_initial_advertise_peer_urls == ("http://a:1", "http://b:2")
    config = load_config({"etcd-initial-advertise-peer-urls": ["http://a:1,http://b:2", "http://c:3"]}, {})
    assert config.etcd_initial_advertise_peer_urls == ("http://a:1", "http://b:2", "http://c:3")
    # viper splits a list held in one variable on whitespace, pflag on commas: both are read
    config = load_config({}, {"SENSU_BACKEND_ETCD_INITIAL_ADVERTISE_PEER_URLS": "http://a:1 http://b:2"})
    assert config.etcd_initial_advertise_peer_urls == ("http://a:1", "http://b:2")


def test_labels_from_yaml_mapping_env_and_flags(tmp_path: Path) -> None:
    assert dict(load_file(tmp_path, "labels:\n  region: eu\n  tier: 1\n").labels) == {"region": "eu", "tier": "1"}
    assert dict(load_config({}, {"SENSU_BACKEND_LABELS": "a=b,c=d"}).labels) == {"a": "b", "c": "d"}
    assert dict(load_config({"annotations": ["x=1", "y=2"]}, {}).annotations) == {"x": "1", "y": "2"}
    err = error_of(None, flags={"labels": "novalue"})
    assert str(err) == 'flag --labels: expected key=value[,key=value...], got "novalue"'
    # a JSON object, as Sensu documents maps in the environment
    assert dict(load_config({}, {"SENSU_BACKEND_LABELS": '{"region": "eu"}'}).labels) == {"region": "eu"}
    err = error_of(None, env={"SENSU_BACKEND_LABELS": '{"region": '})
    assert str(err) == ('env SENSU_BACKEND_LABELS: expected a JSON object or key=value[,key=value...], '
                        'got "{\\"region\\": "')


def test_backend_and_agent_read_values_by_the_same_rules(tmp_path: Path) -> None:
    """One converter serves both programs: the same text gives the same value or the same message."""
    from agent.config import AgentConfig
    from agent.config import ConfigError as AgentConfigError
    from agent.config import load_config as load_agent_config

    empty = write(tmp_path, "", name="agent.yml")

    def agent(**flags: object) -> AgentConfig:
        return load_agent_config({"config-file": empty, **flags}, {}, hostname=lambda: "h")

    got = agent(subscriptions="a, b c", labels='{"k": "v"}', **{"keepalive-interval": 20.0})
    assert (got.subscriptions, dict(got.labels), got.keepalive_interval) == (("a", "b", "c"), {"k": "v"}, 20)
    backend = load_config({"etcd-initial-advertise-peer-urls": "http://a:1, http://b:2 http://c:3",
                           "labels": '{"k": "v"}'}, {})
    assert (backend.etcd_initial_advertise_peer_urls, dict(backend.labels)) == (
        ("http://a:1", "http://b:2", "http://c:3"), {"k": "v"})
    assert load_file(tmp_path, "agent-port: 8081.0\n").agent_port == 8081
    assert AgentConfigError is ConfigError
    with pytest.raises(ConfigError) as info:
        agent(**{"keepalive-interval": "often"})
    assert str(info.value) == str(error_of(None, flags={"agent-port": "often"})).replace("agent-port", "keepalive-interval")


# --- the file ------------------------------------------------------------------------


def test_unknown_key_with_suggestion(tmp_path: Path) -> None:
    path = str(tmp_path / "backend.yml")
    assert str(error_of(tmp_path, "agent-prot: 8081\n")) == (
        f'{path}: agent-prot: unknown key (did you mean "agent-port"?)')
    assert str(error_of(tmp_path, "etcd_name: a\n")) == f'{path}: etcd_name: unknown key (did you mean "etcd-name"?)'


def test_unknown_key_without_close_match(tmp_path: Path) -> None:
    path = str(tmp_path / "backend.yml")
    assert str(error_of(tmp_path, "frobnicate: 1\n")) == f"{path}: frobnicate: unknown key"


def test_config_file_key_inside_file_is_rejected(tmp_path: Path) -> None:
    err = error_of(tmp_path, "config-file: /etc/sensu/backend.yml\n")
    assert err.key == "config-file" and "cannot be set inside the config file" in str(err)


def test_bad_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = str(tmp_path / "backend.yml")
    err = error_of(tmp_path, "agent-port: 8081\nlog-level: [debug\nstate-dir: /x\n")
    assert str(err).startswith(f"{path}: line ")
    assert "invalid YAML" in str(err) and "\n" not in str(err)
    err = error_of(tmp_path, "agent-port: 8081\n  bad: indent\n")
    assert str(err).startswith(f"{path}: line 2, column ")


def test_duplicate_key_is_an_error(tmp_path: Path) -> None:
    path = str(tmp_path / "backend.yml")
    err = error_of(tmp_path, "agent-port: 1\nagent-port: 2\n")
    assert str(err) == f'{path}: line 2, column 1: invalid YAML: duplicate key "agent-port"'


def test_yaml_that_is_not_a_mapping(tmp_path: Path) -> None:
    path = str(tmp_path / "backend.yml")
    assert str(error_of(tmp_path, "- agent-port\n- 8081\n")) == (
        f"{path}: expected a mapping of keys to values at the top level, got a list")
    assert str(error_of(tmp_path, "just a string\n")) == (
        f"{path}: expected a mapping of keys to values at the top level, got a str value")


def test_unreadable_config_file(tmp_path: Path) -> None:
    # We run as root, so chmod 000 would still be readable: a directory is unreadable as a file.
    err = error_of(None, flags={"config-file": str(tmp_path)})
    assert str(err) == f"{tmp_path}: cannot read config file: is a directory"


def test_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.yml")
    assert str(error_of(None, flags={"config-file": missing})) == (
        f"{missing}: config file not found (named by flag --config-file)")
    assert str(error_of(None, env={"SENSU_BACKEND_CONFIG_FILE": missing})) == (
        f"{missing}: config file not found (named by env SENSU_BACKEND_CONFIG_FILE)")


def test_missing_default_file_is_fine() -> None:
    assert load_config({}, {}).config_file_loaded is False


# --- validation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("yaml_text", "key", "reason"),
    [
        ("no-embed-etcd: true\n", "no-embed-etcd", "always embedded"),
        ("etcd-cert-file: /c.pem\n", "etcd-cert-file", "no etcd client port"),
        ("etcd-key-file: /c.pem\n", "etcd-key-file", "no etcd client port"),
        ("etcd-trusted-ca-file: /ca.pem\n", "etcd-trusted-ca-file", "no etcd client port"),
        ("etcd-client-cert-auth: true\n", "etcd-client-cert-auth", "no etcd client port"),
        ("etcd-discovery: https://discovery.example/x\n", "etcd-discovery", "etcd-initial-cluster"),
        ("etcd-discovery-srv: example.com\n", "etcd-discovery-srv", "etcd-initial-cluster"),
        ("etcd-cipher-suites: [TLS_AES_128_GCM_SHA256]\n", "etcd-cipher-suites", "OpenSSL's TLS 1.2+"),
    ],
)
def test_unsupported_options_are_rejected(tmp_path: Path, yaml_text: str, key: str, reason: str) -> None:
    err = error_of(tmp_path, yaml_text)
    path = str(tmp_path / "backend.yml")
    assert str(err).startswith(f"{path}: {key}: not supported by this backend (")
    assert reason in str(err)


@pytest.mark.parametrize(("flags", "message"), [
    ({"etcd-peer-cert-file": "/p.pem"},
     "flag --etcd-peer-cert-file: etcd-peer-cert-file and etcd-peer-key-file must be set together "
     "(etcd-peer-key-file is empty)"),
    ({"etcd-peer-client-cert-auth": "true"},
     "flag --etcd-peer-client-cert-auth: needs etcd-peer-cert-file and etcd-peer-key-file (peer TLS is off)"),
    ({"etcd-peer-cert-file": "/p.pem", "etcd-peer-key-file": "/k.pem", "etcd-peer-client-cert-auth": "true"},
     "flag --etcd-peer-client-cert-auth: needs etcd-peer-trusted-ca-file to check peer certificates against"),
    ({"etcd-peer-cert-file": "/p.pem", "etcd-peer-key-file": "/k.pem"},
     "etcd-initial-cluster: peer TLS is on (etcd-peer-cert-file), so peer URLs must be https: "
     "http://127.0.0.1:2380"),
    ({"etcd-initial-cluster": "default=https://127.0.0.1:2380"},
     "flag --etcd-initial-cluster: https://127.0.0.1:2380 is https, but etcd-peer-cert-file and "
     "etcd-peer-key-file are not set"),
])
def test_peer_tls_settings_belong_together(flags: dict[str, object], message: str) -> None:
    assert str(error_of(None, flags=flags)) == message


def test_peer_tls_with_https_peer_urls_is_accepted() -> None:
    url = "https://10.0.0.1:2380"
    config = load_config({"etcd-peer-cert-file": "/p.pem", "etcd-peer-key-file": "/k.pem",
                          "etcd-peer-trusted-ca-file": "/ca.pem", "etcd-peer-client-cert-auth": "true",
                          "etcd-initial-cluster": f"default={url}", "etcd-listen-peer-urls": url,
                          "etcd-initial-advertise-peer-urls": url}, {})
    assert config.etcd_peer_client_cert_auth is True


def test_unsupported_options_at_their_default_are_fine(tmp_path: Path) -> None:
    config = load_file(tmp_path, "no-embed-etcd: false\netcd-peer-cert-file: ''\n")
    assert config.no_embed_etcd is False


def test_choices(tmp_path: Path) -> None:
    assert str(error_of(None, flags={"etcd-initial-cluster-state": "old"})) == (
        'flag --etcd-initial-cluster-state: expected one of [new, existing], got "old"')
    err = error_of(None, env={"SENSU_BACKEND_LOG_LEVEL": "loud"})
    assert str(err).startswith('env SENSU_BACKEND_LOG_LEVEL: expected one of [panic, fatal, error, warn')
    for level in ("panic", "fatal", "error", "warn", "warning", "info", "debug", "trace"):
        assert load_config({"log-level": level}, {}).log_level == level


@pytest.mark.parametrize("port", ["0", "65536", "-1"])
def test_port_range(port: str) -> None:
    assert str(error_of(None, flags={"agent-port": port})) == (
        f'flag --agent-port: must be between 1 and 65535, got "{port}"')


def test_debug_listen_address() -> None:
    assert load_config({}, {}).debug_listen_address == "127.0.0.1:6060"
    assert str(error_of(None, flags={"debug-listen-address": "6060"})).startswith(
        'flag --debug-listen-address: invalid address "6060"')


def test_api_listen_address_and_url() -> None:
    assert load_config({"api-listen-address": "[::1]:9000"}, {}).api_listen_host_port() == ("::1", 9000)
    assert str(error_of(None, flags={"api-listen-address": "localhost"})).startswith(
        'flag --api-listen-address: invalid address "localhost"')
    assert str(error_of(None, flags={"api-url": "localhost:8080"})) == (
        'flag --api-url: invalid URL "localhost:8080": scheme must be http or https')


def test_cert_and_key_go_together(tmp_path: Path) -> None:
    path = str(tmp_path / "backend.yml")
    assert str(error_of(tmp_path, "cert-file: /c.pem\n")) == (
        f"{path}: cert-file: cert-file and key-file must be set together (key-file is empty)")
    assert str(error_of(None, flags={"dashboard-key-file": "/k.pem"})) == (
        "flag --dashboard-key-file: dashboard-cert-file and dashboard-key-file must be set together "
        "(dashboard-cert-file is empty)")
    config = load_config({"cert-file": "/c.pem", "key-file": "/k.pem"}, {})
    assert (config.cert_file, config.key_file) == ("/c.pem", "/k.pem")


def test_initial_cluster_must_contain_etcd_name(tmp_path: Path) -> None:
    path = str(tmp_path / "backend.yml")
    err = error_of(tmp_path, "etcd-name: backend-9\n"
                             "etcd-initial-cluster: backend-0=http://10.0.0.1:2380,backend-1=http://10.0.0.2:2380\n")
    assert str(err) == (
        f'{path}: etcd-name: etcd-name "backend-9" is not a member of etcd-initial-cluster '
        f'"backend-0=http://10.0.0.1:2380,backend-1=http://10.0.0.2:2380" (members: backend-0, backend-1)')


def test_etcd_name_default_blames_initial_cluster(tmp_path: Path) -> None:
    err = error_of(None, flags={"etcd-initial-cluster": "a=http://127.0.0.1:2380"})
    assert err.key == "etcd-initial-cluster" and err.source == "flag --etcd-initial-cluster"
    assert "etcd-name" in str(err) and "etcd-initial-cluster" in str(err)


def test_three_member_cluster_config(tmp_path: Path) -> None:
    config = load_file(tmp_path, (
        "etcd-name: backend-1\n"
        "etcd-listen-peer-urls: http://127.0.0.2:2380\n"
        "etcd-initial-advertise-peer-urls: http://127.0.0.2:2380\n"
        "etcd-initial-cluster: backend-0=http://127.0.0.1:2380,backend-1=http://127.0.0.2:2380,"
        "backend-2=http://127.0.0.3:2380\n"
        "etcd-initial-cluster-state: existing\n"
        "etcd-initial-cluster-token: sensu\n"))
    assert [n for n, _ in config.initial_cluster_members()] == ["backend-0", "backend-1", "backend-2"]
    assert config.etcd_initial_cluster_state == "existing"


def test_empty_initial_cluster_falls_back_to_default() -> None:
    assert load_config({"etcd-initial-cluster": ""}, {}).etcd_initial_cluster == "default=http://127.0.0.1:2380"


def test_bad_initial_cluster(tmp_path: Path) -> None:
    path = str(tmp_path / "backend.yml")
    assert str(error_of(tmp_path, "etcd-initial-cluster: default\n")) == (
        f'{path}: etcd-initial-cluster: invalid member "default" (expected name=url[,name=url...])')
    assert str(error_of(tmp_path, "etcd-initial-cluster: default=http://127.0.0.1\n")) == (
        f'{path}: etcd-initial-cluster: member default: invalid URL "http://127.0.0.1": missing port')


def test_peer_urls_must_be_host_port(tmp_path: Path) -> None:
    path = str(tmp_path / "backend.yml")
    assert str(error_of(tmp_path, "etcd-listen-peer-urls: 127.0.0.1:2380\n")) == (
        f'{path}: etcd-listen-peer-urls: invalid URL "127.0.0.1:2380": scheme must be http or https')
    assert str(error_of(None, flags={"etcd-initial-advertise-peer-urls": "http://:2380"})) == (
        'flag --etcd-initial-advertise-peer-urls: invalid URL "http://:2380": missing host')


def test_election_timeout_vs_heartbeat() -> None:
    err = error_of(None, flags={"etcd-heartbeat-interval": "1000"})
    assert str(err) == ("flag --etcd-heartbeat-interval: etcd-election-timeout (3000 ms) must be at least "
                        "5 times etcd-heartbeat-interval (1000 ms)")


def test_fsync_flags_contradict() -> None:
    err = error_of(None, flags={"store-fsync": "true", "etcd-unsafe-no-fsync": "true"})
    assert "store-fsync and etcd-unsafe-no-fsync" in str(err)
    assert load_config({"store-fsync": "true"}, {}).store_fsync is True


@pytest.mark.parametrize(("flags", "synced"), [
    ({}, True),  # durable by default, as etcd
    ({"etcd-unsafe-no-fsync": "true"}, False),
    ({"store-fsync": "true"}, True),  # the deprecated opt-in changes nothing now
    ({"store-fsync": "false"}, False),  # an explicit opt-out keeps its meaning
])
def test_the_journal_is_synced_unless_turned_off(flags: dict[str, object], synced: bool) -> None:
    from backend.node import journal_fsync

    assert journal_fsync(load_config(flags, {})) is synced


def test_all_errors_are_collected(tmp_path: Path) -> None:
    err = error_of(tmp_path, "agent-port: x\ndashboard-port: y\nbogus: 1\n")
    assert err.errors[0] is err
    assert {e.key for e in err.errors} == {"agent-port", "dashboard-port", "bogus"}
    assert all("\n" not in str(e) for e in err.errors)


def test_effective_derived_values() -> None:
    config = load_config({"log-level": "info"}, {})
    assert config.effective_etcd_log_level == "info"
    assert config.effective_etcd_client_urls == ("http://localhost:2379",)
    assert config.to_mapping()["etcd-listen-peer-urls"] == ["http://127.0.0.1:2380"]


# --- helpers -------------------------------------------------------------------------


def test_parse_initial_cluster() -> None:
    assert parse_initial_cluster("a=http://10.0.0.1:2380, b=https://h.example:2380") == [
        ("a", "http://10.0.0.1:2380"), ("b", "https://h.example:2380")]
    assert parse_initial_cluster("a=http://10.0.0.1:2380,a=http://10.0.0.9:2380") == [
        ("a", "http://10.0.0.1:2380"), ("a", "http://10.0.0.9:2380")]
    for bad in ("", "a", "=http://x:1", "a=", "a=ftp://x:1", "a=http://x", "a=http://x:1,b=http://x:1",
                "a=http://x:1/path"):
        with pytest.raises(ValueError):
            parse_initial_cluster(bad)


def test_url_host_port_and_parse_host_port() -> None:
    assert url_host_port("http://127.0.0.1:2380") == ("127.0.0.1", 2380)
    assert url_host_port("https://[::1]:2380/") == ("::1", 2380)
    assert parse_host_port("[::]:8080") == ("::", 8080)
    assert parse_host_port(":8080") == ("", 8080)
    for bad in ("http://h:0", "http://h:99999", "http://user@h:1", "http://h:1?x=1"):
        with pytest.raises(ValueError):
            url_host_port(bad)


# --- init ----------------------------------------------------------------------------


def test_init_options_from_flags_and_env() -> None:
    opts = load_init_options({"cluster-admin-username": "admin", "timeout": "10s", "wait": "true"},
                             {"SENSU_BACKEND_CLUSTER_ADMIN_PASSWORD": "P@ssw0rd!",
                              "SENSU_BACKEND_CLUSTER_ADMIN_API_KEY": "k"})
    assert (opts.username, opts.password, opts.api_key) == ("admin", "P@ssw0rd!", "k")
    assert opts.timeout_s == 10.0 and opts.wait is True and opts.interactive is False
    assert opts.api_url == "http://localhost:8080"
    assert "P@ssw0rd!" not in repr(opts)


def test_init_timeout_bare_number_is_seconds() -> None:
    opts = load_init_options({"cluster-admin-username": "a", "cluster-admin-password": "b", "timeout": "5"}, {})
    assert opts.timeout_s == 5.0


def test_init_requires_username_and_password() -> None:
    with pytest.raises(ConfigError) as info:
        load_init_options({"cluster-admin-username": "admin"}, {})
    assert str(info.value) == ("cluster-admin-password: required: set --cluster-admin-password or "
                               "SENSU_BACKEND_CLUSTER_ADMIN_PASSWORD, or use --interactive")
    assert load_init_options({"interactive": "true"}, {}).interactive is True


def test_init_api_url_derived_from_config_file(tmp_path: Path) -> None:
    path = write(tmp_path, "api-listen-address: 127.0.0.5:9090\ncert-file: /c\nkey-file: /k\n"
                           "trusted-ca-file: /ca.pem\n")
    base = {"cluster-admin-username": "a", "cluster-admin-password": "b", "config-file": path}
    opts = load_init_options(base, {})
    assert opts.api_url == "https://127.0.0.5:9090" and opts.ca_file == "/ca.pem"
    assert load_init_options(base, {"SENSU_BACKEND_API_URL": "http://h:1"}).api_url == "http://h:1"
    assert load_init_options({**base, "api-url": "http://x:2"}, {}).api_url == "http://x:2"
    assert load_init_options({**base, "trusted-ca-file": "/other.pem"}, {}).ca_file == "/other.pem"


def test_init_bad_api_url() -> None:
    with pytest.raises(ConfigError) as info:
        load_init_options({"cluster-admin-username": "a", "cluster-admin-password": "b", "api-url": "nope"}, {})
    assert str(info.value) == 'flag --api-url: invalid URL "nope": scheme must be http or https'
