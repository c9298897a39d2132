"""Deliver store-published check requests to this node's agent sessions.

Why a watch on the store (STYLE §2: scheduler -> store check-request prefix
-> each node's fanout -> sessions): whichever node decides a check must run,
every node sees the request in the replicated store, and each delivers it to
the agents connected to it. There is no forwarding between backends, so a
node crash loses only its own connections, which reconnect elsewhere.

Two watches:

* ``checkrequests``: each new request is delivered once to every local
  session subscribed to its subscription (``entity:<name>`` reaches one
  agent). The JSON frame is built once and shared by all sessions. A watch
  that falls behind (``WatchLaggedError``) re-lists the prefix and delivers
  what it had not seen yet, so no request is silently skipped.
* ``entities``: live entity updates (runtime.md §1.8) for local sessions:
  changed configuration is sent as ``entity_config`` and subscriptions
  follow; a deleted entity closes the session.

The index lives on the trio thread only; sessions register and unregister
synchronously, so a delivery never races a half-registered session.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import trio

from core.frames import MSG_CHECK_REQUEST, encode_json_frame
from core.resources import keys
from core.resources.storage import decode_dict
from cluster.errors import WatchLaggedError
from cluster.statemachine import EVENT_DELETE, EVENT_PUT, WatchEvent
from cluster.store import Store

from .protocol import CLOSE_GOING_AWAY
from .requests import check_request_prefix, parse_check_request_key

if TYPE_CHECKING:
    from .session import Session

__all__ = ["Fanout"]

logger = logging.getLogger(__name__)


class Fanout:
    """This node's index of sessions by subscription, fed by store watches."""

    name = "fanout"

    def __init__(self, store: Store, *, node: str = "") -> None:
        self._store = store
        self._node = node
        self._by_subscription: dict[tuple[str, str], set[Session]] = {}
        self._by_agent: dict[tuple[str, str], Session] = {}
        self.stats = {"requests_seen": 0, "requests_delivered": 0, "requests_unmatched": 0, "lagged": 0,
                      "replaced_sessions": 0}

    # ------------------------------------------------------------------ index

    def register(self, session: Session) -> None:
        """Add ``session``; an older session of the same agent on this node is closed."""
        old = self._by_agent.get(session.key)
        if old is not None and old is not session:
            self.stats["replaced_sessions"] += 1
            logger.info("agent connected again; closing its previous session", extra={
                "namespace": session.namespace, "entity": session.agent_name, "node": self._node})
            self._remove(old)
            old.close_nowait(CLOSE_GOING_AWAY, "replaced by a new connection")
        self._by_agent[session.key] = session
        for sub in session.subscriptions:
            self._by_subscription.setdefault((session.namespace, sub), set()).add(session)

    def unregister(self, session: Session) -> None:
        if self._by_agent.get(session.key) is session:
            del self._by_agent[session.key]
        self._remove(session)

    def _remove(self, session: Session) -> None:
        for sub in session.subscriptions:
            members = self._by_subscription.get((session.namespace, sub))
            if members is not None:
                members.discard(session)
                if not members:
                    del self._by_subscription[(session.namespace, sub)]

    def update_subscriptions(self, session: Session, subscriptions: tuple[str, ...]) -> None:
        """Move ``session`` to a new subscription set (live entity update)."""
        self._remove(session)
        session.subscriptions = subscriptions
        if self._by_agent.get(session.key) is session:
            for sub in subscriptions:
                self._by_subscription.setdefault((session.namespace, sub), set()).add(session)

    def sessions(self) -> list[Session]:
        return list(self._by_agent.values())

    def sessions_by_namespace(self) -> dict[str, int]:
        """Connected agents per namespace on this node (Sensu Go's ``sensu_go_agent_sessions``)."""
        counts: dict[str, int] = {}
        for namespace, _ in self._by_agent:
            counts[namespace] = counts.get(namespace, 0) + 1
        return counts

    def subscribers(self, namespace: str, subscription: str) -> int:
        return len(self._by_subscription.get((namespace, subscription), ()))

    def statistics(self) -> dict[str, Any]:
        return {**self.stats, "sessions": len(self._by_agent), "subscriptions": len(self._by_subscription)}

    # ------------------------------------------------------------------ delivery

    def deliver(self, namespace: str, subscription: str, frame: bytes) -> int:
        """Queue ``frame`` for every local session on ``subscription``; returns how many took it."""
        members = self._by_subscription.get((namespace, subscription))
        if not members:
            return 0
        delivered = 0
        for session in list(members):
            if session.deliver_nowait(frame):
                delivered += 1
        return delivered

    def _on_request(self, key: str, value: bytes) -> None:
        self.stats["requests_seen"] += 1
        try:
            namespace, subscription, _ = parse_check_request_key(key)
        except ValueError:
            logger.warning("ignoring a malformed check request key", extra={"key": key, "node": self._node})
            return
        if (namespace, subscription) not in self._by_subscription:
            self.stats["requests_unmatched"] += 1
            return
        try:
            frame = encode_json_frame(MSG_CHECK_REQUEST, decode_dict(value))
        except ValueError as exc:
            logger.error("undecodable check request: %s", exc, extra={"key": key, "node": self._node})
            return
        delivered = self.deliver(namespace, subscription, frame)
        self.stats["requests_delivered"] += delivered
        logger.debug("check request delivered", extra={
            "namespace": namespace, "subscription": subscription, "sessions": delivered, "node": self._node})

    # ------------------------------------------------------------------ watches

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Watch requests and entities until cancelled; ``started()`` once both watch."""
        async with trio.open_nursery() as nursery:
            await nursery.start(self._watch_requests)
            await nursery.start(self._watch_entities)
            task_status.started()

    async def _watch_requests(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        prefix = check_request_prefix()
        start = self._store.revision + 1
        started = False
        while True:
            with self._store.watch(prefix, start_revision=start) as watcher:
                if not started:
                    task_status.started()
                    started = True
                try:
                    async for events in watcher:
                        for event in events:
                            if event.revision < start:
                                continue  # already seen through a re-list
                            # a request is written once; later puts (none today) are not new requests
                            if event.kind == EVENT_PUT and event.version == 1:
                                self._on_request(event.key, event.value)
                except WatchLaggedError as exc:
                    self.stats["lagged"] += 1
                    logger.warning("check request watch fell behind; re-listing", extra={
                        "node": self._node, "revision": exc.revision})
                    listed = await self._store.range(prefix)
                    for kv in listed.items:
                        if kv.mod_revision >= start:
                            self._on_request(kv.key, kv.value)
                    start = listed.revision + 1

    async def _watch_entities(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        prefix = keys.prefix_for("entities")
        start = self._store.revision + 1
        started = False
        while True:
            with self._store.watch(prefix, start_revision=start) as watcher:
                if not started:
                    task_status.started()
                    started = True
                try:
                    async for events in watcher:
                        for event in events:
                            if event.revision >= start:
                                self._on_entity(event)
                except WatchLaggedError as exc:
                    self.stats["lagged"] += 1
                    logger.warning("entity watch fell behind; re-reading the entities of local sessions",
                                   extra={"node": self._node, "revision": exc.revision})
                    start = self._store.revision + 1
                    for session in self.sessions():
                        kv = await self._store.get(keys.key_for("entities", session.namespace, session.agent_name))
                        try:
                            session.on_entity_changed(decode_dict(kv.value) if kv is not None else None)
                        except ValueError as err:
                            logger.error("undecodable entity: %s", err, extra={"node": self._node})

    def _on_entity(self, event: WatchEvent) -> None:
        try:
            parts = keys.parse_key(event.key)
        except ValueError:
            return
        session = self._by_agent.get((parts.namespace or "", parts.name))
        if session is None:
            return
        if event.kind == EVENT_DELETE:
            session.on_entity_changed(None)
            return
        try:
            entity = decode_dict(event.value)
        except ValueError as exc:
            logger.error("undecodable entity: %s", exc, extra={"key": event.key, "node": self._node})
            return
        session.on_entity_changed(entity)
