"""Secrets never reach logs: the redaction functions and the structlog processor."""

from __future__ import annotations

import io
import json

import pytest
import structlog

from shared.config.redaction import redact_text, redact_url, redact_value
from shared.observability.tracing import bound, configure_logging, stage_span


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mysql+aiomysql://root:pw@h:3306/db", "mysql+aiomysql://root:***@h:3306/db"),
        ("amqp://guest:guest@127.0.0.1:5672//", "amqp://guest:***@127.0.0.1:5672//"),
        ("redis://:secret@cache:6379/0", "redis://:***@cache:6379/0"),
        ("redis://cache:6379/0", "redis://cache:6379/0"),
        ("sqlite+aiosqlite:////tmp/app.db", "sqlite+aiosqlite:////tmp/app.db"),
        ("smtp://user:p%40ss@mail:25", "smtp://user:***@mail:25"),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    """A URL keeps scheme, user and host; only the password is masked."""
    assert redact_url(url) == expected


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("connect failed: mysql+aiomysql://app:hunter2@db/app", "hunter2"),
        ("Driver={FreeTDS};Server=h;UID=u;PWD=hunter2;", "hunter2"),
        ("Driver=x;Password={hun;ter2};Server=y", "hun;ter2"),
        ("two urls amqp://a:one@x and redis://:two@y", "one@"),
    ],
)
def test_redact_text(text: str, secret: str) -> None:
    """Credentials inside free text (error messages, ODBC strings) are masked."""
    assert secret not in redact_text(text)


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("password", "x", "***"),
        ("smtp_password", "x", "***"),
        ("api_key", "x", "***"),
        ("token", "abc", "***"),
        ("password", None, None),
        ("user", "alice", "alice"),
        ("config", {"db_password": "x", "host": "h"}, {"db_password": "***", "host": "h"}),
    ],
)
def test_redact_value_by_key(key: str, value: object, expected: object) -> None:
    """Fields whose name says secret are masked, recursively; others pass through."""
    assert redact_value(key, value) == expected


def test_log_lines_are_json_with_trace_context_and_no_secrets() -> None:
    """A JSON log line carries the bound trace context and masks passwords in any field."""
    stream = io.StringIO()
    configure_logging("json", "INFO", stream)
    try:
        with bound(execution_id="ex-1", event_id="ev-1"):
            structlog.get_logger().info("connecting", url="amqp://u:topsecret@mq//", password="pw123")
        line = json.loads(stream.getvalue().splitlines()[-1])
    finally:
        configure_logging("json", "INFO")
    assert line["execution_id"] == "ex-1"
    assert line["event_id"] == "ev-1"
    assert "topsecret" not in stream.getvalue()
    assert "pw123" not in stream.getvalue()


def test_stage_span_logs_one_canonical_line() -> None:
    """A finished stage logs exactly one stage.finished line with status, rows and duration."""
    with structlog.testing.capture_logs() as logs, stage_span("extract", execution_id="e1", shard="3") as span:
        span.rows_in, span.rows_out = 10, 7
    finished = [entry for entry in logs if entry["event"] == "stage.finished"]
    assert len(finished) == 1
    assert finished[0]["status"] == "succeeded"
    assert (finished[0]["rows_in"], finished[0]["rows_out"]) == (10, 7)
    assert finished[0]["duration_ms"] >= 0


def test_stage_span_records_the_error_of_a_failed_stage() -> None:
    """A stage that raises logs its canonical line as failed, with the error type."""
    with structlog.testing.capture_logs() as logs, pytest.raises(ValueError, match="bad row"), \
            stage_span("merge", execution_id="e2"):
        raise ValueError("bad row")
    finished = [entry for entry in logs if entry["event"] == "stage.finished"]
    assert finished[0]["status"] == "failed"
    assert finished[0]["error_type"] == "ValueError"
