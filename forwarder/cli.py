"""The ``forwarder`` command line."""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import signal
import sys
import textwrap
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from forwarder import __version__

if TYPE_CHECKING:
    from forwarder.checkpoint.sqlite import SqliteCheckpointStore
    from forwarder.config.loader import ConfigError
    from forwarder.config.model import Config

EXIT_OK = 0
EXIT_RUNTIME = 1
EXIT_CONFIG = 2
EXIT_STATE = 3
# `run` stopped before its drain completed (grace period over, or a second SIGINT/SIGTERM):
# what was not acknowledged is sent again on the next start.
EXIT_NOT_DRAINED = 4
# `check-config --online`: a source or sink failed its check.
EXIT_PREFLIGHT = 5


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return EXIT_CONFIG
    return int(args.handler(args))


CONFIG_HELP = (
    "the YAML config file (every key: config/reference.yaml); relative paths in it are "
    "relative to the current directory, ${VAR} is read from the environment"
)
EXIT_CODES = """exit codes:
  0  success
  1  runtime error (a peer or the system failed)
  2  config error: bad command line, or a config problem (each line names the key)
  3  state error: the state directory cannot be used (untrusted, unwritable, locked,
     a corrupt checkpoint)
  4  run: stopped before the drain completed (re-sent on the next start)
  5  check-config --online: a source or sink failed its online check"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="forwarder",
        description="Forward Calendly and Google Calendar audit logs to SIEM sinks.",
        epilog=EXIT_CODES + "\n\n`forwarder COMMAND --help` describes each command.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"forwarder {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(
        name: str, summary: str, description: str, epilog: str | None = None
    ) -> argparse.ArgumentParser:
        # Wrapped here: the raw formatter keeps the epilogs' line breaks.
        return commands.add_parser(
            name,
            help=summary,
            description=textwrap.fill(description, 79),
            epilog=textwrap.fill(epilog, 79) if epilog else None,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    run = command(
        "run",
        "run the daemon",
        "Run the forwarder: poll every source, deliver to every sink, commit each source's "
        "cursor once every sink acknowledged. SIGINT/SIGTERM drains and stops (a second "
        "one stops at once); SIGHUP reopens the output files after a rotation and reloads "
        "the sources (added ones start, removed ones drain and stop; other sections need a "
        "restart).",
        "exit codes: 0 stopped after a full drain, 1 runtime error, 2 config error, "
        "3 state error, 4 stopped before the drain completed",
    )
    run.add_argument("--config", "-c", type=Path, required=True, help=CONFIG_HELP)
    run.set_defaults(handler=_run)

    check = command(
        "check-config",
        "validate a config file, its secrets and state directory (--online: and its peers)",
        "Validate the config without starting anything or writing any file: every problem "
        "is printed, one line each, naming its key. Secret files are read, TLS files and "
        "the Google service-account key are loaded, the state directory and file sinks are "
        "checked writable. With --online, also obtain the credentials and try each source "
        "(one page) and sink (connect and a health check) once, printing one line per "
        "component: ok, or FAILED with what failed and the likely fix.",
        "exit codes: 0 valid (and, with --online, every component ok), 2 config error, "
        "3 state error, 5 a component failed its online check",
    )
    check.add_argument("--config", "-c", type=Path, required=True, help=CONFIG_HELP)
    check.add_argument(
        "--online",
        action="store_true",
        help="also contact every source's API and every sink (nothing is delivered)",
    )
    check.add_argument(
        "--timeout",
        type=_seconds,
        default=15.0,
        help="--online: how long each component's check may take (default: 15s)",
    )
    check.set_defaults(handler=_check_config)

    cursors = command(
        "cursors",
        "show, reset, export or import the per-source cursors",
        "show: print each source's committed cursor as one JSON line (read-only, safe while "
        "the daemon runs; sources no longer in the config but with state follow, marked "
        "configured: false). reset: forget one source's cursor, so that the next run starts "
        "from its initial_lookback (refused while a daemon holds the state directory; the "
        "source may be one removed from the config). "
        "export: write each source's whole state (cursor and seen keys) as one NDJSON line "
        "(read-only, safe while the daemon runs; by default the sources this replica runs "
        "that have state). import: write the sources of an export into this state "
        "directory, all or nothing (refused while a daemon holds it; a source that already "
        "has state needs --replace). Export from the old replicas and import into the new "
        "ones to move sources between replicas or state directories (resharding).",
        "exit codes: 0 done, 2 config error, unknown source or a bad export line, 3 state "
        "error (including: a source to import already has state)",
    )
    cursors.add_argument("action", choices=("show", "reset", "export", "import"), help="what to do")
    cursors.add_argument("--config", "-c", type=Path, required=True, help=CONFIG_HELP)
    cursors.add_argument(
        "--source",
        action="append",
        help="a source id of the config (repeatable for show and export; show: default "
        "every source; reset: exactly one, required; export: default every source this "
        "replica runs that has state)",
    )
    cursors.add_argument(
        "--output",
        "-o",
        default="-",
        help="export: the file to write (mode 0600; default -: standard output)",
    )
    cursors.add_argument(
        "--input",
        "-i",
        help="import: the export to read (-: standard input); required for import",
    )
    cursors.add_argument(
        "--replace",
        action="store_true",
        help="import: replace the state of sources that already have some (default: refuse)",
    )
    cursors.set_defaults(handler=_cursors)

    normalize = command(
        "normalize",
        "normalize API responses or raw records from stdin to NDJSON on stdout",
        "Read from standard input an API response page (Calendly activity_log_entries, "
        "Google activities.list) or NDJSON raw records, one per line, and write the "
        "normalized events as NDJSON to standard output. Records that cannot be normalized "
        "are reported on standard error, one line each, and skipped. Needs no config.",
        "exit codes: 0 every record normalized, 1 some records skipped (see stderr), "
        "2 bad command line",
    )
    normalize.add_argument(
        "--source",
        required=True,
        choices=("calendly", "google_calendar"),
        help="which API the input comes from",
    )
    normalize.add_argument(
        "--format",
        choices=("ecs", "ocsf", "raw"),
        default="ecs",
        help="output format (default: ecs)",
    )
    normalize.add_argument(
        "--internal-domain",
        action="append",
        metavar="DOMAIN",
        help="an organization's own domain (repeatable; *.example.com for its subdomains): "
        "Google grantees, guests, subscribers and recipients elsewhere are flagged external "
        "(as a source's internal_domains); without it the flag is left out",
    )
    normalize.add_argument(
        "--tenant",
        metavar="TENANT",
        help="tag every event with this tenant (ECS labels.tenant, OCSF metadata.tags), as "
        "a source's tenant does; 1 to 64 letters, digits, '.', '_' or '-'",
    )
    normalize.set_defaults(handler=_normalize)

    from forwarder.simulators.server import build_arg_parser

    simulate = command(
        "simulate",
        "serve the Calendly and Google API simulators (for demos and tests)",
        "Serve local simulators of the Calendly Activity Log and Google Reports APIs with a "
        "generated, seeded history and live events, until SIGINT/SIGTERM. The Google "
        "service-account key and the Calendly token to use are written to --output-dir. "
        "Durations accept the config's units (90s, 5m, 6h, 1d).",
    )
    build_arg_parser(simulate)
    simulate.set_defaults(handler=_simulate)
    return parser


def _seconds(value: str) -> float:
    """A duration as in the config (``15``, ``15s``, ``1m``), above zero."""
    from forwarder.config.durations import parse_duration

    try:
        seconds = parse_duration(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError("must be more than 0s")
    return seconds


def _fail(code: int, message: str) -> int:
    print(f"forwarder: {message}", file=sys.stderr)
    return code


def _config_failure(error: ConfigError) -> int:
    """Every problem of a config error, one line each (each names its key)."""
    for line in error.lines():
        print(f"forwarder: config error: {line}", file=sys.stderr)
    return EXIT_CONFIG


def _load(path: Path):  # type: ignore[no-untyped-def]
    from forwarder.config.loader import load_config

    return load_config(path)


def _run(args: argparse.Namespace) -> int:
    from forwarder.config.loader import ConfigError
    from forwarder.daemon import Daemon, StateError
    from forwarder.observability.logging import configure_logging

    # SIGHUP's default action ends the process; logrotate sends it after every rotation.
    # Kept until the loop's handler (reopen the files, reload the sources) takes over: the
    # config read at start may predate the change it announces. Ignored after the loop.
    early_hangups: list[int] = []
    signal.signal(signal.SIGHUP, lambda signum, _frame: early_hangups.append(signum))
    # A stop request that arrives before the loop's handlers exist (while the config
    # loads, or before the pipeline starts) is kept and honoured once they do, instead of
    # killing the process by the signal's default action (exit -15, nothing logged).
    early_stops: list[signal.Signals] = []

    def keep_early_stop(signum: int, _frame: object) -> None:
        early_stops.append(signal.Signals(signum))

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, keep_early_stop)
    try:
        config = _load(args.config)
    except ConfigError as error:
        return _config_failure(error)
    redactor = configure_logging(config.log.level, config.log.format)

    async def run() -> bool:
        stop = asyncio.Event()
        abort = asyncio.Event()
        daemon = Daemon(config, redactor=redactor, config_path=args.config)
        loop = asyncio.get_running_loop()

        def on_stop(signum: signal.Signals) -> None:
            # The first request drains (within pipeline.shutdown_grace); a second one is
            # an operator who will not wait: stop at once, committing nothing more.
            if not stop.is_set():
                stop.set()
            elif not abort.is_set():
                abort.set()
                daemon.log.warning(
                    "stopping_now",
                    signal=signum.name,
                    note="second stop request: the drain is cut short; what was not "
                    "acknowledged is sent again on the next start",
                )

        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, on_stop, signum)
        loop.add_signal_handler(signal.SIGHUP, daemon.on_sighup)
        if early_hangups:
            daemon.request_reload("sighup")
        for signum in early_stops:
            on_stop(signum)
        return await daemon.run(stop, abort)

    tune_garbage_collector()

    try:
        drained = asyncio.run(run())
    except ConfigError as error:
        return _config_failure(error)
    except StateError as error:
        return _fail(EXIT_STATE, f"state error: {error}")
    except OSError as error:
        return _fail(EXIT_RUNTIME, f"cannot start: {error}")
    finally:
        # Closing the loop put the signals back to their defaults: the process is exiting
        # with its own status, not by a late signal (nor a KeyboardInterrupt traceback).
        for signum in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, signal.SIG_IGN)
    return EXIT_OK if drained else EXIT_NOT_DRAINED


def tune_garbage_collector() -> None:
    """Normalized documents are acyclic and freed by reference counting, but each one holds
    a dozen containers that the cyclic collector would otherwise walk again and again
    (measured: the largest remaining cost of the hot path). Collect less often, and never
    scan what was loaded at start."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def _check_config(args: argparse.Namespace) -> int:
    """Read-only: nothing is created or changed (the demo's generated secrets included)."""
    from forwarder.config.insecure import insecure_settings
    from forwarder.config.loader import ConfigError
    from forwarder.config.verify import verify

    try:
        config = _load(args.config)
    except ConfigError as error:
        return _config_failure(error)
    found = verify(config)
    for error in found.config_errors:
        _config_failure(error)
    for problem in found.state_problems:
        _fail(EXIT_STATE, f"state error: {problem}")
    if found.config_errors:
        return EXIT_CONFIG
    if found.state_problems:
        return EXIT_STATE
    for finding in insecure_settings(config):
        print(f"forwarder: warning: {finding.key}: {finding.message}", file=sys.stderr)
    print(
        f"config OK: {len(config.sources)} source(s) ({', '.join(config.sources)}), "
        f"{len(config.sinks)} sink(s) ({', '.join(config.sinks)})"
    )
    if config.shard.count > 1:
        from forwarder.shard import resolve_shard

        try:
            shard = resolve_shard(config.shard)
        except ConfigError as error:
            return _config_failure(error)
        owned = shard.owned(config.sources)
        print(
            f"shard {shard.index} of {shard.count}: runs {len(owned)} of "
            f"{len(config.sources)} source(s) ({', '.join(owned) or 'none'})"
        )
    for key in found.generated:
        print(f"note: {key}: its secret file is generated by the demo simulators at `run`")
    if not args.online:
        return EXIT_OK
    from forwarder.preflight import check_online

    outcomes = asyncio.run(
        check_online(config, per_check=args.timeout, skip=frozenset(found.generated))
    )
    for outcome in outcomes:
        print(outcome.line())
    failed = sum(not outcome.ok for outcome in outcomes)
    print(f"online: {len(outcomes) - failed} of {len(outcomes)} component(s) ok")
    return EXIT_OK if not failed else EXIT_PREFLIGHT


