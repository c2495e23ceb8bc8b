"""``check-config`` without the network: everything ``run`` would refuse at start, found
without creating or changing any file (the command is read-only).

Beyond the schema (checked by the loader): each source's and sink's secrets, TLS files and
Google key are read and loaded by building the component as the daemon does; each file
sink's path and the state directory are checked writable (the nearest existing directory,
for what does not exist yet) and the state directories trusted.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from forwarder.checkpoint.statedir import (
    CHECKPOINTS,
    SIMULATORS,
    StateError,
    check_state_writable,
    check_trusted_directory,
)
from forwarder.checkpoint.writable import write_problem
from forwarder.clock import SystemClock
from forwarder.config.loader import ConfigError
from forwarder.config.model import (
    CalendlySourceConfig,
    Config,
    FileSinkConfig,
    GoogleCalendarSourceConfig,
)
from forwarder.observability.metrics import Metrics


@dataclass(slots=True)
class Verification:
    """What ``check-config`` found: config problems (exit 2), state problems (exit 3),
    and the components whose secrets the demo simulators generate at start (not
    checked: they do not exist before the first ``run``)."""

    config_errors: list[ConfigError] = field(default_factory=list)
    state_problems: list[str] = field(default_factory=list)
    generated: list[str] = field(default_factory=list)


def verify(config: Config) -> Verification:
    """Check ``config`` as ``run`` would at start, without writing anything."""
    from forwarder.daemon import build_sink, build_source

    found = Verification()
    metrics = Metrics()
    for source_id, source in config.sources.items():
        if _demo_generated(config, source):
            found.generated.append(f"sources.{source_id}")
            continue
        try:
            build_source(source_id, source, metrics, SystemClock())
        except ConfigError as error:
            found.config_errors.append(error)
    for sink_id, sink in config.sinks.items():
        try:
            build_sink(sink_id, sink, metrics)
        except ConfigError as error:
            found.config_errors.append(error)
            continue
        if isinstance(sink, FileSinkConfig):
            problem = write_problem(Path(sink.path), directory=False)
            if problem is not None:
                found.config_errors.append(ConfigError(f"sinks.{sink_id}.path", problem))
    found.state_problems = _state_problems(config)
    return found


def _demo_generated(config: Config, source: object) -> bool:
    """A demo source whose secret file the simulators write at the first ``run``."""
    if config.simulators is None:
        return False
    if isinstance(source, CalendlySourceConfig):
        path = source.token_file
    elif isinstance(source, GoogleCalendarSourceConfig):
        path = source.credentials_file
    else:
        return False
    if path is None or os.path.lexists(path):
        return False
    directory = Path(os.path.abspath(Path(config.state_dir) / SIMULATORS))
    return Path(os.path.abspath(path)).parent == directory


def _state_problems(config: Config) -> list[str]:
    """The daemon's start-up checks of its directories, read-only: trusted (nobody else
    can plant files there) and writable."""
    state = Path(config.state_dir)
    directories = [
        (state, "state directory"),
        (state / CHECKPOINTS, "checkpoints directory"),
        (Path(config.dead_letter_dir), "dead-letter directory"),
    ]
    if config.simulators is not None:
        directories.append((state / SIMULATORS, "simulators directory"))
    problems: list[str] = []
    for directory, role in directories:
        try:
            check_trusted_directory(directory, role)
        except StateError as error:
            problems.append(str(error))
    if problems:
        return problems
    try:
        check_state_writable(config)
    except StateError as error:
        problems.append(str(error))
    return problems
