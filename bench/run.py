"""Every benchmark in one command: prints one table per benchmark and writes them all,
with the machine description, to ``bench/results.json``.

    .venv/bin/python bench/run.py [--quick]

``--quick`` uses smaller data sets (a smoke run, not for the figures in RESULTS.md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent


def machine() -> dict[str, Any]:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal:")
    )
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_gb": round(memory_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def run(script: str, *args: str) -> Any:
    with tempfile.NamedTemporaryFile(suffix=".json") as output:
        print(f"\n== {script} {' '.join(args)}", flush=True)
        subprocess.run(
            [sys.executable, str(BENCH / script), *args, "--json", output.name], check=False
        )
        text = Path(output.name).read_text()
        return json.loads(text) if text else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    quick = args.quick
    results: dict[str, Any] = {"machine": machine()}
    results["normalize"] = run("normalize.py", "5000" if quick else "50000")
    results["throughput"] = run("throughput.py", "--days", "1" if quick else "7")
    results["rss"] = run("rss.py", "--events", "100000" if quick else "1000000")
    if (BENCH / "backfill.py").exists():
        results["backfill"] = run("backfill.py", *(["--quick"] if quick else []))
    # 1 and 10 events/s here (100 events/s takes a while: run google_scale.py alone).
    scale = (
        ["--rates", "1", "--warmup", "10m", "--measure", "10m"] if quick else ["--rates", "1", "10"]
    )
    results["google_scale"] = run("google_scale.py", *scale)
    target = BENCH / ("results-quick.json" if quick else "results.json")
    target.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
