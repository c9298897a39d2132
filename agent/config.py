"""Agent configuration: Sensu's ``sensu-agent`` keys and defaults, layered and validated once.

Why it looks like :mod:`backend.config`: operators already have
``/etc/sensu/agent.yml`` files, ``SENSU_*`` variables and ``sensu-agent start``
flags; they must keep working with the same spelling and defaults (runtime.md
§2.1). The value rules, the layering and the error wording are the backend's
(:mod:`core.config_values`): a key we do not know or a value of the wrong type
is an error (one line naming the key and where it came from, exit 2) rather than
being silently ignored.

Layering, lowest to highest: defaults < config file (``/etc/sensu/agent.yml``,
``-c``/``--config-file`` or ``SENSU_CONFIG_FILE``) < ``SENSU_<KEY>`` < flags.

Three kinds of keys (documented in ``agent/README.md``):

* honoured keys: transport, entity, keepalives, checks, local API, queue;
* *ignored* keys (:data:`IGNORED_KEYS`): the socket, StatsD and asset keys and
  ``detect-cloud-provider``; accepted so existing files keep working, and
  logged at debug level when set, because this agent has no socket or StatsD
  listener and never fetches assets;
* *refused* keys: ``allow-list`` -- a value is an error, because silently running
  commands the operator meant to restrict would be a security surprise.

Nothing reads ``os.environ`` after :func:`load_config`; the environment handed to
check commands is captured here as :attr:`AgentConfig.process_env`.
"""

from __future__ import annotations

import socket
import urllib.parse
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any, Final, Literal

from core.config_values import (
    DEFAULT_SOURCE,
    ConfigError,
    Kind,
    Layers,
    Option,
    default_value,
    format_duration,
    plain_values,
    resolve_layers,
    show_value,
)
from core.resources.entity import DEFAULT_REDACT
from core.resources.meta import NAME_RE, SUBSCRIPTION_RE

__all__ = [
    "DEFAULT_CONFIG_FILE",
    "ENV_PREFIX",
    "CONFIG_FILE_ENV",
    "IGNORED_KEYS",
    "OPTIONS",
    "OPTIONS_BY_KEY",
    "AgentConfig",
    "ConfigError",
    "Option",
    "env_name",
    "load_config",
    "normalize_backend_url",
]

DEFAULT_CONFIG_FILE = "/etc/sensu/agent.yml"
ENV_PREFIX: Final = "SENSU_"
CONFIG_FILE_ENV: Final = "SENSU_CONFIG_FILE"
DEFAULT_AGENT_PORT: Final = 8081

Group = Literal["general", "transport", "keepalive", "api", "ignored"]

LOG_LEVELS: Final = ("panic", "fatal", "error", "warn", "warning", "info", "debug", "trace")

_IGNORED = "accepted and ignored: this agent has no {what}"


def _o(key: str, kind: Kind, default: Any, group: Group, help: str, **kw: Any) -> Option:
    return Option(key, kind, default, group, help, **kw)


_PORT: Final[dict[str, Any]] = {"minimum": 1, "maximum": 65535}
_POSITIVE: Final[dict[str, Any]] = {"minimum": 1}
_NON_NEGATIVE: Final[dict[str, Any]] = {"minimum": 0}

