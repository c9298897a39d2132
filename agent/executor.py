"""Running ``check_request``\\ s and their hooks (runtime.md §2.4, §2.5).

Why it is built this way:

* Every command runs through :func:`core.execute.run_command` with the
  agent's :data:`~core.execute.CHECK_POLICY`: ``sh -c <command>`` in its
  **own process group**; at the check's ``timeout`` the whole group gets
  SIGKILL -- a check that forks (``sleep 100 | cat``) must not leave
  children behind -- and the result is status 2 with ``Execution timed
  out\\n`` + the partial output. stdout and stderr share one pipe, so
  ``output`` interleaves them as the command wrote.
* The in-progress guard (name + proxy entity) drops a request whose previous
  run is still going, with an error log and no event, as Sensu does.
* Executions belong to the *agent*, not to a connection: a check that is
  running when the backend goes away finishes, and its result goes to the
  durable queue and out on the next connection.
* :meth:`Executor.execute` is the whole step-by-step of §2.4 and returns the
  event, so tests drive it without a websocket.

Environment: the agent's environment captured at startup, then the request's
``secrets``, then ``env_vars`` (``KEY=VALUE``; later wins).
"""

from __future__ import annotations

import logging
import shlex
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import trio

from core.execute import FAILURE_STATUS, merge_env, run_command
from core.frames import encode_json
from core.resources.check import CheckConfig
from core.resources.entity import Entity
from core.resources.errors import ValidationError, WireTypeError
from core.resources.event import Check, Event, Metrics
from core.resources.hook import Hook, HookConfig
from core.resources.meta import ObjectMeta
from core.tokens import TokenError, substitute, substitute_all

from .metrics import extract_metrics

__all__ = [
    "MAX_EVENT_BYTES",
    "MISSING_HOOK_TIMEOUT",
    "CheckRequest",
    "Executor",
    "encode_event",
    "hooks_for_status",
]

logger = logging.getLogger(__name__)

MISSING_HOOK_TIMEOUT: Final = 5

Clock = Callable[[], float]


# ---------------------------------------------------------------------------------
# Hooks
# ---------------------------------------------------------------------------------


def _hook_type_matches(hook_type: str, status: int) -> bool:
    if hook_type == str(status):
        return True
    return {
        "ok": status == 0,
        "warning": status == 1,
        "critical": status == 2,
        "unknown": status > 2,
        "non-zero": status != 0,
    }.get(hook_type, False)


def hooks_for_status(check: CheckConfig, status: int) -> list[str]:
    """Names of the hooks to run for ``status``, each once, in configuration order (§2.5)."""
    names: list[str] = []
    for entry in check.check_hooks or ():
        if _hook_type_matches(entry.type, status):
            for name in entry.hooks or ():
                if name not in names:
                    names.append(name)
    return names


def _missing_hook(name: str, namespace: str) -> HookConfig:
    """The stand-in for a hook the backend sent no config for: it says so and exits 2."""
    message = f'hook "{name}" was requested by the check but no hook config was sent'
    return HookConfig(
        metadata=ObjectMeta(name=name, namespace=namespace),
        command=f"echo {shlex.quote(message)} && exit 2",
        timeout=MISSING_HOOK_TIMEOUT,
    )


# ---------------------------------------------------------------------------------
# check_request
# ---------------------------------------------------------------------------------


@dataclass(slots=True, kw_only=True)
class CheckRequest:
    """A decoded ``check_request``: ``{config, assets, hooks, issued, hook_assets, secrets}``."""

    config: dict[str, Any] | None
    hooks: list[HookConfig]
    issued: int = 0
    secrets: list[str] | None = None
    assets: list[Any] | None = None

    @classmethod
    def from_wire(cls, doc: Mapping[str, Any]) -> CheckRequest:
        """Decode leniently; raises ``WireTypeError`` for wrongly typed hooks/secrets/issued."""
        config = doc.get("config")
        hooks_raw = doc.get("hooks") or []
        if not isinstance(hooks_raw, list):
            raise WireTypeError("hooks", "expected an array")
        secrets = doc.get("secrets")
        if secrets is not None and not (isinstance(secrets, list) and all(isinstance(s, str) for s in secrets)):
            raise WireTypeError("secrets", "expected an array of strings")
        issued = doc.get("issued") or 0
        if not isinstance(issued, int) or isinstance(issued, bool):
            raise WireTypeError("issued", "expected an integer")
        assets = doc.get("assets")
        return cls(
            config=config if isinstance(config, dict) else None,
            hooks=[HookConfig.from_wire(h, path=f"hooks[{i}]") for i, h in enumerate(hooks_raw)],
            issued=issued,
            secrets=secrets,
            assets=assets if isinstance(assets, list) else None,
        )


EntitySource = Callable[[int], Entity]
TemplateSource = Callable[[int], dict[str, Any]]
Deliver = Callable[[Event], Awaitable[None]]


