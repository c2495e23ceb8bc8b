"""Simulators of the Calendly and Google Reports APIs, for the demo and the tests.

They follow the real contracts (auth, parameters, pagination, errors, rate limits, late
Google data) so code that passes against them works against the real services. Routes
under ``/_sim/`` are test helpers (faults, ground truth, stats), not part of either API.
"""

from forwarder.simulators.anchor import load_or_create_anchor
from forwarder.simulators.calendly import CalendlyConfig, CalendlySimulator
from forwarder.simulators.faults import FaultKind, FaultPlan
from forwarder.simulators.google import GoogleConfig, GoogleReportsSimulator
from forwarder.simulators.google_auth import ServiceAccount
from forwarder.simulators.server import (
    SimulatorEndpoints,
    SimulatorServer,
    SimulatorSettings,
    build_arg_parser,
    run_app,
    serve_forever,
    settings_from_args,
)

__all__ = [
    "CalendlyConfig",
    "CalendlySimulator",
    "FaultKind",
    "FaultPlan",
    "GoogleConfig",
    "GoogleReportsSimulator",
    "ServiceAccount",
    "SimulatorEndpoints",
    "SimulatorServer",
    "SimulatorSettings",
    "build_arg_parser",
    "load_or_create_anchor",
    "run_app",
    "serve_forever",
    "settings_from_args",
]