OPTIONS: tuple[Option, ...] = (
    # --- general ---------------------------------------------------------------
    _o("name", "str", "", "general", "agent name"),
    _o("namespace", "str", "default", "general", "agent namespace"),
    _o("subscriptions", "strlist", (), "general", "comma-delimited list of agent subscriptions"),
    _o("labels", "map", {}, "general", "entity labels map"),
    _o("annotations", "map", {}, "general", "entity annotations map"),
    _o("deregister", "bool", False, "general", "ephemeral agent"),
    _o("deregistration-handler", "str", "", "general", "deregistration handler that should process the entity deregistration event"),
    _o("redact", "strlist", DEFAULT_REDACT, "general", "comma-delimited customized list of fields to redact"),
    _o("agent-managed-entity", "bool", False, "general",
       "manage this entity via the agent (entity_config from the backend is ignored)"),
    _o("cache-dir", "str", "/var/cache/sensu/sensu-agent", "general", "path to store cached data (the durable event queue)"),
    _o("config-file", "str", DEFAULT_CONFIG_FILE, "general", "path to sensu-agent config file", short="c"),
    _o("log-level", "str", "info", "general",
       "logging level [panic, fatal, error, warn, info, debug, trace]", choices=LOG_LEVELS),
    _o("strip-networks", "bool", False, "general", "do not include network interfaces in the entity's system info"),
    _o("allow-list", "str", "", "general", "path to agent execution allow list configuration file",
       unsupported="not supported by this agent (it cannot enforce an allow list; remove the key)"),
    # --- transport -------------------------------------------------------------
    _o("backend-url", "strlist", ("ws://127.0.0.1:8081",), "transport",
       "ws/wss URL of Sensu backend server (to specify multiple backends use this flag multiple times)"),
    _o("user", "str", "agent", "transport", "agent user"),
    _o("password", "str", "P@ssw0rd!", "transport", "agent password"),
    _o("backend-handshake-timeout", "int", 15, "transport",
       "number of seconds the agent should wait when negotiating a new WebSocket connection", **_POSITIVE),
    _o("backend-heartbeat-interval", "int", 30, "transport",
       "interval at which the agent should send heartbeats to the backend", **_POSITIVE),
    _o("backend-heartbeat-timeout", "int", 45, "transport",
       "number of seconds the agent should wait for a response to a heartbeat", **_POSITIVE),
    _o("retry-min", "duration", 1.0, "transport", "minimum amount of time to wait before retrying a backend connection",
       minimum=0.001),
    _o("retry-max", "duration", 120.0, "transport", "maximum amount of time to wait before retrying a backend connection",
       minimum=0.001),
    _o("retry-multiplier", "float", 2.0, "transport",
       "value multiplied with the current retry delay to produce a longer retry delay (bounded by retry-max)",
       minimum=1.0),
    _o("max-session-length", "duration", 0.0, "transport",
       "maximum amount of time after which the agent will reconnect to one of the configured backends (0 = off)",
       **_NON_NEGATIVE),
    _o("trusted-ca-file", "str", "", "transport", "TLS CA certificate bundle in PEM format"),
    _o("insecure-skip-tls-verify", "bool", False, "transport", "skip TLS verification (not recommended!)"),
    _o("cert-file", "str", "", "transport", "certificate for TLS authentication"),
    _o("key-file", "str", "", "transport", "key for TLS authentication"),
    # --- keepalive -------------------------------------------------------------
    _o("keepalive-interval", "int", 20, "keepalive", "number of seconds to send between keepalive events",
       **_POSITIVE),
    _o("keepalive-warning-timeout", "int", 120, "keepalive",
       "number of seconds until agent is considered dead by backend to create a warning event", minimum=5),
    _o("keepalive-timeout", "int", 0, "keepalive",
       "5.0 name of keepalive-warning-timeout", **_NON_NEGATIVE),
    _o("keepalive-critical-timeout", "int", 0, "keepalive",
       "number of seconds until agent is considered dead by backend to create a critical event (0 = off)",
       **_NON_NEGATIVE),
    _o("keepalive-handlers", "strlist", (), "keepalive", "comma-delimited list of keepalive handlers for this entity"),
    _o("keepalive-pipelines", "strlist", (), "keepalive", "comma-delimited list of pipeline references for keepalive event"),
    _o("keepalive-check-labels", "map", {}, "keepalive", "keepalive check labels map"),
    _o("keepalive-check-annotations", "map", {}, "keepalive", "keepalive check annotations map"),
    # --- local API ---------------------------------------------------------------
    _o("api-host", "str", "127.0.0.1", "api", "address to bind the Sensu client HTTP API to"),
    _o("api-port", "int", 3031, "api", "port the Sensu client HTTP API listens on", **_PORT),
    _o("disable-api", "bool", False, "api", "disable the Agent HTTP API"),
    _o("events-rate-limit", "float", 10.0, "api",
       "maximum number of events per second forwarded from the agent API (0 = unlimited)", **_NON_NEGATIVE),
    _o("events-burst-limit", "int", 10, "api", "events API burst limit", **_POSITIVE),
    # --- ours --------------------------------------------------------------------
    _o("cache-max-events", "int", 10000, "general",
       "most events the durable queue in cache-dir holds; when full, new events are refused", **_POSITIVE),
    _o("cache-max-bytes", "int", 100 * 1024 * 1024, "general",
       "most bytes the durable queue in cache-dir holds; when full, new events are refused", minimum=1024),
    # --- accepted, no effect -----------------------------------------------------
    _o("socket-host", "str", "127.0.0.1", "ignored", "address to bind the Sensu client socket to",
       ignored=_IGNORED.format(what="socket listener")),
    _o("socket-port", "int", 3030, "ignored", "port the Sensu client socket listens on",
       ignored=_IGNORED.format(what="socket listener"), **_PORT),
    _o("disable-sockets", "bool", False, "ignored", "disable the Agent TCP and UDP event sockets",
       ignored=_IGNORED.format(what="socket listener")),
    _o("statsd-disable", "bool", False, "ignored", "disables the statsd listener and metrics server",
       ignored=_IGNORED.format(what="StatsD listener")),
    _o("statsd-metrics-host", "str", "127.0.0.1", "ignored", "address used for the statsd metrics server",
       ignored=_IGNORED.format(what="StatsD listener")),
    _o("statsd-metrics-port", "int", 8125, "ignored", "port used for the statsd metrics server",
       ignored=_IGNORED.format(what="StatsD listener"), **_PORT),
    _o("statsd-flush-interval", "int", 10, "ignored", "number of seconds between statsd flush",
       ignored=_IGNORED.format(what="StatsD listener"), **_POSITIVE),
    _o("statsd-event-handlers", "strlist", (), "ignored", "comma-delimited list of event handlers for statsd metrics",
       ignored=_IGNORED.format(what="StatsD listener")),
    _o("disable-assets", "bool", False, "ignored", "disable check assets on this agent",
       ignored="accepted and ignored: assets are always disabled on this agent "
               "(a check with runtime_assets gets a failure event)"),
    _o("assets-rate-limit", "float", 1.39, "ignored", "maximum number of assets fetched per second",
       ignored=_IGNORED.format(what="asset fetcher"), **_NON_NEGATIVE),
    _o("assets-burst-limit", "int", 100, "ignored", "asset fetch burst limit",
       ignored=_IGNORED.format(what="asset fetcher"), **_NON_NEGATIVE),
    _o("detect-cloud-provider", "bool", False, "ignored", "enable cloud provider detection",
       ignored=_IGNORED.format(what="cloud provider detection")),
)

