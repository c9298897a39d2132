"""Running one shell command, bounded and killable: checks and hooks on the agent, mutators and
pipe handlers on the backend.

Why one function: both sides need the same hard parts -- ``sh -c`` in its **own
process group** (``start_new_session``), so that at the deadline the whole group
gets SIGKILL and a command that forks (``sleep 100 | cat``) leaves nothing
behind; stdout and stderr on one pipe, so the output interleaves them as the
command wrote; the loop never blocks (:func:`trio.run_process`). Where the two
callers report differently they say so with a :class:`CommandPolicy`
(:data:`CHECK_POLICY` for the agent, :data:`HANDLER_POLICY` for the backend);
this module decides nothing else for them.

Environment: the caller builds it (:func:`merge_env`); nothing is inherited
implicitly.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Final

import trio

__all__ = [
    "CHECK_POLICY",
    "EXIT_DRAIN_S",
    "FAILURE_STATUS",
    "HANDLER_POLICY",
    "TIMEOUT_OUTPUT",
    "TIMEOUT_STATUS",
    "CommandPolicy",
    "CommandResult",
    "merge_env",
    "run_command",
]

TIMEOUT_STATUS: Final = 2
TIMEOUT_OUTPUT: Final = "Execution timed out\n"
FAILURE_STATUS: Final = 3
"""Status of a check that cannot start or dies of a signal (Sensu's "unknown")."""
EXIT_DRAIN_S: Final = 1.0
"""After a command exits, how long to wait for the rest of its output: a child it
left running in the background may hold the pipe open forever."""
_READ_CHUNK: Final = 65536


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandPolicy:
    """How a caller wants a command run and its end reported.

    The agent (checks, hooks) and the backend (mutators, pipe handlers) have
    always differed in these points; each keeps its own.
    """

    #: the shell, run as ``<shell> -c <command>``; a bare name is looked up in the command's own ``PATH``
    shell: str = "sh"
    #: bytes of output kept (the rest is read and discarded); None keeps everything
    max_output: int | None = None
    #: after the command exits, seconds to wait for its output to end; None waits for EOF
    exit_drain: float | None = EXIT_DRAIN_S
    #: text put before the partial output of a command killed at its timeout
    timeout_output: str = TIMEOUT_OUTPUT
    #: status of a command killed by a signal other than our timeout
    signal_status: int = FAILURE_STATUS
    #: status reported when the command cannot start (its output says why); None raises instead
    spawn_failure_status: int | None = FAILURE_STATUS
    #: on cancellation, SIGKILL the whole group at once; False: trio's default (SIGTERM to the
    #: shell, SIGKILL five seconds later)
    kill_group_on_cancel: bool = True


CHECK_POLICY: Final = CommandPolicy()
"""The agent's checks and hooks (runtime.md §2.4): ``sh`` from the check's ``PATH``, status 2 and
``Execution timed out`` at the timeout, 3 for a signal death or a command that cannot start."""

HANDLER_POLICY: Final = CommandPolicy(
    shell="/bin/sh",
    max_output=16 << 20,  # a mutator's output is the handler's input; events can carry multi-MB outputs
    exit_drain=None,
    timeout_output="",
    signal_status=TIMEOUT_STATUS,
    spawn_failure_status=None,
    kill_group_on_cancel=False,
)
"""The backend's mutators and pipe handlers (runtime.md §6): ``/bin/sh``, output capped at 16 MiB and
read to its end, status 2 for a timeout or a signal death, a failure to start raised to the caller."""


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What a command did: merged output, exit status, seconds taken, whether it timed out."""

    output: str
    status: int
    duration: float
    timed_out: bool = False


async def _kill_group(proc: trio.Process) -> None:
    """SIGKILL the command's whole group (``deliver_cancel`` for :func:`trio.run_process`, and the timeout)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    except PermissionError:  # not our group after all (cannot happen with start_new_session)
        proc.kill()


def _first_spawn_error(group: BaseExceptionGroup[OSError | ValueError]) -> OSError | ValueError:
    exc: BaseException = group
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    assert isinstance(exc, (OSError, ValueError))
    return exc


async def run_command(command: str, *, timeout: float, env: Mapping[str, str], stdin: bytes | None = None,
                      policy: CommandPolicy = CHECK_POLICY) -> CommandResult:
    """Run ``<shell> -c command`` in its own process group; never raises for the command's sake.

    ``timeout`` > 0 SIGKILLs the group at expiry (status 2, ``timed_out``,
    ``policy.timeout_output`` + the output read until then); 0 means no limit.
    ``stdin`` bytes are written to the command's stdin and it is closed;
    ``None`` gives it ``/dev/null``. A command that cannot start gives
    ``policy.spawn_failure_status`` and the error as output, or raises it
    (``OSError``/``ValueError`` in an exception group) when that is None.
    Cancellation kills the command (see :attr:`CommandPolicy.kill_group_on_cancel`)
    and propagates.
    """
    output = bytearray()
    cap = policy.max_output
    started = time.monotonic()
    timed_out = False
    spawn_error: OSError | ValueError | None = None

    async def read_output(stream: trio.abc.ReceiveStream, done: trio.Event) -> None:
        try:
            while chunk := await stream.receive_some(_READ_CHUNK):
                if cap is None:
                    output.extend(chunk)
                elif len(output) < cap:
                    output.extend(chunk[: cap - len(output)])
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            done.set()

    spawn = partial(trio.run_process, [policy.shell, "-c", command],
                    stdin=stdin if stdin is not None else subprocess.DEVNULL, stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT, start_new_session=True, env=dict(env), check=False)
    if policy.kill_group_on_cancel:
        spawn = partial(spawn, deliver_cancel=_kill_group)
    try:
        async with trio.open_nursery() as nursery:
            proc: trio.Process = await nursery.start(spawn)
            assert proc.stdout is not None
            eof = trio.Event()
            nursery.start_soon(read_output, proc.stdout, eof)
            with trio.move_on_after(timeout if timeout > 0 else float("inf")) as deadline:
                await proc.wait()
            if deadline.cancelled_caught:
                timed_out = True
                await _kill_group(proc)
                await proc.wait()
            if policy.exit_drain is None:
                await eof.wait()
            else:
                with trio.move_on_after(policy.exit_drain):
                    await eof.wait()
            nursery.cancel_scope.cancel()  # stop reading: a background child may keep the pipe
    except* (OSError, ValueError) as group:  # ValueError: a NUL byte in the command or environment
        if policy.spawn_failure_status is None:
            raise
        spawn_error = _first_spawn_error(group)
    duration = time.monotonic() - started
    if spawn_error is not None:
        assert policy.spawn_failure_status is not None
        reason = spawn_error.strerror if isinstance(spawn_error, OSError) and spawn_error.strerror else spawn_error
        return CommandResult(output=f"cannot execute {policy.shell}: {reason}", status=policy.spawn_failure_status,
                             duration=duration)
    text = output.decode("utf-8", errors="replace")
    if timed_out:
        return CommandResult(output=policy.timeout_output + text, status=TIMEOUT_STATUS, duration=duration,
                             timed_out=True)
    returncode = proc.returncode
    status = returncode if returncode is not None and returncode >= 0 else policy.signal_status
    return CommandResult(output=text, status=status, duration=duration)


def merge_env(base: Mapping[str, str], *layers: Sequence[str] | None) -> dict[str, str]:
    """``base`` updated by each layer of ``KEY=VALUE`` strings in order (later wins).

    Entries without ``=`` (or with an empty key) are ignored (validation refuses
    them on the backend).
    """
    env = dict(base)
    for layer in layers:
        for entry in layer or ():
            key, sep, value = entry.partition("=")
            if sep and key:
                env[key] = value
    return env
