"""The ``forwarder`` command line."""

from __future__ import annotations

import argparse
import asyncio
import gc
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from forwarder import __version__

if TYPE_CHECKING:
    from forwarder.checkpoint.sqlite import SqliteCheckpointStore

EXIT_OK = 0
EXIT_RUNTIME = 1
EXIT_CONFIG = 2
EXIT_STATE = 3


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return EXIT_CONFIG
    return int(args.handler(args))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="forwarder",
        description="Forward Calendly and Google Calendar audit logs to SIEM sinks.",
    )
    parser.add_argument("--version", action="version", version=f"forwarder {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = commands.add_parser("run", help="run the daemon")
    run.add_argument("--config", "-c", type=Path, required=True, help="YAML config file")
    run.set_defaults(handler=_run)

    check = commands.add_parser("check-config", help="validate a config file and its secrets")
    check.add_argument("--config", "-c", type=Path, required=True)
    check.set_defaults(handler=_check_config)

    cursors = commands.add_parser("cursors", help="show or reset the per-source cursors")
    cursors.add_argument("action", choices=("show", "reset"))
    cursors.add_argument("--config", "-c", type=Path, required=True)
    cursors.add_argument("--source", help="source id (reset: required)")
    cursors.set_defaults(handler=_cursors)

    normalize = commands.add_parser(
        "normalize",
        help="normalize an API response page or NDJSON raw records from stdin to NDJSON",
    )
    normalize.add_argument("--source", required=True, choices=("calendly", "google_calendar"))
    normalize.add_argument("--format", choices=("ecs", "ocsf", "raw"), default="ecs")
    normalize.set_defaults(handler=_normalize)

    from forwarder.simulators.server import build_arg_parser

    simulate = commands.add_parser("simulate", help="serve the Calendly and Google API simulators")
    build_arg_parser(simulate)
    simulate.set_defaults(handler=_simulate)
    return parser


def _fail(code: int, message: str) -> int:
    print(f"forwarder: {message}", file=sys.stderr)
    return code


def _load(path: Path):  # type: ignore[no-untyped-def]
    from forwarder.config.loader import load_config

    return load_config(path)


def _run(args: argparse.Namespace) -> int:
    from forwarder.config.loader import ConfigError
    from forwarder.daemon import Daemon, StateError
    from forwarder.observability.logging import configure_logging

    try:
        config = _load(args.config)
    except ConfigError as error:
        return _fail(EXIT_CONFIG, f"config error: {error}")
    redactor = configure_logging(config.log.level, config.log.format)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await Daemon(config, redactor=redactor).run(stop)

    tune_garbage_collector()

    try:
        asyncio.run(run())
    except ConfigError as error:
        return _fail(EXIT_CONFIG, f"config error: {error}")
    except StateError as error:
        return _fail(EXIT_STATE, f"state error: {error}")
    except OSError as error:
        return _fail(EXIT_RUNTIME, f"cannot start: {error}")
    return EXIT_OK


def tune_garbage_collector() -> None:
    """Normalized documents are acyclic and freed by reference counting, but each one holds
    a dozen containers that the cyclic collector would otherwise walk again and again
    (measured: the largest remaining cost of the hot path). Collect less often, and never
    scan what was loaded at start."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def _check_config(args: argparse.Namespace) -> int:
    from forwarder.config.loader import ConfigError
    from forwarder.daemon import StateError, build_sink, build_source
    from forwarder.observability.metrics import Metrics

    try:
        config = _load(args.config)
        if config.simulators is not None:
            from forwarder.simulators.embedded import prepare_simulator_files

            prepare_simulator_files(config)
        metrics = Metrics()
        from forwarder.clock import SystemClock

        for source_id, source_config in config.sources.items():
            build_source(source_id, source_config, metrics, SystemClock())
        for sink_id, sink_config in config.sinks.items():
            build_sink(sink_id, sink_config, metrics)
    except ConfigError as error:
        return _fail(EXIT_CONFIG, f"config error: {error}")
    except StateError as error:
        return _fail(EXIT_STATE, f"state error: {error}")
    except OSError as error:
        # The demo's simulator files under state_dir (a planted link is refused).
        return _fail(EXIT_STATE, f"state error: {error}")
    from forwarder.config.insecure import insecure_settings

    for finding in insecure_settings(config):
        print(f"forwarder: warning: {finding.key}: {finding.message}", file=sys.stderr)
    print(
        f"config OK: {len(config.sources)} source(s) ({', '.join(config.sources)}), "
        f"{len(config.sinks)} sink(s) ({', '.join(config.sinks)})"
    )
    return EXIT_OK


def _cursors(args: argparse.Namespace) -> int:
    from forwarder.checkpoint.sqlite import SqliteCheckpointStore
    from forwarder.checkpoint.statedir import prepare_state
    from forwarder.config.loader import ConfigError
    from forwarder.daemon import StateDirectoryLock, StateError

    try:
        config = _load(args.config)
    except ConfigError as error:
        return _fail(EXIT_CONFIG, f"config error: {error}")
    try:
        # The daemon's directory checks: never read or remove through an untrusted one. A
        # bad checkpoint is reported (show) or removed (reset), not refused.
        prepare_state(config, create=False, files=False)
    except StateError as error:
        return _fail(EXIT_STATE, f"state error: {error}")
    store = SqliteCheckpointStore(config.state_dir)
    try:
        if args.action == "show":
            _show_cursors(store, [args.source] if args.source else list(config.sources))
            return EXIT_OK
        if not args.source:
            return _fail(EXIT_CONFIG, "cursors reset needs --source")
        if args.source not in config.sources:
            return _fail(EXIT_CONFIG, f"no source {args.source!r} in {args.config}")
        lock = StateDirectoryLock(config.state_dir)
        try:
            lock.acquire()
        except StateError as error:
            return _fail(EXIT_STATE, f"{error}; stop it before resetting a cursor")
        try:
            removed = store.reset_sync(args.source)
        except OSError as error:
            return _fail(
                EXIT_STATE,
                f"state error: {error}; move the state database away to start every source "
                "from its initial_lookback",
            )
        finally:
            lock.release()
    finally:
        store.close()
    print(
        f"cursor of {args.source} reset; the next run starts from its initial_lookback"
        if removed
        else f"{args.source} had no cursor"
    )
    return EXIT_OK


def _show_cursors(store: SqliteCheckpointStore, source_ids: list[str]) -> None:
    """One JSON line per source: its cursor's fields, ``seen_ids`` (how many keys) and
    ``committed_at``, or ``error``."""
    from forwarder.checkpoint.base import CheckpointCorruptError

    for source_id in source_ids:
        try:
            stored = store.summary_sync(source_id)
        except CheckpointCorruptError as error:
            print(orjson.dumps({"source": source_id, "error": str(error)}).decode())
            continue
        summary: dict[str, object] = {"source": source_id, "committed": stored is not None}
        if stored is not None:
            summary.update(stored)
        print(orjson.dumps(summary).decode())


def _normalize(args: argparse.Namespace) -> int:
    import time

    from forwarder.schema.normalize_stream import normalize_payload
    from forwarder.timeutil import format_rfc3339

    data = sys.stdin.buffer.read()
    events, failures = normalize_payload(
        args.source, data, ingested=format_rfc3339(time.time()), seal_formats=(args.format,)
    )
    out = sys.stdout.buffer
    for event in events:
        out.write(event.encoded(args.format) + b"\n")
    out.flush()
    for record, error in failures:
        excerpt = orjson.dumps(record, default=repr)[:200].decode("utf-8", "replace")
        print(
            f"forwarder: skipped record ({error.reason}: {error.detail}): {excerpt}",
            file=sys.stderr,
        )
    return EXIT_OK if not failures else EXIT_RUNTIME


def _simulate(args: argparse.Namespace) -> int:
    from forwarder.simulators.server import serve_forever, settings_from_args

    settings = settings_from_args(args)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await serve_forever(settings, stop)

    asyncio.run(run())
    return EXIT_OK
