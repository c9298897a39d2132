"""Handler: spec §2.6 (pipe, tcp, udp, set)."""

from __future__ import annotations

from typing import Any

import pytest

from core.resources import Handler, ValidationError
from core.resources.handler import handler_fields

META = {"name": "notify", "namespace": "default"}

PIPE: dict[str, Any] = {
    "metadata": META, "type": "pipe", "command": "notify.sh", "timeout": 0, "handlers": None,
    "filters": ["is_incident"], "env_vars": None, "runtime_assets": None, "secrets": None,
}
TCP: dict[str, Any] = {
    "metadata": META, "type": "tcp", "mutator": "only_check_output", "timeout": 10,
    "socket": {"host": "10.0.0.1", "port": 4444}, "handlers": None, "filters": None, "env_vars": None,
    "runtime_assets": None, "secrets": None,
}
SET: dict[str, Any] = {
    "metadata": META, "type": "set", "timeout": 0, "handlers": ["slack", "email"], "filters": None,
    "env_vars": None, "runtime_assets": None, "secrets": None,
}


def reason(h: Handler) -> str:
    with pytest.raises(ValidationError) as info:
        h.validate()
    return info.value.reason


@pytest.mark.parametrize("wire", [PIPE, TCP, SET, {**TCP, "type": "udp"}])
def test_round_trip(wire: dict[str, Any]) -> None:
    h = Handler.from_wire(wire)
    h.validate()
    assert h.to_wire() == wire
    assert Handler.from_store(h.to_store()) == h


def test_socket_host_is_omitempty_port_always() -> None:
    assert Handler.from_wire({"socket": {}}).to_wire()["socket"] == {"port": 0}


def test_omitempty_keys() -> None:
    wire = Handler.from_wire({}).to_wire()
    for key in ("type", "mutator", "command", "socket"):
        assert key not in wire


def test_handle_silenced_only_on_the_wire_when_true() -> None:
    assert Handler.from_wire({**PIPE, "handle_silenced": False}).to_wire() == PIPE
    assert Handler.from_wire({**PIPE, "handle_silenced": True}).to_wire() == {**PIPE, "handle_silenced": True}


def test_empty_type() -> None:
    assert reason(Handler.from_wire({**PIPE, "type": ""})) == "empty handler type"


def test_unknown_type() -> None:
    assert reason(Handler.from_wire({**PIPE, "type": "grpc"})) == "unknown handler type: grpc"


def test_pipe_needs_command() -> None:
    assert reason(Handler.from_wire({**PIPE, "command": "  "})) == "command: must not be empty for a pipe handler"


def test_tcp_needs_socket() -> None:
    wire = dict(TCP)
    del wire["socket"]
    assert reason(Handler.from_wire(wire)) == "socket: must be set for a tcp handler"


def test_socket_needs_host() -> None:
    assert reason(Handler.from_wire({**TCP, "socket": {"port": 1}})) == "socket.host: must not be empty"


def test_socket_needs_port() -> None:
    assert reason(Handler.from_wire({**TCP, "type": "udp", "socket": {"host": "h"}})) == "socket.port: must not be 0"


def test_env_vars_and_secrets() -> None:
    assert reason(Handler.from_wire({**PIPE, "env_vars": ["NOPE"]})).startswith("env_vars[0]: ")
    assert reason(Handler.from_wire({**PIPE, "secrets": [{"secret": "x"}]})) == "secrets[0].name: must not be empty"


def test_fields() -> None:
    assert handler_fields(Handler.from_wire(TCP)) == {
        "handler.name": "notify", "handler.namespace": "default", "handler.type": "tcp",
        "handler.filters": "", "handler.handlers": "", "handler.mutator": "only_check_output",
    }
