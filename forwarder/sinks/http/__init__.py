"""The HTTP sink: batched, compressed, retried, with adaptive concurrency."""

from __future__ import annotations

from forwarder.sinks.http.sink import HttpSink

__all__ = ["HttpSink"]
