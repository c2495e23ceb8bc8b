"""What a reload and the file watch cost with many tenants (issue 18): for N tenants, one
YAML file and one token file each in a ``sources_dir``, the time to digest every watched
file (what ``reload.watch_interval`` does each interval) and the time to plan a reload
that adds one tenant (read and validate the whole config, digest every source's secret
files, compare). Starting the one new source is not included (the same as at start).

    .venv/bin/python bench/reload.py [--tenants 30 300 1000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from forwarder.config.loader import load_config
from forwarder.config.reload import SourceSpec, plan_reload, watched_files_digest


def write_tenants(directory: Path, count: int) -> Path:
    """A config with ``count`` tenants in its sources_dir; returns the config's path."""
    tenants = directory / "sources.d"
    tenants.mkdir()
    for index in range(count):
        name = f"tenant{index:04d}"
        (tenants / f"{name}-token").write_text(f"token-{index}\n")
        (tenants / f"{name}.yaml").write_text(
            f"sources:\n  {name}:\n    type: calendly\n"
            f"    organization: https://api.calendly.com/organizations/ORG{index:012d}\n"
            f"    token_file: {name}-token\n    poll_interval: 60s\n"
        )
    config = directory / "config.yaml"
    config.write_text(
        f"state_dir: {directory / 'state'}\nsources_dir: {tenants}\nsources: {{}}\n"
        f"sinks:\n  out: {{type: file, path: {directory / 'out.ndjson'}}}\n"
        "metrics: {enabled: false}\n"
    )
    return config


def timed(action: Callable[[], object], repeat: int) -> float:
    """The median wall time of ``action`` in milliseconds."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def measure(count: int, repeat: int) -> tuple[float, float]:
    """The watch digest's and a reload plan's median milliseconds with ``count`` tenants."""
    with tempfile.TemporaryDirectory() as work:
        path = write_tenants(Path(work), count)
        old = load_config(path)
        running = {key: SourceSpec.of(source) for key, source in old.sources.items()}
        digest_ms = timed(lambda: watched_files_digest(path, old), repeat)
        (Path(work) / "sources.d" / "zz-new.yaml").write_text(
            "sources:\n  new:\n    type: calendly\n"
            "    organization: https://api.calendly.com/organizations/NEWORG000000\n"
            "    token_file: tenant0000-token\n"
        )

        def plan() -> None:
            new = load_config(path)
            wanted = {key: SourceSpec.of(source) for key, source in new.sources.items()}
            result = plan_reload(running, wanted, old, new)
            assert result.added == ("new",) and len(result.unchanged) == count

        return digest_ms, timed(plan, repeat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, nargs="+", default=[30, 300, 1000])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print("| tenants | watch digest (ms) | plan a reload adding one (ms) |")
    print("|---:|---:|---:|")
    for count in args.tenants:
        digest_ms, plan_ms = measure(count, args.repeat)
        print(f"| {count:,} | {digest_ms:.1f} | {plan_ms:.1f} |")


if __name__ == "__main__":
    main()
