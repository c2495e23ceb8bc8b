"""Soak run: the daemon against live simulators for a while, sampling its RSS and open
file descriptors, to catch leaks that short tests cannot.

    .venv/bin/python bench/soak.py --minutes 10 [--rate 600] [--out bench/soak.json]

Prints one line per sample and a summary; exits 1 if RSS grew by more than
``--max-growth-mb`` between the first and the last third of the run.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=600.0, help="events per minute per source")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--max-growth-mb", type=float, default=30.0)
    parser.add_argument("--out", type=Path, default=None, help="write the samples as JSON")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="forwarder-soak-"))
    simulators = subprocess.Popen(
        [sys.executable, "-m", "forwarder", "simulate", "--output-dir", str(work / "sim"),
         "--history", "600", "--calendly-rate", str(args.rate), "--google-rate", str(args.rate),
         "--google-max-lag", "30", "--google-late-fraction", "0.02", "--google-late-lag", "300"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    endpoints = json.loads(simulators.stdout.readline())  # type: ignore[union-attr]
    config = work / "forwarder.yaml"
    config.write_text(
        f"""state_dir: {work / "state"}
sources:
  calendly: {{type: calendly, base_url: "{endpoints["calendly_url"]}",
    organization: "{endpoints["organization"]}", token_file: "{endpoints["calendly_token_file"]}",
    poll_interval: 2s, page_size: 100}}
  google_calendar: {{type: google_calendar, base_url: "{endpoints["google_url"]}",
    credentials_file: "{endpoints["google_key_file"]}",
    delegated_admin: "{endpoints["delegated_admin"]}", poll_interval: 2s}}
sinks:
  events: {{type: file, path: "{work / "state" / "events.ndjson"}"}}
metrics: {{listen: "127.0.0.1:{_free_port()}"}}
log: {{level: warning}}
"""
    )
    daemon = subprocess.Popen([sys.executable, "-m", "forwarder", "run", "--config", str(config)])
    samples: list[dict[str, float]] = []
    started = time.monotonic()
    try:
        while time.monotonic() - started < args.minutes * 60:
            time.sleep(args.interval)
            if daemon.poll() is not None:
                print(f"daemon exited with {daemon.returncode}", file=sys.stderr)
                return 1
            events_file = work / "state" / "events.ndjson"
            lines = events_file.read_bytes().count(b"\n") if events_file.exists() else 0
            sample = {
                "seconds": round(time.monotonic() - started, 1),
                "rss_mb": round(_rss_mb(daemon.pid), 1),
                "open_fds": _fds(daemon.pid),
                "events": lines,
            }
            samples.append(sample)
            print(json.dumps(sample), flush=True)
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(60)
        simulators.send_signal(signal.SIGTERM)
        simulators.wait(10)
    third = max(1, len(samples) // 3)
    early = max(s["rss_mb"] for s in samples[:third])
    late = max(s["rss_mb"] for s in samples[-third:])
    summary = {
        "minutes": args.minutes,
        "events": samples[-1]["events"] if samples else 0,
        "rss_mb_early_max": early,
        "rss_mb_late_max": late,
        "rss_growth_mb": round(late - early, 1),
        "fds_min": min(s["open_fds"] for s in samples) if samples else 0,
        "fds_max": max(s["open_fds"] for s in samples) if samples else 0,
        "daemon_exit": daemon.returncode,
    }
    print(json.dumps({"summary": summary}))
    if args.out:
        args.out.write_text(json.dumps({"samples": samples, "summary": summary}, indent=2) + "\n")
    return 0 if summary["rss_growth_mb"] <= args.max_growth_mb and daemon.returncode == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
