"""Durable per-source cursors."""
