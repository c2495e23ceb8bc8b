"""Syslog field rules shared by the encoders: codes, severity, header field and
structured-data escaping, UTF-8-safe truncation (RFC 5424 sections 6.2, 6.3, 6.4)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from forwarder.config.model import SYSLOG_FACILITIES, SYSLOG_SEVERITIES

NILVALUE = "-"
BOM = b"\xef\xbb\xbf"

FACILITY_CODES: Mapping[str, int] = {name: code for code, name in enumerate(SYSLOG_FACILITIES)}
SEVERITY_CODES: Mapping[str, int] = {name: code for code, name in enumerate(SYSLOG_SEVERITIES)}
WARNING, NOTICE, INFO = SEVERITY_CODES["warning"], SEVERITY_CODES["notice"], SEVERITY_CODES["info"]

# RFC 5424 header field limits (section 6).
HOSTNAME_MAX = 255
APP_NAME_MAX = 48
PROCID_MAX = 128
MSGID_MAX = 32

# Severity `auto`: a failure is a warning; a change to who may do what (iam) or to how
# things are set up (configuration) is a notice; anything else (reads, look-ups,
# notifications) is info.
CHANGE_CATEGORIES = frozenset({"iam", "configuration"})
CHANGE_TYPES = frozenset({"creation", "deletion", "change"})

# Header fields are PRINTUSASCII (33..126): anything else (space, control, non-ASCII)
# becomes '_' so that the field stays one token and the message stays parseable.
_NOT_PRINTABLE = re.compile(r"[^!-~]")
HEADER_REPLACEMENT = "_"


def escaper(escapes: Mapping[str, str]) -> Callable[[str], str]:
    """A function replacing each key of ``escapes`` by its value. Most values contain none
    of them: one regex scan finds that, and only the others are translated."""
    table = str.maketrans(dict(escapes))
    special = re.compile("[" + re.escape("".join(escapes)) + "]")

    def escape(text: str) -> str:
        return text.translate(table) if special.search(text) else text

    return escape


# Characters no receiver may see raw inside a message: every C0 and C1 control, DEL, and
# the Unicode line and paragraph separators (NUL ends a C string, CR, LF, U+0085, U+2028
# and U+2029 end a line for some parsers, TAB splits fields). Inside structured data, CEF
# and LEEF each becomes a backslash escape in the JSON style: LF `\n`, CR `\r`, TAB `\t`,
# any other `\u` and four hex digits (NUL `\u0000`, NEL `\u0085`, U+2028 `\u2028`).
# Those formats escape a literal backslash as `\\`, so the escapes cannot be confused with
# text.
CONTROL_CHARACTERS = "".join(
    chr(code) for code in (*range(0x20), 0x7F, *range(0x80, 0xA0), 0x2028, 0x2029)
)
CONTROL_ESCAPES: Mapping[str, str] = {
    **{char: f"\\u{ord(char):04x}" for char in CONTROL_CHARACTERS},
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
}

# PARAM-VALUE: '"', '\' and ']' MUST be escaped (section 6.3.3); control characters are
# escaped as above (RFC 5424 has no escape of its own for them, and a receiver keeps a
# backslash before any other character as it is); everything else is UTF-8.
sd_value = escaper({**CONTROL_ESCAPES, '"': '\\"', "\\": "\\\\", "]": "\\]"})
# SD-NAME: PRINTUSASCII except '=', ' ', ']' and '"', 1 to 32 characters (section 6.3.2).
_SD_NAME = re.compile(r"[!#-<>-\\^-~]{1,32}")


def auto_severity(document: Mapping[str, Any]) -> int:
    """The severity of an event from its ECS ``event.outcome`` / ``category`` / ``type``."""
    event = document.get("event")
    if not isinstance(event, Mapping):
        return INFO
    if event.get("outcome") == "failure":
        return WARNING
    categories = event.get("category")
    types = event.get("type")
    if (
        isinstance(categories, list)
        and isinstance(types, list)
        and not CHANGE_CATEGORIES.isdisjoint(categories)
        and not CHANGE_TYPES.isdisjoint(types)
    ):
        return NOTICE
    return INFO


def header_field(text: str | None, limit: int) -> str:
    """``text`` as an RFC 5424 header field: printable US-ASCII, at most ``limit``
    characters, NILVALUE when empty."""
    if not text:
        return NILVALUE
    return _NOT_PRINTABLE.sub(HEADER_REPLACEMENT, text[:limit])


def is_sd_name(text: str) -> bool:
    return _SD_NAME.fullmatch(text) is not None


def cut_utf8(data: bytes, limit: int) -> bytes:
    """At most ``limit`` bytes of ``data``, never ending inside a UTF-8 character."""
    if len(data) <= limit:
        return data
    end = limit
    # data[end] is the first byte left out: while it continues a character (10xxxxxx),
    # that character started before the cut, so cut before its first byte instead.
    while end > 0 and data[end] & 0xC0 == 0x80:
        end -= 1
    return data[:end]