OPTIONS_BY_KEY: Mapping[str, Option] = MappingProxyType({o.key: o for o in OPTIONS})
IGNORED_KEYS: Final = frozenset(o.key for o in OPTIONS if o.ignored)

_ALIASES: Final = {"keepalive-timeout": "keepalive-warning-timeout"}


def env_name(key: str) -> str:
    """``backend-url`` -> ``SENSU_BACKEND_URL`` (Sensu's viper key replacer)."""
    return ENV_PREFIX + key.upper().replace("-", "_")


# ---------------------------------------------------------------------------------
# URLs
# ---------------------------------------------------------------------------------


def normalize_backend_url(url: str) -> str:
    """Validate a ``backend-url`` and append port 8081 when it has none (runtime.md §1.2).

    Only ``ws://`` and ``wss://`` are accepted; a path is kept. Raises ``ValueError``.
    """
    text = url.strip()
    try:
        parts = urllib.parse.urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"invalid URL {show_value(url)}: {exc}") from None
    if parts.scheme not in ("ws", "wss"):
        raise ValueError(f"invalid URL {show_value(url)}: scheme must be ws or wss")
    if not parts.hostname:
        raise ValueError(f"invalid URL {show_value(url)}: missing host")
    if parts.username or parts.password:
        raise ValueError(f"invalid URL {show_value(url)}: credentials belong in user and password")
    if port is None:
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        parts = parts._replace(netloc=f"{host}:{DEFAULT_AGENT_PORT}")
    return urllib.parse.urlunsplit(parts)


# ---------------------------------------------------------------------------------
# AgentConfig
# ---------------------------------------------------------------------------------


def _default(key: str) -> Any:
    return default_value(OPTIONS_BY_KEY[key])


