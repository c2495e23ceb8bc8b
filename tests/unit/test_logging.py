from __future__ import annotations

import io
from collections.abc import AsyncIterator, Mapping
from contextlib import redirect_stderr
from pathlib import Path
from typing import Any

import orjson
import structlog
from structlog.testing import capture_logs

from forwarder.backoff import Backoff
from forwarder.checkpoint.base import Checkpoint
from forwarder.checkpoint.sqlite import SqliteCheckpointStore
from forwarder.clock import ManualClock
from forwarder.deadletter.file import FileDeadLetterQueue
from forwarder.events import Batch
from forwarder.observability.logging import configure_logging, get_logger
from forwarder.observability.metrics import Metrics
from forwarder.pipeline.acks import OrderedCommitter
from forwarder.pipeline.source_runner import SourceRunner
from forwarder.sources.base import TransientSourceError


def test_secrets_are_redacted_from_json_logs() -> None:
    stream = io.StringIO()
    with redirect_stderr(stream):
        configure_logging("info", "json")
        # PrintLoggerFactory bound sys.stderr at configure time: log through it.
        get_logger("test").info(
            "request",
            token="s3cr3t-token",
            private_key="-----BEGIN PRIVATE KEY-----abc",
            headers_text="Authorization: Bearer ya29.very-secret",
            user="alice@x.com",
        )
    structlog.reset_defaults()
    line = stream.getvalue().strip()
    assert "s3cr3t" not in line and "BEGIN PRIVATE" not in line and "ya29" not in line
    record = orjson.loads(line)
    assert record["token"] == "[REDACTED]"
    assert record["headers_text"] == "Authorization: Bearer [REDACTED]"
    assert record["user"] == "alice@x.com" and record["logger"] == "test"
    assert record["level"] == "info" and record["event"] == "request"


class FlakySource:
    id = "flaky"
    provider = "test"
    poll_interval = 1.0

    def __init__(self, failures: int) -> None:
        self.failures = failures

    def restore(self, checkpoint: Mapping[str, Any] | None) -> None:
        return None

    def checkpoint(self) -> dict[str, Any]:
        return {}

    async def poll(self) -> AsyncIterator[Batch]:
        if self.failures:
            self.failures -= 1
            raise TransientSourceError("HTTP 503: backend error")
        yield Batch(self.id, [], Checkpoint({"ok": True}))

    async def aclose(self) -> None:
        return None


async def test_a_failure_streak_is_logged_once_and_its_end_once(tmp_path: Path) -> None:
    clock = ManualClock(0)
    metrics = Metrics()
    runner = SourceRunner(
        FlakySource(failures=5),
        OrderedCommitter("flaky", SqliteCheckpointStore(tmp_path), metrics, clock),
        [],
        FileDeadLetterQueue(tmp_path, metrics, clock),
        metrics,
        clock,
        Backoff(1, 2),
    )
    with capture_logs() as logs:
        for _ in range(6):
            await runner.poll_once()
    events = [entry["event"] for entry in logs if entry["log_level"] != "debug"]
    assert events == ["source_failing", "source_recovered"]
    failed = metrics.registry.get_sample_value(
        "forwarder_source_failed_polls_total", {"source": "flaky", "error_type": "transient"}
    )
    assert failed == 5


def test_credentials_inside_messages_and_urls_are_redacted() -> None:
    from forwarder.observability.logging import secret_redactor
    from forwarder.observability.redact import Redactor

    redact_secrets = secret_redactor(Redactor())

    event = {
        "event": "request_failed",
        "error": "GET https://x/y?access_token=ya29.abc&maxResults=10 failed",
        "detail": "sent Authorization: Basic dXNlcjpwYXNz and got 401",
        "password_file": "/run/secrets/p",
        "count": 3,
    }
    redacted = redact_secrets(None, "info", dict(event))
    assert redacted["error"] == "GET https://x/y?access_token=[REDACTED]&maxResults=10 failed"
    assert redacted["detail"] == "sent Authorization: Basic [REDACTED] and got 401"
    assert redacted["password_file"] == "[REDACTED]"
    assert redacted["count"] == 3
