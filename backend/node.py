"""The composition root: one ``sensu-backend start`` process.

Start order (STYLE §3): the replicated store first (it is the outermost
context, so it stops last), then the HTTP listeners. An error before a
listener is serving becomes a :class:`StartupError`, printed as one line with
a non-zero exit. SIGTERM and SIGINT stop the node gracefully.
"""

from __future__ import annotations

import gc
import logging
import signal
import sys
from dataclasses import dataclass
from functools import partial
from typing import Any, Final

import trio
from hypercorn.config import Config as HyperConfig
from hypercorn.trio.run import worker_serve
from hypercorn.utils import wrap_app

from api.app import create_app, plain_asgi
from api.context import ApiContext
from api.dashboard import create_dashboard_app
from api.debug import create_debug_app
from api.health import health_payload
from api.jwtkeys import JwtKeyError, load_jwt_keys
from api.sensu_go_metrics import sensu_go_families
from api.settings import ApiSettings
from cluster.errors import CompareFailedError, StoreError
from cluster.membership import (
    Member,
    PeerAddressInUseError,
    PeerTLS,
    PeerTLSError,
    RaftSettings,
    encode_member,
    member_key,
)
from cluster.store import Store, open_store

from .agentd import AdhocExecutor, Agentd, AgentListenError
from .assets import AssetError, AssetManager
from .config import BackendConfig
from core.config_values import DEFAULT_SOURCE
from .eventd.eventd import Eventd
from .eventd.eventlog import EventLog, EventLogError
from .eventd.ttl import TTLMonitor
from .keepalived import Keepalived
from core.logging import configure_logging, level_from_sensu, stop_logging
from .pipelined import Pipelined
from .platformmetrics import PlatformMetricsLog
from .schedulerd.daemon import Schedulerd

__all__ = ["run", "serve_node", "raft_settings", "api_settings", "StartupError"]

logger = logging.getLogger(__name__)

#: Raft timing used when the etcd timing flags are left at their defaults
#: (etcd's 300 ms / 3 s would make failover take seconds; see docs/store.md).
DEFAULT_HEARTBEAT_S = 0.05
DEFAULT_ELECTION_S = 0.4
GRACE_S = 5.0
#: Loggers of the replicated store, set to ``etcd-log-level`` (Sensu's level for its embedded etcd).
STORE_LOGGERS: Final = ("cluster", "pysyncobj")


class StartupError(Exception):
    """A daemon failed before it was serving; ``str()`` is the one-line reason."""


def raft_settings(config: BackendConfig) -> RaftSettings:
    """Map the ``etcd-*`` flags onto Raft members and timing."""
    members = tuple(Member(name, url) for name, url in config.initial_cluster_members())
    own = next((m for m in members if m.name == config.etcd_name), None)
    if config.source_of("etcd-initial-advertise-peer-urls") == "default" and own is not None:
        advertise = own.peer_url
    else:
        advertise = config.etcd_initial_advertise_peer_urls[0]
    if config.source_of("etcd-listen-peer-urls") == "default":
        listen = advertise
    else:
        listen = config.etcd_listen_peer_urls[0]
    heartbeat = DEFAULT_HEARTBEAT_S
    election = DEFAULT_ELECTION_S
    if config.source_of("etcd-heartbeat-interval") != "default":
        heartbeat = config.etcd_heartbeat_interval / 1000.0
    if config.source_of("etcd-election-timeout") != "default":
        election = config.etcd_election_timeout / 1000.0
    if election <= heartbeat * 3:
        raise StartupError(
            f"etcd-election-timeout ({election * 1000:.0f} ms) must be more than three "
            f"etcd-heartbeat-interval ({heartbeat * 1000:.0f} ms)"
        )
    tls = None
    if config.etcd_peer_cert_file:
        tls = PeerTLS(config.etcd_peer_cert_file, config.etcd_peer_key_file, config.etcd_peer_trusted_ca_file,
                      config.etcd_peer_client_cert_auth)
    return RaftSettings(
        tls=tls,
        name=config.etcd_name,
        advertise_url=advertise,
        listen_url=listen,
        members=members,
        token=config.etcd_initial_cluster_token,
        state_dir=f"{config.state_dir.rstrip('/')}/raft",
        initial_state=config.etcd_initial_cluster_state,
        fsync=journal_fsync(config),
        heartbeat_s=heartbeat,
        election_s=election,
    )


