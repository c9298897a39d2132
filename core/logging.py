"""Process-wide logging: Sensu's level names, JSON lines on stderr, never blocking the loop.

Why a queue: a log call from a trio task must not wait for the terminal or a
full pipe, so records go into an in-memory queue (``QueueHandler``) and one
listener thread writes them (``QueueListener``), as patroni's ``log.py`` does.

Why JSON: Sensu's backend logs logrus JSON (``{"component", "level", "msg",
"time", ...fields}``) and operators' log pipelines parse it. Context travels in
``extra=`` (``entity``, ``check``, ``namespace``, ``node``, ``peer``, ...) and
appears as top-level fields. Never pass secrets.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import logging.handlers
import queue
import sys
import threading
from typing import IO, Any

__all__ = ["SENSU_LEVELS", "configure_logging", "level_from_sensu", "stop_logging"]

SENSU_LEVELS: dict[str, int] = {
    "panic": logging.CRITICAL,
    "fatal": logging.CRITICAL,
    "error": logging.ERROR,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
    "trace": logging.DEBUG,
}

# logrus level names, as they appear in Sensu's JSON output.
_LOGRUS_NAMES = {
    logging.CRITICAL: "fatal",
    logging.ERROR: "error",
    logging.WARNING: "warning",
    logging.INFO: "info",
    logging.DEBUG: "debug",
}

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "taskName", "error_text",
}

_lock = threading.Lock()
_listener: logging.handlers.QueueListener | None = None
_handler: logging.Handler | None = None


def level_from_sensu(level: str) -> int:
    """Map a Sensu/logrus level name to a ``logging`` level; raises ``ValueError``."""
    try:
        return SENSU_LEVELS[level.strip().lower()]
    except KeyError:
        raise ValueError(f"unknown log level {level!r} (one of {', '.join(SENSU_LEVELS)})") from None


def _component(record: logging.LogRecord) -> str:
    explicit = getattr(record, "component", None)
    if isinstance(explicit, str) and explicit:
        return explicit
    parts = record.name.split(".")
    # backend.eventd.merge -> eventd; cluster.store -> store; api.routes.events -> routes
    return parts[1] if len(parts) > 1 and parts[0] in ("backend", "cluster", "api", "agent") else parts[0]


def _timestamp(created: float, millis: bool) -> str:
    moment = _dt.datetime.fromtimestamp(created).astimezone()
    text = moment.isoformat(timespec="milliseconds" if millis else "seconds")
    return text.replace("+00:00", "Z")


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS and k != "component"}


class JSONFormatter(logging.Formatter):
    """One JSON object per line: ``level``, ``time``, ``msg``, ``component``, then extra fields."""

    def __init__(self, *, millisecond_timestamps: bool = False) -> None:
        super().__init__()
        self._millis = millisecond_timestamps

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "component": _component(record),
            "level": _LOGRUS_NAMES.get(record.levelno, record.levelname.lower()),
            "msg": record.getMessage(),
            "time": _timestamp(record.created, self._millis),
        }
        for key, value in _extras(record).items():
            doc.setdefault(key, value)
        error_text = getattr(record, "error_text", None)
        if error_text:
            doc["error"] = error_text
        if record.exc_text:
            doc["traceback"] = record.exc_text
        return json.dumps(doc, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """Human-readable: ``time level [component] msg key=value ...``."""

    def __init__(self, *, millisecond_timestamps: bool = False) -> None:
        super().__init__()
        self._millis = millisecond_timestamps

    def format(self, record: logging.LogRecord) -> str:
        level = _LOGRUS_NAMES.get(record.levelno, record.levelname.lower())
        fields = " ".join(f"{k}={json.dumps(v, default=str)}" for k, v in _extras(record).items())
        error_text = getattr(record, "error_text", None)
        line = f"{_timestamp(record.created, self._millis)} {level} [{_component(record)}] {record.getMessage()}"
        if fields:
            line += " " + fields
        if error_text:
            line += f" error={json.dumps(error_text)}"
        if record.exc_text:
            line += "\n" + record.exc_text
        return line


class _QueueHandler(logging.handlers.QueueHandler):
    """Freezes a record before queueing it, keeping ``extra`` fields structured.

    The stock ``prepare`` formats the message with a default formatter, folding
    the traceback into ``msg``; we render the message and traceback separately
    and drop ``exc_info`` so no frames stay alive in the queue.
    """

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        frozen = logging.makeLogRecord(vars(record))
        frozen.msg = record.getMessage()
        frozen.args = None
        if record.exc_info:
            exc = record.exc_info[1]
            frozen.error_text = f"{type(exc).__name__}: {exc}" if exc is not None else ""
            frozen.exc_text = record.exc_text or logging.Formatter().formatException(record.exc_info)
        frozen.exc_info = None
        return frozen


def configure_logging(
    level: str,
    *,
    json_output: bool = True,
    millisecond_timestamps: bool = False,
    stream: IO[str] | None = None,
) -> None:
    """Route all logging through a queue to ``stream`` (stderr) at Sensu ``level``.

    Replaces any configuration made by an earlier call. Raises ``ValueError``
    for an unknown level. Call :func:`stop_logging` before exit to flush.
    """
    global _listener, _handler
    numeric = level_from_sensu(level)
    stop_logging()
    formatter: logging.Formatter = (
        JSONFormatter(millisecond_timestamps=millisecond_timestamps)
        if json_output
        else TextFormatter(millisecond_timestamps=millisecond_timestamps)
    )
    sink = logging.StreamHandler(stream if stream is not None else sys.stderr)
    sink.setFormatter(formatter)
    q: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    handler = _QueueHandler(q)
    listener = logging.handlers.QueueListener(q, sink, respect_handler_level=False)
    root = logging.getLogger()
    with _lock:
        root.addHandler(handler)
        root.setLevel(numeric)
        listener.start()
        _listener, _handler = listener, handler


def stop_logging() -> None:
    """Flush queued records and detach the handler; safe to call more than once."""
    global _listener, _handler
    with _lock:
        listener, handler = _listener, _handler
        _listener = _handler = None
    if handler is not None:
        logging.getLogger().removeHandler(handler)
    if listener is not None:
        listener.stop()
        for h in listener.handlers:
            h.flush()
