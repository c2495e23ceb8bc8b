"""The key that identifies a Google activity without normalizing it.

A re-read activity must be recognized before any document is built for it: building
them is what the source spends its CPU on. Google identifies an activity by ``id.time``
and ``id.uniqueQualifier`` (its own de-duplication key, see
:mod:`forwarder.schema.ids`), within one customer (``id.customerId``). The key is a
16-byte BLAKE2b digest of those three values as a JSON array (unambiguous whatever they
hold): 128 bits, so two activities of one settle window never collide in practice, and
small enough to keep a million of them (a large domain's three hours) in memory and in
the state store.

Google's activities do not change once reported (the audit log is append-only); an
activity whose identity cannot be read (``id`` missing or not an object, ``id.time`` or
``id.uniqueQualifier`` not a string) has no key: it is normalized, which rejects it as
malformed, and dead-lettered once.
"""

from __future__ import annotations

from hashlib import blake2b
from typing import Any

import orjson

from forwarder.schema.errors import MalformedRecordError
from forwarder.schema.times import event_time

KEY_BYTES = 16


def activity_identity(activity: Any) -> tuple[bytes, float] | None:
    """The activity's key and its time (``id.time``, Unix seconds: where its key is
    kept), or ``None`` when its identity cannot be read."""
    if type(activity) is not dict:
        return None
    ident = activity.get("id")
    if type(ident) is not dict:
        return None
    time = ident.get("time")
    unique_qualifier = ident.get("uniqueQualifier")
    if type(time) is not str or type(unique_qualifier) is not str:
        return None
    try:
        when = event_time(time, "id.time")[0]
        canonical = orjson.dumps([time, unique_qualifier, ident.get("customerId")])
    except (MalformedRecordError, TypeError):
        # Not a time (normalizing rejects it), or a customerId orjson cannot encode (an
        # integer beyond 64 bits).
        return None
    return blake2b(canonical, digest_size=KEY_BYTES).digest(), when


def activity_key(activity: Any) -> bytes | None:
    """The activity's key, or ``None`` when its identity cannot be read."""
    identity = activity_identity(activity)
    return None if identity is None else identity[0]
