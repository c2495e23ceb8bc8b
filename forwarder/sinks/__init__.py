"""Sinks: destinations for normalized events, each acknowledging what it durably accepted."""
