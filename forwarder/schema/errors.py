"""The one error a normalizer raises: a record that cannot be identified or timed."""

from __future__ import annotations

# Reason codes are metric labels and dead-letter reasons: keep the set small and fixed.
NOT_AN_OBJECT = "not_an_object"
MISSING_FIELD = "missing_field"
INVALID_TYPE = "invalid_type"
INVALID_VALUE = "invalid_value"
INVALID_TIMESTAMP = "invalid_timestamp"
INVALID_JSON = "invalid_json"
UNSERIALIZABLE = "unserializable"

REASONS = frozenset(
    {
        NOT_AN_OBJECT,
        MISSING_FIELD,
        INVALID_TYPE,
        INVALID_VALUE,
        INVALID_TIMESTAMP,
        INVALID_JSON,
        UNSERIALIZABLE,
    }
)


class MalformedRecordError(ValueError):
    """A raw API record that cannot become an event (it goes to the dead-letter path).

    ``reason`` is a short code from :data:`REASONS` (``missing_field``, ``invalid_type``,
    ``invalid_timestamp``, ...), safe to use as a metric label; ``detail`` is human text
    naming the offending field.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail

    def __reduce__(self) -> tuple[type[MalformedRecordError], tuple[str, str]]:
        # The default pickling replays ``args`` (one string) into a two-argument __init__.
        return (type(self), (self.reason, self.detail))