def journal_fsync(config: BackendConfig) -> bool:
    """Whether the Raft journal is synced before acknowledging: yes, unless ``etcd-unsafe-no-fsync``.

    ``store-fsync`` is the deprecated name from when syncing was opt-in:
    ``true`` now changes nothing, and an explicit ``false`` keeps the
    unsynced behaviour its operator asked for, as ``etcd-unsafe-no-fsync``.
    """
    if config.source_of("store-fsync") != DEFAULT_SOURCE:
        logger.warning("store-fsync is deprecated: the journal is synced by default; "
                       "set etcd-unsafe-no-fsync: true to turn that off (from %s)", config.source_of("store-fsync"))
        if not config.store_fsync:
            return False
    return not config.etcd_unsafe_no_fsync


def _hypercorn_config(bind: str, *, cert: str = "", key: str = "", ca: str = "") -> HyperConfig:
    hc = HyperConfig()
    hc.bind = [bind]
    hc.accesslog = None
    hc.errorlog = logging.getLogger("hypercorn.error")
    hc.graceful_timeout = GRACE_S
    hc.keep_alive_timeout = 75
    if cert and key:
        import ssl

        hc.certfile = cert
        hc.keyfile = key
        if ca:
            hc.ca_certs = ca
            hc.verify_mode = ssl.CERT_OPTIONAL
    return hc


def _bind(host: str, port: int) -> str:
    """``host:port`` for hypercorn; a bare IPv6 host gets its brackets."""
    host = host.strip() or "[::]"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host}:{port}"


async def _serve_http(nursery: trio.Nursery, app: Any, bind: str, flag: str, *, wait: float = 0.0,
                      **tls: str) -> None:
    """Bind first (so a taken port is a one-line error naming the flag), then serve.

    ``wait`` (``api-serve-wait-time``) holds serving back that long after the
    socket is bound: clients queue in the listen backlog meanwhile, as with
    Go's delayed ``Serve``, while the rest of the node starts.
    """
    config = _hypercorn_config(bind, **tls)
    try:
        sockets = config.create_sockets()
        for sock in (*sockets.secure_sockets, *sockets.insecure_sockets):
            sock.listen(config.backlog)
        config.create_ssl_context()  # unreadable or mismatched TLS files fail here, not per request
    except OSError as exc:
        raise StartupError(f"{flag}: cannot listen on {bind}: {exc.strerror or exc}") from exc
    except Exception as exc:  # bad TLS files surface here too
        raise StartupError(f"{flag}: cannot serve on {bind}: {exc}") from exc
    serve = partial(worker_serve, wrap_app(app, config.wsgi_max_body_size, None), config, sockets=sockets)
    if wait > 0:
        async def serve_later() -> None:
            await trio.sleep(wait)
            logger.info("serving after %s (%.1fs)", "api-serve-wait-time", wait, extra={"address": bind})
            await serve()

        nursery.start_soon(serve_later)
        return
    await nursery.start(serve)


async def _register_members(store: Store, settings: RaftSettings) -> None:
    """Write every initial member's name into the registry once a leader exists."""
    while not await store.wait_leader(5.0):
        logger.warning("no Raft leader yet; waiting for a quorum of %s", [m.name for m in settings.members])
    own = settings.self_member
    try:
        await store.put(member_key(own.address), encode_member(own))
        for member in settings.members:
            if member.address == own.address:
                continue
            try:
                await store.create(member_key(member.address), encode_member(member))
            except CompareFailedError:
                pass
    except StoreError as exc:
        logger.warning("could not register cluster members: %s", exc)


