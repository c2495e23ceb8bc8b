"""Audit-log sources: pollers that turn SaaS API pages into batches of normalized events."""
