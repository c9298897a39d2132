"""The backend's agent protocol helpers (core/frames.py, backend/agentd/protocol.py, requests.py): pure, no sockets."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest

from backend.agentd.protocol import (
    NOT_FOUND_ENTITY_NAME,
    RESPONSE_HEADERS,
    close_reason,
    entity_config_payload,
    parse_basic_auth,
    parse_handshake,
    parse_request_head,
    session_subscriptions,
    validate_agent_event,
)
from backend.agentd.requests import check_request_key, check_request_prefix, parse_check_request_key
from core.frames import MAX_MESSAGE_BYTES, ProtocolError, decode_frame, decode_payload, encode_json_frame
from core.resources import Entity


def keepalive(name: str = "web-01", *, ts: int | None = None, namespace: str = "default") -> dict[str, Any]:
    ts = int(time.time()) if ts is None else ts
    return {
        "metadata": {"namespace": namespace},
        "timestamp": ts,
        "entity": {"metadata": {"name": name, "namespace": namespace}, "entity_class": "agent",
                   "subscriptions": ["linux"]},
        "check": {"metadata": {"name": "keepalive"}, "interval": 20, "timeout": 120},
    }


def test_frames_round_trip_and_split_at_the_first_newline() -> None:
    frame = decode_frame(encode_json_frame("event", {"a": "x\ny"}))
    assert frame.type == "event"
    assert decode_payload(frame) == {"a": "x\ny"}
    assert decode_frame("keepalive\n{}").type == "keepalive"  # text messages are accepted


@pytest.mark.parametrize("data, reason", [
    (b"no newline at all", "no newline"),
    (b"\n{}", "empty message type"),
    (b"\xff\xfe\n{}", "not ASCII"),
    (b"event\n" + b"x" * MAX_MESSAGE_BYTES, "exceeds"),
])
def test_malformed_frames_are_protocol_errors(data: bytes, reason: str) -> None:
    with pytest.raises(ProtocolError, match=reason):
        decode_frame(data)


@pytest.mark.parametrize("payload", [b"{not json", b"[1, 2]", b"\xff"])
def test_payload_must_be_a_json_object(payload: bytes) -> None:
    with pytest.raises(ProtocolError):
        decode_payload(decode_frame(b"event\n" + payload))


def test_request_head_and_upgrade_detection() -> None:
    head = (b"GET /?x=1 HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n"
            b"Sensu-Namespace: default\r\nX-Dup: 1\r\nX-Dup: 2")
    req = parse_request_head(head)
    assert (req.method, req.path) == ("GET", "/")
    assert req.is_websocket_upgrade
    assert req.headers["x-dup"] == "1, 2"
    assert not parse_request_head(b"GET /health HTTP/1.1\r\nHost: a").is_websocket_upgrade
    for bad in (b"GARBAGE", b"GET / HTTP/1.1\r\nno colon here", b"GET / SPDY/3\r\n"):
        with pytest.raises(ProtocolError):
            parse_request_head(bad)


def test_handshake_headers_and_basic_credentials() -> None:
    token = base64.b64encode(b"agent:P@ss:word").decode()
    hs = parse_handshake({"sensu-namespace": " default ", "sensu-agentname": "web-01", "sensu-user": "agent",
                          "sensu-subscriptions": "linux,, web ,", "authorization": f"Basic {token}",
                          "accept": "application/octet-stream"})
    assert (hs.namespace, hs.agent_name, hs.subscriptions) == ("default", "web-01", ("linux", "web"))
    assert hs.credentials == ("agent", "P@ss:word")
    assert "P@ss" not in repr(hs)
    assert parse_basic_auth("Bearer abc") is None
    assert parse_basic_auth("Basic !!!") is None
    assert parse_basic_auth("Basic " + base64.b64encode(b"nocolon").decode()) is None
    assert parse_handshake({}).credentials is None


def test_json_only_response_headers() -> None:
    values = [v for k, v in RESPONSE_HEADERS if k.lower() == b"accept"]
    assert values == [b"application/json"]
    assert all(b"octet-stream" not in v for _, v in RESPONSE_HEADERS)


def test_session_subscriptions_add_the_entity_subscription_once() -> None:
    assert session_subscriptions(["linux", "", "linux", "entity:web-01"], "web-01") == ("linux", "entity:web-01")
    assert session_subscriptions([], "db") == ("entity:db",)


def test_valid_keepalive_gets_the_entity_subscription_and_namespace() -> None:
    body = keepalive()
    body["metadata"] = {}
    body["entity"]["metadata"].pop("namespace")
    event = validate_agent_event("keepalive", body, namespace="default", agent_name="web-01")
    assert event.metadata.namespace == "default"
    assert event.entity is not None
    assert event.entity.metadata.namespace == "default"
    assert event.entity.subscriptions == ["linux", "entity:web-01"]


@pytest.mark.parametrize("change, reason", [
    (lambda b: b.update(timestamp=0), "timestamp must be non-zero"),
    (lambda b: b.pop("entity"), "must contain an entity"),
    (lambda b: b["entity"]["metadata"].update(name="other"), "is not the agent"),
    (lambda b: b.update(metadata={"namespace": "ops"}), "namespace 'ops'"),
    (lambda b: b.update(check="not an object"), "invalid keepalive"),
    (lambda b: b.update(id="not-a-uuid"), "UUID"),
])
def test_invalid_keepalives_are_protocol_errors(change: Any, reason: str) -> None:
    body = keepalive()
    change(body)
    with pytest.raises(ProtocolError, match=reason):
        validate_agent_event("keepalive", body, namespace="default", agent_name="web-01")


def test_unknown_types_are_refused() -> None:
    with pytest.raises(ProtocolError, match="unknown message type"):
        validate_agent_event("teleport", keepalive(), namespace="default", agent_name="web-01")


def test_entity_config_payload() -> None:
    assert entity_config_payload(None, "default") == {
        "metadata": {"name": NOT_FOUND_ENTITY_NAME, "namespace": "default"}, "entity_class": "agent"}
    entity = Entity.from_wire({
        "metadata": {"name": "web-01", "namespace": "default",
                     "labels": {"sensu.io/managed_by": "sensu-agent", "region": "eu"}},
        "entity_class": "agent", "subscriptions": ["linux", "entity:web-01"], "user": "agent",
        "deregister": True, "deregistration": {"handler": "dereg"}, "last_seen": 5,
    })
    payload = entity_config_payload(entity, "default")
    assert payload["metadata"] == {"name": "web-01", "namespace": "default", "labels": {"region": "eu"}}
    assert payload["subscriptions"] == ["linux", "entity:web-01"]
    assert payload["deregistration"] == {"handler": "dereg"}
    assert "last_seen" not in payload and "system" not in payload
    assert entity_config_payload(entity.to_store(), "default") == payload  # dict and object agree
    json.dumps(payload)


def test_close_reason_fits_a_close_frame() -> None:
    assert close_reason("short") == "short"
    long = close_reason("é" * 200)
    assert len(long.encode()) <= 123


def test_check_request_keys() -> None:
    key = check_request_key("default", "entity:web/01", "abc")
    assert key.startswith(check_request_prefix("default"))
    assert parse_check_request_key(key) == ("default", "entity:web/01", "abc")
    with pytest.raises(ValueError):
        parse_check_request_key(check_request_prefix() + "only/two")


def test_deeply_nested_json_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="invalid JSON"):
        decode_payload(decode_frame(b"event\n" + b"[" * 200_000 + b"]" * 200_000))
