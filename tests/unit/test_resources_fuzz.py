"""Property tests: no JSON input makes from_wire/validate raise anything but ValidationError.

The API promises never to answer a client's body with a 500, so decoding and validation
must turn every malformed body into a ValidationError (a 400).  Inputs are both fully
random JSON and mutations of valid documents (so deep fields get exercised too).
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.resources import (
    RESOURCES,
    Check,
    Hook,
    TessenConfig,
    ValidationError,
)

from .test_resources_asset import BUILDS_WIRE, LEGACY_WIRE
from .test_resources_check import FULL as CHECK_FULL
from .test_resources_entity import AGENT_WIRE
from .test_resources_event import EVENT_WIRE, METRICS, RESULT_CHECK
from .test_resources_filter import WHEN
from .test_resources_filter import WIRE as FILTER_WIRE
from .test_resources_handler import TCP
from .test_resources_hook import WIRE as HOOK_WIRE
from .test_resources_mutator import WIRE as MUTATOR_WIRE
from .test_resources_pipeline import WIRE as PIPELINE_WIRE
from .test_resources_rbac import BINDING, CLUSTER_BINDING, CLUSTER_ROLE, ROLE
from .test_resources_silenced import SPEC_EXAMPLE as SILENCED_WIRE

EXAMPLES: dict[str, dict[str, Any]] = {
    "assets": BUILDS_WIRE,
    "checks": CHECK_FULL,
    "entities": AGENT_WIRE,
    "events": {**EVENT_WIRE, "metrics": METRICS},
    "filters": {**FILTER_WIRE, "when": WHEN},
    "handlers": TCP,
    "hooks": HOOK_WIRE,
    "mutators": MUTATOR_WIRE,
    "pipelines": PIPELINE_WIRE,
    "rolebindings": BINDING,
    "roles": ROLE,
    "silenced": SILENCED_WIRE,
    "apikeys": {"metadata": {"name": "k"}, "username": "a", "created_at": 1},
    "clusterrolebindings": CLUSTER_BINDING,
    "clusterroles": CLUSTER_ROLE,
    "namespaces": {"name": "default"},
    "users": {"username": "alice", "groups": ["ops"], "disabled": False, "password": "P@ssw0rd!",
              "password_hash": "$2b$10$" + "x" * 53},
}

# Classes that are not collections but are decoded from client JSON too.
EXTRA: dict[str, tuple[Any, dict[str, Any]]] = {
    "tessen": (TessenConfig, {"opt_out": True}),
    "check": (Check, RESULT_CHECK),
    "hook": (Hook, RESULT_CHECK["hooks"][0]),
    "asset-legacy": (RESOURCES["assets"].cls, LEGACY_WIRE),
}

scalars = (
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats() | st.text(max_size=12)
    | st.sampled_from(["", "*", "a b", "linux", "0", "critical", "$2b$", "@daily", "pipe", "tcp", "set",
                       "javascript", "allow", "Role", "user", "core/v2", "a,b", "\ud800", "\x00"])
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=12,
)


def mutate(value: Any, depth: int = 0) -> st.SearchStrategy[Any]:
    """Documents shaped like ``value`` with random parts replaced, dropped or added."""
    if depth > 6:
        return st.just(value)
    if isinstance(value, dict):
        fields = {k: mutate(v, depth + 1) | json_values for k, v in value.items()}
        base = st.fixed_dictionaries({}, optional=fields)
        extra = st.dictionaries(st.text(max_size=6), json_values, max_size=2)
        return st.builds(lambda a, b: {**b, **a}, base, extra)
    if isinstance(value, list):
        if not value:
            return st.lists(json_values, max_size=3)
        return st.lists(st.one_of(*[mutate(v, depth + 1) for v in value]) | json_values, max_size=4)
    return st.just(value) | scalars


def exercise(cls: Any, data: Any, collection: str | None) -> None:
    """Decode and validate; if decoding worked, every output method must work too."""
    try:
        obj = cls.from_wire(data)
    except ValidationError:
        return
    try:
        obj.validate()
    except ValidationError:
        pass
    wire = obj.to_wire()
    store = obj.to_store()
    json.dumps(wire)
    json.dumps(store)
    assert cls.from_store(store).to_store() == store or _has_nan(store)
    if collection is not None:
        rt = RESOURCES[collection]
        rt.fields(obj)
        rt.labels(obj)
        rt.name_of(obj)
        rt.namespace_of(obj)
        assert rt.decode(rt.encode(obj)).to_store() == store or _has_nan(store)


def _has_nan(value: Any) -> bool:
    if isinstance(value, float):
        return math.isnan(value)
    if isinstance(value, dict):
        return any(_has_nan(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_nan(v) for v in value)
    return False


FUZZ = settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "50")), deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.mark.parametrize("collection", sorted(RESOURCES))
@FUZZ
@given(data=json_values)
def test_random_json_only_raises_validation_errors(collection: str, data: Any) -> None:
    exercise(RESOURCES[collection].cls, data, collection)


@pytest.mark.parametrize("collection", sorted(RESOURCES))
@FUZZ
@given(data=st.data())
def test_mutated_documents_only_raise_validation_errors(collection: str, data: st.DataObject) -> None:
    exercise(RESOURCES[collection].cls, data.draw(mutate(EXAMPLES[collection])), collection)


@pytest.mark.parametrize("name", sorted(EXTRA))
@FUZZ
@given(data=st.data())
def test_mutated_nested_types_only_raise_validation_errors(name: str, data: st.DataObject) -> None:
    cls, example = EXTRA[name]
    exercise(cls, data.draw(mutate(example) | json_values), None)


@pytest.mark.parametrize("collection", sorted(RESOURCES))
def test_examples_are_valid(collection: str) -> None:
    RESOURCES[collection].cls.from_wire(EXAMPLES[collection]).validate()


finite_json = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**31), max_value=2**31) | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=10,
)


@pytest.mark.parametrize("collection", sorted(RESOURCES))
@FUZZ
@given(data=st.data())
def test_to_wire_is_a_fixed_point(collection: str, data: st.DataObject) -> None:
    """Decoding what we emitted and emitting again changes nothing: a client that PUTs
    back a GET sees no difference on its next GET (Ansible's second run)."""
    doc = data.draw(mutate(EXAMPLES[collection]) | finite_json)
    cls = RESOURCES[collection].cls
    try:
        obj = cls.from_wire(doc)
    except ValidationError:
        return
    wire = obj.to_wire()
    assert cls.from_wire(wire).to_wire() == wire or _has_nan(wire)
