"""The JavaScript sandbox: filter expressions, entity attributes and JS mutators."""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio

from backend.eventd.merge import merge_event
from backend.pipeline.jsengine import (
    JSEngine,
    JSMutatorError,
    build_entity_env,
    build_event_env,
    synthesize,
)

NOW = 1_704_110_400  # 2024-01-01 12:00:00 UTC, a Monday


def sample_event(status: int = 2, occurrences_run: int = 1) -> dict[str, Any]:
    prev = None
    for i in range(occurrences_run):
        new = {
            "timestamp": NOW,
            "metadata": {"namespace": "default"},
            "entity": {
                "metadata": {
                    "name": "web-01",
                    "namespace": "default",
                    "labels": {"region": "eu", "api_key": "hunter2"},
                },
                "entity_class": "agent",
                "subscriptions": ["linux", "entity:web-01"],
                "redact": [],
            },
            "check": {
                "metadata": {"name": "disk", "namespace": "default", "labels": None},
                "status": status,
                "executed": NOW - 30 + i,
                "output": "DISK CRITICAL",
                "subscriptions": ["linux"],
            },
        }
        prev = merge_event(new, prev, NOW)
    assert prev is not None
    return prev


@pytest.fixture
def engine() -> JSEngine:
    return JSEngine(max_workers=2)


def test_synthesize_lifts_metadata_and_adds_predicates() -> None:
    ev = sample_event()
    synth = synthesize(ev)
    assert synth["check"]["name"] == "disk"
    assert synth["check"]["metadata"]["name"] == "disk"
    assert synth["check"]["labels"] == {}  # nil labels become {}
    assert synth["entity"]["labels"]["region"] == "eu"
    assert synth["entity"]["labels"]["api_key"] == "REDACTED"  # default redact list
    assert synth["namespace"] == "default"
    assert synth["is_incident"] is True and synth["has_check"] is True
    assert synth["is_resolution"] is False and synth["has_metrics"] is False
    assert ev["entity"]["metadata"]["labels"]["api_key"] == "hunter2"  # input untouched
    assert "name" not in ev["check"]


async def test_true_false_throwing_and_non_boolean(engine: JSEngine) -> None:
    env = build_event_env(sample_event(), NOW)
    results = await engine.eval_bools(
        [
            "event.check.status == 2",
            "event.check.occurrences == 1 || event.check.occurrences % 60 == 0",
            "event.check.name === 'nope'",
            "event.check.nothing.deeper == 1",  # TypeError -> None
            "event.check.status",  # a number, not a boolean -> None
            "'true'",  # a string -> None
            "syntax error here",  # SyntaxError -> None
            "event.entity.labels.region == 'eu' && event.is_incident && !event.is_silenced",
        ],
        env,
    )
    assert results == [True, True, False, None, None, None, None, True]


async def test_empty_batch(engine: JSEngine) -> None:
    assert await engine.eval_bools([], {}) == []


async def test_helpers_use_utc_and_now(engine: JSEngine) -> None:
    env = build_event_env(sample_event(), NOW)
    results = await engine.eval_bools(
        [
            "hour(event.timestamp) == 12",
            "minute(event.timestamp) == 0 && second(event.timestamp) == 0",
            "weekday(event.timestamp) == 1",  # Monday; 0 = Sunday
            "seconds_since(event.check.executed) == 30",
            "seconds_since(event.timestamp) == 0",
        ],
        env,
    )
    assert results == [True, True, True, True, True]


async def test_entity_attributes_env(engine: JSEngine) -> None:
    entity = sample_event()["entity"]
    env = build_entity_env(entity, NOW)
    results = await engine.eval_bools(
        ["entity.entity_class == 'agent'", "entity.name == 'web-01'", "entity.labels.region == 'us'"], env
    )
    assert results == [True, True, False]


async def test_endless_loop_times_out_and_engine_keeps_working(engine: JSEngine) -> None:
    env = build_event_env(sample_event(), NOW)
    results = await engine.eval_bools(["while (true) {}", "true"], env, timeout_s=0.3)
    # The batch budget is spent by the loop: both yield None, nothing hangs.
    assert results == [None, None]
    assert await engine.eval_bools(["event.check.status == 2"], env) == [True]
    stats = engine.statistics()
    assert stats.running == 0 and stats.waiting == 0


