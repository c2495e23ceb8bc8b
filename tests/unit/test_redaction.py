"""Secrets are replaced by value and by shape wherever the daemon shows text: log lines
(its own and the libraries'), /readyz, dead letters and config errors."""

from __future__ import annotations

import io
import logging
from contextlib import redirect_stderr
from pathlib import Path

import orjson
import pytest
import structlog

from forwarder.clock import ManualClock
from forwarder.config.loader import ConfigError, parse_config
from forwarder.deadletter.file import FileDeadLetterQueue
from forwarder.events import DeadLetter
from forwarder.observability.logging import RepeatLimiter, configure_logging, get_logger
from forwarder.observability.metrics import Metrics
from forwarder.observability.redact import REDACTED, RUNTIME_SECRETS_KEPT, Redactor

TOKEN = "cal_pat_9f8e7d6c5b4a39281706f5e4d3c2b1a0"
JWT = (
    "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJpc3MiOiJzYUBwLmlhbSIsInN1YiI6ImFkbWluIn0."
    "c2lnbmF0dXJlLWJ5dGVz"
)


def test_known_secrets_are_replaced_as_is_json_escaped_and_url_encoded() -> None:
    secret = 'p@ss/w"rd+with=odd chars'
    redactor = Redactor([TOKEN, secret])
    text = (
        f"401 for {TOKEN}; body {orjson.dumps({'echo': secret}).decode()}; "
        f"url ?q=1&x={'p%40ss%2Fw%22rd%2Bwith%3Dodd%20chars'}"
    )
    redacted = redactor.redact(text)
    assert TOKEN not in redacted and "p@ss" not in redacted and "p%40ss" not in redacted
    assert redacted.count(REDACTED) == 3


def test_credential_shapes_are_replaced_even_when_unknown() -> None:
    redactor = Redactor()
    text = (
        f"assertion {JWT} token ya29.a0AfH6SMBx-secret_part Authorization: Bearer abc.def "
        "form grant_type=x&assertion=abcdef&client_secret=s3cr3t "
        '"private_key": "-----BEGIN PRIVATE KEY-----\\nMIIEv\\n-----END PRIVATE KEY-----\\n"'
    )
    redacted = redactor.redact(text)
    for leaked in ("eyJhbGci", "ya29.a0", "abc.def", "abcdef", "s3cr3t", "MIIEv"):
        assert leaked not in redacted, leaked
    assert "grant_type=x" in redacted and "Bearer [REDACTED]" in redacted


def test_short_values_are_not_treated_as_secrets() -> None:
    # A 3-character "secret" would blank out ordinary words and numbers.
    redactor = Redactor(["abc"])
    assert redactor.redact("abc 123") == "abc 123"
    assert len(redactor) == 0


def test_runtime_tokens_are_bounded_newest_kept() -> None:
    redactor = Redactor()
    tokens = [f"runtime-token-{number:04d}" for number in range(RUNTIME_SECRETS_KEPT * 4)]
    for token in tokens:
        redactor.add(token, runtime=True)
    assert redactor.redact(tokens[-1]) == REDACTED
    assert redactor.redact(tokens[0]) == tokens[0]  # long expired, forgotten
    assert len(redactor) <= RUNTIME_SECRETS_KEPT * 3


def test_nested_values_are_redacted_without_touching_numbers() -> None:
    redactor = Redactor([TOKEN])
    value = {"error": f"echo {TOKEN}", "items": [TOKEN, 3, None], TOKEN: True}
    assert redactor.redact_value(value) == {
        "error": f"echo {REDACTED}",
        "items": [REDACTED, 3, None],
        REDACTED: True,
    }


def _log_lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in stream.getvalue().splitlines() if line]


def test_library_loggers_share_the_json_format_and_the_redaction() -> None:
    stream = io.StringIO()
    library = logging.getLogger("aiokafka.conn")
    try:
        with redirect_stderr(stream):
            redactor = configure_logging("info", "json", Redactor([TOKEN]))
            library.warning("Unable connect to node with id %s: %s", 1, f"refused {TOKEN}")
            get_logger("forwarder.test").warning("own_line", error=f"echo {TOKEN}")
            try:
                raise ValueError(f"boom {JWT}")
            except ValueError:
                logging.getLogger("asyncio").exception("Task exception was never retrieved")
    finally:
        structlog.reset_defaults()
        for handler in list(logging.getLogger().handlers):
            logging.getLogger().removeHandler(handler)
    assert redactor.redact(TOKEN) == REDACTED
    text = stream.getvalue()
    assert TOKEN not in text and "eyJhbGci" not in text
    lines = _log_lines(stream)  # every line is one JSON object
    assert [line["logger"] for line in lines] == ["aiokafka.conn", "forwarder.test", "asyncio"]
    assert lines[0]["level"] == "warning" and "timestamp" in lines[0]
    assert lines[0]["event"] == f"Unable connect to node with id 1: refused {REDACTED}"
    assert lines[2]["level"] == "error" and "ValueError: boom" in str(lines[2]["exception"])


