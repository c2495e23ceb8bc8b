"""The NDJSON format of ``forwarder cursors export`` / ``import``: one line per source.

A line holds everything a replica needs to resume the source exactly where another one
stopped (resharding, moving a source to another replica or state directory)::

    {"format": "forwarder-cursor", "version": 1, "source": "cal", "type": "calendly",
     "committed_at": 1764499200.5, "cursor": {...},
     "seen": [["<event id>", <time>], ...], "seen_digests": [["<base64>", <time>], ...]}

``seen`` holds the keys that are event ids (text), ``seen_digests`` the compact binary
digests (base64): a key comes back with its own type, so an imported source drops
exactly the duplicates the exporting one would have dropped. Times are the expiry times
of the state database, written by orjson as the shortest float that reads back equal.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from forwarder.checkpoint.base import SeenKey
from forwarder.checkpoint.sqlite import ExportedState

FORMAT_NAME = "forwarder-cursor"
FORMAT_VERSION = 1


class TransferFormatError(ValueError):
    """A line of an export cannot be imported: the message names the line and the fix."""


def encode_state(state: ExportedState, source_type: str) -> bytes:
    """One export line (without its newline)."""
    text: list[list[Any]] = []
    digests: list[list[Any]] = []
    for key, when in state.seen.items():
        if isinstance(key, bytes):
            digests.append([base64.b64encode(key).decode("ascii"), when])
        else:
            text.append([key, when])
    return orjson.dumps(
        {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "source": state.source,
            "type": source_type,
            "committed_at": state.committed_at,
            "cursor": state.cursor,
            "seen": text,
            "seen_digests": digests,
        }
    )


def decode_lines(
    lines: Iterable[bytes], source_types: Mapping[str, str]
) -> list[tuple[ExportedState, str]]:
    """Every source of an export, each with its line's type, checked against the config
    (``source_types``: source id -> type). Blank lines are skipped. Raises
    :class:`TransferFormatError` on the first problem, naming its line number: nothing
    is returned (so nothing imported) unless every line is good."""
    decoded: list[tuple[ExportedState, str]] = []
    first_line: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            state, source_type = _decode(line)
        except TransferFormatError as error:
            raise TransferFormatError(f"line {number}: {error}") from None
        if state.source not in source_types:
            raise TransferFormatError(
                f"line {number}: source {state.source!r} is not in the config (its sources: "
                f"{', '.join(source_types)}); add it to the config first"
            )
        if source_types[state.source] != source_type:
            raise TransferFormatError(
                f"line {number}: source {state.source!r} is a {source_type} source in the "
                f"export but a {source_types[state.source]} source in the config"
            )
        if state.source in first_line:
            raise TransferFormatError(
                f"line {number}: source {state.source!r} is already on line "
                f"{first_line[state.source]}"
            )
        first_line[state.source] = number
        decoded.append((state, source_type))
    return decoded


def _decode(line: bytes) -> tuple[ExportedState, str]:
    try:
        document = orjson.loads(line)
    except orjson.JSONDecodeError as error:
        raise TransferFormatError(f"not valid JSON ({error})") from None
    if not isinstance(document, dict):
        raise TransferFormatError("not a JSON object")
    if document.get("format") != FORMAT_NAME:
        raise TransferFormatError(f"not a `forwarder cursors export` line (format {FORMAT_NAME!r})")
    if document.get("version") != FORMAT_VERSION:
        raise TransferFormatError(
            f"format version {document.get('version')!r}; this release reads {FORMAT_VERSION}"
        )
    source = document.get("source")
    source_type = document.get("type")
    cursor = document.get("cursor")
    committed_at = document.get("committed_at")
    if not isinstance(source, str) or not source:
        raise TransferFormatError("'source' is not a source id")
    if not isinstance(source_type, str):
        raise TransferFormatError("'type' is not a source type")
    if not isinstance(cursor, dict) or "seen" in cursor:
        raise TransferFormatError("'cursor' is not an object of cursor fields")
    if not _is_time(committed_at):
        raise TransferFormatError("'committed_at' is not a time")
    seen: dict[SeenKey, float] = {}
    for field, binary in (("seen", False), ("seen_digests", True)):
        entries = document.get(field, [])
        if not isinstance(entries, list):
            raise TransferFormatError(f"{field!r} is not a list")
        for entry in entries:
            if (
                not isinstance(entry, list)
                or len(entry) != 2
                or not isinstance(entry[0], str)
                or not _is_time(entry[1])
            ):
                raise TransferFormatError(f"{field!r} has an entry that is not [key, time]")
            key: SeenKey = entry[0]
            if binary:
                try:
                    key = base64.b64decode(entry[0], validate=True)
                except (binascii.Error, ValueError):
                    raise TransferFormatError(f"{field!r} has a key that is not base64") from None
            seen[key] = float(entry[1])
    return ExportedState(source, cursor, seen, float(committed_at)), source_type


def _is_time(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