def _d(key: str) -> Any:
    return field(default_factory=lambda: _default(key))


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentConfig:
    """The resolved agent configuration; one attribute per key in :data:`OPTIONS`.

    Durations are float seconds, lists tuples, maps read-only mappings.
    ``backend_url`` holds normalized URLs (port appended). ``keepalive_timeout``
    is folded into ``keepalive_warning_timeout``. ``sources`` maps each key to
    where its value came from. ``process_env`` is the environment checks start
    from, captured once. Build it with :func:`load_config`; constructing it
    directly skips validation (tests only).
    """

    name: str = "agent"
    namespace: str = _d("namespace")
    subscriptions: tuple[str, ...] = _d("subscriptions")
    labels: Mapping[str, str] = _d("labels")
    annotations: Mapping[str, str] = _d("annotations")
    deregister: bool = _d("deregister")
    deregistration_handler: str = _d("deregistration-handler")
    redact: tuple[str, ...] = _d("redact")
    agent_managed_entity: bool = _d("agent-managed-entity")
    cache_dir: str = _d("cache-dir")
    config_file: str = _d("config-file")
    log_level: str = _d("log-level")
    strip_networks: bool = _d("strip-networks")
    allow_list: str = _d("allow-list")
    backend_url: tuple[str, ...] = _d("backend-url")
    user: str = _d("user")
    password: str = field(default_factory=lambda: _default("password"), repr=False)
    backend_handshake_timeout: int = _d("backend-handshake-timeout")
    backend_heartbeat_interval: int = _d("backend-heartbeat-interval")
    backend_heartbeat_timeout: int = _d("backend-heartbeat-timeout")
    retry_min: float = _d("retry-min")
    retry_max: float = _d("retry-max")
    retry_multiplier: float = _d("retry-multiplier")
    max_session_length: float = _d("max-session-length")
    trusted_ca_file: str = _d("trusted-ca-file")
    insecure_skip_tls_verify: bool = _d("insecure-skip-tls-verify")
    cert_file: str = _d("cert-file")
    key_file: str = _d("key-file")
    keepalive_interval: int = _d("keepalive-interval")
    keepalive_warning_timeout: int = _d("keepalive-warning-timeout")
    keepalive_timeout: int = _d("keepalive-timeout")
    keepalive_critical_timeout: int = _d("keepalive-critical-timeout")
    keepalive_handlers: tuple[str, ...] = _d("keepalive-handlers")
    keepalive_pipelines: tuple[str, ...] = _d("keepalive-pipelines")
    keepalive_check_labels: Mapping[str, str] = _d("keepalive-check-labels")
    keepalive_check_annotations: Mapping[str, str] = _d("keepalive-check-annotations")
    api_host: str = _d("api-host")
    api_port: int = _d("api-port")
    disable_api: bool = _d("disable-api")
    events_rate_limit: float = _d("events-rate-limit")
    events_burst_limit: int = _d("events-burst-limit")
    cache_max_events: int = _d("cache-max-events")
    cache_max_bytes: int = _d("cache-max-bytes")
    socket_host: str = _d("socket-host")
    socket_port: int = _d("socket-port")
    disable_sockets: bool = _d("disable-sockets")
    statsd_disable: bool = _d("statsd-disable")
    statsd_metrics_host: str = _d("statsd-metrics-host")
    statsd_metrics_port: int = _d("statsd-metrics-port")
    statsd_flush_interval: int = _d("statsd-flush-interval")
    statsd_event_handlers: tuple[str, ...] = _d("statsd-event-handlers")
    disable_assets: bool = _d("disable-assets")
    assets_rate_limit: float = _d("assets-rate-limit")
    assets_burst_limit: int = _d("assets-burst-limit")
    detect_cloud_provider: bool = _d("detect-cloud-provider")
    # provenance and captured process state
    sources: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    config_file_loaded: bool = False
    process_env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), repr=False)

    def source_of(self, key: str) -> str:
        """Where ``key``'s value came from (``default`` when not recorded)."""
        return self.sources.get(key, DEFAULT_SOURCE)

    def value_of(self, key: str) -> Any:
        """The value of a Sensu-spelled key (``api-port`` -> ``api_port``)."""
        return getattr(self, OPTIONS_BY_KEY[key].attr)

    @property
    def effective_heartbeat_timeout(self) -> float:
        """``backend-heartbeat-timeout``, or ``interval*10/6`` when it is not above the interval (§1.7)."""
        if self.backend_heartbeat_timeout <= self.backend_heartbeat_interval:
            return self.backend_heartbeat_interval * 10 / 6
        return float(self.backend_heartbeat_timeout)

    @property
    def uses_client_cert(self) -> bool:
        """With a client certificate the agent authenticates by TLS and omits Basic auth (§1.2)."""
        return bool(self.cert_file and self.key_file)

    def ignored_settings(self) -> dict[str, str]:
        """Ignored keys the operator set, with the reason (logged at debug on start)."""
        return {
            o.key: o.ignored
            for o in OPTIONS
            if o.ignored and self.source_of(o.key) != DEFAULT_SOURCE
        }

    def to_mapping(self) -> dict[str, Any]:
        """Key -> plain value for logging; the password is masked."""
        out = plain_values(self, OPTIONS)
        out["password"] = "REDACTED"
        return out


_INTERNAL_FIELDS = {"sources", "config_file_loaded", "process_env"}
assert {f.name for f in fields(AgentConfig)} - _INTERNAL_FIELDS == {o.attr for o in OPTIONS}


# ---------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------


def _default_name(hostname: Callable[[], str]) -> str:
    """The hostname, or a UUID when there is none (runtime.md §2.1)."""
    try:
        name = hostname().strip()
    except OSError:
        name = ""
    return name or str(uuid.uuid4())


