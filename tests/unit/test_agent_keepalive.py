"""The keepalive event's shape (runtime.md §2.3) and the entity it carries (§1.8, §2.2)."""

from __future__ import annotations

import uuid

from agent.config import AgentConfig, load_config
from agent.entity import EntityState, collect_system, local_entity
from agent.keepalive import build_keepalive
from agent.version import AGENT_VERSION
from core.resources.entity import System


def config(**flags: object) -> AgentConfig:
    return load_config({"name": "web-01", **flags}, {}, hostname=lambda: "h")


def test_keepalive_shape() -> None:
    c = config(**{"keepalive-interval": "10", "keepalive-warning-timeout": "60",
                  "keepalive-critical-timeout": "180", "keepalive-handlers": ["pager"],
                  "keepalive-pipelines": ["ka"], "keepalive-check-labels": ["team=ops"]})
    state = EntityState(c, System(hostname="web-01.example", os="linux"))
    event = build_keepalive(c, state.current(1700000000), sequence=3, now=1700000000)
    wire = event.to_store()
    assert wire["timestamp"] == 1700000000
    assert wire["sequence"] == 3
    uuid.UUID(wire["id"])
    assert wire["metadata"]["namespace"] == "default"
    check = wire["check"]
    assert check["metadata"]["name"] == "keepalive"
    assert check["metadata"]["labels"] == {"team": "ops"}
    # field reuse the backend relies on: timeout = warning, ttl = critical
    assert (check["interval"], check["timeout"], check["ttl"]) == (10, 60, 180)
    assert check["handlers"] == ["pager"]
    assert wire["pipelines"] == [{"name": "ka", "type": "Pipeline", "api_version": "core/v2"}]
    entity = wire["entity"]
    assert entity["metadata"]["name"] == "web-01"
    assert entity["entity_class"] == "agent"
    assert entity["last_seen"] == 1700000000
    assert entity["sensu_agent_version"] == AGENT_VERSION
    assert entity["system"]["hostname"] == "web-01.example"
    assert entity["keepalive_handlers"] == ["pager"]
    assert "entity:web-01" in entity["subscriptions"]
    event.validate()


def test_ids_are_fresh_per_keepalive() -> None:
    c = config()
    e = EntityState(c).current(1)
    assert build_keepalive(c, e, sequence=1, now=1).id != build_keepalive(c, e, sequence=2, now=1).id


def test_local_entity_from_config() -> None:
    c = config(subscriptions=["linux"], labels=["region=eu"], deregister="true",
               **{"deregistration-handler": "dereg", "redact": ["secret"], "agent-managed-entity": "true"})
    e = local_entity(c)
    assert e.subscriptions == ["linux", "entity:web-01"]
    assert e.metadata.labels == {"region": "eu", "sensu.io/managed_by": "sensu-agent"}
    assert e.deregister and e.deregistration.handler == "dereg"
    assert e.redact == ["secret"]


def test_entity_config_is_adopted_and_reset_on_reconnect() -> None:
    state = EntityState(config(subscriptions=["linux"], labels=["a=1"]))
    assert state.adopt({"metadata": {"name": "not found", "namespace": "default"}, "entity_class": "agent"}) is False
    assert state.current(5).subscriptions == ["linux", "entity:web-01"]
    stored = {"metadata": {"name": "web-01", "namespace": "default", "labels": {"b": "2"}},
              "entity_class": "proxy", "subscriptions": ["web"], "deregister": True,
              "keepalive_handlers": ["k"], "redact": ["x"]}
    assert state.adopt(stored) is True
    e = state.current(6)
    assert e.entity_class == "agent"  # forced back
    assert e.subscriptions == ["web", "entity:web-01"]
    assert e.metadata.labels == {"b": "2"}
    assert e.deregister and e.keepalive_handlers == ["k"]
    state.reset()
    assert state.current(7).metadata.labels == {"a": "1"}


def test_agent_managed_entity_ignores_entity_config() -> None:
    state = EntityState(config(**{"agent-managed-entity": "true"}))
    assert state.adopt({"metadata": {"name": "web-01"}, "subscriptions": ["other"]}) is False
    assert state.current(1).subscriptions == ["entity:web-01"]


def test_config_for_another_entity_is_refused() -> None:
    state = EntityState(config())
    assert state.adopt({"metadata": {"name": "someone-else"}}) is False
    assert not state.adopted


def test_template_data_puts_metadata_at_top_level() -> None:
    state = EntityState(config(labels=["disk=80"]), System(hostname="hh"))
    data = state.template_data(1)
    assert data["name"] == "web-01" and data["labels"] == {"disk": "80"}
    assert data["system"]["hostname"] == "hh"
    assert data["metadata"]["name"] == "web-01"


def test_collect_system_reads_this_host() -> None:
    system = collect_system()
    assert system.hostname
    assert system.os
    assert system.arch
    names = [i.name for i in system.network.interfaces or []]
    assert "lo" in names or not names  # loopback is listed on Linux
    assert collect_system(strip_networks=True).network.interfaces is None
