"""Processes for the end-to-end tests: the simulators (``forwarder simulate``) and the
daemon (``forwarder run``), each a real subprocess on 127.0.0.1, stopped by PID."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from forwarder.schema.ids import calendly_event_key, google_activity_event_keys
from forwarder.timeutil import format_rfc3339


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Simulators:
    """``forwarder simulate`` in a subprocess; ``endpoints`` is its startup JSON line."""

    def __init__(self, directory: Path, *args: str) -> None:
        self.directory = directory
        self.process = subprocess.Popen(
            [sys.executable, "-m", "forwarder", "simulate", "--output-dir", str(directory), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        line = self.process.stdout.readline() if self.process.stdout else ""
        if not line:
            raise AssertionError(f"simulators did not start: {self.process.stderr.read()}")
        self.endpoints: dict[str, Any] = json.loads(line)

    def truth(self, provider: str) -> list[dict[str, Any]]:
        """The ground truth of one simulator (``calendly`` or ``google``), oldest first:
        Calendly entries, Google ``{"activity", "visible_at_unix", ...}`` records."""
        records: list[dict[str, Any]] = _get_json(
            self.endpoints[f"{provider}_url"] + "/_sim/truth"
        )["records"]
        return records

    def truth_ids(self) -> set[str]:
        calendly = _get_json(self.endpoints["calendly_url"] + "/_sim/truth")["records"]
        google = _get_json(self.endpoints["google_url"] + "/_sim/truth")["records"]
        ids = {calendly_event_key(entry["uri"]) for entry in calendly}
        for record in google:
            ids.update(google_activity_event_keys(record["activity"]))
        return ids

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def finite_simulators(directory: Path, seed: int, hours: float, rate: float) -> Simulators:
    """Simulators serving a fixed history (``hours`` up to a minute ago, ``rate`` records
    per minute per source, no Google lag): the ground truth does not change while a test
    runs."""
    now = time.time()
    return Simulators(
        directory,
        "--seed", str(seed),
        "--start", format_rfc3339(now - hours * 3600),
        "--end", format_rfc3339(now - 60),
        "--calendly-rate", str(rate), "--google-rate", str(rate),
        "--google-min-lag", "0", "--google-max-lag", "0", "--google-late-fraction", "0",
    )  # fmt: skip


class Daemon:
    """``forwarder run`` in a subprocess, its stderr (JSON logs) in a file."""

    def __init__(self, config: Path, log: Path) -> None:
        self.log = log
        self._log_handle = open(log, "ab")  # noqa: SIM115 - closed in wait()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "forwarder", "run", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=self._log_handle,
        )

    def terminate(self, timeout: float = 60) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def kill(self) -> int:
        os.kill(self.process.pid, signal.SIGKILL)
        return self.wait(10)

    def wait(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout)
        finally:
            self._log_handle.close()

    def log_events(self) -> list[dict[str, Any]]:
        lines = self.log.read_bytes().splitlines()
        return [orjson.loads(line) for line in lines if line.startswith(b"{")]

    def wait_started(self, timeout: float = 30) -> None:
        """Until the daemon logs ``forwarder_started`` (state loaded, pipeline running)."""
        wait_for(
            lambda: any(e.get("event") == "forwarder_started" for e in self.log_events()),
            timeout,
            f"{self.log.name}: forwarder_started",
        )


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def file_documents(path: Path) -> list[dict[str, Any]]:
    """The events of a file sink's output so far (none while it does not exist)."""
    if not path.exists():
        return []
    data = path.read_bytes()
    # Only whole lines: the daemon may be writing the last one (which can end in a "}" of
    # a nested object before it is complete).
    complete = data[: data.rfind(b"\n") + 1]
    return [orjson.loads(line) for line in complete.splitlines() if line]


def file_ids(path: Path) -> list[str]:
    return [document["event"]["id"] for document in file_documents(path)]


def write_config(path: Path, simulators: Simulators, state: Path, **options: Any) -> Path:
    endpoints = simulators.endpoints
    page = options.get("page_size", 50)
    path.write_text(
        f"""
state_dir: {state}
sources:
  calendly:
    type: calendly
    base_url: {endpoints["calendly_url"]}
    organization: {endpoints["organization"]}
    token_file: {endpoints["calendly_token_file"]}
    page_size: {page}
    poll_interval: {options.get("poll_interval", "1s")}
    initial_lookback: 2d
  google_calendar:
    type: google_calendar
    base_url: {endpoints["google_url"]}
    credentials_file: {endpoints["google_key_file"]}
    delegated_admin: {endpoints["delegated_admin"]}
    page_size: {page}
    poll_interval: {options.get("poll_interval", "1s")}
    initial_lookback: 2d
    end_margin: 1s
sinks:
  events:
    type: file
    path: {state}/events.ndjson
metrics:
  listen: 127.0.0.1:{free_port()}
pipeline:
  queue_capacity: {options.get("queue_capacity", 1000)}
  shutdown_grace: 20s
"""
    )
    return path