async def test_endless_loop_does_not_stall_the_event_loop(engine: JSEngine) -> None:
    ticks = 0
    done = trio.Event()

    async def spin() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await trio.lowlevel.checkpoint()

    async def run_loop() -> None:
        try:
            assert await engine.eval_bools(["for (;;) {}"], {}, timeout_s=0.3) == [None]
        finally:
            done.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(spin)
        nursery.start_soon(run_loop)
    assert ticks > 100


async def test_globals_do_not_leak_between_evaluations(engine: JSEngine) -> None:
    assert await engine.eval_bools(["leaked = 1; true"], {}) == [True]
    assert await engine.eval_bools(["typeof leaked === 'undefined'"], {}) == [True]


async def test_scripts_run_first(engine: JSEngine) -> None:
    lib = "function isProd(e) { return e.entity.labels.env === 'prod'; }"
    env = build_event_env(sample_event(), NOW)
    assert await engine.eval_bools(["isProd(event)"], env, scripts=[lib]) == [False]
    assert await engine.eval_bools(["true"], env, scripts=["this is not js"]) == [None]


async def test_parallel_evaluations_respect_the_limiter(engine: JSEngine) -> None:
    env = build_event_env(sample_event(), NOW)
    results: list[list[bool | None]] = []

    async def one() -> None:
        results.append(await engine.eval_bools(["event.check.status == 2"], env))

    async with trio.open_nursery() as nursery:
        for _ in range(20):
            nursery.start_soon(one)
    assert results == [[True]] * 20


async def test_invalid_timeout_rejected(engine: JSEngine) -> None:
    with pytest.raises(ValueError):
        await engine.eval_bools(["true"], {}, timeout_s=0)


# --- mutators ---


async def test_mutator_string_result_is_the_output(engine: JSEngine) -> None:
    body = "return event.check.output + ' @ ' + event.entity.metadata.name + ' ' + REGION;"
    out = await engine.eval_mutator(body, sample_event(), ["REGION=eu-west"], timeout_s=1)
    assert out == b"DISK CRITICAL @ web-01 eu-west"


async def test_mutator_undefined_returns_edited_event(engine: JSEngine) -> None:
    body = "event.check.output = 'changed'; event.extra = {team: TEAM};"
    out = await engine.eval_mutator(body, sample_event(), {"TEAM": "ops"}, timeout_s=1)
    data = json.loads(out)
    assert data["check"]["output"] == "changed"
    assert data["extra"] == {"team": "ops"}
    assert "name" not in data["check"]  # the plain event, not the synthesized one


async def test_mutator_null_returns_event(engine: JSEngine) -> None:
    out = await engine.eval_mutator("return null;", sample_event(), timeout_s=1)
    assert json.loads(out)["check"]["status"] == 2


@pytest.mark.parametrize("body", ["return 42;", "return {a: 1};", "return true;"])
async def test_mutator_other_results_are_errors(engine: JSEngine, body: str) -> None:
    with pytest.raises(JSMutatorError, match="expected a string"):
        await engine.eval_mutator(body, sample_event(), timeout_s=1)


async def test_mutator_throw_is_an_error(engine: JSEngine) -> None:
    with pytest.raises(JSMutatorError, match="boom"):
        await engine.eval_mutator("throw new Error('boom');", sample_event(), timeout_s=1)


async def test_mutator_endless_loop_times_out(engine: JSEngine) -> None:
    with pytest.raises(JSMutatorError, match="timed out"):
        await engine.eval_mutator("while (true) {}", sample_event(), timeout_s=0.3)
    assert await engine.eval_mutator("return 'ok';", {}, timeout_s=1) == b"ok"


# --- syntax check ---


def test_check_syntax(engine: JSEngine) -> None:
    assert engine.check_syntax("event.check.occurrences == 1") is None
    assert engine.check_syntax("var x = 1; x == 1") is None
    assert engine.check_syntax("") == "expression must not be empty"
    message = engine.check_syntax("event.check.status == (1")
    assert message is not None and "SyntaxError" in message
    # Parsing never runs the code, and a stray brace cannot escape the wrapper.
    assert engine.check_syntax("while(true){}") is None
    assert engine.check_syntax("}); while(true){ (function(){") is not None


async def test_mutator_body_cannot_break_out_of_its_wrapper(engine: JSEngine) -> None:
    with pytest.raises(JSMutatorError, match="SyntaxError"):
        await engine.eval_mutator("}); return 1; (function(){", sample_event(), timeout_s=1)
