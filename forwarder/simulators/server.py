"""Run the simulators on loopback: for the demo (``forwarder simulate``) and for tests.

:class:`SimulatorServer` starts either or both simulators, writes the Google
service-account key file (whose ``token_uri`` is the simulator's own ``/token``) and the
Calendly token file, and stops them. :func:`serve_forever` is what the CLI runs; it
prints one JSON line with the URLs and file paths on startup.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

import orjson
from aiohttp import web

from forwarder.checkpoint.safefile import ensure_private_directory, replace_state_file
from forwarder.clock import Clock, SystemClock
from forwarder.config.durations import parse_duration
from forwarder.simulators.anchor import load_or_create_anchor
from forwarder.simulators.calendly import (
    DEFAULT_ORGANIZATION_URI,
    CalendlyConfig,
    CalendlySimulator,
)
from forwarder.simulators.google import TOKEN_ROUTE, GoogleConfig, GoogleReportsSimulator
from forwarder.simulators.google_auth import ServiceAccount
from forwarder.timeutil import parse_rfc3339

GOOGLE_KEY_FILE = "google-service-account.json"
CALENDLY_TOKEN_FILE = "calendly-token"
ANCHOR_FILE = "anchor.json"


@dataclass
class SimulatorSettings:
    """Everything ``forwarder simulate`` can set. Defaults suit the demo.

    The dataset starts at ``start`` if given; otherwise at the anchor stored in
    ``anchor_file`` (default ``output_dir/anchor.json``; created ``history`` seconds
    before now on first run), so restarts serve the same data; otherwise (no file at
    all) ``history`` seconds before now.
    """

    seed: int = 42
    start: float | None = None
    anchor_file: Path | None = None
    history: float = 3600.0
    end: float | None = None
    calendly_rate_per_minute: float = 6.0
    google_rate_per_minute: float = 6.0
    google_min_lag: float = 5.0
    google_max_lag: float = 60.0
    google_late_fraction: float = 0.02
    google_late_lag: float = 5400.0
    calendly_rate_limit: int = 500
    google_quota: int = 2400
    calendly_latency: float = 0.0
    """Real seconds each Calendly API request waits before it is handled (e.g. 0.15)."""
    google_latency: float = 0.0
    """Real seconds each Google API request (token endpoint too) waits."""
    host: str = "127.0.0.1"
    calendly_port: int = 0
    google_port: int = 0
    output_dir: Path | None = None
    """Where the key and token files go (``None``: a temporary directory, removed on stop)."""
    calendly_token: str | None = None
    """``None``: derived from the seed, so it survives restarts."""
    organization: str = DEFAULT_ORGANIZATION_URI
    delegated_admin: str = "admin@example.com"
    customer_id: str = "C03az79cb"
    domain: str = "example.com"
    google_token_lifetime: int = 3599
    enable_calendly: bool = True
    enable_google: bool = True
    reuse_google_key: bool = True
    """Reuse a key file already in ``output_dir`` so a running forwarder keeps working."""

    def resolved_calendly_token(self) -> str:
        if self.calendly_token:
            return self.calendly_token
        return "sim-" + hashlib.sha256(f"{self.seed}:calendly-token".encode()).hexdigest()[:32]


def resolve_start(settings: SimulatorSettings, clock: Clock) -> float:
    """The dataset start: explicit, else the durable anchor, else ``history`` ago."""
    if settings.start is not None:
        return settings.start
    default = clock.now() - settings.history
    anchor_file = settings.anchor_file
    if anchor_file is None and settings.output_dir is not None:
        anchor_file = settings.output_dir / ANCHOR_FILE
    if anchor_file is not None:
        return load_or_create_anchor(anchor_file, default)
    return default


@dataclass(frozen=True)
class SimulatorEndpoints:
    """Where the running simulators are and the credentials a forwarder needs."""

    calendly_url: str | None
    google_url: str | None
    google_token_uri: str | None
    google_key_file: Path | None
    calendly_token_file: Path | None
    calendly_token: str | None
    organization: str | None
    delegated_admin: str | None
    start: float

    def as_json(self) -> dict[str, Any]:
        return {
            "calendly_url": self.calendly_url,
            "google_url": self.google_url,
            "google_token_uri": self.google_token_uri,
            "google_key_file": str(self.google_key_file) if self.google_key_file else None,
            "calendly_token_file": (
                str(self.calendly_token_file) if self.calendly_token_file else None
            ),
            "organization": self.organization,
            "delegated_admin": self.delegated_admin,
            "start": self.start,
        }


async def _start_app(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    bound_host, bound_port = runner.addresses[0][:2]
    if ":" in bound_host:
        bound_host = f"[{bound_host}]"
    return runner, f"http://{bound_host}:{bound_port}"


@asynccontextmanager
async def run_app(
    app: web.Application, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[str]:
    """Serve one simulator app (``port`` 0: ephemeral) and yield its base URL."""
    runner, url = await _start_app(app, host, port)
    try:
        yield url
    finally:
        await runner.cleanup()


class SimulatorServer:
    """Starts the enabled simulators on ``settings.host`` and stops them.

    ``async with SimulatorServer(settings, clock) as endpoints: ...``; the simulator
    objects are ``server.calendly`` / ``server.google`` (for faults, truth, injection).
    """

    def __init__(self, settings: SimulatorSettings, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.calendly: CalendlySimulator | None = None
        self.google: GoogleReportsSimulator | None = None
        self.endpoints: SimulatorEndpoints | None = None
        self._runners: list[web.AppRunner] = []
        self._temporary_dir: Path | None = None

    async def start(self) -> SimulatorEndpoints:
        settings = self.settings
        output_dir = settings.output_dir
        if output_dir is None:
            output_dir = self._temporary_dir = Path(tempfile.mkdtemp(prefix="forwarder-sim-"))
        ensure_private_directory(output_dir)
        start = resolve_start(settings, self.clock)
        calendly_url = google_url = token_uri = None
        key_file = token_file = None
        try:
            if settings.enable_calendly:
                self.calendly = CalendlySimulator(self._calendly_config(start), self.clock)
                runner, calendly_url = await _start_app(
                    self.calendly.app(), settings.host, settings.calendly_port
                )
                self._runners.append(runner)
                token_file = output_dir / CALENDLY_TOKEN_FILE
                replace_state_file(token_file, (self.calendly.config.token + "\n").encode())
            if settings.enable_google:
                key_file = output_dir / GOOGLE_KEY_FILE
                account = self._existing_account(key_file)
                self.google = GoogleReportsSimulator(
                    self._google_config(start), self.clock, account
                )
                runner, google_url = await _start_app(
                    self.google.app(), settings.host, settings.google_port
                )
                self._runners.append(runner)
                token_uri = google_url + TOKEN_ROUTE
                self.google.write_service_account_key(key_file, token_uri)
        except BaseException:
            await self.stop()
            raise
        self.endpoints = SimulatorEndpoints(
            calendly_url=calendly_url,
            google_url=google_url,
            google_token_uri=token_uri,
            google_key_file=key_file,
            calendly_token_file=token_file,
            calendly_token=self.calendly.config.token if self.calendly else None,
            organization=settings.organization if self.calendly else None,
            delegated_admin=settings.delegated_admin if self.google else None,
            start=start,
        )
        return self.endpoints

    def _existing_account(self, key_file: Path) -> ServiceAccount | None:
        if not (self.settings.reuse_google_key and key_file.exists()):
            return None
        try:
            return ServiceAccount.from_key_file(key_file)
        except (ValueError, KeyError, TypeError, orjson.JSONDecodeError):
            return None

    def _calendly_config(self, start: float) -> CalendlyConfig:
        s = self.settings
        return CalendlyConfig(
            start=start,
            seed=s.seed,
            rate_per_minute=s.calendly_rate_per_minute,
            end=s.end,
            token=s.resolved_calendly_token(),
            organization_uri=s.organization,
            rate_limit_per_minute=s.calendly_rate_limit,
            domain=s.domain,
            latency_seconds=s.calendly_latency,
        )

    def _google_config(self, start: float) -> GoogleConfig:
        s = self.settings
        return GoogleConfig(
            start=start,
            seed=s.seed,
            rate_per_minute=s.google_rate_per_minute,
            end=s.end,
            delegated_admin=s.delegated_admin,
            customer_id=s.customer_id,
            domain=s.domain,
            token_lifetime=s.google_token_lifetime,
            quota_per_minute=s.google_quota,
            min_lag=s.google_min_lag,
            max_lag=s.google_max_lag,
            late_fraction=s.google_late_fraction,
            late_lag=s.google_late_lag,
            latency_seconds=s.google_latency,
        )

    async def stop(self) -> None:
        runners, self._runners = self._runners, []
        for runner in reversed(runners):
            await runner.cleanup()
        if self._temporary_dir is not None:
            shutil.rmtree(self._temporary_dir, ignore_errors=True)
            self._temporary_dir = None

    async def __aenter__(self) -> SimulatorEndpoints:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()


async def serve_forever(
    settings: SimulatorSettings,
    stop_event: asyncio.Event,
    *,
    clock: Clock | None = None,
    out: TextIO | None = None,
) -> None:
    """Run the simulators until ``stop_event`` is set; print one JSON line on startup."""
    async with SimulatorServer(settings, clock) as endpoints:
        stream = out or sys.stdout
        stream.write(orjson.dumps(endpoints.as_json()).decode() + "\n")
        stream.flush()
        await stop_event.wait()


def _timestamp(value: str) -> float:
    try:
        return parse_rfc3339(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an RFC 3339 timestamp: {value!r}") from None


def _latency(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0.0 <= seconds <= 60.0:
        raise argparse.ArgumentTypeError(f"latency must be 0..60 seconds: {value!r}")
    return seconds


def _duration(value: str) -> float:
    """A duration as in the config: seconds, or ``90s``, ``5m``, ``6h``, ``1d``."""
    try:
        return parse_duration(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def build_arg_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``simulate`` flags to ``parser`` (an argparse subparser) and return it."""
    d = SimulatorSettings()
    add = parser.add_argument
    add("--seed", type=int, default=d.seed, help="dataset seed (same seed, same data)")
    add("--start", type=_timestamp, default=None, help="dataset start, RFC 3339")
    add("--anchor-file", type=Path, default=None, help="durable start anchor (demo restarts)")
    add(
        "--history",
        type=_duration,
        default=d.history,
        help="history before now: seconds or a duration (90s, 5m, 6h, 1d)",
    )
    add("--end", type=_timestamp, default=None, help="dataset end, RFC 3339 (default: live)")
    add("--calendly-rate", type=float, default=d.calendly_rate_per_minute, help="entries/min")
    add("--google-rate", type=float, default=d.google_rate_per_minute, help="activities/min")
    add("--google-min-lag", type=_duration, default=d.google_min_lag, help="duration (30s, 5m)")
    add("--google-max-lag", type=_duration, default=d.google_max_lag, help="duration (30s, 5m)")
    add("--google-late-fraction", type=float, default=d.google_late_fraction)
    add("--google-late-lag", type=_duration, default=d.google_late_lag, help="duration (30s, 5m)")
    add("--calendly-rate-limit", type=int, default=d.calendly_rate_limit, help="requests/min")
    add("--google-quota", type=int, default=d.google_quota, help="queries/min")
    add(
        "--calendly-latency",
        type=_latency,
        default=d.calendly_latency,
        help="seconds each Calendly request waits before it is answered (e.g. 0.15)",
    )
    add(
        "--google-latency",
        type=_latency,
        default=d.google_latency,
        help="seconds each Google request waits before it is answered (e.g. 0.15)",
    )
    add("--host", default=d.host)
    add("--calendly-port", type=int, default=d.calendly_port, help="0: ephemeral")
    add("--google-port", type=int, default=d.google_port, help="0: ephemeral")
    add("--output-dir", type=Path, default=None, help="where key and token files are written")
    add("--calendly-token", default=None, help="default: derived from the seed")
    add("--organization", default=d.organization, help="Calendly organization URI")
    add("--delegated-admin", default=d.delegated_admin, help="Google admin to impersonate")
    add("--customer-id", default=d.customer_id)
    add("--domain", default=d.domain)
    add("--google-token-lifetime", type=int, default=d.google_token_lifetime, help="seconds")
    add("--only", choices=("calendly", "google"), default=None, help="start only one simulator")
    return parser


def settings_from_args(args: argparse.Namespace) -> SimulatorSettings:
    """The :class:`SimulatorSettings` for arguments parsed by :func:`build_arg_parser`."""
    return SimulatorSettings(
        seed=args.seed,
        start=args.start,
        anchor_file=args.anchor_file,
        history=args.history,
        end=args.end,
        calendly_rate_per_minute=args.calendly_rate,
        google_rate_per_minute=args.google_rate,
        google_min_lag=args.google_min_lag,
        google_max_lag=args.google_max_lag,
        google_late_fraction=args.google_late_fraction,
        google_late_lag=args.google_late_lag,
        calendly_rate_limit=args.calendly_rate_limit,
        google_quota=args.google_quota,
        calendly_latency=args.calendly_latency,
        google_latency=args.google_latency,
        host=args.host,
        calendly_port=args.calendly_port,
        google_port=args.google_port,
        output_dir=args.output_dir,
        calendly_token=args.calendly_token,
        organization=args.organization,
        delegated_admin=args.delegated_admin,
        customer_id=args.customer_id,
        domain=args.domain,
        google_token_lifetime=args.google_token_lifetime,
        enable_calendly=args.only in (None, "calendly"),
        enable_google=args.only in (None, "google"),
    )
