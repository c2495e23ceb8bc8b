"""A durable start time for the demo dataset.

The demo simulator serves "history since the anchor plus whatever happened since". The
anchor is written once and read back on every restart, so the dataset (whose entries are
a function of seed, anchor and rate) stays the same and a restarted forwarder resumes
against the data it already saw instead of a reshuffled one.
"""

from __future__ import annotations

import os
from pathlib import Path

import orjson

from forwarder.checkpoint.safefile import (
    ensure_private_directory,
    read_state_file,
    replace_state_file,
)
from forwarder.timeutil import format_rfc3339


def load_or_create_anchor(path: Path, default: float) -> float:
    """Return the anchor stored in ``path``, writing ``default`` there first if it is absent.

    Raises ``ValueError`` when the file exists but does not hold an anchor: silently
    replacing it would change the whole dataset.
    """
    path = Path(path)
    if os.path.lexists(path):
        # Read without following a link (an UnsafeStateFileError says what is wrong).
        try:
            data = orjson.loads(read_state_file(path))
            return float(data["anchor"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path} does not hold a simulator anchor: {exc}") from None
    ensure_private_directory(path.parent)
    body = orjson.dumps({"anchor": default, "anchor_rfc3339": format_rfc3339(default, 6)})
    # Write then rename so a crash never leaves a half-written anchor behind.
    replace_state_file(path, body + b"\n")
    return float(default)