def load_config(
    argv_values: Mapping[str, object],
    environ: Mapping[str, str],
    *,
    hostname: Callable[[], str] = socket.gethostname,
) -> AgentConfig:
    """Resolve defaults < config file < ``SENSU_<KEY>`` < flags into an :class:`AgentConfig`.

    ``argv_values`` holds only the flags the user typed, raw. ``environ`` is read
    here and never again (it also becomes the checks' base environment).
    ``hostname`` supplies the default ``name``. Pure apart from reading the file.

    Raises ``ConfigError`` (the first problem; all of them on ``.errors``).
    """
    layers = resolve_layers(OPTIONS, argv_values, environ, env_name=env_name,
                            default_config_file=DEFAULT_CONFIG_FILE, aliases=_ALIASES)
    values = layers.values
    if layers.sources["name"] == DEFAULT_SOURCE or not values["name"].strip():
        values["name"] = _default_name(hostname)
    _cross_check(layers)
    layers.raise_errors()
    return AgentConfig(
        **values,
        sources=MappingProxyType(layers.sources),
        config_file_loaded=layers.file_found,
        process_env=MappingProxyType(dict(environ)),
    )


def _cross_check(layers: Layers) -> None:
    """Checks beyond one value's type; may normalize ``values`` in place (backend URLs)."""
    values, err, value, pick = layers.values, layers.err, layers.value, layers.pick

    urls: list[str] = []
    for url in value("backend-url"):
        try:
            urls.append(normalize_backend_url(url))
        except ValueError as exc:
            err("backend-url", str(exc))
            break
    else:
        if not urls:
            err("backend-url", "must list at least one ws:// or wss:// URL")
        values["backend_url"] = tuple(dict.fromkeys(urls))

    if not NAME_RE.match(value("name")):
        err("name", f"{show_value(value('name'))} cannot contain spaces or special characters "
                    "(set name explicitly when the hostname is not a valid entity name)")
    if not NAME_RE.match(value("namespace")):
        err("namespace", f"{show_value(value('namespace'))} cannot contain spaces or special characters")
    for sub in value("subscriptions"):
        if not SUBSCRIPTION_RE.match(sub):
            err("subscriptions", f"invalid subscription {show_value(sub)}")
            break
    for key in ("keepalive-handlers", "statsd-event-handlers"):
        for name in value(key):
            if not NAME_RE.match(name):
                err(key, f"invalid handler name {show_value(name)}")
                break
    for name in value("keepalive-pipelines"):
        if not NAME_RE.match(name):
            err("keepalive-pipelines", f"invalid pipeline name {show_value(name)}")
            break
    if value("deregistration-handler") and not NAME_RE.match(value("deregistration-handler")):
        err("deregistration-handler", f"invalid handler name {show_value(value('deregistration-handler'))}")

    interval = value("keepalive-interval")
    warning = value("keepalive-warning-timeout")
    critical = value("keepalive-critical-timeout")
    if warning <= interval:
        err(pick("keepalive-warning-timeout", "keepalive-interval"),
            f"keepalive-warning-timeout ({warning}) must be greater than keepalive-interval ({interval})")
    if critical:
        if critical < 5:
            err("keepalive-critical-timeout", f"must be 0 (off) or at least 5, got {critical}")
        elif critical <= interval:
            err(pick("keepalive-critical-timeout", "keepalive-interval"),
                f"keepalive-critical-timeout ({critical}) must be greater than keepalive-interval ({interval})")
        elif critical < warning:
            err(pick("keepalive-critical-timeout", "keepalive-warning-timeout"),
                f"keepalive-critical-timeout ({critical}) must not be less than "
                f"keepalive-warning-timeout ({warning})")
    values["keepalive_timeout"] = warning  # the alias always reads as the resolved value

    if value("retry-max") < value("retry-min"):
        err(pick("retry-max", "retry-min"),
            f"retry-max ({format_duration(value('retry-max'))}) must not be less than "
            f"retry-min ({format_duration(value('retry-min'))})")
    if bool(value("cert-file")) != bool(value("key-file")):
        missing = "key-file" if value("cert-file") else "cert-file"
        err(pick("cert-file", "key-file"), f"cert-file and key-file must be set together ({missing} is empty)")
    for key in ("cache-dir", "api-host"):
        if not value(key).strip():
            err(key, "must not be empty")
    if not value("user") and not value("cert-file"):
        err("user", "must not be empty (or authenticate with cert-file and key-file)")
