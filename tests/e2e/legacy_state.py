"""What the release before the SQLite store kept in its checkpoint files, computed from
the simulators' ground truth, for the tests of the upgrade (a module on the tests'
``pythonpath``, shared by tests/sources and tests/e2e).

Earlier releases wrote one JSON file per source, ``<state_dir>/checkpoints/<source>.json``,
holding the whole state; ``FileCheckpointStore`` (unchanged) is their writer. Both
functions were checked against the release before this one (commit c806c11): equal to its
checkpoints after every batch of a Calendly read (sequential and parallel, ties at the
cut) and after each of 30 Google polls with 10 % of the activities reported late.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from forwarder.schema.ids import (
    calendly_event_key,
    google_activity_event_keys,
    legacy_google_event_key,
)
from forwarder.sources.untrusted import dead_letter_key
from forwarder.timeutil import format_rfc3339, parse_rfc3339


def legacy_calendly(delivered: Iterable[dict[str, Any]], overlap: float = 5.0) -> dict[str, Any]:
    """The Calendly checkpoint once ``delivered`` was delivered (entries as the API shows
    them; one without a namespace is malformed, and was dead-lettered): the newest time,
    and the keys no older than ``overlap`` before it."""
    entries = list(delivered)
    cursor = max(parse_rfc3339(entry["occurred_at"]) for entry in entries)
    seen: dict[str, float] = {}
    for entry in entries:
        when = parse_rfc3339(entry["occurred_at"])
        if when >= cursor - overlap:
            key = calendly_event_key(entry["uri"]) if "namespace" in entry else None
            seen[key or dead_letter_key(entry)] = when
    return {"cursor": format_rfc3339(cursor, 6), "seen": seen}


def google_ids(activity: dict[str, Any]) -> list[str]:
    """The event ids of one activity (today's: what the sinks receive)."""
    return google_activity_event_keys(activity) if activity.get("events") else []


def legacy_google_ids(activity: dict[str, Any]) -> list[str]:
    """The event ids releases before issue 17 gave one activity (by position in
    ``events[]``): what their checkpoints hold in ``seen``."""
    ident = activity["id"]
    return [
        legacy_google_event_key(ident["time"], ident["uniqueQualifier"], index)
        for index in range(len(activity.get("events") or []))
    ]


def legacy_google(
    records: Iterable[dict[str, Any]],
    scanned_at: float,
    *,
    settle_window: float = 10800.0,
    end_margin: float = 5.0,
) -> tuple[dict[str, Any], Counter[str]]:
    """The Google checkpoint after a poll at ``scanned_at`` that read everything up to
    ``scanned_at - end_margin`` (the watermark; ``final_before`` a settle window before
    the poll; the ids of the events delivered since, as that release computed them), and
    the events delivered by then: every one the API showed, counted by today's id (what
    the release after the upgrade delivers). ``records``: the simulator's ground truth
    (``{"activity", "visible_at_unix"}``)."""
    watermark = scanned_at - end_margin
    final_before = scanned_at - settle_window
    seen: dict[str, float] = {}
    delivered: Counter[str] = Counter()
    for record in records:
        activity = record["activity"]
        when = parse_rfc3339(activity["id"]["time"])
        if when >= watermark or record["visible_at_unix"] > scanned_at:
            continue
        delivered.update(google_ids(activity))
        if when >= final_before:
            for key in legacy_google_ids(activity):
                seen[key] = when
    checkpoint = {
        "watermark": watermark,
        "watermark_time": format_rfc3339(watermark),
        "final_before": final_before,
        "seen": seen,
    }
    return checkpoint, delivered