def _cursors(args: argparse.Namespace) -> int:
    from forwarder.checkpoint.base import CheckpointCorruptError
    from forwarder.checkpoint.sqlite import SqliteCheckpointStore
    from forwarder.checkpoint.statedir import prepare_state
    from forwarder.config.loader import ConfigError
    from forwarder.daemon import StateDirectoryLock, StateError

    try:
        config = _load(args.config)
    except ConfigError as error:
        return _config_failure(error)
    # show and reset also take a source the config no longer names (a tenant removed)
    # whose state is still in the state directory; checked once the store is open.
    unknown = [source_id for source_id in args.source or () if source_id not in config.sources]
    if unknown and args.action not in ("show", "reset"):
        return _unknown_source(unknown[0], args.config, config.sources)
    if args.action in ("export", "import"):
        from forwarder.cursor_transfer import export_cursors, import_cursors

        if args.action == "export":
            return export_cursors(config, args.source, args.output)
        if args.source:
            return _fail(EXIT_CONFIG, "cursors import takes no --source (it imports its --input)")
        if not args.input:
            return _fail(EXIT_CONFIG, "cursors import needs --input FILE (- for standard input)")
        return import_cursors(config, args.input, replace=args.replace)
    if args.action == "reset" and (not args.source or len(args.source) > 1):
        return _fail(
            EXIT_CONFIG,
            f"cursors reset needs exactly one --source (one of: {', '.join(config.sources)})",
        )
    try:
        # The daemon's directory checks: never read or remove through an untrusted one. A
        # bad checkpoint is reported (show) or removed (reset), not refused. `show` only
        # looks (it changes no mode, creates nothing).
        if args.action == "show":
            _check_state_trusted(config)
        else:
            prepare_state(config, create=False, files=False)
    except StateError as error:
        return _fail(EXIT_STATE, f"state error: {error}")
    if unknown:
        # Looked at read-only, apart from the store that may write (reset).
        inspector = SqliteCheckpointStore(config.state_dir)
        try:
            stored = inspector.stored_sources_sync()
        except CheckpointCorruptError as error:
            return _fail(EXIT_STATE, f"state error: {error}")
        finally:
            inspector.close()
        missing = [source_id for source_id in unknown if source_id not in stored]
        if missing:
            return _unknown_source(missing[0], args.config, config.sources)
    store = SqliteCheckpointStore(config.state_dir)
    try:
        if args.action == "show":
            try:
                stored = [] if args.source else store.stored_sources_sync()
            except CheckpointCorruptError as error:
                return _fail(EXIT_STATE, f"state error: {error}")
            removed_ones = [source_id for source_id in stored if source_id not in config.sources]
            _show_cursors(store, args.source or [*config.sources, *removed_ones], config.sources)
            return EXIT_OK
        source = args.source[0]
        lock = StateDirectoryLock(config.state_dir)
        try:
            lock.acquire()
        except StateError as error:
            return _fail(EXIT_STATE, f"{error}; stop it before resetting a cursor")
        try:
            removed = store.reset_sync(source)
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
        f"cursor of {source} reset; the next run starts from its initial_lookback"
        if removed
        else f"{source} had no cursor"
    )
    return EXIT_OK


