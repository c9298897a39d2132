"""core.frames as the agent uses it (one binary frame per message), and agent.protocol: handshake headers,
encoding negotiation."""

from __future__ import annotations

import base64

import pytest

from agent.protocol import handshake_headers, negotiated_content_type
from core.frames import Frame, ProtocolError, decode_frame, decode_json, encode_frame, encode_json


def test_frame_round_trip_splits_at_first_newline() -> None:
    data = encode_frame("event", b'{"a":"x\\ny"}\nmore')
    assert data == b'event\n{"a":"x\\ny"}\nmore'
    assert decode_frame(data) == Frame("event", b'{"a":"x\\ny"}\nmore')
    assert decode_frame("check_request\n{}") == Frame("check_request", b"{}")
    assert decode_frame(b"keepalive\n") == Frame("keepalive", b"")


@pytest.mark.parametrize("bad", [b"no-newline", b"\n{}", b"\xff\xfe\n{}"])
def test_invalid_frames_are_refused(bad: bytes) -> None:
    with pytest.raises(ProtocolError):
        decode_frame(bad)


def test_encode_refuses_a_type_with_a_newline() -> None:
    with pytest.raises(ValueError):
        encode_frame("a\nb", b"")


def test_json_payloads() -> None:
    assert encode_json({"b": 1, "a": "é"}) == '{"b":1,"a":"é"}'.encode()
    assert decode_json(b'{"x": 1}', "check_request") == {"x": 1}
    with pytest.raises(ProtocolError):
        decode_json(b"[1]", "check_request")
    with pytest.raises(ProtocolError):
        decode_json(b"{", "check_request")


def test_handshake_headers_with_password_auth() -> None:
    headers = dict(handshake_headers(namespace="default", agent_name="web-1", subscriptions=["linux", "", "web"],
                                     user="agent", password="P@ssw0rd!"))
    assert headers[b"Sensu-Namespace"] == b"default"
    assert headers[b"Sensu-AgentName"] == b"web-1"
    assert headers[b"Sensu-User"] == b"agent"
    assert headers[b"Authorization"] == b"Basic " + base64.b64encode(b"agent:P@ssw0rd!")
    assert headers[b"Sensu-Subscriptions"] == b"linux,web"
    assert headers[b"Accept"] == b"application/json"


def test_handshake_headers_with_client_cert_omit_credentials() -> None:
    headers = dict(handshake_headers(namespace="ns", agent_name="a", subscriptions=[], user="agent",
                                     password="x", client_cert=True))
    assert b"Authorization" not in headers and b"Sensu-User" not in headers
    assert headers[b"Sensu-Subscriptions"] == b""


def test_negotiation() -> None:
    assert negotiated_content_type([]) == "application/json"
    assert negotiated_content_type([(b"content-type", b"application/json")]) == "application/json"
    with pytest.raises(ProtocolError, match="protobuf"):
        negotiated_content_type([(b"Content-Type", b"application/octet-stream")])
