"""The keys of the records a source has delivered, each with the time that decides when
it can be forgotten.

A source that reads a stretch of the log more than once (Google's re-scans) keeps the
key of every record it delivered for as long as a later read can return that record
again; once every later read starts after a record's time, its key goes. At 100 events
a second a three-hour re-scan window holds about a million keys, so memory per key
matters. Keys are kept by the minute of their time (a *bucket*):

- a 16-byte digest (Google's activity keys, by far the most) costs 16 bytes: each
  bucket holds its digests sorted in one ``bytes`` (binary search), plus a small set of
  the latest additions, merged in once it has :data:`MERGE_AT` of them. A Python dict of
  ``bytes -> float`` costs ~140 bytes a key (a million keys: 140 MB instead of ~17 MB).
  Looking one up takes its time, which the caller has (the record's own date);
- any other key (an event id of an earlier release, a dead-letter digest ``dl:...``)
  is a plain dict entry with its exact time: few of them, or only for one settle window
  after an upgrade.

Expiring walks whole buckets from the oldest (a heap of bucket numbers), never the whole
map. A bucket goes once its *end* is before the expiry, so a key may outlive its expiry
by up to a bucket: keeping a key longer only costs memory, forgetting it early would
deliver the record twice. For the same reason the time reported for a digest
(:meth:`SeenKeys.items`) is the last instant of its minute, never earlier than its own.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Iterator

from forwarder.checkpoint.base import SeenKey

BUCKET_SECONDS = 60.0
DIGEST_BYTES = 16
# Digests added to a bucket since its last merge; merging costs the bucket's size.
MERGE_AT = 256


class _Bucket:
    """The keys of one minute: sorted digests, recent digests, other keys."""

    __slots__ = ("digests", "others", "recent")

    def __init__(self) -> None:
        self.digests = b""
        self.recent: set[bytes] = set()
        self.others: list[SeenKey] = []

    def has_digest(self, key: bytes) -> bool:
        if key in self.recent:
            return True
        digests = self.digests
        low, high = 0, len(digests) // DIGEST_BYTES
        while low < high:
            middle = (low + high) // 2
            offset = middle * DIGEST_BYTES
            probe = digests[offset : offset + DIGEST_BYTES]
            if probe < key:
                low = middle + 1
            elif probe > key:
                high = middle
            else:
                return True
        return False

    def merge(self) -> None:
        keys = set(self.recent)
        digests = self.digests
        keys.update(digests[i : i + DIGEST_BYTES] for i in range(0, len(digests), DIGEST_BYTES))
        self.digests = b"".join(sorted(keys))
        self.recent = set()

    def digest_list(self) -> list[bytes]:
        digests = self.digests
        return [digests[i : i + DIGEST_BYTES] for i in range(0, len(digests), DIGEST_BYTES)] + list(
            self.recent
        )


class SeenKeys:
    """Delivered record keys, expiring by time (see the module docstring)."""

    __slots__ = ("_bucket_ids", "_buckets", "_digests", "others")

    def __init__(self, items: Iterable[tuple[SeenKey, float]] = ()) -> None:
        self._buckets: dict[int, _Bucket] = {}
        self._bucket_ids: list[int] = []
        self._digests = 0
        self.others: dict[SeenKey, float] = {}
        """Keys that are not 16-byte digests, and their times (looked up without one)."""
        self.update(items)

    def _bucket(self, when: float) -> _Bucket:
        number = _bucket_number(when)
        bucket = self._buckets.get(number)
        if bucket is None:
            bucket = self._buckets[number] = _Bucket()
            heapq.heappush(self._bucket_ids, number)
        return bucket

    def known(self, key: SeenKey, when: float) -> bool:
        """Whether ``key``, of a record dated ``when``, is kept."""
        if type(key) is bytes and len(key) == DIGEST_BYTES:
            bucket = self._buckets.get(_bucket_number(when))
            return bucket is not None and bucket.has_digest(key)
        return key in self.others

    def add(self, key: SeenKey, when: float) -> None:
        """Remember ``key`` until the expiry passes ``when`` (its record's date)."""
        if self.known(key, when):
            return
        bucket = self._bucket(when)
        if type(key) is bytes and len(key) == DIGEST_BYTES:
            bucket.recent.add(key)
            self._digests += 1
            if len(bucket.recent) >= MERGE_AT:
                bucket.merge()
            return
        self.others[key] = when
        bucket.others.append(key)

    def update(self, items: Iterable[tuple[SeenKey, float]]) -> None:
        """Add many keys (a restore): each bucket is sorted once."""
        touched: set[int] = set()
        for key, when in items:
            if type(key) is bytes and len(key) == DIGEST_BYTES:
                number = _bucket_number(when)
                bucket = self._bucket(when)
                if key not in bucket.recent:
                    bucket.recent.add(key)
                    self._digests += 1
                    touched.add(number)
            else:
                self.add(key, when)
        for number in touched:
            bucket = self._buckets[number]
            before = len(bucket.digests) // DIGEST_BYTES + len(bucket.recent)
            bucket.merge()
            # A digest both already sorted in and given again was counted twice.
            self._digests -= before - len(bucket.digests) // DIGEST_BYTES

    def expire_before(self, when: float) -> int:
        """Forget the keys of every bucket that ends at or before ``when``; returns how
        many keys went."""
        dropped = 0
        ids = self._bucket_ids
        while ids and (ids[0] + 1) * BUCKET_SECONDS <= when:
            bucket = self._buckets.pop(heapq.heappop(ids))
            digests = len(bucket.digests) // DIGEST_BYTES + len(bucket.recent)
            self._digests -= digests
            dropped += digests
            for key in bucket.others:
                if self.others.pop(key, None) is not None:
                    dropped += 1
        return dropped

    def __len__(self) -> int:
        return self._digests + len(self.others)

    def __iter__(self) -> Iterator[SeenKey]:
        return (key for key, _ in self.items())

    def items(self) -> Iterator[tuple[SeenKey, float]]:
        """Every key with a time no earlier than its record's and in the same minute (a
        digest: the last instant of its minute), in the shape a restore takes."""
        for number, bucket in self._buckets.items():
            last = math.nextafter((number + 1) * BUCKET_SECONDS, -math.inf)
            for key in bucket.digest_list():
                yield key, last
        yield from self.others.items()

    def values(self) -> Iterator[float]:
        return (when for _, when in self.items())


def _bucket_number(when: float) -> int:
    if not math.isfinite(when):
        # Only a record dated beyond any calendar could have such a time: kept in the
        # last bucket there is, i.e. for as long as the process lives.
        return 2**62 if when > 0 else -(2**62)
    return math.floor(when / BUCKET_SECONDS)
