"""agent.tokens: the Go-template subset of check token substitution."""

from __future__ import annotations

from typing import Any

import pytest

from core.tokens import TokenError, substitute, substitute_all

DATA: dict[str, Any] = {
    "name": "web-01",
    "namespace": "default",
    "labels": {"disk_warning": "80", "with-dash": "d", "empty": ""},
    "annotations": {},
    "system": {"hostname": "web-01.example", "arch": "amd64"},
    "subscriptions": ["linux", "web"],
    "deregister": False,
    "last_seen": 1700000000,
}


@pytest.mark.parametrize(("text", "expected"), [
    ("check-disk -w {{ .labels.disk_warning }}", "check-disk -w 80"),
    ("{{.name}}", "web-01"),
    ("{{ .system.hostname }}:{{ .namespace }}", "web-01.example:default"),
    ('{{ .labels.disk_critical | default "90" }}', "90"),
    ('{{ .labels.disk_warning | default "90" }}', "80"),
    ('{{ .labels.empty | default "e" }}', "e"),
    ("{{ .labels.missing | default 5 }}", "5"),
    ("{{ .labels.missing | default `raw \"q\"` }}", 'raw "q"'),
    ('{{ index .labels "with-dash" }}', "d"),
    ("{{- .name -}}", "web-01"),
    ("{{ .subscriptions }}", "[linux web]"),
    ("{{ .deregister }}", "false"),
    ("{{ .last_seen }}", "1700000000"),
    ("no tokens at all", "no tokens at all"),
])
def test_substitution(text: str, expected: str) -> None:
    assert substitute(text, DATA) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("{{ .labels.missing }}", "unmatched token"),
    ("{{ .nope.deeper }}", "unmatched token"),
    ("{{ .name", "unclosed"),
    ("{{ .name | upper }}", "only '| default <value>'"),
    ("{{ printf \"%s\" .name }}", "unsupported expression"),
    ("{{ }}", "empty command"),
])
def test_errors(text: str, message: str) -> None:
    with pytest.raises(TokenError, match=message):
        substitute(text, DATA)


def test_substitute_all_walks_every_string() -> None:
    config = {"command": "c {{ .name }}", "env_vars": ["HOST={{ .system.hostname }}"], "interval": 10,
              "metadata": {"labels": {"x": "{{ .labels.disk_warning }}"}}}
    assert substitute_all(config, DATA) == {
        "command": "c web-01", "env_vars": ["HOST=web-01.example"], "interval": 10,
        "metadata": {"labels": {"x": "80"}}}
