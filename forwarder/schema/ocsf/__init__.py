"""OCSF 1.7.0 output: the normalized events as Open Cybersecurity Schema Framework events.

:func:`to_ocsf` maps one :class:`~forwarder.events.Event` (its ECS document) to an OCSF
event; the class and activity of every source event are in :mod:`.mapping`, the one
table to review. Modules:

- ``mapping``: source event -> OCSF class, activity, outcome; and why.
- ``classes``: the OCSF ids and captions used (checked against the schema by the tests).
- ``google`` / ``calendly``: the per-provider builders; ``common``: shared helpers.
- ``validate``: offline validation against the official schema JSON (tests and tooling;
  runtime code never loads a schema).

Like the ECS documents, OCSF events share unmodified subtrees (``details``,
``resourceDetails``...) with the source record: treat them as read-only.
"""

from __future__ import annotations

from typing import Any

from forwarder.events import Event
from forwarder.schema.calendly import PROVIDER as CALENDLY
from forwarder.schema.google_calendar import PROVIDER as GOOGLE_CALENDAR
from forwarder.schema.ocsf.calendly import calendly_to_ocsf
from forwarder.schema.ocsf.classes import OCSF_VERSION
from forwarder.schema.ocsf.common import as_object
from forwarder.schema.ocsf.google import google_to_ocsf

__all__ = ["OCSF_VERSION", "to_ocsf"]


def to_ocsf(event: Event, *, raw_data: bool = True) -> dict[str, Any]:
    """``event`` as an OCSF 1.7.0 event (a fresh dict, ready for ``orjson.dumps``).

    Never raises for an event the normalizers produced, mapped or not: unknown events get
    a generic class. ``raw_data`` adds the source record's JSON (ECS ``event.original``).
    Raises ValueError only for an event of another provider.
    """
    if event.provider == GOOGLE_CALENDAR:
        out = google_to_ocsf(event)
    elif event.provider == CALENDLY:
        out = calendly_to_ocsf(event)
    else:
        raise ValueError(f"no OCSF mapping for provider {event.provider!r}")
    if raw_data:
        original = as_object(event.document.get("event")).get("original")
        if type(original) is str:
            out["raw_data"] = original
    return out
