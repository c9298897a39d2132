"""CheckConfig: spec §2.2 shape, every validation rule, lenient decoding."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from core.resources import CheckConfig, ValidationError, WireTypeError
from core.resources.check import check_fields

SPEC_EXAMPLE: dict[str, Any] = {
    "command": "check-cpu.sh", "handlers": [], "high_flap_threshold": 0, "interval": 60, "low_flap_threshold": 0,
    "publish": True, "runtime_assets": None, "subscriptions": ["linux"], "proxy_entity_name": "", "check_hooks": None,
    "stdin": False, "subdue": None, "ttl": 0, "timeout": 0, "round_robin": False, "output_metric_format": "",
    "output_metric_handlers": None, "env_vars": None,
    "metadata": {"name": "cpu", "namespace": "default", "created_by": "admin"}, "secrets": None, "pipelines": [],
}

FULL: dict[str, Any] = {
    **SPEC_EXAMPLE,
    "cron": "",
    "interval": 30,
    "ttl": 100,
    "timeout": 10,
    "handlers": ["slack", "email"],
    "runtime_assets": ["sensu/monitoring-plugins", "ruby"],
    "subscriptions": ["linux", "entity:web01"],
    "check_hooks": [{"0": ["a"]}, {"critical": ["c", "d"]}],
    "proxy_requests": {"entity_attributes": ["entity.entity_class == 'proxy'"], "splay": True, "splay_coverage": 90},
    "output_metric_format": "influxdb_line",
    "output_metric_handlers": ["influx"],
    "output_metric_tags": [{"name": "region", "value": "eu"}],
    "output_metric_thresholds": [
        {"name": "cpu", "tags": None, "thresholds": [{"min": "0", "max": "90", "status": 2, "null_status": 0}]}
    ],
    "env_vars": ["A=1", "B=two"],
    "max_output_size": 1024,
    "discard_output": True,
    "secrets": [{"name": "TOKEN", "secret": "vault-token"}],
    "subdues": [{"begin": "2024-01-01T00:00:00Z", "end": "2024-01-01T02:00:00Z", "repeat": ["daily"]}],
    "pipelines": [{"name": "p1", "type": "Pipeline", "api_version": "core/v2"}],
    "high_flap_threshold": 60,
    "low_flap_threshold": 20,
    "metadata": {"name": "cpu", "namespace": "default", "labels": {"a": "b"}, "annotations": {"c": "d"}},
}
del FULL["cron"]


def check(**overrides: Any) -> CheckConfig:
    data = copy.deepcopy(SPEC_EXAMPLE)
    data.update(overrides)
    return CheckConfig.from_wire(data)


def reason(obj: CheckConfig) -> str:
    with pytest.raises(ValidationError) as info:
        obj.validate()
    return info.value.reason


def test_spec_example_round_trips() -> None:
    c = CheckConfig.from_wire(SPEC_EXAMPLE)
    c.validate()
    assert c.to_wire() == SPEC_EXAMPLE


def test_full_shape_round_trips() -> None:
    c = CheckConfig.from_wire(FULL)
    c.validate()
    assert c.to_wire() == FULL
    assert CheckConfig.from_store(c.to_store()) == c


def test_cron_is_omitempty_and_kept() -> None:
    data = {**SPEC_EXAMPLE, "interval": 0, "cron": "*/5 * * * *"}
    c = CheckConfig.from_wire(data)
    c.validate()
    assert c.to_wire() == data


def test_lists_are_forced_to_empty_where_go_forces_them() -> None:
    wire = CheckConfig.from_wire({"metadata": {"name": "x"}}).to_wire()
    assert wire["subscriptions"] == [] and wire["handlers"] == [] and wire["pipelines"] == []
    assert wire["runtime_assets"] is None and wire["env_vars"] is None and wire["secrets"] is None


def test_empty_lists_are_kept_verbatim() -> None:
    wire = check(runtime_assets=[], env_vars=[], output_metric_handlers=[]).to_wire()
    assert wire["runtime_assets"] == [] and wire["env_vars"] == [] and wire["output_metric_handlers"] == []


def test_omitempty_keys_are_dropped() -> None:
    wire = CheckConfig.from_wire({"metadata": {"name": "x"}}).to_wire()
    for key in ("command", "cron", "proxy_requests", "max_output_size", "discard_output", "subdues",
                "output_metric_tags", "output_metric_thresholds"):
        assert key not in wire
    assert wire["metadata"] == {"name": "x"}


def test_pipeline_refs_get_defaults() -> None:
    c = check(pipelines=[{"name": "p"}])
    assert c.to_wire()["pipelines"] == [{"name": "p", "type": "Pipeline", "api_version": "core/v2"}]


def test_unknown_keys_are_ignored() -> None:
    c = CheckConfig.from_wire({**SPEC_EXAMPLE, "handle_silenced": True, "extra": {"x": 1}})
    assert c.to_wire() == SPEC_EXAMPLE


def test_nulls_are_zero_values() -> None:
    c = CheckConfig.from_wire({"metadata": None, "interval": None, "command": None, "publish": None,
                               "subscriptions": None, "proxy_requests": None})
    assert c.interval == 0 and c.command == "" and c.publish is False and c.proxy_requests is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"interval": "60"}, "interval: expected an integer, got string"),
        ({"interval": True}, "interval: expected an integer, got boolean"),
        ({"interval": 1.5}, "interval: expected an integer, got number 1.5"),
        ({"interval": -1}, "interval: -1 is out of range for uint32"),
        ({"ttl": 2**63}, f"ttl: {2**63} is out of range for int64"),
        ({"publish": 1}, "publish: expected a boolean, got integer"),
        ({"subscriptions": "linux"}, "subscriptions: expected an array, got string"),
        ({"subscriptions": ["a", 1]}, "subscriptions[1]: expected a string, got integer"),
        ({"metadata": {"labels": {"a": 1}}}, "metadata.labels.a: expected a string, got integer"),
        ({"metadata": []}, "metadata: expected an object, got array"),
        ({"proxy_requests": {"splay_coverage": "90"}}, "proxy_requests.splay_coverage: expected an integer, got string"),
        ({"check_hooks": [{"0": "a"}]}, "check_hooks[0].0: expected an array, got string"),
        ({"check_hooks": [{"0": ["a"], "1": ["b"]}]}, "check_hooks[0]: expected an object with exactly one key, got 2 keys"),
        ({"secrets": [{"name": 5}]}, "secrets[0].name: expected a string, got integer"),
    ],
)
def test_wrong_types_name_the_field(data: dict[str, Any], message: str) -> None:
    with pytest.raises(WireTypeError) as info:
        CheckConfig.from_wire(data)
    assert info.value.reason == message


def test_not_an_object() -> None:
    with pytest.raises(WireTypeError) as info:
        CheckConfig.from_wire([1, 2])
    assert str(info.value) == "expected an object, got array"


def test_integral_float_is_accepted_for_int() -> None:
    assert check(interval=60.0).interval == 60


def test_check_hooks_structured_form_is_read() -> None:
    c = check(check_hooks=[{"type": "critical", "hooks": ["h"]}])
    assert c.to_wire()["check_hooks"] == [{"critical": ["h"]}]


# --- validation rules, one test each -------------------------------------------------------

def test_name_required() -> None:
    assert reason(check(metadata={"namespace": "default"})) == "metadata.name: must not be empty"


def test_name_regex() -> None:
    assert reason(check(metadata={"name": "a b", "namespace": "default"})) == (
        "metadata.name: cannot contain spaces or special characters"
    )


def test_namespace_required() -> None:
    assert reason(check(metadata={"name": "cpu"})) == "metadata.namespace: must not be empty"


def test_interval_or_cron_required() -> None:
    assert reason(check(interval=0)) == "interval: must be greater than 0 when cron is not set"


def test_interval_and_cron_exclusive() -> None:
    assert reason(check(cron="@daily")) == "cron: must only specify either an interval or a cron schedule"


def test_cron_must_parse() -> None:
    assert reason(check(interval=0, cron="61 * * * *")).startswith("cron: invalid cron schedule: minute:")


@pytest.mark.parametrize("cron", ["*/5 * * * *", "@daily", "@every 1h30m", "CRON_TZ=Europe/Paris 0 9 * * MON-FRI",
                                  "TZ=UTC 0 0 1 jan *", "0 0 ? * *"])
def test_valid_crons(cron: str) -> None:
    check(interval=0, cron=cron).validate()


def test_ttl_must_exceed_interval() -> None:
    assert reason(check(ttl=60)) == "ttl: must be greater than interval"


def test_ttl_below_five_is_fine_for_a_check_config() -> None:
    check(interval=1, ttl=3).validate()


def test_flap_thresholds() -> None:
    assert reason(check(low_flap_threshold=50, high_flap_threshold=40)) == (
        "low_flap_threshold: must be lower than high_flap_threshold"
    )
    check(low_flap_threshold=50, high_flap_threshold=0).validate()


def test_empty_subscription() -> None:
    assert reason(check(subscriptions=["linux", ""])) == "subscriptions[1]: must not be an empty string"


def test_runtime_asset_regex() -> None:
    assert reason(check(runtime_assets=["bad asset"])) == (
        "runtime_assets[0]: cannot contain spaces or special characters"
    )


def test_proxy_entity_name_regex() -> None:
    assert reason(check(proxy_entity_name="a b")) == "proxy_entity_name: cannot contain spaces or special characters"


def test_env_vars_shape() -> None:
    for bad in ("A", "=1", "A="):
        assert reason(check(env_vars=[bad])).startswith("env_vars[0]: ")


def test_check_hook_type() -> None:
    assert reason(check(check_hooks=[{"256": ["a"]}])).startswith("check_hooks[0]: invalid hook type '256'")
    for ok in ("0", "255", "ok", "warning", "critical", "unknown", "non-zero"):
        check(check_hooks=[{ok: ["a"]}]).validate()


def test_output_metric_format() -> None:
    assert reason(check(output_metric_format="json")).startswith("output_metric_format: invalid format 'json'")
    check(output_metric_format="prometheus_text").validate()


def test_secrets_need_both_fields() -> None:
    assert reason(check(secrets=[{"name": "A"}])) == "secrets[0].secret: must not be empty"


def test_pipeline_ref_name() -> None:
    assert reason(check(pipelines=[{"name": "bad name"}])) == (
        "pipelines[0].name: cannot contain spaces or special characters"
    )


def test_splay_coverage_range() -> None:
    assert reason(check(proxy_requests={"splay_coverage": 101})) == (
        "proxy_requests.splay_coverage: must be between 0 and 100"
    )


def test_splay_needs_coverage() -> None:
    assert reason(check(proxy_requests={"splay": True, "splay_coverage": 0})) == (
        "proxy_requests.splay_coverage: must be greater than 0 when splay is true"
    )


def test_max_output_size_non_negative() -> None:
    assert reason(check(max_output_size=-1)) == "max_output_size: must be greater than or equal to 0"


def test_subdues_times() -> None:
    assert reason(check(subdues=[{"begin": "yesterday", "end": "2024-01-01T00:00:00Z"}])) == (
        "subdues[0].begin: must be an RFC 3339 time"
    )
    assert reason(check(subdues=[{"begin": "2024-01-01T00:00:00Z", "end": "2024-01-01T01:00:00Z",
                                  "repeat": ["hourly"]}])) == "subdues[0].repeat[0]: invalid repeat 'hourly'"


def test_fields() -> None:
    c = CheckConfig.from_wire(FULL)
    fields = check_fields(c)
    assert fields["check.name"] == "cpu"
    assert fields["check.namespace"] == "default"
    assert fields["check.subscriptions"] == "linux,entity:web01"
    assert fields["check.handlers"] == "slack,email"
    assert fields["check.publish"] == "true"
    assert fields["check.round_robin"] == "false"
    assert fields["check.runtime_assets"] == "sensu/monitoring-plugins,ruby"
    assert fields["check.pipelines"] == "core/v2.Pipeline(Name=p1)"
    assert fields["check.labels.a"] == "b"