def _check_state_trusted(config: Config) -> None:
    """The state directories' trust checks, read-only (raises StateError)."""
    from forwarder.checkpoint.statedir import CHECKPOINTS, check_trusted_directory

    check_trusted_directory(Path(config.state_dir), "state directory")
    check_trusted_directory(Path(config.state_dir) / CHECKPOINTS, "checkpoints directory")


def _unknown_source(source_id: str, path: Path, configured: Iterable[str]) -> int:
    return _fail(
        EXIT_CONFIG,
        f"no source {source_id!r} in {path} (its sources: {', '.join(configured)})"
        " and no state of it in its state directory",
    )


def _show_cursors(
    store: SqliteCheckpointStore, source_ids: list[str], configured: Iterable[str]
) -> None:
    """One JSON line per source: its cursor's fields, ``seen_ids`` (how many keys) and
    ``committed_at``, or ``error``; ``"configured": false`` for state of a source the
    config no longer names (a tenant removed: ``cursors reset`` forgets it)."""
    from forwarder.checkpoint.base import CheckpointCorruptError

    configured = set(configured)
    for source_id in source_ids:
        orphan = {} if source_id in configured else {"configured": False}
        try:
            stored = store.summary_sync(source_id)
        except CheckpointCorruptError as error:
            print(orjson.dumps({"source": source_id, **orphan, "error": str(error)}).decode())
            continue
        summary: dict[str, object] = {
            "source": source_id,
            **orphan,
            "committed": stored is not None,
        }
        if stored is not None:
            summary.update(stored)
        print(orjson.dumps(summary).decode())


