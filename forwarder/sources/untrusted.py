"""What a source believes of the values its API sends.

The API is a peer, not an authority. Three of its values steer the source itself, and
each is bounded here:

- **waits** (``Retry-After`` in seconds or as an HTTP date, ``X-RateLimit-Reset``): a
  wait longer than ``max_retry_after`` is used capped (a peer once asked for 31.7 years);
  negative, NaN or unparsable values are ignored (the caller's default applies). The raw
  value is logged once per streak of capped values, counted
  (``forwarder_source_capped_values_total{kind="retry_after"}``), and while the request
  gate holds the source's requests a warning says so in ``/readyz``;
- **the API's clock** (its ``Date`` header): the offset to the host clock is measured
  (``forwarder_source_clock_offset_seconds``) but believed only up to
  ``max_clock_offset`` (a ``Date`` in year 9999 once made a poll plan 70 million
  windows), counted as ``kind="clock_offset"`` and shown as a warning while it lasts;
- **record times**: a cursor never passes the API's own now (host clock plus the
  believed offset): a cursor at year 9999 would skip every later record, and one a minute
  ahead would skip what other hosts stamp in that minute. A record dated after that now
  is real data and is delivered; one dated later than :data:`FUTURE_TOLERANCE` after it
  is flagged (``forwarder_source_future_events_total``, one warning log line per streak,
  a ``/readyz`` warning while such records keep coming back).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any

import orjson

from forwarder.clock import Clock
from forwarder.config.model import UntrustedApiLimits
from forwarder.observability.metrics import Metrics
from forwarder.sources.gate import RequestGate
from forwarder.timeutil import format_rfc3339

# How far past the API's now a record may be dated before it is flagged as from the
# future: the Date header has a one-second resolution, a response takes a moment to
# arrive, and an API's backend hosts disagree by a few seconds. A minute covers all of
# it. (The cursor itself stops at the API's now, tolerance or not.)
FUTURE_TOLERANCE = 60.0
# Date has a one-second resolution: smaller differences from our clock are noise.
CLOCK_NOISE = 2.0
# Prefix of the `seen` keys that remember a dead-lettered record (event ids are hex).
DEAD_LETTER_KEY_PREFIX = "dl:"


def parse_seconds(raw: str | None) -> float | None:
    """A header's non-negative, finite number of seconds (``inf`` is kept: it is a wait
    beyond any cap); ``None`` for anything else (absent, garbage, negative, NaN)."""
    if raw is None:
        return None
    try:
        value = float(raw.strip())
    except ValueError:
        return None
    if math.isnan(value) or value < 0:
        return None
    return value


def parse_http_date(raw: str | None) -> float | None:
    """Unix time of an HTTP date (``Date``, ``Retry-After``), ``None`` if it is not one."""
    if not raw:
        return None
    try:
        moment = parsedate_to_datetime(raw)
        value = moment.timestamp()
    except (TypeError, ValueError, OverflowError, IndexError):
        return None
    return value if math.isfinite(value) else None


def dead_letter_key(record: Any, occurrence: int = 0) -> str:
    """The ``seen`` key of a malformed record: a digest of its canonical JSON (plus its
    occurrence among identical records of one page, so two identical broken records on a
    page are two dead letters)."""
    try:
        canonical = orjson.dumps(record, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # e.g. an integer beyond 64 bits, kept as a Python int
        canonical = repr(record).encode("utf-8", "replace")
    digest = hashlib.sha256(canonical).hexdigest()[:32]
    return f"{DEAD_LETTER_KEY_PREFIX}{digest}" + (f"#{occurrence}" if occurrence else "")


class ApiBounds:
    """Bounds one source puts on its API's waits and clock, and its record times.

    Also keeps the source's warnings (``warnings()``), shown in ``/readyz`` while the
    condition holds.
    """

    def __init__(
        self,
        source_id: str,
        limits: UntrustedApiLimits,
        metrics: Metrics,
        clock: Clock,
        log: Any,
        gate: RequestGate,
    ) -> None:
        self.source_id = source_id
        self.max_retry_after = float(limits.max_retry_after)
        self.max_clock_offset = float(limits.max_clock_offset)
        self._metrics = metrics
        self._clock = clock
        self._log = log
        self._gate = gate
        self.offset = 0.0
        """The API's clock minus ours, as believed (capped at ``max_clock_offset``)."""
        self.measured_offset = 0.0
        """The same, as measured from the last ``Date`` header (not capped)."""
        self._warnings: dict[str, str] = {}
        self._capping_offset = False
        self._capping_wait = False
        self._capped_wait_raw: str | None = None
        self._future_streak = False
        self._future_in_poll = False
        # Exported at 0 from the start: an alert on increase() sees the first one.
        metrics.future_events.labels(source_id)
        for kind in ("retry_after", "clock_offset"):
            metrics.source_capped_values.labels(source_id, kind)

    # -- the API's clock ----------------------------------------------------------------

    def api_now(self) -> float:
        """Now on the API's clock, as far as it is believed."""
        return self._clock.now() + self.offset

    def future_ceiling(self) -> float:
        """Records dated after this are flagged as from the future."""
        return self.api_now() + FUTURE_TOLERANCE

    def observe_date(self, headers: Mapping[str, str], sent_at: float) -> None:
        """Measure the API's clock from a response's ``Date`` header (the request went
        out at ``sent_at`` on our clock)."""
        server = parse_http_date(headers.get("Date"))
        if server is None:
            return
        measured = server - (sent_at + self._clock.now()) / 2
        if abs(measured) <= CLOCK_NOISE:
            measured = 0.0
        self.measured_offset = measured
        self._metrics.clock_offset.labels(self.source_id).set(measured)
        limit = self.max_clock_offset
        if abs(measured) <= limit:
            self.offset = measured
            if self._capping_offset:
                self._capping_offset = False
                self._warnings.pop("clock_offset", None)
                self._log.info("api_clock_offset_within_bounds", offset=round(measured, 1))
            return
        self.offset = math.copysign(limit, measured)
        self._metrics.source_capped_values.labels(self.source_id, "clock_offset").inc()
        self._warnings["clock_offset"] = (
            f"the API's Date header is {measured:+.0f}s from this host's clock; only "
            f"{limit:.0f}s (max_clock_offset) is believed: check both clocks"
        )
        if not self._capping_offset:
            self._capping_offset = True
            self._log.warning(
                "api_clock_offset_capped",
                date=headers.get("Date"),
                measured_offset=round(measured, 1),
                max_clock_offset=limit,
            )

    # -- waits ----------------------------------------------------------------------------

    def wait(
        self,
        raw: str | None,
        default: float | None,
        *,
        header: str,
        http_date: bool = False,
        server_date: str | None = None,
    ) -> float | None:
        """Seconds to wait that the API asked for in ``raw`` (a ``header`` value), capped
        at ``max_retry_after``; ``default`` when absent or unusable. ``http_date``: the
        value may also be an HTTP date, counted from ``server_date`` (the response's
        ``Date``) or the API's now."""
        seconds = parse_seconds(raw)
        if seconds is None and http_date:
            when = parse_http_date(raw)
            if when is not None:
                reference = parse_http_date(server_date)
                seconds = max(0.0, when - (reference if reference is not None else self.api_now()))
        if seconds is None:
            if raw is not None:
                self._log.debug("api_wait_unusable", header=header, value=raw[:100])
            return default
        if seconds <= self.max_retry_after:
            if self._capping_wait:
                self._capping_wait = False
                self._capped_wait_raw = None
            return seconds
        self._metrics.source_capped_values.labels(self.source_id, "retry_after").inc()
        self._capped_wait_raw = raw[:100] if raw is not None else None
        if not self._capping_wait:
            self._capping_wait = True
            self._log.warning(
                "api_wait_capped",
                header=header,
                value=self._capped_wait_raw,
                max_retry_after=self.max_retry_after,
            )
        return self.max_retry_after

    # -- records from the future ------------------------------------------------------------

    def poll_started(self) -> None:
        self._future_in_poll = False

    def future_records(self, delivered: int, latest: float) -> None:
        """Records dated after :meth:`future_ceiling` were on a page (``delivered`` of them
        new, the others seen before); ``latest`` is the latest date among them."""
        self._future_in_poll = True
        if delivered:
            self._metrics.future_events.labels(self.source_id).inc(delivered)
        try:
            latest_text = format_rfc3339(latest)
        except (ValueError, OverflowError, OSError):
            latest_text = f"{latest:.0f}"
        self._warnings["future_events"] = (
            f"records dated after the API's own clock (latest {latest_text}) are in the log: "
            "delivered and counted, but they do not move the cursor"
        )
        if not self._future_streak:
            self._future_streak = True
            self._log.warning(
                "future_dated_records",
                latest=latest_text,
                delivered=delivered,
                api_now=round(self.api_now(), 3),
            )

    def poll_finished(self) -> None:
        """A poll completed: no future-dated record in it ends the streak."""
        if self._future_streak and not self._future_in_poll:
            self._future_streak = False
            self._warnings.pop("future_events", None)
            self._log.info("future_dated_records_gone")

    # -- what /readyz shows -------------------------------------------------------------------

    def warnings(self) -> dict[str, str]:
        current = dict(self._warnings)
        hold = self._gate.hold_remaining()
        if hold > 0:
            asked = (
                f" (the API asked for {self._capped_wait_raw}; capped at max_retry_after "
                f"{self.max_retry_after:.0f}s)"
                if self._capping_wait
                else ""
            )
            current["rate_limit_hold"] = (
                f"the API's rate limit holds every request for {hold:.0f}s more{asked}"
            )
        return current


class BoundedApiSource:
    """What a source shows of its :class:`ApiBounds` (``self.bounds``)."""

    bounds: ApiBounds

    @property
    def warnings(self) -> dict[str, str]:
        """See the Source protocol: computed on each read (a rate-limit hold ends)."""
        return self.bounds.warnings()

    @property
    def clock_offset(self) -> float:
        """The API's clock minus ours, as believed (capped at ``max_clock_offset``)."""
        return self.bounds.offset
