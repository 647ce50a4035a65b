"""Structured logs: JSON lines (console rendering on a TTY), trace ids, secrets redacted.

Usage::

    configure_logging(settings)
    with trace_context() as trace_id:   # one per inbound event or request
        log.info("event.received", event_id="...")
"""

from __future__ import annotations

import hashlib
import logging
import sys
import uuid
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any, Literal

import structlog

from storage.redaction import Redactor

_redactor = Redactor()

LogFormat = Literal["auto", "json", "console"]


def redactor() -> Redactor:
    """The process-wide redactor that logs go through (add secrets to it as they appear)."""
    return _redactor


def _redact(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in list(event_dict.items()):
        if isinstance(value, str | dict | list | tuple):
            event_dict[key] = _redactor.data({key: value})[key]
    return event_dict


def configure_logging(
    level: str = "info",
    fmt: LogFormat = "auto",
    secrets: list[str] | None = None,
) -> None:
    """Route structlog and the standard library through one redacting pipeline."""
    _redactor.add(secrets or [])
    console = fmt == "console" or (fmt == "auto" and sys.stderr.isatty())
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=True)
        if console
        else structlog.processors.JSONRenderer(ensure_ascii=False)
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.processors.format_exc_info,
            _redact,
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # uvicorn's access log duplicates our own request log; its error log is useful
    logging.getLogger("uvicorn.access").disabled = True
    for noisy in ("asyncio", "alembic.runtime.migration"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def new_trace_id() -> str:
    """A new trace id: 32 hex digits, the OpenTelemetry trace id of its trace as it is."""
    return uuid.uuid4().hex


def event_trace_id(event_id: str) -> str:
    """The trace id of an inbound event (or delivery): the same wherever and however often the
    event is handled, so its receipt, its commit and its dispatch share one trace."""
    return hashlib.sha256(f"larkops:{event_id}".encode()).hexdigest()[:32]


def current_trace_id() -> str | None:
    """The trace id bound to the log lines being written now, if any."""
    found = structlog.contextvars.get_contextvars().get("trace_id")
    return str(found) if found else None


@contextmanager
def trace_context(trace_id: str | None = None, **fields: Any) -> Iterator[str]:
    """Bind a trace id (and extra fields) to every log line written inside the block."""
    trace = trace_id or new_trace_id()
    tokens = structlog.contextvars.bind_contextvars(trace_id=trace, **fields)
    try:
        yield trace
    finally:
        structlog.contextvars.reset_contextvars(**tokens)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger
