"""Admin-console style messages: templates compiled once, rendered without ever failing.

A template is a format such as ``{actor} changed the title of {old_event_title} to
{event_title}``, compiled at import into literal/placeholder pairs so rendering an event
is a plain join. Placeholders are resolved from a mapping; a missing one renders as
:data:`UNKNOWN` rather than raising, since events often lack documented parameters.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from string import Formatter
from types import MappingProxyType
from typing import Any

import orjson

UNKNOWN = "(unknown)"

EMPTY_VALUES: Mapping[str, Any] = MappingProxyType({})
"""A ``fallback`` for :func:`render` when every value is in the first mapping."""

Template = tuple[tuple[str, str | None], ...]
"""``(literal text, placeholder name or None)`` pairs, in order."""


# What must never reach ``message`` raw: C0 and C1 controls and DEL (a newline forges a
# log line, ESC starts a terminal sequence), the bidirectional marks, embeddings,
# overrides and isolates (U+061C, U+200E/F, U+202A-E, U+2066-9: "Trojan Source" text that
# reads differently than it is), and the line/paragraph separators U+2028/9. Their raw
# values stay in the vendor fields and ``event.original``.
UNSAFE_CHARACTERS = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)
_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    character = match.group()
    short = _SHORT_ESCAPES.get(character)
    if short is not None:
        return short
    code = ord(character)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe_message(text: str) -> str:
    """``text`` with every :data:`UNSAFE_CHARACTERS` escaped (``\\n``, ``\\x1b``,
    ``\\u202e``): visible to an analyst, inert in a log viewer or terminal."""
    # Fast path: every unsafe character is non-printable (Cc, Cf, Zl, Zp), and isprintable
    # runs in C; most messages are printable and skip the regex.
    if text.isprintable():
        return text
    return UNSAFE_CHARACTERS.sub(_escape, text)


def compile_template(fmt: str) -> Template:
    """Split ``fmt`` into literal text and ``{name}`` placeholders (``{{``/``}}`` escape)."""
    return tuple((literal, name) for literal, name, _spec, _conv in Formatter().parse(fmt))


def placeholders(template: Template) -> tuple[str, ...]:
    """The placeholder names of ``template``, in order."""
    return tuple(name for _literal, name in template if name is not None)


def render(template: Template, values: Mapping[str, Any], fallback: Mapping[str, Any]) -> str:
    """Fill ``template`` from ``values``, then ``fallback``; anything missing is ``UNKNOWN``.

    Two mappings so that callers need not merge per event (e.g. the actor and IP address
    first, the event's parameters second).
    """
    parts: list[str] = []
    for literal, name in template:
        if literal:
            parts.append(literal)
        if name is not None:
            value = values.get(name)
            if value is None:
                value = fallback.get(name)
            # Most values are strings already: no call for them.
            parts.append(value if type(value) is str else render_value(value))
    return "".join(parts)


def render_value(value: Any) -> str:
    """A decoded value as message text: lists comma-joined, objects as JSON, None unknown."""
    if type(value) is str:
        return value
    if value is None:
        return UNKNOWN
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, list):
        return ", ".join(render_value(item) for item in value) if value else UNKNOWN
    if isinstance(value, Mapping):
        try:
            return orjson.dumps(value).decode()
        except TypeError:
            return UNKNOWN
    return str(value)
