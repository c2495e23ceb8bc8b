"""The small parsers and guards the sources put between an API's values and their state."""

from __future__ import annotations

import tracemalloc

import orjson
import pytest

from forwarder.sources.base import MalformedResponseError, PaginationLoopError
from forwarder.sources.http import PARSED_VALUE_BYTES, parsed_size_estimate
from forwarder.sources.paging import MAX_PAGE_TOKEN_LENGTH, PageGuard
from forwarder.sources.untrusted import dead_letter_key, parse_http_date, parse_seconds


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("30", 30.0),
        (" 1.5 ", 1.5),
        ("0", 0.0),
        ("1e9", 1e9),
        ("inf", float("inf")),
        ("1e999", float("inf")),
        ("-1", None),
        ("-inf", None),
        ("nan", None),
        ("", None),
        ("soon", None),
        (None, None),
    ],
)
def test_parse_seconds(raw: str | None, expected: float | None) -> None:
    assert parse_seconds(raw) == expected


def test_parse_http_date() -> None:
    assert parse_http_date("Thu, 01 Jan 1970 00:01:00 GMT") == 60.0
    assert parse_http_date("Fri, 31 Dec 9999 23:59:59 GMT") == 253402300799.0
    for garbage in ("", None, "yesterday", "Mon, 99 Foo 2020 99:99:99 GMT", "1e9"):
        assert parse_http_date(garbage) is None


def test_dead_letter_key_is_canonical_and_counts_occurrences() -> None:
    assert dead_letter_key({"a": 1, "b": [2]}) == dead_letter_key({"b": [2], "a": 1})
    assert dead_letter_key({"a": 1}) != dead_letter_key({"a": 2})
    assert dead_letter_key({"a": 1}, 1) != dead_letter_key({"a": 1})
    # Beyond what orjson encodes: still a key, never a crash.
    assert dead_letter_key({"a": 2**80}).startswith("dl:")


def test_page_guard_allows_exactly_the_budget() -> None:
    guard = PageGuard(3, "w")
    guard.check([1], "a")
    guard.check([2], "b")
    guard.check([3], None)  # the third and last page
    over = PageGuard(3, "w")
    over.check([1], "a")
    over.check([2], "b")
    with pytest.raises(PaginationLoopError, match="more than 3 pages"):
        over.check([3], "c")


def test_page_guard_refuses_a_repeated_token_and_repeated_records() -> None:
    guard = PageGuard(100, "w")
    guard.check([1], "a")
    guard.check([2], "b")
    with pytest.raises(PaginationLoopError, match="already followed"):
        guard.check([3], "a")
    same = PageGuard(100, "w")
    same.check([{"id": 1}], "a")
    with pytest.raises(PaginationLoopError, match="repeats the records"):
        same.check([{"id": 1}], "b")
    # Empty pages with fresh tokens are legitimate (Google sends them); the budget bounds them.
    empty = PageGuard(100, "w")
    for n in range(10):
        empty.check([], f"t{n}")


def test_page_guard_refuses_a_huge_token() -> None:
    with pytest.raises(MalformedResponseError):
        PageGuard(10, "w").check([1], "x" * (MAX_PAGE_TOKEN_LENGTH + 1))


def test_parsed_size_estimate_bounds_what_parsing_takes() -> None:
    for document in ({"a": [{}] * 10_000}, {"a": ["ab"] * 10_000}, {"a": [1.5] * 10_000}):
        body = orjson.dumps(document)
        tracemalloc.start()
        parsed = orjson.loads(body)
        used, _ = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        del parsed
        assert used <= parsed_size_estimate(body)
        assert parsed_size_estimate(body) >= len(body) + PARSED_VALUE_BYTES * 10_000