class Executor:
    """Runs check requests for one agent; results go to ``deliver`` (the durable queue).

    ``entity``/``template_data`` give the agent entity and token data at a given
    Unix time; ``env`` is the environment captured at startup; ``clock`` returns
    Unix seconds (injected for tests).
    """

    def __init__(
        self,
        *,
        agent_name: str,
        namespace: str,
        entity: EntitySource,
        template_data: TemplateSource,
        deliver: Deliver,
        env: Mapping[str, str],
        clock: Clock = time.time,
    ) -> None:
        self.agent_name = agent_name
        self.namespace = namespace
        self._entity = entity
        self._template_data = template_data
        self._deliver = deliver
        self._env = dict(env)
        self._clock = clock
        self._in_progress: set[str] = set()
        self._sequences: dict[str, int] = {}
        self.dropped_in_progress = 0

    # --- lifecycle hooks used by the session ------------------------------------------

    def reset_sequences(self) -> None:
        """Per-check sequence counters restart on every (re)connect (§1.8)."""
        self._sequences.clear()

    def in_progress(self) -> frozenset[str]:
        return frozenset(self._in_progress)

    @staticmethod
    def guard_key(config: Mapping[str, Any]) -> str:
        meta = config.get("metadata") if isinstance(config.get("metadata"), dict) else {}
        name = str((meta or {}).get("name") or "")
        proxy = config.get("proxy_entity_name")
        return f"{name}/{proxy}" if isinstance(proxy, str) and proxy else name

    def try_start(self, nursery: trio.Nursery, doc: Mapping[str, Any]) -> bool:
        """Start executing a raw ``check_request`` in ``nursery``; False if dropped.

        Dropped: no ``config`` (§2.4 step 1) or the same check still running
        (step 2, error log, no event). The key is taken synchronously, so two
        requests arriving back to back cannot both start.
        """
        try:
            request = CheckRequest.from_wire(doc)
        except WireTypeError as exc:
            logger.error("invalid check request: %s", exc, extra={"entity": self.agent_name})
            return False
        if request.config is None:
            logger.error("check request without a config; dropped", extra={"entity": self.agent_name})
            return False
        key = self.guard_key(request.config)
        if key in self._in_progress:
            self.dropped_in_progress += 1
            logger.error("check is already in progress; request dropped",
                         extra={"entity": self.agent_name, "check": key})
            return False
        self._in_progress.add(key)
        nursery.start_soon(self._run_and_deliver, request, key, name=f"check {key}")
        return True

    async def _run_and_deliver(self, request: CheckRequest, key: str) -> None:
        try:
            event = await self.execute(request)
        finally:
            self._in_progress.discard(key)
        if event is not None:
            await self._deliver(event)

    # --- §2.4 ------------------------------------------------------------------------------

    def _now(self) -> int:
        return int(self._clock())

    def _next_sequence(self, name: str) -> int:
        self._sequences[name] = self._sequences.get(name, 0) + 1
        return self._sequences[name]

    def _finish(self, event: Event) -> Event:
        """Step 8: ``processed_by``, ``timestamp``, new ``id``."""
        assert event.check is not None
        event.check.processed_by = self.agent_name
        event.timestamp = self._now()
        event.id = str(uuid.uuid4())
        return event

    def failure_event(self, config: Mapping[str, Any], message: str, *, issued: int = 0) -> Event:
        """An agent-side failure: the check as configured, status 3, the error as output."""
        try:
            check = Check.from_wire(dict(config))
        except WireTypeError:
            meta = config.get("metadata") if isinstance(config.get("metadata"), dict) else {}
            check = Check(metadata=ObjectMeta(name=str((meta or {}).get("name") or ""),
                                              namespace=self.namespace))
        now = self._now()
        check.executed = now
        check.issued = issued
        check.status = FAILURE_STATUS
        check.output = message
        event = Event(metadata=ObjectMeta(namespace=self.namespace), entity=self._entity(now), check=check,
                      pipelines=check.pipelines, sequence=self._next_sequence(check.metadata.name))
        logger.warning("check failed on the agent: %s", message,
                       extra={"entity": self.agent_name, "check": check.metadata.name})
        return self._finish(event)

    async def execute(self, request: CheckRequest) -> Event | None:
        """Steps 1-10 of runtime.md §2.4 for one request; returns the event to send."""
        original = request.config
        if original is None:
            return None
        try:
            config = CheckConfig.from_wire(original)
        except WireTypeError as exc:
            return self.failure_event(original, f"invalid check config: {exc}", issued=request.issued)
        name = config.metadata.name
        if config.runtime_assets:
            return self.failure_event(
                original, "check requested assets, but they are disabled on this agent", issued=request.issued)
        now = self._now()
        try:
            substituted = substitute_all(config.to_wire(), self._template_data(now))
            run_config = CheckConfig.from_wire(substituted)
        except (TokenError, WireTypeError) as exc:
            return self.failure_event(original, f"error while substituting check tokens: {exc}",
                                      issued=request.issued)
        # Step 4: the event; its check keeps the unsubstituted command.
        check = Check.from_wire(run_config.to_wire())
        try:
            check.validate()
        except ValidationError as exc:
            return self.failure_event(original, f"invalid check config: {exc}", issued=request.issued)
        check.command = config.command
        check.executed = now
        check.issued = request.issued
        event = Event(metadata=ObjectMeta(namespace=self.namespace), entity=self._entity(now), check=check,
                      pipelines=check.pipelines, sequence=self._next_sequence(name))

        env = merge_env(self._env, request.secrets, run_config.env_vars)
        stdin = _event_json(event) if run_config.stdin else None
        logger.debug("executing check", extra={"entity": self.agent_name, "check": name})
        result = await run_command(run_config.command, timeout=float(run_config.timeout), env=env, stdin=stdin)
        if result.timed_out:
            logger.warning("check timed out; its process group was killed",
                           extra={"entity": self.agent_name, "check": name, "timeout": run_config.timeout})
        check.output = result.output
        check.status = result.status
        check.duration = result.duration
        self._finish(event)

        if run_config.output_metric_format:
            points = extract_metrics(run_config.output_metric_format, result.output, now,
                                     run_config.output_metric_tags or ())
            event.metrics = Metrics(handlers=run_config.output_metric_handlers, points=points)

        hook_names = hooks_for_status(run_config, check.status)
        if hook_names:
            check.hooks = await self._run_hooks(hook_names, request, event, now)
        if run_config.discard_output:
            check.output = ""
        return event

    async def _run_hooks(self, names: list[str], request: CheckRequest, event: Event, now: int) -> list[Hook]:
        """§2.5: each named hook once, in order, after the check; results in ``check.hooks``."""
        by_name = {h.metadata.name: h for h in request.hooks}
        data = self._template_data(now)
        results: list[Hook] = []
        for name in names:
            hook_config = by_name.get(name) or _missing_hook(name, self.namespace)
            hook = Hook.from_wire(hook_config.to_wire())
            hook.executed = self._now()
            hook.issued = request.issued
            try:
                command = substitute(hook_config.command, data)
            except TokenError as exc:
                hook.output = f"error while substituting hook tokens: {exc}"
                hook.status = FAILURE_STATUS
                results.append(hook)
                continue
            if hook_config.runtime_assets:
                hook.output = "hook requested assets, but they are disabled on this agent"
                hook.status = FAILURE_STATUS
                results.append(hook)
                continue
            timeout = hook_config.timeout if hook_config.timeout > 0 else MISSING_HOOK_TIMEOUT
            stdin = _event_json(event) if hook_config.stdin else None
            result = await run_command(command, timeout=float(timeout), env=self._env, stdin=stdin)
            hook.output = result.output
            hook.status = result.status
            hook.duration = result.duration
            results.append(hook)
            logger.debug("hook ran", extra={"entity": self.agent_name, "hook": name, "status": result.status})
        return results


