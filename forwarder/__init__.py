"""Streaming SIEM forwarder for Calendly and Google Workspace Calendar audit logs."""

from __future__ import annotations

__version__ = "0.1.0"
