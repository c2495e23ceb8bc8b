"""Demo mode: the simulators started inside the daemon, from the config's ``simulators``.

Their credentials (the Google service-account key, the Calendly token) are written under
``<state_dir>/simulators/`` and kept across restarts, as is the dataset's start anchor,
so a restarted demo serves the same history and the forwarder's cursors stay valid.
"""

from __future__ import annotations

import os
from pathlib import Path

from forwarder.checkpoint.safefile import create_state_file, ensure_private_directory
from forwarder.config.model import Config, SimulatorsConfig
from forwarder.simulators.google import TOKEN_ROUTE
from forwarder.simulators.google_auth import ServiceAccount
from forwarder.simulators.server import (
    CALENDLY_TOKEN_FILE,
    GOOGLE_KEY_FILE,
    SimulatorServer,
    SimulatorSettings,
)


def simulator_directory(config: Config) -> Path:
    return config.state_dir / "simulators"


def simulator_settings(config: Config) -> SimulatorSettings:
    simulators = config.simulators
    assert simulators is not None
    return SimulatorSettings(
        seed=simulators.seed,
        history=simulators.history,
        calendly_rate_per_minute=simulators.calendly_rate_per_minute,
        google_rate_per_minute=simulators.google_rate_per_minute,
        google_min_lag=0.0,
        google_max_lag=simulators.google_max_lag,
        google_late_fraction=simulators.google_late_fraction,
        google_late_lag=simulators.google_late_lag,
        host=simulators.host,
        calendly_port=simulators.calendly_port,
        google_port=simulators.google_port,
        output_dir=simulator_directory(config),
        calendly_token=simulators.calendly_token,
        organization=simulators.organization,
        delegated_admin=simulators.delegated_admin,
    )


def prepare_simulator_files(config: Config) -> None:
    """Write the simulators' credential files if they are not there yet, so the sources
    can read them before the simulators start."""
    simulators: SimulatorsConfig | None = config.simulators
    if simulators is None:
        return
    directory = simulator_directory(config)
    # 0700 and 0600 whatever the umask; a link planted where a file should be is refused
    # (UnsafeStateFileError), never written through.
    ensure_private_directory(directory)
    create_state_file(directory / CALENDLY_TOKEN_FILE, (simulators.calendly_token + "\n").encode())
    key_file = directory / GOOGLE_KEY_FILE
    if not os.path.lexists(key_file):
        token_uri = f"http://{simulators.host}:{simulators.google_port}{TOKEN_ROUTE}"
        ServiceAccount.generate().write_key_file(key_file, token_uri)


async def start_embedded_simulators(config: Config) -> SimulatorServer:
    """Start the configured simulators; the caller stops them with ``await server.stop()``."""
    server = SimulatorServer(simulator_settings(config))
    await server.start()
    return server
