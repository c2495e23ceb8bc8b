"""The Kafka sink: one record per event, keyed by its deterministic id, acknowledged by
the broker (``acks=all`` by default) before the pipeline counts it as delivered."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    InvalidTopicError,
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    TopicAuthorizationFailedError,
)

from forwarder.config.loader import read_secret
from forwarder.config.model import KafkaSinkConfig
from forwarder.events import Event
from forwarder.observability.logging import get_logger
from forwarder.sinks.base import SendResult
from forwarder.sinks.tls import client_context

# Errors that sending again can never fix, as dead-letter reason codes.
PERMANENT_ERRORS: dict[type[KafkaError], str] = {
    MessageSizeTooLargeError: "message_too_large",
    RecordListTooLargeError: "message_too_large",
    TopicAuthorizationFailedError: "topic_authorization_failed",
    InvalidTopicError: "invalid_topic",
}
CONTENT_TYPE = b"application/json"


def producer_options(sink_id: str, config: KafkaSinkConfig) -> dict[str, Any]:
    """aiokafka producer settings; reads the TLS and SASL secrets (ConfigError names the key)."""
    key = f"sinks.{sink_id}"
    options: dict[str, Any] = {
        "bootstrap_servers": config.bootstrap_servers,
        "client_id": config.client_id,
        # aiokafka defaults to acks=1: a leader crash would lose acknowledged records.
        "acks": config.acks,
        "enable_idempotence": config.enable_idempotence,
        "compression_type": None if config.compression == "none" else config.compression,
        "linger_ms": int(config.linger * 1000),
        "max_batch_size": config.max_batch_bytes,
        "max_request_size": config.max_request_bytes,
        "request_timeout_ms": int(config.request_timeout * 1000),
        "security_protocol": config.security_protocol,
    }
    if config.security_protocol in ("SSL", "SASL_SSL"):
        from forwarder.config.model import TlsConfig

        options["ssl_context"] = client_context(config.tls or TlsConfig(), f"{key}.tls")
    if config.sasl is not None:
        sasl = config.sasl
        options["sasl_mechanism"] = sasl.mechanism
        options["sasl_plain_username"] = sasl.username
        options["sasl_plain_password"] = read_secret(
            sasl.password, sasl.password_file, f"{key}.sasl.password"
        )
    return options


class KafkaSink:
    """Sends a batch as pipelined produce requests and waits for every acknowledgement.

    ``await producer.send`` queues a record (waiting while aiokafka's buffer is full) and
    returns a future that resolves when the broker acknowledged it, so a batch is one
    burst of requests, and a slow broker slows the pipeline down. Records the broker
    refuses for good (too large, not authorized) are reported as rejected; any other
    failure asks the pipeline to retry the records not yet acknowledged. If the broker is
    unreachable at start, the producer is (re)created on the next send.
    """

    def __init__(self, sink_id: str, config: KafkaSinkConfig) -> None:
        self.id = sink_id
        self.format = config.format
        self.reads_documents = False
        self._config = config
        self._options = producer_options(sink_id, config)
        self._producer: AIOKafkaProducer | None = None
        self._topics: dict[tuple[str, str], str] = {}
        self._headers: dict[tuple[str, str], list[tuple[str, bytes]]] = {}
        self._log = get_logger("forwarder.sink.kafka", sink=sink_id)

    async def start(self) -> None:
        try:
            await self._connect()
        except KafkaError as error:
            self._log.warning("kafka_unavailable_at_start", error=str(error))

    async def _connect(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = AIOKafkaProducer(**self._options)
            try:
                await producer.start()
            except BaseException:
                await producer.stop()
                raise
            self._producer = producer
        return self._producer

    def _route(self, event: Event) -> tuple[str, list[tuple[str, bytes]]]:
        route = (event.provider, event.source)
        topic = self._topics.get(route)
        if topic is None:
            topic = self._topics[route] = self._config.topic.format(
                provider=event.provider, source=event.source
            )
            self._headers[route] = [
                ("source", event.source.encode()),
                ("provider", event.provider.encode()),
                ("format", self.format.encode()),
                ("content-type", CONTENT_TYPE),
                *((name, value.encode()) for name, value in self._config.headers.items()),
            ]
        return topic, self._headers[route]

    async def send(self, events: Sequence[Event]) -> SendResult:
        try:
            producer = await self._connect()
        except KafkaError as error:
            return SendResult.retry_later(f"cannot connect to Kafka: {error}")
        fmt = self.format
        rejected: dict[int, str] = {}
        pending: list[tuple[int, asyncio.Future[Any]]] = []
        failure: str | None = None
        for index, event in enumerate(events):
            topic, headers = self._route(event)
            try:
                future = await producer.send(
                    topic, value=event.encoded(fmt), key=event.id.encode(), headers=headers
                )
            except KafkaError as error:
                reason = _permanent_reason(error)
                if reason is None:
                    failure = f"{type(error).__name__}: {error}"
                    break
                rejected[index] = reason
                continue
            pending.append((index, future))
        delivered: set[int] = set()
        if pending:
            outcomes = await asyncio.gather(
                *(future for _, future in pending), return_exceptions=True
            )
            for (index, _), outcome in zip(pending, outcomes, strict=True):
                if not isinstance(outcome, BaseException):
                    delivered.add(index)
                    continue
                reason = _permanent_reason(outcome)
                if reason is not None:
                    rejected[index] = reason
                elif failure is None:
                    failure = f"{type(outcome).__name__}: {outcome}"
        if failure is not None:
            return SendResult(retry=failure, rejected=rejected, delivered=frozenset(delivered))
        return SendResult(rejected=rejected)

    async def aclose(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await producer.stop()


def _permanent_reason(error: BaseException) -> str | None:
    for kind, reason in PERMANENT_ERRORS.items():
        if isinstance(error, kind):
            return reason
    return None