def _normalize(args: argparse.Namespace) -> int:
    import re
    import time

    from forwarder.config.model import TENANT_PATTERN
    from forwarder.schema.normalize_stream import normalize_payload
    from forwarder.schema.sharing import InternalDomains
    from forwarder.timeutil import format_rfc3339

    internal_domains = None
    if args.internal_domain:
        try:
            internal_domains = InternalDomains(args.internal_domain)
        except ValueError as exc:
            print(f"forwarder: --internal-domain: {exc}", file=sys.stderr)
            return EXIT_CONFIG  # 2: a bad command line, as argparse says it
    if args.tenant is not None and not re.fullmatch(TENANT_PATTERN, args.tenant):
        print(
            f"forwarder: --tenant: {args.tenant!r} must be 1 to 64 letters, digits, '.', '_' "
            "or '-'",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    data = sys.stdin.buffer.read()
    events, failures = normalize_payload(
        args.source,
        data,
        ingested=format_rfc3339(time.time()),
        seal_formats=(args.format,),
        internal_domains=internal_domains,
        tenant=args.tenant,
    )
    out = sys.stdout.buffer
    try:
        for event in events:
            out.write(event.encoded(args.format) + b"\n")
        out.flush()
    except BrokenPipeError:
        # The reader had enough (`| head`): not an error of ours. Python would fail again
        # flushing stdout at exit; /dev/null takes what is left in the buffer.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
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
