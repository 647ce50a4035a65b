"""Secrets never reach a log line: known values, URL passwords, key=value pairs, token shapes."""

from __future__ import annotations

import json
import logging

import pytest
import structlog

from bot.logs import configure_logging, get_logger, trace_context
from storage.redaction import MASK, Redactor


@pytest.mark.parametrize(
    ("raw", "leaked"),
    [
        ("connecting to postgresql://bot:s3cretpw@db:5432/x", "s3cretpw"),
        ("redis://:r3dispass@cache:6379", "r3dispass"),
        ("password=hunter2 next", "hunter2"),
        ('{"api_key": "abc123xyz"}', "abc123xyz"),
        ("Authorization: Bearer eyJhbGciOi.payloadpayload.signaturesig", "payloadpayload"),
        ("token: t-g1044ghJ7TXNEW3ABCDEFGHIJKLMNOPQRSTUV", "g1044ghJ7TXNEW3"),
        ("key sk-ant-api03-AAAAAAAAAAAAAAAAAAAA used", "api03-AAAAAAAA"),
        ("aws AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
        ("X-Lark-Secret=whatever-value", "whatever-value"),
        ("curl -H 'Bearer lko_ab12cd34_0123456789abcdefghij0123456789ab'", "0123456789abcdef"),
    ],
)
def test_credential_shapes_are_masked(raw: str, leaked: str) -> None:
    cleaned = Redactor().text(raw)
    assert leaked not in cleaned
    assert MASK in cleaned


def test_known_values_are_masked_anywhere() -> None:
    redactor = Redactor(known=["custom-secret-value"])
    assert redactor.text("x custom-secret-value y") == f"x {MASK} y"


def test_short_known_values_are_ignored_to_avoid_masking_everything() -> None:
    redactor = Redactor(known=["ab"])
    assert redactor.text("about tab") == "about tab"


def test_ordinary_text_is_left_alone() -> None:
    text = "disk /var at 95% on db-1; 3 alerts folded; tokens used: 1200"
    assert Redactor().text(text) == text


def test_nested_data_masks_values_under_secret_keys() -> None:
    data = {
        "headers": {"Authorization": "Basic dXNlcjpwYXNz", "X-Id": "7"},
        "items": ["password=a1b2c3", 5],
    }
    cleaned = Redactor().data(data)
    assert cleaned["headers"] == {"Authorization": MASK, "X-Id": "7"}
    assert cleaned["items"] == [f"password={MASK}", 5]


def test_log_lines_are_json_with_trace_id_and_no_secrets(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("info", "json", secrets=["configured-app-secret"])
    try:
        log = get_logger("test")
        with trace_context("trace-abc"):
            log.info("lark.token", secret_seen="configured-app-secret", password="pw12345")
            logging.getLogger("stdlib").warning("dsn postgresql://u:pw9999@h/db")
        log.info("after")
        lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    finally:
        structlog.reset_defaults()
        logging.getLogger().handlers.clear()
    first, second, third = lines
    assert first["trace_id"] == "trace-abc"
    assert first["secret_seen"] == MASK
    assert first["password"] == MASK
    assert second["trace_id"] == "trace-abc"
    assert "pw9999" not in second["event"]
    assert "trace_id" not in third


def test_console_tracebacks_print_no_locals(capsys: pytest.CaptureFixture[str]) -> None:
    """The console renderer runs after the redactor: a traceback that printed its frames'
    locals would show a token held in a variable as it is."""
    configure_logging("info", "console")
    try:
        log = get_logger("test")

        def fail() -> None:
            token = "local-token-0123456789"
            raise RuntimeError(f"failed after {len(token)} characters")

        try:
            fail()
        except RuntimeError:
            log.exception("handler.failed")
        err = capsys.readouterr().err
    finally:
        structlog.reset_defaults()
        logging.getLogger().handlers.clear()
    assert "handler.failed" in err
    assert "RuntimeError" in err
    assert "local-token-0123456789" not in err
