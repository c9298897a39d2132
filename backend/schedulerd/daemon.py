"""schedulerd: exactly one node schedules each check; another takes over when it dies.

Ownership is a key per check, ``_internal/schedulers/<ns>/<check>``, created
only if absent and attached to this node's *ownership lease* (one lease per
node, TTL :data:`OWNER_TTL_S`, kept alive every :data:`KEEPALIVE_EVERY_S`). When a node dies its
lease expires, every key it owned vanishes in the same log entry, and the
survivors race to create them again; the create is atomic, so exactly one
wins. Leadership is never taken from Raft's own leader state (STYLE §3), and
checks are spread: the *preferred* node of a check (a hash of its name over
the sorted member names) claims at once, the others only after
:data:`CLAIM_GRACE_S`, so in a healthy cluster every node schedules its share.

The owner fires interval checks on the name-derived phase (runtime.md §4.2,
the same ticks on every node, so a takeover does not shift them) or on cron
time, skips subdued ticks, and publishes one check request per subscription
through the store (``backend.agentd.requests``); round-robin checks go to one
live agent per subscription per run, rotating; proxy checks with
``proxy_requests`` go once per matching entity, splayed.
Before each publish the owner re-reads its ownership key: a node that lost
its lease (a long pause) stops instead of running the check a second time.
"""

from __future__ import annotations

import hashlib
import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable

import trio

from backend.agentd.requests import load_check_request, publish_check_request
from backend.pipeline.jsengine import JSEngine, build_entity_env
from core.cron import local_zone, next_cron_fire
from core.resources import CheckConfig, Entity, keys
from core.resources.storage import decode, decode_dict, encode_dict
from core.tokens import TokenError, substitute_all, token_data
from cluster import codec
from cluster.errors import CompareFailedError, LeaseNotFoundError, StoreError, WatchLaggedError
from cluster.statemachine import EVENT_DELETE
from cluster.store import Store

from .timers import in_subdue, next_interval_fire, splay_delays, splay_period

__all__ = ["Schedulerd", "owner_key", "preferred_member", "OWNER_TTL_S"]

logger = logging.getLogger(__name__)

OWNER_TTL_S = 2.0
KEEPALIVE_EVERY_S = 0.5
CLAIM_GRACE_S = 1.0
CHECKS_PREFIX = keys.prefix_for("checks")
OWNERS_PREFIX = keys.internal_prefix("schedulers")


def owner_key(namespace: str, check: str) -> str:
    return keys.internal_key("schedulers", namespace, check)


def preferred_member(namespace: str, check: str, members: Iterable[str]) -> str:
    """The member (peer address) that claims ``check`` first: a hash of its name over the sorted members."""
    ordered = sorted(members)
    digest = hashlib.sha256(f"{namespace}/{check}".encode()).digest()
    return ordered[int.from_bytes(digest[:4], "big") % len(ordered)]


def _parse_check_key(key: str) -> tuple[str, str] | None:
    try:
        parts = keys.parse_key(key)
    except ValueError:
        return None
    if parts.collection != "checks" or parts.namespace is None:
        return None
    return parts.namespace, parts.name


@dataclass
class _Running:
    check: CheckConfig
    mod_revision: int
    scope: trio.CancelScope


class Schedulerd:
    name = "schedulerd"

    def __init__(self, store: Store, node: str, *, js: JSEngine | None = None) -> None:
        self._store = store
        self._node = node
        self._js = js or JSEngine()
        self._lease = 0
        self._lease_ok_until = 0.0
        self._checks: dict[tuple[str, str], tuple[CheckConfig, int]] = {}
        self._running: dict[tuple[str, str], _Running] = {}
        self._rr_position: dict[tuple[str, str, str], int] = {}
        self._wake = trio.Event()
        self.stats = {"published": 0, "claims": 0, "lost": 0}

    def schedulers_by_kind(self) -> dict[tuple[str, str], int]:
        """Checks this node schedules now, by ``(kind, namespace)``; kind ``interval`` or ``cron``
        (Sensu Go's ``sensu_go_interval_schedulers`` / ``sensu_go_cron_schedulers``)."""
        counts: dict[tuple[str, str], int] = {}
        for (namespace, _), running in self._running.items():
            kind = "cron" if running.check.cron else "interval"
            counts[(kind, namespace)] = counts.get((kind, namespace), 0) + 1
        return counts

    # ------------------------------------------------------------------ lifecycle

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self._keep_lease)
            await nursery.start(self._watch_checks)
            nursery.start_soon(self._watch_owners)
            nursery.start_soon(self._claim_loop)
            task_status.started()

    async def _keep_lease(self) -> None:
        while True:
            try:
                if not self._lease:
                    self._lease = await self._store.grant_lease(OWNER_TTL_S)
                    self._lease_ok_until = time.monotonic() + OWNER_TTL_S
                else:
                    await self._store.keepalive_lease(self._lease)
                    self._lease_ok_until = time.monotonic() + OWNER_TTL_S
            except LeaseNotFoundError:
                logger.warning("scheduler ownership lease expired; dropping every owned check",
                               extra={"node": self._node})
                self._lease = 0
                self._stop_all()
                continue
            except StoreError as exc:
                logger.debug("ownership lease keepalive failed: %s", exc)
            await trio.sleep(KEEPALIVE_EVERY_S)

    def _stop_all(self) -> None:
        for running in self._running.values():
            running.scope.cancel()
        self._running.clear()
        self._wake.set()

    # ------------------------------------------------------------------ check definitions

    async def _watch_checks(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        started = False
        while True:
            res = await self._store.range(CHECKS_PREFIX)
            self._checks.clear()
            for kv in res.items:
                self._store_check(kv.key, kv.value, kv.mod_revision)
            self._wake.set()
            try:
                with self._store.watch(CHECKS_PREFIX, start_revision=res.revision + 1) as watcher:
                    if not started:
                        started = True
                        task_status.started()
                    async for events in watcher:
                        for e in events:
                            if e.kind == EVENT_DELETE:
                                ident = _parse_check_key(e.key)
                                if ident:
                                    self._checks.pop(ident, None)
                            else:
                                self._store_check(e.key, e.value, e.mod_revision)
                        self._wake.set()
            except WatchLaggedError:
                continue

    def _store_check(self, key: str, value: bytes, mod_revision: int) -> None:
        ident = _parse_check_key(key)
        if ident is None:
            return
        try:
            check = decode(CheckConfig, value)
        except Exception:
            logger.error("unreadable check definition", extra={"namespace": ident[0], "check": ident[1]})
            return
        self._checks[ident] = (check, mod_revision)

    async def _watch_owners(self) -> None:
        """Owner keys vanishing (a dead node's lease) wake the claim loop at once."""
        while True:
            try:
                with self._store.watch(OWNERS_PREFIX) as watcher:
                    async for events in watcher:
                        if any(e.kind == EVENT_DELETE for e in events):
                            self._wake.set()
            except WatchLaggedError:
                self._wake.set()

    # ------------------------------------------------------------------ ownership

    def _preferred(self, ns: str, name: str) -> bool:
        members = self._store.members()
        return len(members) <= 1 or preferred_member(ns, name, members) == self._store.self_address

    async def _claim_loop(self) -> None:
        absent_since: dict[tuple[str, str], float] = {}
        while True:
            self._wake = trio.Event()
            now = time.monotonic()
            wanted = {ident for ident, (check, _) in self._checks.items() if check.publish}
            for ident in list(self._running):
                running = self._running[ident]
                current = self._checks.get(ident)
                if ident not in wanted or current is None or current[1] != running.mod_revision:
                    running.scope.cancel()  # deleted, unpublished or edited: restart with the new definition
                    del self._running[ident]
                    if ident not in wanted:
                        await self._release(ident)
            if self._lease:
                for ident in sorted(wanted - set(self._running)):
                    owner = await self._store.get(owner_key(*ident))
                    if owner is not None:
                        if owner.lease == self._lease:
                            self._start(ident)
                        absent_since.pop(ident, None)
                        continue
                    first_seen = absent_since.setdefault(ident, now)
                    if self._preferred(*ident) or now - first_seen >= CLAIM_GRACE_S:
                        if await self._claim(ident):
                            self._start(ident)
                            absent_since.pop(ident, None)
            with trio.move_on_after(0.5):
                await self._wake.wait()

    async def _claim(self, ident: tuple[str, str]) -> bool:
        try:
            await self._store.create(owner_key(*ident), encode_dict({"node": self._node}), lease=self._lease)
        except (CompareFailedError, LeaseNotFoundError):
            return False
        except StoreError as exc:
            logger.debug("claim failed: %s", exc)
            return False
        self.stats["claims"] += 1
        logger.info("scheduling check", extra={"namespace": ident[0], "check": ident[1], "node": self._node})
        return True

    async def _release(self, ident: tuple[str, str]) -> None:
        kv = await self._store.get(owner_key(*ident))
        if kv is not None and kv.lease == self._lease:
            try:
                await self._store.delete_if(owner_key(*ident), mod_revision=kv.mod_revision)
            except StoreError:
                pass

    async def _still_owner(self, ident: tuple[str, str]) -> bool:
        if not self._lease or time.monotonic() > self._lease_ok_until:
            return False
        kv = await self._store.get(owner_key(*ident))
        return kv is not None and kv.lease == self._lease

    def _start(self, ident: tuple[str, str]) -> None:
        check, mod_revision = self._checks[ident]
        scope = trio.CancelScope()
        self._running[ident] = _Running(check, mod_revision, scope)
        self._nursery.start_soon(self._schedule, ident, check, scope)

    # ------------------------------------------------------------------ timers

    async def _schedule(self, ident: tuple[str, str], check: CheckConfig, scope: trio.CancelScope) -> None:
        ns, name = ident
        last_fire_ns = 0
        with scope:
            while True:
                last_fire_ns = await self._sleep_until_next(check, last_fire_ns)
                if not await self._still_owner(ident):
                    self._lost(ident)
                    return
                now = datetime.now(timezone.utc)
                if in_subdue([s.to_wire() for s in check.subdues or ()], now):
                    continue
                try:
                    await self._dispatch(ns, check)
                except CompareFailedError:  # the fence: our ownership key is gone or on another lease
                    self._lost(ident)
                    return
                except StoreError as exc:
                    logger.error("check request not published: %s", exc, extra={"namespace": ns, "check": name})

    def _lost(self, ident: tuple[str, str]) -> None:
        self.stats["lost"] += 1
        logger.warning("lost ownership of check; stopping", extra={
            "namespace": ident[0], "check": ident[1], "node": self._node})
        self._running.pop(ident, None)
        self._wake.set()

    async def _sleep_until_next(self, check: CheckConfig, last_fire_ns: int) -> int:
        """Sleep to the check's next tick after ``last_fire_ns`` (wall clock ns); return that tick.

        Why the floor: trio sleeps on the monotonic clock and the ticks are on
        the wall clock, so a wake-up can land a hair before the tick it aimed
        at; computing "next tick from now" there would fire the same tick twice.
        """
        floor_ns = last_fire_ns + 500_000_000 if last_fire_ns else 0
        if check.cron:
            zone = local_zone()
            base = datetime.now(zone)
            if floor_ns:
                base = max(base, datetime.fromtimestamp(floor_ns / 1e9, zone))
            target_ns = int(next_cron_fire(check.cron, base).timestamp() * 1e9)
        else:
            interval_ns = int(check.interval or 1) * 1_000_000_000
            now_ns = time.time_ns()
            target_ns = now_ns + next_interval_fire(check.metadata.name, int(check.interval or 1), now_ns)
            while floor_ns and target_ns - last_fire_ns < interval_ns // 2:
                target_ns += interval_ns
        await trio.sleep(max(target_ns - time.time_ns(), 1_000_000) / 1e9)
        return target_ns

    async def _dispatch(self, ns: str, check: CheckConfig) -> None:
        issued = int(time.time())
        request = await load_check_request(self._store, ns, check, issued=issued)
        fence = [codec.compare(owner_key(ns, check.metadata.name), "lease", "==", self._lease)]
        if check.proxy_requests is not None and check.proxy_requests.entity_attributes:
            await self._dispatch_proxy(ns, check, request, fence)
            return
        for subscription in check.subscriptions or ():
            if check.round_robin and not subscription.startswith("entity:"):
                target = await self._next_round_robin(ns, check.metadata.name, subscription)
                if target is None:
                    logger.warning("no agent available for round-robin subscription",
                                   extra={"namespace": ns, "check": check.metadata.name, "subscription": subscription})
                    continue
                await publish_check_request(self._store, ns, f"entity:{target}", request, fence=fence)
            else:
                await publish_check_request(self._store, ns, subscription, request, fence=fence)
            self.stats["published"] += 1

    async def _live_agents(self, ns: str, subscription: str) -> list[str]:
        """Agents subscribed to ``subscription`` whose keepalive deadline is live."""
        live = {keys.name_from_key(kv.key) for kv in
                (await self._store.range(keys.internal_prefix("keepalives", ns))).items}
        names = []
        for kv in (await self._store.range(keys.prefix_for("entities", ns))).items:
            data = decode_dict(kv.value)
            name = str((data.get("metadata") or {}).get("name") or "")
            if name in live and subscription in (data.get("subscriptions") or ()):
                names.append(name)
        return sorted(names)

    async def _next_round_robin(self, ns: str, check: str, subscription: str) -> str | None:
        agents = await self._live_agents(ns, subscription)
        if not agents:
            return None
        key = (ns, check, subscription)
        position = self._rr_position.get(key, random.randrange(len(agents)))
        self._rr_position[key] = position + 1
        return agents[position % len(agents)]

    async def _dispatch_proxy(self, ns: str, check: CheckConfig, request: dict[str, Any],
                              fence: list[codec.Compare]) -> None:
        assert check.proxy_requests is not None
        matches: list[tuple[str, dict[str, Any]]] = []
        now = time.time()
        for kv in (await self._store.range(keys.prefix_for("entities", ns))).items:
            entity = decode(Entity, kv.value)
            wire = entity.to_store()
            env = build_entity_env(wire, now)
            results = await self._js.eval_bools(list(check.proxy_requests.entity_attributes or []), env)
            if results and all(r is True for r in results):
                matches.append((entity.metadata.name, wire))
        if not matches:
            logger.warning("no matching entities, check will not be published",
                           extra={"namespace": ns, "check": check.metadata.name})
            return
        delays = [0.0] * len(matches)
        if check.proxy_requests.splay:
            period = splay_period(int(check.interval or 0), check.cron or None, datetime.now(local_zone()))
            delays = splay_delays(period, int(check.proxy_requests.splay_coverage or 90), len(matches))
        started = trio.current_time()
        for (entity_name, entity_wire), delay in zip(matches, delays):
            await trio.sleep_until(started + delay)
            proxied = dict(request)
            try:  # Go substitutes a proxy check's tokens with the proxy entity, here, not on the agent
                config = substitute_all(request["config"], token_data(entity_wire))
            except TokenError as exc:
                logger.error("proxy check tokens could not be substituted: %s", exc, extra={
                    "namespace": ns, "check": check.metadata.name, "entity": entity_name})
                continue
            proxied["config"] = dict(config, proxy_entity_name=entity_name)
            for subscription in check.subscriptions or ():
                await publish_check_request(self._store, ns, subscription, proxied, fence=fence)
                self.stats["published"] += 1
