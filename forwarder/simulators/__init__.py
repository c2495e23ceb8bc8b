"""Simulators of the Calendly and Google Reports APIs, for the demo and the tests."""