MAX_EVENT_BYTES: Final = 16_000_000
"""Largest event payload the agent sends: backends refuse websocket messages over
16 MiB (and close the connection), so a bigger check output is cut to fit instead.
Below that the check's own ``max_output_size`` is the limit, as in Sensu Go."""


def encode_event(event: Event, limit: int = MAX_EVENT_BYTES) -> bytes | None:
    """The event's wire JSON, cut to at most ``limit`` bytes; None if it cannot fit.

    Only bulk the check produced is cut, in this order: the check output (the
    tail is dropped and a note says how much), hook outputs, metric points.
    """
    payload = encode_json(event.to_store())
    if len(payload) <= limit or event.check is None:
        return payload if len(payload) <= limit else None
    check = event.check
    original = check.output.encode("utf-8")
    keep = len(original)
    while len(payload) > limit and keep > 0:
        keep = max(0, keep - (len(payload) - limit) - 256)
        cut = len(original) - keep
        check.output = (original[:keep].decode("utf-8", errors="ignore")
                        + f"\n[sensu-agent: output truncated, {cut} bytes removed to fit {limit} bytes]\n")
        payload = encode_json(event.to_store())
    for hook in check.hooks or ():
        if len(payload) <= limit:
            break
        hook.output = "[sensu-agent: hook output removed to fit the message size limit]"
        payload = encode_json(event.to_store())
    if len(payload) > limit and event.metrics is not None and event.metrics.points:
        event.metrics.points = []
        payload = encode_json(event.to_store())
    return payload if len(payload) <= limit else None


def _event_json(event: Event) -> bytes:
    """The event as the check/hook sees it on stdin (the stored, unredacted shape)."""
    return encode_json(event.to_store()) + b"\n"
