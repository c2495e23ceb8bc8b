"""``normalize_payload``: API pages, JSON arrays and NDJSON, with per-record failures."""

from __future__ import annotations

import orjson
import pytest

from forwarder.schema.normalize_stream import PROVIDERS, normalize_payload

from .builders import INGESTED, activity, calendly_entry, gevent


def _ndjson(*lines: object) -> bytes:
    return b"\n".join(line if isinstance(line, bytes) else orjson.dumps(line) for line in lines)


def test_providers() -> None:
    assert set(PROVIDERS) == {"calendly", "google_calendar"}


def test_google_page() -> None:
    page = {
        "kind": "admin#reports#activities",
        "etag": '"e"',
        "items": [
            activity(gevent("create_event"), gevent("delete_event"), unique_qualifier="1"),
            activity(gevent("change_calendar_acls"), unique_qualifier="2"),
        ],
        "nextPageToken": "tok",
    }
    events, failures = normalize_payload("google_calendar", orjson.dumps(page), ingested=INGESTED)
    assert failures == []
    assert [e.action for e in events] == ["create_event", "delete_event", "change_calendar_acls"]
    assert all(e.document["event"]["ingested"] == INGESTED for e in events)


def test_google_page_without_items() -> None:
    # Google leaves `items` out when a page has no results.
    page = {"kind": "admin#reports#activities", "etag": '"e"'}
    assert normalize_payload("google_calendar", orjson.dumps(page), ingested=INGESTED) == ([], [])


def test_calendly_page_with_a_bad_entry() -> None:
    bad = calendly_entry(uri="https://api.calendly.com/a/2")
    del bad["occurred_at"]
    page = {
        "collection": [calendly_entry(), bad, calendly_entry("Login", "Failed", uri="u3")],
        "pagination": {"count": 3, "next_page": None, "next_page_token": None},
        "total_count": 3,
    }
    events, failures = normalize_payload("calendly", orjson.dumps(page), ingested=INGESTED)
    assert [e.action for e in events] == ["API.Token_Created", "Login.Failed"]
    [(record, error)] = failures
    assert record == bad
    assert error.reason == "missing_field"


def test_ndjson_with_one_bad_line() -> None:
    data = _ndjson(
        calendly_entry(uri="u1"),
        b"",
        b'{"uri": "u2", "occurred_at": ',  # truncated
        b"   ",
        calendly_entry(uri="u3"),
    )
    data += b"\r\n\n"
    events, failures = normalize_payload("calendly", data, ingested=INGESTED)
    assert [e.document["calendly"]["uri"] for e in events] == ["u1", "u3"]
    [(record, error)] = failures
    assert error.reason == "invalid_json"
    assert record == '{"uri": "u2", "occurred_at": '
    assert error.detail.startswith("line 3:")


def test_ndjson_line_that_is_valid_json_but_not_a_record() -> None:
    data = _ndjson(activity(gevent("create_event")), [1, 2], "text", activity(gevent("x")))
    events, failures = normalize_payload("google_calendar", data, ingested=INGESTED)
    assert [e.action for e in events] == ["create_event", "x"]
    assert [(record, error.reason) for record, error in failures] == [
        ([1, 2], "not_an_object"),
        ("text", "not_an_object"),
    ]


def test_ndjson_invalid_utf8_line() -> None:
    data = _ndjson(calendly_entry(), b'{"uri": "\xff"}')
    events, failures = normalize_payload("calendly", data, ingested=INGESTED)
    assert len(events) == 1
    [(record, error)] = failures
    assert error.reason == "invalid_json"
    assert record == '{"uri": "\\xff"}'


def test_single_record_and_json_array() -> None:
    one = orjson.dumps(calendly_entry())
    events, failures = normalize_payload("calendly", one, ingested=INGESTED)
    assert len(events) == 1 and failures == []

    array = orjson.dumps([calendly_entry(uri="a"), calendly_entry(uri="b")])
    events, failures = normalize_payload("calendly", array, ingested=INGESTED)
    assert [e.document["calendly"]["uri"] for e in events] == ["a", "b"]


def test_page_records_not_a_list() -> None:
    page = {"collection": {"uri": "x"}}
    events, failures = normalize_payload("calendly", orjson.dumps(page), ingested=INGESTED)
    assert events == []
    assert [error.reason for _, error in failures] == ["invalid_type"]


def test_utf8_bom_and_empty_input() -> None:
    data = b"\xef\xbb\xbf" + orjson.dumps(calendly_entry())
    assert len(normalize_payload("calendly", data, ingested=INGESTED)[0]) == 1
    assert normalize_payload("calendly", b"", ingested=INGESTED) == ([], [])
    assert normalize_payload("calendly", b"\n\n", ingested=INGESTED) == ([], [])


def test_unknown_provider() -> None:
    with pytest.raises(ValueError, match="unknown provider"):
        normalize_payload("outlook", b"{}", ingested=INGESTED)