def api_settings(config: BackendConfig) -> ApiSettings:
    """The settings the REST API reads, taken from the resolved configuration."""
    return ApiSettings(
        api_request_limit=config.api_request_limit,
        default_silenced_expiry_time=config.default_silenced_expiry_time,
        max_silenced_expiry_time_allowed=config.max_silenced_expiry_time_allowed,
    )


async def serve_node(config: BackendConfig, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    settings = raft_settings(config)
    try:
        async with open_store(settings) as store:
            await _serve_node(config, settings, store, task_status)
    except PeerAddressInUseError as exc:
        raise StartupError(f"etcd-listen-peer-urls: {exc}") from exc
    except PeerTLSError as exc:
        raise StartupError(f"etcd-peer-cert-file: {exc}") from exc


async def _serve_node(config: BackendConfig, settings: RaftSettings, store: Store,
                      task_status: trio.TaskStatus[None]) -> None:
    try:
        jwt_keys = await trio.to_thread.run_sync(load_jwt_keys, config.jwt_private_key_file,
                                                 config.jwt_public_key_file)
    except JwtKeyError as exc:
        raise StartupError(str(exc)) from exc
    events = _event_path(config, settings, store)
    ctx = ApiContext(
        store=store,
        settings=api_settings(config),
        node_name=settings.name,
        initial_members=list(settings.members),
        cluster_id=settings.cluster_id,
        events=events.eventd,
        jwt_keys=jwt_keys,
    )
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_register_members, store, settings)
        await _start_agent_daemons(nursery, config, settings, store, ctx, events)
        api_app = create_app(ctx)
        await _serve_http(
            nursery, api_app, config.api_listen_address, "api-listen-address", wait=config.api_serve_wait_time,
            cert=config.cert_file, key=config.key_file, ca=config.trusted_ca_file,
        )
        await _serve_http(
            nursery, await create_dashboard_app(plain_asgi(api_app)), _bind(config.dashboard_host, config.dashboard_port),
            "dashboard-port", cert=config.dashboard_cert_file, key=config.dashboard_key_file,
        )
        if config.debug:
            await _serve_http(nursery, create_debug_app(store), getattr(config, "debug_listen_address", "127.0.0.1:6060"), "debug-listen-address")
        logger.warning(
            "sensu-backend started",
            extra={"node": settings.name, "api": config.api_listen_address, "peer": settings.advertise_url},
        )
        gc.freeze()  # what startup built lives as long as the node: full collections need not walk it
        task_status.started()
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
            async for signum in signals:
                if signum == signal.SIGHUP:  # logrotate: reopen the event log by name
                    event_log = ctx.services.get("event_log")
                    logger.info("received SIGHUP; reopening the event log" if event_log else
                                "received SIGHUP; nothing to reopen", extra={"node": settings.name})
                    if event_log is not None:
                        event_log.reopen_nowait()
                    continue
                logger.warning("received %s, stopping", signal.Signals(signum).name, extra={"node": settings.name})
                nursery.cancel_scope.cancel()
                break


@dataclass(frozen=True, slots=True)
class _EventPath:
    """eventd and what it feeds, built (not started) before the API context that is given eventd."""

    eventd: Eventd
    pipelined: Pipelined
    assets: AssetManager
    event_log: EventLog | None


def _event_path(config: BackendConfig, settings: RaftSettings, store: Store) -> _EventPath:
    """Build eventd, pipelined (with its asset manager) and the optional event log; nothing runs yet."""
    assets = AssetManager(config.cache_dir, rate=config.assets_rate_limit, burst=config.assets_burst_limit,
                          trusted_ca_file=config.trusted_ca_file,
                          insecure_skip_tls_verify=config.insecure_skip_tls_verify, labels=config.labels,
                          annotations=config.annotations)
    pipelined = Pipelined(store, workers=config.pipelined_workers, buffer=config.pipelined_buffer_size,
                          node=settings.name, assets=assets)
    event_log = None
    if config.event_log_file:
        event_log = EventLog(config.event_log_file, buffer_size=config.event_log_buffer_size,
                             buffer_wait=config.event_log_buffer_wait,
                             parallel_encoders=config.event_log_parallel_encoders)
    eventd = Eventd(store, node=settings.name, pipelined=pipelined, event_log=event_log)
    return _EventPath(eventd=eventd, pipelined=pipelined, assets=assets, event_log=event_log)


