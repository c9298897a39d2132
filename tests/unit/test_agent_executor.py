"""agent.executor and core.execute: running checks and hooks as real child processes (runtime.md §2.4, §2.5)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import trio

from agent.config import load_config
from agent.entity import EntityState
from agent.executor import CheckRequest, Executor, encode_event, hooks_for_status
from core.execute import FAILURE_STATUS, TIMEOUT_OUTPUT, merge_env, run_command
from core.resources.check import CheckConfig, HookList
from core.resources.event import Event
from core.resources.entity import System

ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C"}
NOW = 1_700_000_000


def make_executor(delivered: list[Event] | None = None, **flags: object) -> Executor:
    config = load_config({"name": "web-01", "labels": ["disk=80"], **flags}, ENV, hostname=lambda: "h")
    state = EntityState(config, System(hostname="web-01.example"))

    async def deliver(event: Event) -> None:
        if delivered is not None:
            delivered.append(event)

    return Executor(agent_name=config.name, namespace=config.namespace, entity=state.current,
                    template_data=state.template_data, deliver=deliver, env=config.process_env,
                    clock=lambda: NOW)


def check(name: str = "c1", command: str = "true", **fields: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "default"}, "command": command, "interval": 60,
            "timeout": 30, **fields}


def request(config: dict[str, Any] | None, **fields: Any) -> CheckRequest:
    return CheckRequest.from_wire({"config": config, "issued": NOW - 1, **fields})


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] == "Z"
    except FileNotFoundError:
        return True


# --- run_command -------------------------------------------------------------------


@pytest.mark.parametrize("code", [0, 1, 2, 3, 42])
async def test_exit_code_becomes_status(code: int) -> None:
    result = await run_command(f"echo out; echo err >&2; exit {code}", timeout=10, env=ENV)
    assert result.status == code
    assert result.output == "out\nerr\n"  # stdout and stderr merged in order
    assert not result.timed_out and result.duration >= 0


async def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    result = await run_command(f"echo partial; sleep 60 & echo $! > {pidfile}; wait", timeout=1, env=ENV)
    assert result.timed_out
    assert result.status == 2
    assert result.output == TIMEOUT_OUTPUT + "partial\n"
    child = int(pidfile.read_text())
    with trio.fail_after(10):
        while not _gone(child):
            await trio.sleep(0.02)


async def test_stdin_is_written_and_closed() -> None:
    result = await run_command("cat; echo done", timeout=10, env=ENV, stdin=b"hello\n")
    assert result.output == "hello\ndone\n"


async def test_no_stdin_means_dev_null() -> None:
    result = await run_command("cat; echo $?", timeout=10, env=ENV)
    assert result.output == "0\n"


async def test_command_that_cannot_start_is_status_3() -> None:
    # the check's PATH is used to find sh, so an empty PATH means it cannot start
    result = await run_command("true", timeout=10, env={"PATH": "/nonexistent"})
    assert result.status == FAILURE_STATUS
    assert result.output == "cannot execute sh: No such file or directory"


async def test_nul_byte_in_environment_is_a_failure_not_a_crash() -> None:
    result = await run_command("true", timeout=10, env={**ENV, "BAD": "a\x00b"})
    assert result.status == FAILURE_STATUS and "null byte" in result.output


async def test_signal_death_is_unknown() -> None:
    result = await run_command("kill -9 $$", timeout=10, env=ENV)
    assert result.status == FAILURE_STATUS


def test_merge_env_later_wins() -> None:
    env = merge_env({"A": "1", "B": "1"}, ["B=2", "C=x=y"], ["C=3", "junk"])
    assert env == {"A": "1", "B": "2", "C": "3"}


# --- execute: the §2.4 steps ---------------------------------------------------------


async def test_result_event_fields() -> None:
    executor = make_executor()
    event = await executor.execute(request(check(command="echo {{ .name }} {{ .labels.disk }}; exit 1",
                                                 handlers=["slack"], timeout=10)))
    assert event is not None and event.check is not None
    c = event.check
    assert c.output == "web-01 80\n"
    assert c.status == 1
    assert c.command == "echo {{ .name }} {{ .labels.disk }}; exit 1"  # unsubstituted in the event
    assert c.executed == NOW and c.issued == NOW - 1
    assert c.processed_by == "web-01"
    assert c.handlers == ["slack"]
    assert event.timestamp == NOW and event.id
    assert event.entity is not None and event.entity.metadata.name == "web-01"
    assert event.sequence == 1
    event.validate()
    second = await executor.execute(request(check()))
    assert second is not None and second.sequence == 2
    executor.reset_sequences()
    third = await executor.execute(request(check()))
    assert third is not None and third.sequence == 1


async def test_timeout_gives_status_2_and_message() -> None:
    event = await make_executor().execute(request(check(command="echo before; sleep 30", timeout=1)))
    assert event is not None and event.check is not None
    assert event.check.status == 2
    assert event.check.output == "Execution timed out\nbefore\n"


async def test_stdin_receives_the_event_json() -> None:
    event = await make_executor().execute(request(check(command="cat", stdin=True, timeout=10)))
    assert event is not None and event.check is not None
    doc = json.loads(event.check.output)
    assert doc["check"]["metadata"]["name"] == "c1"
    assert doc["entity"]["metadata"]["name"] == "web-01"
    assert doc["check"]["executed"] == NOW


async def test_env_vars_and_secrets() -> None:
    event = await make_executor().execute(request(
        check(command='echo "$A $B $HOST"', env_vars=["A=1", "B=from-check", "HOST={{ .system.hostname }}"],
              timeout=10),
        secrets=["B=from-secret", "A=secret-a"]))
    assert event is not None and event.check is not None
    assert event.check.output == "1 from-check web-01.example\n"


async def test_undefined_token_is_a_failure_event() -> None:
    event = await make_executor().execute(request(check(command="echo {{ .labels.nope }}")))
    assert event is not None and event.check is not None
    assert event.check.status == FAILURE_STATUS
    assert event.check.output.startswith("error while substituting check tokens: unmatched token")
    assert event.check.executed == NOW and event.timestamp == NOW


async def test_assets_are_refused_with_a_failure_event() -> None:
    event = await make_executor().execute(request(check(runtime_assets=["sensu/plugins"])))
    assert event is not None and event.check is not None
    assert event.check.status == FAILURE_STATUS
    assert "assets" in event.check.output


async def test_missing_config_is_dropped() -> None:
    assert await make_executor().execute(request(None)) is None


async def test_discard_output_and_metrics() -> None:
    event = await make_executor().execute(request(check(
        command="echo 'OK | load=0.5;1;2 users=3'", output_metric_format="nagios_perfdata",
        output_metric_handlers=["influx"], output_metric_tags=[{"name": "env", "value": "{{ .labels.disk }}"}],
        discard_output=True, timeout=10)))
    assert event is not None and event.check is not None and event.metrics is not None
    assert event.check.output == ""
    assert event.metrics.handlers == ["influx"]
    points = [(p.name, p.value, p.timestamp, [(t.name, t.value) for t in p.tags or []])
              for p in event.metrics.points or []]
    assert points == [("load", 0.5, NOW, [("env", "80")]), ("users", 3.0, NOW, [("env", "80")])]


async def test_in_progress_guard_drops_a_second_request() -> None:
    delivered: list[Event] = []
    executor = make_executor(delivered)
    doc = {"config": check(command="sleep 0.5; echo done", timeout=10), "issued": 1}
    async with trio.open_nursery() as nursery:
        assert executor.try_start(nursery, doc) is True
        assert executor.try_start(nursery, doc) is False  # same check still running
        proxy = {"config": check(command="true", proxy_entity_name="db-1", timeout=10)}
        assert executor.try_start(nursery, proxy) is True  # another key: name/proxy
    assert executor.dropped_in_progress == 1
    assert sorted(e.check.output for e in delivered if e.check) == ["", "done\n"]
    assert executor.in_progress() == frozenset()
    async with trio.open_nursery() as nursery:  # finished: may run again
        assert executor.try_start(nursery, doc) is True


# --- hooks ---------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "expected"), [
    (0, ["h0", "h-ok"]),
    (1, ["h-warn", "h-nz"]),
    (2, ["h-crit", "h-nz"]),
    (3, ["h-unknown", "h-nz"]),
    (127, ["h127", "h-unknown", "h-nz"]),
])
def test_hooks_selected_by_status(status: int, expected: list[str]) -> None:
    config = CheckConfig(check_hooks=[
        HookList(type="0", hooks=["h0"]), HookList(type="ok", hooks=["h-ok", "h0"]),
        HookList(type="warning", hooks=["h-warn"]), HookList(type="critical", hooks=["h-crit"]),
        HookList(type="127", hooks=["h127"]), HookList(type="unknown", hooks=["h-unknown"]),
        HookList(type="non-zero", hooks=["h-nz"]),
    ])
    assert hooks_for_status(config, status) == expected


async def test_hooks_run_after_the_check_once_each() -> None:
    hooks = [
        {"metadata": {"name": "ps", "namespace": "default"}, "command": "echo ps for {{ .name }}", "timeout": 5},
        {"metadata": {"name": "slow", "namespace": "default"}, "command": "sleep 30", "timeout": 1},
        {"metadata": {"name": "stdin", "namespace": "default"}, "command": "cat", "timeout": 5, "stdin": True},
        {"metadata": {"name": "never", "namespace": "default"}, "command": "echo no", "timeout": 5},
    ]
    config = check(command="exit 2", timeout=10, check_hooks=[
        {"critical": ["ps", "slow"]}, {"non-zero": ["ps", "stdin", "missing"]}, {"ok": ["never"]}])
    event = await make_executor().execute(request(config, hooks=hooks))
    assert event is not None and event.check is not None
    results = {h.metadata.name: h for h in event.check.hooks or []}
    assert list(results) == ["ps", "slow", "stdin", "missing"]
    assert (results["ps"].output, results["ps"].status) == ("ps for web-01\n", 0)
    assert results["slow"].status == 2 and results["slow"].output.startswith("Execution timed out")
    assert json.loads(results["stdin"].output)["check"]["status"] == 2
    assert results["missing"].status == 2 and "no hook config was sent" in results["missing"].output
    assert all(h.executed == NOW for h in results.values())
    event.validate()


async def test_huge_output_is_cut_to_the_message_limit() -> None:
    event = await make_executor().execute(request(check(command="head -c 300000 /dev/zero | tr '\\0' a",
                                                        timeout=10)))
    assert event is not None and event.check is not None
    assert len(event.check.output) == 300000
    payload = encode_event(event, limit=100_000)
    assert payload is not None and len(payload) <= 100_000
    output = json.loads(payload)["check"]["output"]
    assert output.startswith("aaaa") and "output truncated" in output
    small = await make_executor().execute(request(check(command="echo hi")))
    assert small is not None
    assert json.loads(encode_event(small) or b"{}")["check"]["output"] == "hi\n"
