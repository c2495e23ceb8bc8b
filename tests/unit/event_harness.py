"""Small numbered events for sink tests: the ``n`` of each is in its document."""

from __future__ import annotations

from forwarder.events import Event


def numbered_event(n: int) -> Event:
    """Event ``n``: id ``id<n>``, time ``n``, document ``{"event": {"id": ...}, "n": n}``."""
    return Event(
        id=f"id{n}",
        timestamp=float(n),
        provider="test",
        action="a",
        document={"event": {"id": f"id{n}"}, "n": n},
        raw={"raw": n},
    )
