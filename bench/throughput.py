"""End-to-end throughput: simulators -> daemon -> file sink, and -> Kafka (a real
Kafka-protocol broker), in events per second and daemon CPU seconds per 100k events.

    .venv/bin/python bench/throughput.py [--days 7] [--rate 5] [--json PATH]

The simulators serve a finite history (``--days`` at ``--rate`` records per minute per
source); the clock starts when the daemon is launched and stops when every event of the
ground truth is in the sink. CPU time is the daemon's own (user + system, from wait4).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "sinks"))

from kafka_harness import Broker, free_port  # noqa: E402

from forwarder.schema.ids import calendly_event_key, google_activity_event_keys  # noqa: E402
from forwarder.timeutil import format_rfc3339  # noqa: E402


def _truth(endpoints: dict[str, Any]) -> set[str]:
    def get(url: str) -> Any:
        with urllib.request.urlopen(url, timeout=300) as response:
            return json.loads(response.read())

    ids = {
        calendly_event_key(e["uri"])
        for e in get(endpoints["calendly_url"] + "/_sim/truth")["records"]
    }
    for record in get(endpoints["google_url"] + "/_sim/truth")["records"]:
        ids.update(google_activity_event_keys(record["activity"]))
    return ids


def _sources(endpoints: dict[str, Any], days: float) -> str:
    e = endpoints
    lookback = f"{days + 1}d"
    return f"""sources:
  calendly: {{type: calendly, base_url: "{e["calendly_url"]}", organization: "{e["organization"]}",
    token_file: "{e["calendly_token_file"]}", page_size: 1000, initial_lookback: {lookback},
    poll_interval: 1s}}
  google_calendar: {{type: google_calendar, base_url: "{e["google_url"]}",
    credentials_file: "{e["google_key_file"]}", delegated_admin: "{e["delegated_admin"]}",
    page_size: 1000, initial_lookback: {lookback}, poll_interval: 1s, end_margin: 1s,
    max_window: 1d}}
"""


def _peak_rss_kb(pid: int) -> int:
    """The daemon's peak RSS so far (``VmHWM``). Not wait4's ``ru_maxrss``: Linux carries
    the RSS the forked child had before ``exec`` into it, i.e. this benchmark's own, which
    holds the whole ground truth."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmHWM for process {pid}")


def _run(name: str, config: Path, done: Any, total: int) -> dict[str, Any]:
    started = time.monotonic()
    daemon = subprocess.Popen(
        [sys.executable, "-m", "forwarder", "run", "--config", str(config)],
        stderr=subprocess.DEVNULL,
    )
    try:
        while not done():
            if daemon.poll() is not None:
                raise SystemExit(f"{name}: daemon exited with {daemon.returncode}")
            time.sleep(0.2)
        seconds = time.monotonic() - started
        peak_rss_kb = _peak_rss_kb(daemon.pid)
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, status, usage = os.wait4(daemon.pid, 0)
    cpu = usage.ru_utime + usage.ru_stime
    return {
        "sink": name,
        "events": total,
        "seconds": round(seconds, 2),
        "events_per_second": round(total / seconds),
        "cpu_seconds_per_100k": round(cpu / total * 100_000, 2),
        "peak_rss_mb": round(peak_rss_kb / 1024, 1),
        "exit": os.waitstatus_to_exitcode(status),
    }


def _file_lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--rate", type=float, default=5.0, help="records/minute per source")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="forwarder-throughput-"))
    now = time.time()
    simulators = subprocess.Popen(
        [sys.executable, "-m", "forwarder", "simulate", "--output-dir", str(work / "sim"),
         "--start", format_rfc3339(now - args.days * 86400), "--end", format_rfc3339(now - 60),
         "--calendly-rate", str(args.rate), "--google-rate", str(args.rate),
         "--google-min-lag", "0", "--google-max-lag", "0", "--google-late-fraction", "0",
         "--calendly-rate-limit", "100000", "--google-quota", "100000"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    results = []
    broker = Broker()
    try:
        endpoints = json.loads(simulators.stdout.readline())  # type: ignore[union-attr]
        truth = _truth(endpoints)
        total = len(truth)
        print(f"ground truth: {total} events over {args.days} days", file=sys.stderr)
        file_config = work / "file.yaml"
        events = work / "file-state" / "events.ndjson"
        file_config.write_text(
            f"state_dir: {work / 'file-state'}\n{_sources(endpoints, args.days)}"
            f'sinks:\n  file: {{type: file, path: "{events}"}}\n'
            "metrics: {enabled: false}\nlog: {level: warning}\n"
        )
        results.append(_run("file", file_config, lambda: _file_lines(events) >= total, total))
        kafka_config = work / "kafka.yaml"
        metrics_port = free_port()
        kafka_config.write_text(
            f"state_dir: {work / 'kafka-state'}\n{_sources(endpoints, args.days)}"
            f'sinks:\n  kafka: {{type: kafka, bootstrap_servers: ["{broker.bootstrap}"],'
            " topic: audit, enable_idempotence: false, compression: lz4}\n"
            f'metrics: {{listen: "127.0.0.1:{metrics_port}"}}\nlog: {{level: warning}}\n'
        )

        def kafka_done() -> bool:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{metrics_port}/metrics", timeout=5
                ) as response:
                    text = response.read().decode()
            except OSError:
                return False
            for line in text.splitlines():
                if line.startswith('forwarder_sink_events_sent_total{sink="kafka"}'):
                    return float(line.rsplit(" ", 1)[1]) >= total
            return False

        results.append(_run("kafka", kafka_config, kafka_done, total))
    finally:
        broker.stop()
        simulators.send_signal(signal.SIGTERM)
        simulators.wait(30)
    header = ("sink", "events", "seconds", "events/s", "CPU s/100k", "peak RSS MB")
    print("{:<8}{:>9}{:>9}{:>10}{:>12}{:>13}".format(*header))
    for row in results:
        print(
            f"{row['sink']:<8}{row['events']:>9}{row['seconds']:>9}{row['events_per_second']:>10}"
            f"{row['cpu_seconds_per_100k']:>12}{row['peak_rss_mb']:>13}"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
