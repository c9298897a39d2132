"""pipelined: filters → mutator → handler for every processed event (runtime.md §6).

Events arrive through :meth:`Pipelined.__call__` (eventd's ``PipelineHook``)
from the node that processed them, so each event is handled by exactly one
node. A bounded queue gives backpressure: when it is full the caller waits
rather than an event being dropped silently. ``pipelined-workers`` tasks drain
it; handler processes run concurrently up to that bound and never block the
event loop.

What runs: every workflow of every ``Pipeline`` resource the event names
(:func:`pipeline_refs`), and the legacy pipeline of ``check.handlers`` (one
workflow per handler). Each workflow is isolated from the others: a missing
resource or a failing filter, mutator or handler is logged with the event's
entity and check (and the pipeline and workflow) and does not stop the
remaining workflows (the recommended deviation of §6.1). Handlers, mutators
and filters with ``runtime_assets`` get them from :mod:`backend.assets`.

Silenced events skip a handler unless it sets ``handle_silenced: true``
(the behaviour the silencing issue asks for, Sensu 0.28's; Go would only
skip handlers listing ``not_silenced``). docs/pipeline.md says why.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Final, Mapping

import trio

from backend.assets import AssetError, AssetManager, RuntimeAsset, asset_env
from backend.pipeline.filters import (
    BUILTIN_FILTERS,
    HANDLER_SET_MAX_DEPTH,
    builtin_filter_passes,
    filter_decision,
    handler_set_expand,
)
from backend.pipeline.jsengine import JSEngine, JSMutatorError, build_event_env
from core.execute import HANDLER_POLICY, merge_env, run_command
from core.resources import keys
from core.resources.event import is_silenced
from core.resources.storage import decode_dict_cached
from backend.summary import Summary
from cluster.store import Store

from .execute import send_tcp, send_udp

__all__ = ["Pipelined", "PipelineStats", "pipeline_refs"]

logger = logging.getLogger(__name__)

SOCKET_TIMEOUT_DEFAULT = 60.0


@dataclass
class PipelineStats:
    events: int = 0
    handled: int = 0
    filtered: int = 0
    silenced: int = 0
    errors: int = 0
    by_handler: dict[str, int] = field(default_factory=dict)
    #: seconds per event (``pipeline``) and per workflow step (``filter``, ``mutator``, ``handler``) by
    #: ``(step, status, resource_ref)``, exported as Sensu Go's ``sensu_go_pipeline_*_duration`` summaries
    durations: dict[tuple[str, str, str], Summary] = field(default_factory=dict)

    def observe(self, step: str, status: str, ref: str, seconds: float) -> None:
        key = (step, status, ref)
        summary = self.durations.get(key)
        if summary is None:
            summary = self.durations[key] = Summary()
        summary.observe(seconds)


def _names(event: Mapping[str, Any]) -> tuple[str, str, str]:
    entity = event.get("entity") or {}
    check = event.get("check") or {}
    ns = str((event.get("metadata") or {}).get("namespace") or (entity.get("metadata") or {}).get("namespace") or "")
    return ns, str((entity.get("metadata") or {}).get("name") or ""), str((check.get("metadata") or {}).get("name") or "")


@dataclass(frozen=True, slots=True)
class _Workflow:
    """One unit of the pipeline: a resolved handler, the filter names and the mutator name."""

    handler: Mapping[str, Any]
    filters: tuple[str, ...]
    mutator: str
    label: str
    ctx: dict[str, str]


def pipeline_refs(event: Mapping[str, Any]) -> list[str]:
    """Names of the core/v2 ``Pipeline`` resources an event asks for, first occurrence first.

    From the event's own ``pipelines`` (the agent copies the check's, and an
    agent's ``keepalive-pipelines`` onto its keepalives) and from the
    check's and the entity's ``pipelines``, so an event posted without them
    still follows its check. References to other kinds or API versions are
    not pipelines this backend can run; they are skipped (validation refuses
    them on the way in).
    """
    out: dict[str, None] = {}
    sources = (event.get("pipelines"), (event.get("check") or {}).get("pipelines"),
               (event.get("entity") or {}).get("pipelines"))
    for refs in sources:
        for ref in refs or ():
            if not isinstance(ref, Mapping):
                continue
            if ref.get("type", "Pipeline") != "Pipeline" or ref.get("api_version", "core/v2") != "core/v2":
                continue
            name = str(ref.get("name") or "")
            if name:
                out.setdefault(name, None)
    return list(out)


#: The ``json`` mutator's encoder: compact, and without the circular-reference check (an event
#: decoded from JSON and merged cannot hold a cycle; the check was ~15 % of each encoding).
_EVENT_JSON: Final = json.JSONEncoder(separators=(",", ":"), check_circular=False)


class Pipelined:
    """The pipeline daemon; also the eventd hook that feeds it."""

    name = "pipelined"

    def __init__(self, store: Store, *, workers: int = 100, buffer: int = 1000, node: str = "",
                 js: JSEngine | None = None, assets: AssetManager | None = None) -> None:
        self._store = store
        self._assets = assets
        self._workers = max(1, workers)
        self._send, self._recv = trio.open_memory_channel[tuple[dict[str, Any], Callable[[], None] | None]](
            max(1, buffer))
        self._node = node
        self._js = js or JSEngine()
        self.stats = PipelineStats()

    async def __call__(self, event: dict[str, Any], *, done: Callable[[], None] | None = None) -> None:
        """Queue an event for the pipeline (waits when the queue is full).

        ``done`` is called once the event has been handled (or failed), so a
        caller can hold a resource (agentd's intake room) until then.
        """
        await self._send.send((event, done))

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        if self._assets is not None:
            await self._assets.start()
        async with trio.open_nursery() as nursery:
            for _ in range(self._workers):
                nursery.start_soon(self._worker)
            task_status.started()

    async def _worker(self) -> None:
        async for event, done in self._recv:
            self.stats.events += 1
            started = time.perf_counter()
            try:
                await self.handle(event)
                self.stats.observe("pipeline", "success", "", time.perf_counter() - started)
            except Exception:
                self.stats.observe("pipeline", "error", "", time.perf_counter() - started)
                self.stats.errors += 1
                ns, entity, check = _names(event)
                logger.exception("pipeline failed", extra={"namespace": ns, "entity": entity, "check": check})
            finally:
                if done is not None:
                    done()

    # ------------------------------------------------------------------ one event

    async def handle(self, event: dict[str, Any]) -> list[str]:
        """Run every workflow the event names; returns what ran, sorted.

        Two sources, both honoured (runtime.md §6.1): the event's
        ``pipelines`` (see :func:`pipeline_refs`), each workflow of each one,
        and the legacy pipeline of ``check.handlers`` + ``metrics.handlers``,
        one workflow per handler. Every workflow is isolated: a missing
        resource or a failure is logged (naming it) and only that workflow
        stops. A legacy handler is reported by its name, a pipeline's as
        ``<pipeline>/<workflow>/<handler>``.
        """
        ns, entity, check = _names(event)
        names = list((event.get("check") or {}).get("handlers") or []) + list(
            (event.get("metrics") or {}).get("handlers") or [])
        refs = pipeline_refs(event)
        ctx = {"namespace": ns, "entity": entity, "check": check}
        if not names and not refs:
            log = logger.debug if check == "keepalive" else logger.info
            log("no pipelines defined in resource", extra=ctx)
            return []
        jobs: list[_Workflow] = []
        if names:
            jobs.extend(await self._legacy_workflows(ns, names, ctx))
        for pipeline in refs:
            jobs.extend(await self._pipeline_workflows(ns, pipeline, ctx))
        ran: list[str] = []
        if len(jobs) == 1:  # the common case: no task or nursery per event
            await self._workflow(jobs[0], event, ran)
            return ran
        async with trio.open_nursery() as nursery:
            for job in jobs:
                nursery.start_soon(self._workflow, job, event, ran)
        return sorted(ran)

    async def _legacy_workflows(self, ns: str, names: list[str], ctx: dict[str, str]) -> list[_Workflow]:
        """One workflow per handler named by the check (sets expanded): its own filters and mutator."""
        handlers = await self._handlers(ns, names)
        expansion = handler_set_expand(names, handlers.get)
        for missing in expansion.missing:
            logger.info("handler does not exist, ignoring", extra={**ctx, "handler": missing})
        for dropped in expansion.dropped_sets:
            logger.error("handler sets cannot be deeply nested", extra={**ctx, "handler": dropped})
        jobs = []
        for handler in expansion.handlers:
            hname = str((handler.get("metadata") or {}).get("name") or "")
            jobs.append(_Workflow(handler=handler, filters=tuple(str(f) for f in handler.get("filters") or ()),
                                  mutator=str(handler.get("mutator") or "json"), label=hname,
                                  ctx={**ctx, "handler": hname}))
        return jobs

    async def _pipeline_workflows(self, ns: str, pipeline: str, ctx: dict[str, str]) -> list[_Workflow]:
        """The workflows of the stored ``Pipeline`` named ``pipeline``.

        A missing pipeline, or a workflow whose handler is missing, is one
        error log naming it; the other pipelines and workflows still run. A
        handler of type ``set`` runs each member with the workflow's filters
        and mutator. Filters and mutators are looked up when the workflow
        runs, so a missing one is reported there, by name, and stops only
        that workflow.
        """
        pctx = {**ctx, "pipeline": pipeline}
        try:
            kv = await self._store.get(keys.key_for("pipelines", ns, pipeline))
        except ValueError:
            kv = None
        if kv is None:
            self.stats.errors += 1
            logger.error("pipeline does not exist: %s", pipeline, extra=pctx)
            return []
        stored = decode_dict_cached(self._store, kv)
        jobs: list[_Workflow] = []
        for workflow in stored.get("workflows") or ():
            wname = str(workflow.get("name") or "")
            wctx = {**pctx, "workflow": wname}
            href = workflow.get("handler") or {}
            hname = str(href.get("name") or "")
            handlers = await self._handlers(ns, [hname]) if hname else {}
            if hname not in handlers:
                self.stats.errors += 1
                logger.error("pipeline %s workflow %s: handler does not exist: %s", pipeline, wname, hname,
                             extra={**wctx, "handler": hname})
                continue
            expansion = handler_set_expand([hname], handlers.get)
            for dropped in expansion.dropped_sets:
                logger.error("handler sets cannot be deeply nested", extra={**wctx, "handler": dropped})
            for missing in expansion.missing:
                logger.error("pipeline %s workflow %s: handler set member does not exist: %s", pipeline, wname,
                             missing, extra={**wctx, "handler": missing})
            filters = tuple(str(f.get("name") or "") for f in workflow.get("filters") or ())
            mutator = str((workflow.get("mutator") or {}).get("name") or "json")
            for handler in expansion.handlers:
                member = str((handler.get("metadata") or {}).get("name") or "")
                jobs.append(_Workflow(handler=handler, filters=filters, mutator=mutator,
                                      label=f"{pipeline}/{wname}/{member}", ctx={**wctx, "handler": member}))
        return jobs

    async def _handlers(self, ns: str, names: list[str]) -> dict[str, dict[str, Any]]:
        """The named handlers and, through sets, the ones they name (to the nesting limit).

        Reads only those keys rather than every handler of the namespace: this
        runs once per event.
        """
        out: dict[str, dict[str, Any]] = {}
        pending = list(names)
        for _ in range(HANDLER_SET_MAX_DEPTH + 1):
            following: list[str] = []
            for name in pending:
                if name in out:
                    continue
                try:
                    kv = await self._store.get(keys.key_for("handlers", ns, name))
                except ValueError:  # not a valid name: reported as missing by the expansion
                    continue
                if kv is None:
                    continue
                data = out[name] = decode_dict_cached(self._store, kv)
                if data.get("type") == "set":
                    following.extend(str(n) for n in data.get("handlers") or ())
            if not following:
                break
            pending = following
        return out

    async def _workflow(self, job: _Workflow, event: dict[str, Any], ran: list[str]) -> None:
        """Filters, mutator, handler of one workflow; every failure stays inside it."""
        ctx = job.ctx
        ns = ctx["namespace"]
        handler = job.handler
        hname = ctx["handler"]
        try:
            if is_silenced(event) and not handler.get("handle_silenced"):
                logger.info("event is silenced, skipping handler", extra=ctx)
                self.stats.silenced += 1
                return
            async with self._timed("filter", ",".join(job.filters)):
                passed = await self._passes_filters(ns, job.filters, event, ctx)
            if not passed:
                self.stats.filtered += 1
                return
            started = time.perf_counter()
            payload: bytes | None = None
            try:
                payload = await self._mutate(ns, job.mutator, event, ctx)
            finally:  # a mutator that failed (None, logged) or raised counts as an error
                self.stats.observe("mutator", "success" if payload is not None else "error",
                                   f"core/v2.Mutator(Name={job.mutator})", time.perf_counter() - started)
            if payload is None:
                return
            async with self._timed("handler", f"core/v2.Handler(Name={hname})"):
                await self._execute(handler, payload, ctx)
            ran.append(job.label)
            self.stats.handled += 1
            self.stats.by_handler[hname] = self.stats.by_handler.get(hname, 0) + 1
        except AssetError as exc:
            self.stats.errors += 1
            logger.error("%s; the workflow does not run", exc, extra={**ctx, "asset": exc.asset})
        except Exception as exc:
            self.stats.errors += 1
            logger.error("handler workflow failed: %s", exc, extra=ctx)

    @asynccontextmanager
    async def _timed(self, step: str, ref: str) -> AsyncIterator[None]:
        """Time one workflow step; ``error`` when it raised (Sensu Go's status label)."""
        started = time.perf_counter()
        status = "error"
        try:
            yield
            status = "success"
        finally:
            self.stats.observe(step, status, ref, time.perf_counter() - started)

    async def _passes_filters(self, ns: str, filters: tuple[str, ...], event: dict[str, Any],
                              ctx: dict[str, str]) -> bool:
        for fname in filters:
            if fname in BUILTIN_FILTERS:
                if not builtin_filter_passes(fname, event):
                    logger.debug("denying event with built-in filter %s", fname, extra=ctx)
                    return False
                continue
            try:
                kv = await self._store.get(keys.key_for("filters", ns, fname))
            except ValueError:
                kv = None
            if kv is None:
                self.stats.errors += 1
                logger.error("filter does not exist: %s", fname, extra={**ctx, "filter": fname})
                return False
            flt = decode_dict_cached(self._store, kv)
            expressions = list(flt.get("expressions") or [])
            results: list[bool | None] = []
            if expressions:
                env = build_event_env(event, time.time())
                scripts: list[str] = []
                if flt.get("runtime_assets"):
                    libraries = await self._runtime_assets(ns, flt)  # raises AssetError without a manager
                    assert self._assets is not None
                    scripts = await self._assets.js_scripts(libraries)
                results = await self._js.eval_bools(expressions, env, scripts=scripts)
            if not filter_decision(flt, event, results, now_utc=datetime.now(timezone.utc)):
                logger.debug("denying event with custom filter %s", fname, extra=ctx)
                return False
        return True

    async def _mutate(self, ns: str, name: str, event: dict[str, Any], ctx: dict[str, str]) -> bytes | None:
        """The handler's input; None (logged) when the mutator is missing or fails."""
        if name == "json":
            return _EVENT_JSON.encode(event).encode()
        if name == "only_check_output":
            check = event.get("check")
            if not check:
                logger.error("only_check_output mutator: event has no check", extra=ctx)
                return None
            return str(check.get("output") or "").encode()
        try:
            kv = await self._store.get(keys.key_for("mutators", ns, name))
        except ValueError:
            kv = None
        if kv is None:
            self.stats.errors += 1
            logger.error("mutator does not exist: %s", name, extra={**ctx, "mutator": name})
            return None
        mutator = decode_dict_cached(self._store, kv)
        timeout = float(mutator.get("timeout") or 0)
        if mutator.get("type") == "javascript":
            try:
                return await self._js.eval_mutator(str(mutator.get("eval") or ""), event,
                                                   list(mutator.get("env_vars") or []),
                                                   timeout_s=timeout or None)
            except JSMutatorError as exc:
                logger.error("javascript mutator failed: %s", exc, extra=ctx)
                return None
        result = await run_command(str(mutator.get("command") or ""), stdin=_EVENT_JSON.encode(event).encode(),
                                   timeout=timeout, env=await self._command_env(ns, mutator), policy=HANDLER_POLICY)
        if result.status != 0:
            logger.error("mutator returned non ok status code %s: %s", result.status, result.output[:500], extra=ctx)
            return None
        return result.output.encode()

    async def _runtime_assets(self, ns: str, resource: Mapping[str, Any]) -> list[RuntimeAsset]:
        """The installed ``runtime_assets`` of a handler, mutator or filter, in its order.

        Raises :class:`AssetError` when one is not defined in the namespace or
        cannot be installed (the caller logs it once and skips the workflow).
        """
        names = [str(n) for n in resource.get("runtime_assets") or ()]
        if not names:
            return []
        if self._assets is None:
            raise AssetError(names[0], "runtime assets are not available on this node")
        defs = []
        for name in names:
            try:
                kv = await self._store.get(keys.key_for("assets", ns, name))
            except ValueError:
                kv = None
            if kv is None:
                raise AssetError(name, f"asset does not exist in namespace {ns!r}")
            defs.append(decode_dict_cached(self._store, kv))
        return await self._assets.get_all(defs)

    async def _command_env(self, ns: str, resource: Mapping[str, Any]) -> dict[str, str]:
        """Process environment, then the assets' paths, then the resource's ``env_vars`` (runtime.md §6.3)."""
        assets = await self._runtime_assets(ns, resource)
        base = merge_env(os.environ) if not assets else asset_env(assets, merge_env(os.environ))
        for item in resource.get("env_vars") or ():
            key, sep, value = str(item).partition("=")
            if sep and key:
                base[key] = value
        return base

    async def _execute(self, handler: Mapping[str, Any], payload: bytes, ctx: dict[str, str]) -> None:
        htype = handler.get("type") or "pipe"
        if htype == "pipe":
            timeout = float(handler.get("timeout") or 0)
            env = await self._command_env(ctx["namespace"], handler)
            result = await run_command(str(handler.get("command") or ""), stdin=payload, timeout=timeout, env=env,
                                       policy=HANDLER_POLICY)
            extra = {**ctx, "status": result.status}
            if result.timed_out:
                logger.error("event pipe handler timed out after %ss and was killed", timeout, extra=extra)
            elif result.status == 0:
                logger.info("event pipe handler executed", extra={**extra, "output": result.output[:1000]})
            else:
                logger.error("event pipe handler returned non ok status code", extra={
                    **extra, "output": result.output[:1000]})
            return
        if htype in ("tcp", "udp"):
            sock = handler.get("socket") or {}
            timeout = float(handler.get("timeout") or SOCKET_TIMEOUT_DEFAULT)
            send = send_tcp if htype == "tcp" else send_udp
            await send(str(sock.get("host") or ""), int(sock.get("port") or 0), payload, timeout=timeout)
            logger.info("event %s handler executed", htype, extra=ctx)
            return
        raise ValueError(f"unknown handler type: {htype}")