async def _start_agent_daemons(nursery: trio.Nursery, config: BackendConfig, settings: RaftSettings, store: Store,
                               ctx: ApiContext, events: _EventPath) -> None:
    """pipelined, the event log, keepalived, the TTL monitor, the ad hoc executor,
    schedulerd and agentd, in that order (STYLE §3): a daemon starts only after
    the ones it feeds.

    Every event source (agentd, keepalived, the TTL monitor, the API through
    ``ctx.events``) is given the one :class:`Eventd`, which stores events and
    hands them to pipelined (backend/eventd/eventd.py).
    """
    pipelined, eventd = events.pipelined, events.eventd
    try:
        await nursery.start(pipelined.run)
    except AssetError as exc:  # only the CA file can fail here: it names the setting
        raise StartupError(f"{exc.asset}: {exc.reason}") from exc
    if events.event_log is not None:
        try:
            await nursery.start(events.event_log.run)
        except EventLogError as exc:
            raise StartupError(str(exc)) from exc
        ctx.services.update(event_log=events.event_log)
    keepalived = Keepalived(store, node=settings.name, eventd=eventd,
                            deregistration_handler=config.deregistration_handler,
                            workers=config.keepalived_workers, buffer_size=config.keepalived_buffer_size)
    await nursery.start(keepalived.run)
    ttl_monitor = TTLMonitor(store, eventd, node=settings.name)
    await nursery.start(ttl_monitor.run)
    await nursery.start(AdhocExecutor(store, node=settings.name).run)
    schedulerd = Schedulerd(store, settings.name)
    await nursery.start(schedulerd.run)
    agentd = Agentd(store, config, node=settings.name, keepalives=keepalived, eventd=eventd,
                    health=lambda: health_payload(store, ctx.initial_members, ctx.node_name, ctx.cluster_id))
    try:
        await nursery.start(agentd.run)
    except AgentListenError as exc:
        raise StartupError(str(exc)) from exc
    if not config.disable_platform_metrics and config.platform_metrics_logging_interval > 0:
        platform_log = PlatformMetricsLog(config.platform_metrics_log_file, config.platform_metrics_logging_interval,
                                          lambda: sensu_go_families(ctx.services))
        await nursery.start(platform_log.run)
        ctx.services.update(platform_metrics=platform_log)
    ctx.services.update(pipelined=pipelined, keepalived=keepalived, agentd=agentd, eventd=eventd,
                        assets=events.assets, schedulerd=schedulerd, ttl=ttl_monitor)


def _first_leaf(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    return exc


#: Collector thresholds (Python's defaults: 700, 10, 10). An agent event allocates hundreds of
#: short-lived container objects, so the default young generation was collected very often;
#: with these the collector went from ~9 % of a node's busy samples to none seen, and a three-node
#: cluster spends 5-8 % less CPU per event (docs/performance.md). Reference cycles are still
#: freed, only in larger batches.
GC_THRESHOLDS: Final = (50_000, 20, 100)


def run(config: BackendConfig) -> int:
    """Run the node until SIGTERM/SIGINT; returns the process exit code."""
    configure_logging(config.log_level, millisecond_timestamps=config.log_millisecond_timestamps)
    # etcd-log-level: the replicated store's own loggers (ours and pysyncobj's), log-level when unset
    store_level = level_from_sensu(config.effective_etcd_log_level)
    for name in STORE_LOGGERS:
        logging.getLogger(name).setLevel(store_level)
    gc.set_threshold(*GC_THRESHOLDS)
    failure: list[str] = []
    try:
        trio.run(serve_node, config)
    except* StartupError as group:
        failure.append(str(_first_leaf(group)))
    finally:
        stop_logging()
    if failure:
        print(f"sensu-backend: {failure[0]}", file=sys.stderr)
        return 1
    return 0