def test_a_library_repeating_itself_is_shown_once_per_interval_with_a_count() -> None:
    now = [0.0]
    limiter = RepeatLimiter(60.0, now=lambda: now[0])

    def record(message: str) -> logging.LogRecord:
        return logging.LogRecord("aiokafka", logging.WARNING, "x", 1, message, (), None)

    shown = [limiter.filter(record("Unable connect to %s")) for _ in range(50)]
    assert shown == [True] + [False] * 49
    assert limiter.filter(record("another message"))
    now[0] = 61.0
    again = record("Unable connect to %s")
    assert limiter.filter(again) and again.repeated == 49  # type: ignore[attr-defined]


async def test_dead_letters_are_redacted(tmp_path: Path) -> None:
    redactor = Redactor([TOKEN])
    queue = FileDeadLetterQueue(tmp_path, Metrics(), ManualClock(0.0), redactor)
    await queue.write(
        [
            DeadLetter(
                "sink",
                "http_400",
                "cal",
                {"uri": "u1", "note": f"echo {TOKEN}"},
                sink="hec",
                detail=f"receiver said: bad token {TOKEN} / {JWT}",
            )
        ]
    )
    text = queue.path.read_text()
    assert TOKEN not in text and "eyJhbGci" not in text
    letter = orjson.loads(text)
    assert letter["reason"] == "http_400" and letter["payload"]["uri"] == "u1"
    assert letter["detail"] == f"receiver said: bad token {REDACTED} / {REDACTED}"


@pytest.mark.parametrize("value", ["12345678", "987654321.5", "[123456, 7890]"])
def test_config_errors_never_echo_a_secret_value(tmp_path: Path, value: str) -> None:
    # YAML reads these as a number or a list: the error names the key, not the value.
    text = f"""
state_dir: {tmp_path}
sources:
  cal:
    type: calendly
    organization: https://api.calendly.com/organizations/X
    token: {value}
sinks:
  out: {{type: file, path: {tmp_path}/out.ndjson}}
"""
    with pytest.raises(ConfigError) as caught:
        parse_config(text, {})
    message = str(caught.value)
    assert message.startswith("sources.cal.token: ")
    assert not any(digits in message for digits in ("123456", "7890", "98765"))


def test_known_secrets_are_taken_out_of_raw_answers_shapes_left_to_redact() -> None:
    redactor = Redactor([TOKEN, 'odd"pass/word'])
    answer = (
        b'{"error":"bad token ' + TOKEN.encode() + b'","echo":"odd\\"pass\\/word",'
        b'"other":"' + JWT.encode() + b'"}'
    )
    cleaned = redactor.redact_known(answer)
    assert TOKEN.encode() not in cleaned and b"odd" not in cleaned
    assert cleaned.count(b"[REDACTED]") == 2
    assert JWT.encode() in cleaned  # not a known secret: its shape is redact()'s job


async def test_a_source_error_answer_cut_for_an_excerpt_shows_no_part_of_the_token() -> None:
    # The token straddles the 300-character excerpt: redacting after the cut would leave
    # its first half in the error (and so in /readyz and the log).
    from aiohttp import web

    from forwarder.backoff import Backoff
    from forwarder.sources.calendly import _error_text
    from forwarder.sources.http import MAX_ERROR_TEXT, ApiClient

    body = {"title": "Unauthenticated", "message": "x" * (MAX_ERROR_TEXT - 40) + TOKEN * 3}

    async def refuse(_request: web.Request) -> web.Response:
        return web.json_response(body, status=401)

    app = web.Application()
    app.router.add_get("/activity_log_entries", refuse)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    client = ApiClient(
        "cal",
        Metrics(),
        ManualClock(0.0),
        timeout=5,
        max_attempts=1,
        backoff=Backoff(),
        redactor=Redactor([TOKEN]),
    )
    try:
        response = await client.request("GET", f"http://127.0.0.1:{port}/activity_log_entries")
    finally:
        await client.aclose()
        await runner.cleanup()
    assert response.status == 401
    text = _error_text(response)
    assert text.startswith("Unauthenticated: xxx") and "[REDACTED]" in text
    assert TOKEN[:8] not in text
