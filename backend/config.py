"""Backend configuration: Sensu's flag names and defaults, layered and validated once.

Why this module exists: ``sensu-backend`` must be a drop-in for the Go binary, so it
accepts the same ``backend.yml`` keys, ``SENSU_BACKEND_*`` variables and ``start``
flags with the same defaults. Unlike viper, a key we do not know, a value of the
wrong type, or an option this backend cannot honour (peer TLS, external etcd,
discovery) is an error rather than silently ignored: a monitoring system that
quietly runs with a different configuration than the operator wrote is worse than
one that refuses to start.

Layering, lowest to highest: defaults < config file < ``SENSU_BACKEND_*`` < flags.
The result is one frozen :class:`BackendConfig` that records where each value came
from; nothing reads ``os.environ`` after :func:`load_config` returns.

Errors are :class:`ConfigError` and render as one line, e.g.
``backend.yml: agent-port: expected an integer, got "80a"``. :func:`load_config`
collects every problem it can find; the first is raised and all of them are on
``ConfigError.errors`` (as patroni's validator does), so an operator fixes a file
in one pass.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any, Literal

from core.config_values import (
    DEFAULT_SOURCE,
    BadValue,
    ConfigError,
    Kind,
    Layers,
    Option,
    convert_value,
    default_value,
    format_duration,
    normalize_flags,
    parse_duration,
    plain_values,
    read_config_file,
    resolve_layers,
    show_value,
)

__all__ = [
    "DEFAULT_CONFIG_FILE",
    "ENV_PREFIX",
    "INIT_OPTIONS",
    "OPTIONS",
    "OPTIONS_BY_KEY",
    "BackendConfig",
    "ConfigError",
    "InitOptions",
    "Option",
    "env_name",
    "format_duration",
    "load_config",
    "load_init_options",
    "parse_duration",
    "parse_host_port",
    "parse_initial_cluster",
    "read_config_file",
    "url_host_port",
]

DEFAULT_CONFIG_FILE = "/etc/sensu/backend.yml"
ENV_PREFIX = "SENSU_BACKEND_"
Group = Literal["general", "store", "init"]

LOG_LEVELS = ("panic", "fatal", "error", "warn", "warning", "info", "debug", "trace")

_PEER_TLS = "not supported by this backend (peer TLS uses OpenSSL's TLS 1.2+ cipher suites)"
_CLIENT_TLS = (
    "not supported by this backend (there is no etcd client port: the store is reached "
    "only through this backend's API)"
)
_DISCOVERY = (
    "not supported by this backend (list every member in etcd-initial-cluster instead)"
)
_EXTERNAL = (
    "not supported by this backend (the replicated store is always embedded; "
    "there is no external etcd)"
)
_NO_CLIENT_PORT = (
    "not supported by this backend (there is no etcd client port or etcd client: "
    "the store is reached only through this backend's API)"
)
_WRITE_TIMEOUT = (
    "not supported by this backend (its HTTP server has no per-response write timeout; "
    "slow clients are bounded by keep-alive and shutdown timeouts)"
)
_REQUEST_BYTES = (
    "not supported by this backend (the Raft log carries entries of any size in chunks; "
    "sizes are bounded by api-request-limit and the 16 MiB agent message limit)"
)
_QUOTA = "not supported by this backend (the replicated store has no size quota)"


def _o(key: str, kind: Kind, default: Any, group: Group, help: str, **kw: Any) -> Option:
    return Option(key, kind, default, group, help, **kw)


_PORT = {"minimum": 1, "maximum": 65535}
_POSITIVE = {"minimum": 1}
_NON_NEGATIVE = {"minimum": 0}
_DAY = 1440 * 60.0

OPTIONS: tuple[Option, ...] = (
    # --- general (5.0) ---------------------------------------------------------
    _o("agent-host", "str", "[::]", "general", "agent listener host"),
    _o("agent-port", "int", 8081, "general", "agent listener port", **_PORT),
    _o("api-listen-address", "str", "[::]:8080", "general", "address to listen on for api traffic"),
    _o("api-url", "str", "http://localhost:8080", "general", "url of the api to connect to"),
    _o("cache-dir", "str", "/var/cache/sensu/sensu-backend", "general", "path to store cached data"),
    _o("cert-file", "str", "", "general", "tls certificate"),
    _o("config-file", "str", DEFAULT_CONFIG_FILE, "general", "path to sensu-backend config file", short="c"),
    _o("dashboard-host", "str", "[::]", "general", "dashboard listener host"),
    _o("dashboard-port", "int", 3000, "general", "dashboard listener port", **_PORT),
    _o("debug", "bool", False, "general", "enable debugging and profiling features"),
    _o("deregistration-handler", "str", "", "general", "default deregistration handler"),
    _o("insecure-skip-tls-verify", "bool", False, "general", "skip ssl verification"),
    _o("key-file", "str", "", "general", "tls certificate key"),
    _o("log-level", "str", "warn", "general",
       "logging level [panic, fatal, error, warn, info, debug, trace]", choices=LOG_LEVELS),
    _o("state-dir", "str", "/var/lib/sensu/sensu-backend", "general", "path to sensu state storage", short="d"),
    _o("trusted-ca-file", "str", "", "general", "tls certificate authority"),
    # --- general (6.x) ---------------------------------------------------------
    _o("agent-serve-wait-time", "duration", 0.0, "general",
       "wait time before accepting agent connections after startup", **_NON_NEGATIVE),
    _o("agent-write-timeout", "duration", 15.0, "general",
       "timeout for agent websocket writes (bare numbers are seconds)", **_NON_NEGATIVE),
    _o("annotations", "map", {}, "general", "entity annotations map"),
    _o("api-request-limit", "int", 512000, "general", "maximum API request body size, in bytes", **_POSITIVE),
    _o("api-serve-wait-time", "duration", 0.0, "general",
       "wait time before serving the API after startup", **_NON_NEGATIVE),
    _o("api-write-timeout", "duration", 15.0, "general",
       "maximum duration before timing out writes of responses", unsupported=_WRITE_TIMEOUT, **_NON_NEGATIVE),
    _o("assets-burst-limit", "int", 100, "general", "asset fetch burst limit", **_NON_NEGATIVE),
    _o("assets-rate-limit", "float", 1.39, "general",
       "maximum number of assets fetched per second", **_NON_NEGATIVE),
    _o("dashboard-cert-file", "str", "", "general", "dashboard TLS certificate in PEM format"),
    _o("dashboard-key-file", "str", "", "general", "dashboard TLS certificate key in PEM format"),
    _o("dashboard-write-timeout", "duration", 15.0, "general",
       "maximum duration before timing out writes of dashboard responses", unsupported=_WRITE_TIMEOUT,
       **_NON_NEGATIVE),
    _o("default-silenced-expiry-time", "duration", _DAY, "general",
       "expiry of silences created without one", **_NON_NEGATIVE),
    _o("disable-platform-metrics", "bool", False, "general", "disable platform metrics logging"),
    _o("event-log-buffer-size", "int", 100000, "general", "buffer size of the event logger", **_POSITIVE),
    _o("event-log-buffer-wait", "duration", 0.01, "general",
       "full buffer wait time of the event logger", **_NON_NEGATIVE),
    _o("event-log-file", "str", "", "general", "path to the event log file"),
    _o("event-log-parallel-encoders", "bool", False, "general",
       "use parallel JSON encoding for the event log"),
    _o("eventd-buffer-size", "int", 1000, "general",
       "number of incoming events that can be buffered", **_POSITIVE),
    _o("eventd-workers", "int", 100, "general",
       "number of workers spawned for processing incoming events", **_POSITIVE),
    _o("jwt-private-key-file", "str", "", "general", "path to the PEM-encoded private key used to sign JWTs"),
    _o("jwt-public-key-file", "str", "", "general", "path to the PEM-encoded public key used to verify JWTs"),
    _o("keepalived-buffer-size", "int", 1000, "general",
       "number of incoming keepalives that can be buffered", **_POSITIVE),
    _o("keepalived-workers", "int", 100, "general",
       "number of workers spawned for processing incoming keepalives", **_POSITIVE),
    _o("labels", "map", {}, "general", "entity labels map"),
    _o("log-millisecond-timestamps", "bool", False, "general", "use millisecond precision timestamps in logs"),
    _o("max-silenced-expiry-time-allowed", "duration", _DAY, "general",
       "maximum expiry allowed for silences", **_NON_NEGATIVE),
    _o("pipelined-buffer-size", "int", 1000, "general",
       "number of events to handle that can be buffered", **_POSITIVE),
    _o("pipelined-workers", "int", 100, "general",
       "number of workers spawned for handling events through the event pipeline", **_POSITIVE),
    _o("platform-metrics-log-file", "str", "/var/log/sensu/backend-stats.log", "general",
       "platform metrics log file path"),
    _o("platform-metrics-logging-interval", "duration", 60.0, "general",
       "platform metrics logging interval", **_NON_NEGATIVE),
    # --- store (5.0) -----------------------------------------------------------
    _o("etcd-advertise-client-urls", "strlist", ("http://localhost:2379",), "store",
       "list of this member's client URLs to advertise to the rest of the cluster.", unsupported=_NO_CLIENT_PORT),
    _o("etcd-cert-file", "str", "", "store", "path to the client server TLS cert file", unsupported=_CLIENT_TLS),
    _o("etcd-client-cert-auth", "bool", False, "store", "enable client cert authentication", unsupported=_CLIENT_TLS),
    _o("etcd-initial-advertise-peer-urls", "strlist", ("http://127.0.0.1:2380",), "store",
       "list of this member's peer URLs to advertise to the rest of the cluster"),
    _o("etcd-initial-cluster", "str", "default=http://127.0.0.1:2380", "store",
       "initial cluster configuration for bootstrapping"),
    _o("etcd-initial-cluster-state", "str", "new", "store",
       'initial cluster state ("new" or "existing")', choices=("new", "existing")),
    _o("etcd-initial-cluster-token", "str", "", "store",
       "initial cluster token for the etcd cluster during bootstrap"),
    _o("etcd-key-file", "str", "", "store", "path to the client server TLS key file", unsupported=_CLIENT_TLS),
    _o("etcd-listen-client-urls", "strlist", ("http://127.0.0.1:2379",), "store",
       "list of URLs to listen on for client traffic", unsupported=_NO_CLIENT_PORT),
    _o("etcd-listen-peer-urls", "strlist", ("http://127.0.0.1:2380",), "store",
       "list of URLs to listen on for peer traffic"),
    _o("etcd-name", "str", "default", "store", "human-readable name for this member"),
    _o("etcd-peer-cert-file", "str", "", "store", "path to the peer server TLS cert file"),
    _o("etcd-peer-client-cert-auth", "bool", False, "store", "enable peer client cert authentication"),
    _o("etcd-peer-key-file", "str", "", "store", "path to the peer server TLS key file"),
    _o("etcd-peer-trusted-ca-file", "str", "", "store", "path to the peer server TLS trusted CA file"),
    _o("etcd-trusted-ca-file", "str", "", "store", "path to the client server TLS trusted CA cert file",
       unsupported=_CLIENT_TLS),
    _o("no-embed-etcd", "bool", False, "store", "don't embed etcd, use external etcd instead", unsupported=_EXTERNAL),
    # --- store (6.x) -----------------------------------------------------------
    _o("etcd-cipher-suites", "strlist", (), "store", "list of ciphers to use for etcd TLS configuration",
       unsupported=_PEER_TLS),
    _o("etcd-client-log-level", "str", "error", "store",
       "etcd client logging level [panic, fatal, error, warn, info, debug]", choices=LOG_LEVELS,
       unsupported=_NO_CLIENT_PORT),
    _o("etcd-client-urls", "strlist", (), "store",
       "client URLs to use when operating as an etcd client (default: the advertise client URLs)",
       unsupported=_NO_CLIENT_PORT),
    _o("etcd-discovery", "str", "", "store", "discovery URL used to bootstrap the cluster", unsupported=_DISCOVERY),
    _o("etcd-discovery-srv", "str", "", "store", "DNS SRV domain used to bootstrap the cluster",
       unsupported=_DISCOVERY),
    _o("etcd-election-timeout", "int", 3000, "store",
       "time in ms a follower waits without a heartbeat before calling an election", minimum=1, maximum=50000),
    _o("etcd-heartbeat-interval", "int", 300, "store",
       "interval in ms at which the leader tells followers it is still the leader", **_POSITIVE),
    _o("etcd-log-level", "str", "", "store",
       "store logging level [panic, fatal, error, warn, info, debug] (default: log-level)",
       choices=("",) + LOG_LEVELS),
    _o("etcd-max-request-bytes", "int", 1572864, "store", "maximum store request size in bytes",
       unsupported=_REQUEST_BYTES, **_POSITIVE),
    _o("etcd-quota-backend-bytes", "int", 4294967296, "store", "maximum store size in bytes",
       unsupported=_QUOTA, **_NON_NEGATIVE),
    _o("etcd-unsafe-no-fsync", "bool", False, "store", "disables fsync, unsafe, may cause data loss"),
    # --- ours ------------------------------------------------------------------
    _o("debug-listen-address", "str", "127.0.0.1:6060", "general",
       "address of the debugging endpoints served with --debug"),
    _o("store-fsync", "bool", True, "store",
       "deprecated: the Raft journal is synced before acknowledging by default; false is etcd-unsafe-no-fsync: true"),
)

OPTIONS_BY_KEY: Mapping[str, Option] = MappingProxyType({o.key: o for o in OPTIONS})

INIT_OPTIONS: tuple[Option, ...] = (
    _o("cluster-admin-username", "str", "", "init", "cluster admin username"),
    _o("cluster-admin-password", "str", "", "init", "cluster admin password"),
    _o("cluster-admin-api-key", "str", "", "init", "cluster admin API key"),
    _o("interactive", "bool", False, "init", "interactive mode"),
    _o("ignore-already-initialized", "bool", False, "init",
       "exit 0 if the cluster has already been initialized"),
    _o("timeout", "duration", 5.0, "init",
       "duration to wait before a connection attempt to the backend is considered failed "
       "(bare numbers are seconds)", minimum=0.001),
    _o("wait", "bool", False, "init", "continuously retry to establish a connection to the backend"),
    _o("api-url", "str", "", "init",
       "url of the backend API to initialize (default: api-url, else derived from api-listen-address)"),
    _o("config-file", "str", DEFAULT_CONFIG_FILE, "init", "path to sensu-backend config file", short="c"),
    _o("trusted-ca-file", "str", "", "init", "tls certificate authority for the API"),
    _o("insecure-skip-tls-verify", "bool", False, "init", "skip ssl verification"),
)


def env_name(key: str) -> str:
    """``agent-port`` -> ``SENSU_BACKEND_AGENT_PORT`` (Sensu's viper key replacer)."""
    return ENV_PREFIX + key.upper().replace("-", "_")


# ---------------------------------------------------------------------------------
# URLs and addresses
# ---------------------------------------------------------------------------------


def url_host_port(url: str) -> tuple[str, int]:
    """Return ``(host, port)`` of an ``http``/``https`` URL that names both.

    Peer and client URLs must be dialable, so a missing host or port, another
    scheme, a path, credentials or a query are refused with ``ValueError``. IPv6
    hosts are returned without brackets.
    """
    try:
        parts = urllib.parse.urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"invalid URL {show_value(url)}: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"invalid URL {show_value(url)}: scheme must be http or https")
    if not parts.hostname:
        raise ValueError(f"invalid URL {show_value(url)}: missing host")
    if port is None:
        raise ValueError(f"invalid URL {show_value(url)}: missing port")
    if not 1 <= port <= 65535:
        raise ValueError(f"invalid URL {show_value(url)}: port out of range 1..65535")
    if parts.username or parts.password or parts.query or parts.fragment or parts.path not in ("", "/"):
        raise ValueError(f"invalid URL {show_value(url)}: expected scheme://host:port only")
    return parts.hostname, port


def parse_host_port(address: str) -> tuple[str, int]:
    """Split ``host:port`` / ``[v6]:port`` / ``:port`` (empty host = all interfaces).

    Raises ``ValueError`` when the port is missing, not a number or out of range.
    """
    text = address.strip()
    if text.startswith("["):
        end = text.find("]")
        if end < 0 or text[end + 1 : end + 2] != ":":
            raise ValueError(f"invalid address {show_value(address)}: expected host:port")
        host, port_text = text[1:end], text[end + 2 :]
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep or ":" in host:
            raise ValueError(f"invalid address {show_value(address)}: expected host:port ([v6]:port for IPv6)")
    if not port_text.isdigit():
        raise ValueError(f"invalid address {show_value(address)}: port must be a number")
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise ValueError(f"invalid address {show_value(address)}: port out of range 1..65535")
    return host, port


def parse_initial_cluster(text: str) -> list[tuple[str, str]]:
    """Parse ``etcd-initial-cluster`` (``name=url[,name=url...]``) into ``[(name, url)]``.

    A name may appear more than once (a member with several peer URLs, as etcd
    allows); a URL may not belong to two members. Raises ``ValueError``.
    """
    members: list[tuple[str, str]] = []
    owner: dict[tuple[str, int], str] = {}
    items = [item.strip() for item in text.split(",")]
    if not any(items):
        raise ValueError("is empty (expected name=url[,name=url...])")
    for item in items:
        name, sep, url = item.partition("=")
        name, url = name.strip(), url.strip()
        if not sep or not name or not url:
            raise ValueError(f"invalid member {show_value(item)} (expected name=url[,name=url...])")
        try:
            hp = url_host_port(url)
        except ValueError as exc:
            raise ValueError(f"member {name!s}: {exc}") from None
        if hp in owner and owner[hp] != name:
            raise ValueError(f"members {owner[hp]} and {name} share the peer URL {show_value(url)}")
        owner[hp] = name
        members.append((name, url))
    return members


# ---------------------------------------------------------------------------------
# BackendConfig
# ---------------------------------------------------------------------------------


def _default(key: str) -> Any:
    return default_value(OPTIONS_BY_KEY[key])


def _d(key: str) -> Any:
    return field(default_factory=lambda: _default(key))


@dataclass(frozen=True, slots=True, kw_only=True)
class BackendConfig:
    """The resolved backend configuration; one attribute per key in :data:`OPTIONS`.

    Durations are float seconds, lists are tuples, maps are read-only mappings.
    ``sources`` maps each key to where its value came from (``default``, the file
    path, ``env SENSU_BACKEND_X`` or ``flag --x``). Build it with
    :func:`load_config`; constructing it directly skips validation (tests only).
    """

    # general (5.0)
    agent_host: str = _d("agent-host")
    agent_port: int = _d("agent-port")
    api_listen_address: str = _d("api-listen-address")
    api_url: str = _d("api-url")
    cache_dir: str = _d("cache-dir")
    cert_file: str = _d("cert-file")
    config_file: str = _d("config-file")
    dashboard_host: str = _d("dashboard-host")
    dashboard_port: int = _d("dashboard-port")
    debug: bool = _d("debug")
    deregistration_handler: str = _d("deregistration-handler")
    insecure_skip_tls_verify: bool = _d("insecure-skip-tls-verify")
    key_file: str = _d("key-file")
    log_level: str = _d("log-level")
    state_dir: str = _d("state-dir")
    trusted_ca_file: str = _d("trusted-ca-file")
    # general (6.x)
    agent_serve_wait_time: float = _d("agent-serve-wait-time")
    agent_write_timeout: float = _d("agent-write-timeout")
    annotations: Mapping[str, str] = _d("annotations")
    api_request_limit: int = _d("api-request-limit")
    api_serve_wait_time: float = _d("api-serve-wait-time")
    api_write_timeout: float = _d("api-write-timeout")
    assets_burst_limit: int = _d("assets-burst-limit")
    assets_rate_limit: float = _d("assets-rate-limit")
    dashboard_cert_file: str = _d("dashboard-cert-file")
    dashboard_key_file: str = _d("dashboard-key-file")
    dashboard_write_timeout: float = _d("dashboard-write-timeout")
    default_silenced_expiry_time: float = _d("default-silenced-expiry-time")
    disable_platform_metrics: bool = _d("disable-platform-metrics")
    event_log_buffer_size: int = _d("event-log-buffer-size")
    event_log_buffer_wait: float = _d("event-log-buffer-wait")
    event_log_file: str = _d("event-log-file")
    event_log_parallel_encoders: bool = _d("event-log-parallel-encoders")
    eventd_buffer_size: int = _d("eventd-buffer-size")
    eventd_workers: int = _d("eventd-workers")
    jwt_private_key_file: str = _d("jwt-private-key-file")
    jwt_public_key_file: str = _d("jwt-public-key-file")
    keepalived_buffer_size: int = _d("keepalived-buffer-size")
    keepalived_workers: int = _d("keepalived-workers")
    labels: Mapping[str, str] = _d("labels")
    log_millisecond_timestamps: bool = _d("log-millisecond-timestamps")
    max_silenced_expiry_time_allowed: float = _d("max-silenced-expiry-time-allowed")
    pipelined_buffer_size: int = _d("pipelined-buffer-size")
    pipelined_workers: int = _d("pipelined-workers")
    platform_metrics_log_file: str = _d("platform-metrics-log-file")
    platform_metrics_logging_interval: float = _d("platform-metrics-logging-interval")
    # store (5.0)
    etcd_advertise_client_urls: tuple[str, ...] = _d("etcd-advertise-client-urls")
    etcd_cert_file: str = _d("etcd-cert-file")
    etcd_client_cert_auth: bool = _d("etcd-client-cert-auth")
    etcd_initial_advertise_peer_urls: tuple[str, ...] = _d("etcd-initial-advertise-peer-urls")
    etcd_initial_cluster: str = _d("etcd-initial-cluster")
    etcd_initial_cluster_state: str = _d("etcd-initial-cluster-state")
    etcd_initial_cluster_token: str = _d("etcd-initial-cluster-token")
    etcd_key_file: str = _d("etcd-key-file")
    etcd_listen_client_urls: tuple[str, ...] = _d("etcd-listen-client-urls")
    etcd_listen_peer_urls: tuple[str, ...] = _d("etcd-listen-peer-urls")
    etcd_name: str = _d("etcd-name")
    etcd_peer_cert_file: str = _d("etcd-peer-cert-file")
    etcd_peer_client_cert_auth: bool = _d("etcd-peer-client-cert-auth")
    etcd_peer_key_file: str = _d("etcd-peer-key-file")
    etcd_peer_trusted_ca_file: str = _d("etcd-peer-trusted-ca-file")
    etcd_trusted_ca_file: str = _d("etcd-trusted-ca-file")
    no_embed_etcd: bool = _d("no-embed-etcd")
    # store (6.x)
    etcd_cipher_suites: tuple[str, ...] = _d("etcd-cipher-suites")
    etcd_client_log_level: str = _d("etcd-client-log-level")
    etcd_client_urls: tuple[str, ...] = _d("etcd-client-urls")
    etcd_discovery: str = _d("etcd-discovery")
    etcd_discovery_srv: str = _d("etcd-discovery-srv")
    etcd_election_timeout: int = _d("etcd-election-timeout")
    etcd_heartbeat_interval: int = _d("etcd-heartbeat-interval")
    etcd_log_level: str = _d("etcd-log-level")
    etcd_max_request_bytes: int = _d("etcd-max-request-bytes")
    etcd_quota_backend_bytes: int = _d("etcd-quota-backend-bytes")
    etcd_unsafe_no_fsync: bool = _d("etcd-unsafe-no-fsync")
    # ours
    debug_listen_address: str = _d("debug-listen-address")
    store_fsync: bool = _d("store-fsync")
    # provenance
    sources: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    config_file_loaded: bool = False

    def source_of(self, key: str) -> str:
        """Where ``key``'s value came from (``default`` when not recorded)."""
        return self.sources.get(key, DEFAULT_SOURCE)

    def value_of(self, key: str) -> Any:
        """The value of a Sensu-spelled key (``agent-port`` -> ``agent_port``)."""
        return getattr(self, OPTIONS_BY_KEY[key].attr)

    def initial_cluster_members(self) -> list[tuple[str, str]]:
        """``etcd-initial-cluster`` as ``[(name, peer_url)]`` (validated by :func:`load_config`)."""
        return parse_initial_cluster(self.etcd_initial_cluster)

    def api_listen_host_port(self) -> tuple[str, int]:
        """``api-listen-address`` split into host (brackets removed, may be empty) and port."""
        return parse_host_port(self.api_listen_address)

    @property
    def effective_etcd_log_level(self) -> str:
        """``etcd-log-level``, or ``log-level`` when unset (6.x derives it)."""
        return self.etcd_log_level or self.log_level

    @property
    def effective_etcd_client_urls(self) -> tuple[str, ...]:
        """``etcd-client-urls``, falling back to the advertised client URLs as 6.x does."""
        return self.etcd_client_urls or self.etcd_advertise_client_urls

    def to_mapping(self) -> dict[str, Any]:
        """Key -> plain value (lists, dicts, seconds) for logging and debugging."""
        return plain_values(self, OPTIONS)


_INTERNAL_FIELDS = {"sources", "config_file_loaded"}
assert {f.name for f in fields(BackendConfig)} - _INTERNAL_FIELDS == {o.attr for o in OPTIONS}


# ---------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------


def load_config(argv_values: Mapping[str, object], environ: Mapping[str, str]) -> BackendConfig:
    """Resolve defaults < config file < ``SENSU_BACKEND_*`` < flags into a :class:`BackendConfig`.

    ``argv_values`` holds only the flags the user typed (key spelled as in
    Sensu, or snake_case), raw as typed. ``environ`` is read here and never again.
    Pure apart from reading the config file.

    Raises ``ConfigError`` (the first problem; all of them on ``.errors``).
    """
    layers = resolve_layers(OPTIONS, argv_values, environ, env_name=env_name, default_config_file=DEFAULT_CONFIG_FILE)
    values = layers.values
    if "etcd-initial-cluster" in layers.raw and not values["etcd_initial_cluster"].strip():
        # 6.x: an empty initial cluster falls back to the single-member default.
        values["etcd_initial_cluster"] = _default("etcd-initial-cluster")
    _cross_check(layers)
    layers.raise_errors()
    return BackendConfig(**values, sources=MappingProxyType(layers.sources), config_file_loaded=layers.file_found)


def _cross_check(layers: Layers) -> None:
    """Checks that involve one key's syntax beyond its type, or several keys together."""
    err, value, pick = layers.err, layers.value, layers.pick

    for a, b in (("cert-file", "key-file"), ("dashboard-cert-file", "dashboard-key-file")):
        if bool(value(a)) != bool(value(b)):
            missing = b if value(a) else a
            err(pick(a, b), f"{a} and {b} must be set together ({missing} is empty)")

    for key in ("api-listen-address", "debug-listen-address"):
        try:
            parse_host_port(value(key))
        except ValueError as exc:
            err(key, str(exc))
    try:
        url_host_port(value("api-url"))
    except ValueError as exc:
        err("api-url", str(exc))
    for key in ("agent-host", "dashboard-host", "state-dir", "cache-dir", "etcd-name"):
        if not value(key).strip():
            err(key, "must not be empty")

    for key in ("etcd-listen-peer-urls", "etcd-initial-advertise-peer-urls",
                "etcd-listen-client-urls", "etcd-advertise-client-urls", "etcd-client-urls"):
        urls = value(key)
        if not urls and key != "etcd-client-urls":
            err(key, "must list at least one URL")
        for url in urls:
            try:
                url_host_port(url)
            except ValueError as exc:
                err(key, str(exc))
                break

    try:
        members = parse_initial_cluster(value("etcd-initial-cluster"))
    except ValueError as exc:
        err("etcd-initial-cluster", str(exc))
    else:
        names = [n for n, _ in members]
        if value("etcd-name") not in names:
            key = pick("etcd-name", "etcd-initial-cluster")
            err(key, f'etcd-name "{value("etcd-name")}" is not a member of etcd-initial-cluster '
                     f'"{value("etcd-initial-cluster")}" (members: {", ".join(dict.fromkeys(names))})')

    if value("etcd-election-timeout") < 5 * value("etcd-heartbeat-interval"):
        key = pick("etcd-election-timeout", "etcd-heartbeat-interval")
        err(key, f"etcd-election-timeout ({value('etcd-election-timeout')} ms) must be at least 5 times "
                 f"etcd-heartbeat-interval ({value('etcd-heartbeat-interval')} ms)")
    _check_peer_tls(layers)
    if value("store-fsync") and value("etcd-unsafe-no-fsync") and layers.sources["store-fsync"] != DEFAULT_SOURCE:
        err(pick("store-fsync", "etcd-unsafe-no-fsync"),
            "store-fsync and etcd-unsafe-no-fsync contradict each other; set only one")
    if value("jwt-private-key-file") and not value("jwt-public-key-file"):
        err("jwt-private-key-file", "jwt-public-key-file is required when jwt-private-key-file is set")
    if value("max-silenced-expiry-time-allowed") and value("default-silenced-expiry-time") > value(
        "max-silenced-expiry-time-allowed"
    ):
        err(pick("default-silenced-expiry-time", "max-silenced-expiry-time-allowed"),
            "default-silenced-expiry-time must not exceed max-silenced-expiry-time-allowed")


def _check_peer_tls(layers: Layers) -> None:
    """Peer TLS is on with a certificate and key, and then every peer URL is https (as etcd requires)."""
    err, value, pick = layers.err, layers.value, layers.pick
    if bool(value("etcd-peer-cert-file")) != bool(value("etcd-peer-key-file")):
        missing = "etcd-peer-key-file" if value("etcd-peer-cert-file") else "etcd-peer-cert-file"
        err(pick("etcd-peer-cert-file", "etcd-peer-key-file"),
            f"etcd-peer-cert-file and etcd-peer-key-file must be set together ({missing} is empty)")
        return
    tls = bool(value("etcd-peer-cert-file"))
    for key in ("etcd-peer-client-cert-auth", "etcd-peer-trusted-ca-file"):
        if value(key) and not tls:
            err(key, "needs etcd-peer-cert-file and etcd-peer-key-file (peer TLS is off)")
    if value("etcd-peer-client-cert-auth") and not value("etcd-peer-trusted-ca-file"):
        err("etcd-peer-client-cert-auth", "needs etcd-peer-trusted-ca-file to check peer certificates against")
    try:
        cluster_urls = [url for _, url in parse_initial_cluster(value("etcd-initial-cluster"))]
    except ValueError:
        cluster_urls = []  # reported by the initial-cluster check
    for key, urls in (("etcd-listen-peer-urls", list(value("etcd-listen-peer-urls"))),
                      ("etcd-initial-advertise-peer-urls", list(value("etcd-initial-advertise-peer-urls"))),
                      ("etcd-initial-cluster", cluster_urls)):
        if layers.sources[key] == DEFAULT_SOURCE and key != "etcd-initial-cluster":
            continue
        wrong = [u for u in urls if u.lower().startswith("http://" if tls else "https://")]
        if wrong:
            if tls:
                err(key, f"peer TLS is on (etcd-peer-cert-file), so peer URLs must be https: {wrong[0]}")
            else:
                err(key, f"{wrong[0]} is https, but etcd-peer-cert-file and etcd-peer-key-file are not set")


# ---------------------------------------------------------------------------------
# init
# ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class InitOptions:
    """What ``sensu-backend init`` needs to seed a running cluster through its API.

    ``api_url`` is the node to talk to; ``ca_file``/``insecure`` configure TLS
    verification when it is https. Secrets are kept out of ``repr``.
    """

    username: str
    password: str = field(repr=False)
    api_key: str = field(repr=False, default="")
    interactive: bool = False
    ignore_already_initialized: bool = False
    timeout_s: float = 5.0
    wait: bool = False
    api_url: str = "http://localhost:8080"
    ca_file: str = ""
    insecure: bool = False


INIT_OPTIONS_BY_KEY: Mapping[str, Option] = MappingProxyType({o.key: o for o in INIT_OPTIONS})
_BACKEND_KEYS_FOR_INIT = ("config-file",)


def _derive_api_url(config: BackendConfig) -> str:
    """The URL a local client should use for this node's API."""
    if config.source_of("api-url") != DEFAULT_SOURCE:
        return config.api_url
    host, port = config.api_listen_host_port()
    if host in ("", "0.0.0.0", "::"):
        host = "localhost"
    elif ":" in host:
        host = f"[{host}]"
    scheme = "https" if config.cert_file else "http"
    return f"{scheme}://{host}:{port}"


def load_init_options(argv_values: Mapping[str, object], environ: Mapping[str, str]) -> InitOptions:
    """Resolve ``init`` flags > ``SENSU_BACKEND_*`` > defaults, plus the node's config file.

    The target URL is ``--api-url``, else the backend's ``api-url`` when set in the
    file or environment, else one derived from ``api-listen-address``. Username
    and password are required unless ``--interactive`` (the CLI prompts then).
    Raises ``ConfigError``.
    """
    flags = normalize_flags(argv_values, INIT_OPTIONS_BY_KEY)
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for option in INIT_OPTIONS:
        name = env_name(option.key)
        if option.key in flags:
            raw, source = flags[option.key], f"flag --{option.key}"
        elif environ.get(name) and option.key != "config-file":
            raw, source = environ[name], f"env {name}"
        else:
            values[option.key], sources[option.key] = option.default, DEFAULT_SOURCE
            continue
        try:
            values[option.key] = convert_value(option, raw)
        except BadValue as exc:
            raise ConfigError(option.key, source, str(exc)) from None
        sources[option.key] = source

    backend_flags = {k: flags[k] for k in _BACKEND_KEYS_FOR_INIT if k in flags}
    config = load_config(backend_flags, environ)

    if values["api-url"]:
        try:
            url_host_port(values["api-url"])
        except ValueError as exc:
            raise ConfigError("api-url", sources["api-url"], str(exc)) from None

    def tls(key: str) -> Any:
        return values[key] if sources[key] != DEFAULT_SOURCE else config.value_of(key)

    interactive = bool(values["interactive"])
    if not interactive:
        for key in ("cluster-admin-username", "cluster-admin-password"):
            if not values[key]:
                raise ConfigError(key, None, f"required: set --{key} or {env_name(key)}, or use --interactive")
    return InitOptions(
        username=values["cluster-admin-username"],
        password=values["cluster-admin-password"],
        api_key=values["cluster-admin-api-key"],
        interactive=interactive,
        ignore_already_initialized=bool(values["ignore-already-initialized"]),
        timeout_s=float(values["timeout"]),
        wait=bool(values["wait"]),
        api_url=values["api-url"] or _derive_api_url(config),
        ca_file=tls("trusted-ca-file"),
        insecure=bool(tls("insecure-skip-tls-verify")),
    )
