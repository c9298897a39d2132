"""core.logging: Sensu level names, JSON lines with extra fields, flush on stop."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from core.logging import configure_logging, level_from_sensu, stop_logging


@pytest.fixture
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    level = root.level
    try:
        yield
    finally:
        stop_logging()
        root.setLevel(level)


def test_level_mapping() -> None:
    assert level_from_sensu("panic") == level_from_sensu("fatal") == logging.CRITICAL
    assert level_from_sensu("warn") == level_from_sensu("warning") == logging.WARNING
    assert level_from_sensu("trace") == logging.DEBUG
    with pytest.raises(ValueError):
        level_from_sensu("loud")


def test_json_lines_with_extra_fields(restore_root: None) -> None:
    out = io.StringIO()
    configure_logging("info", stream=out)
    log = logging.getLogger("backend.eventd.merge")
    log.debug("hidden")
    log.warning("event rejected: %s", "bad status", extra={"entity": "web-01", "check": "disk",
                                                            "namespace": "default"})
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        log.exception("handler failed", extra={"component": "pipelined"})
    stop_logging()
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(lines) == 2
    first, second = lines
    assert first["level"] == "warning" and first["msg"] == "event rejected: bad status"
    assert first["component"] == "eventd"
    assert (first["entity"], first["check"], first["namespace"]) == ("web-01", "disk", "default")
    assert "time" in first
    assert second["level"] == "error" and second["component"] == "pipelined"
    assert second["error"] == "RuntimeError: boom" and "Traceback" in second["traceback"]


def test_text_output(restore_root: None) -> None:
    out = io.StringIO()
    configure_logging("debug", json_output=False, stream=out)
    logging.getLogger("cluster.store").info("leader elected", extra={"node": "backend-0"})
    stop_logging()
    text = out.getvalue()
    assert " info [store] leader elected node=\"backend-0\"" in text
