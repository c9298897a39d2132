"""core.execute with the backend's HANDLER_POLICY (the agent's CHECK_POLICY is covered in test_agent_executor.py)."""

from __future__ import annotations

import os

import pytest

from core.execute import HANDLER_POLICY, TIMEOUT_STATUS, CommandPolicy, merge_env, run_command

ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C"}


async def test_handler_timeout_is_status_2_without_a_prefix() -> None:
    result = await run_command("echo partial; sleep 60", stdin=b"", timeout=0.5, env=ENV, policy=HANDLER_POLICY)
    assert result.timed_out and result.status == TIMEOUT_STATUS
    assert result.output == "partial\n"


async def test_handler_signal_death_is_status_2() -> None:
    result = await run_command("kill -9 $$", stdin=b"", timeout=10, env=ENV, policy=HANDLER_POLICY)
    assert result.status == 2 and not result.timed_out


async def test_handler_stdin_and_exit_status() -> None:
    result = await run_command("cat; exit 4", stdin=b'{"a":1}', timeout=10, env=ENV, policy=HANDLER_POLICY)
    assert (result.status, result.output) == (4, '{"a":1}')


async def test_output_cap_keeps_the_first_bytes_and_reads_the_rest() -> None:
    policy = CommandPolicy(shell="/bin/sh", max_output=10, exit_drain=None)
    result = await run_command("head -c 100000 /dev/zero | tr '\\0' x; echo; exit 0", timeout=10, env=ENV,
                               policy=policy)
    assert result.status == 0 and result.output == "x" * 10


async def test_handler_spawn_failure_is_raised() -> None:
    with pytest.raises(ExceptionGroup) as info:
        await run_command("true", stdin=b"", timeout=10, env={**ENV, "BAD": "a\x00b"}, policy=HANDLER_POLICY)
    assert info.group_contains(ValueError)


def test_merge_env_is_the_process_environment_plus_env_vars() -> None:
    assert merge_env({"A": "1"}, ["A=2", "=x", "novalue"], None) == {"A": "2"}
