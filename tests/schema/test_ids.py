"""Event ids are stable: the same event always gets the same id, across runs and versions."""

from __future__ import annotations

import pickle

from forwarder.schema.errors import MalformedRecordError
from forwarder.schema.ids import calendly_event_key, google_event_key, legacy_google_event_key


def test_ids_are_pinned() -> None:
    # Changing the scheme re-identifies every event already forwarded, which defeats the
    # SIEM's de-duplication across an upgrade: these values must never change. (The
    # Google id changed once, to include the event name: issue 17; the positional id
    # before it stays pinned because old checkpoints are matched with it.)
    assert (
        google_event_key("C03az79cb", "2025-04-01T07:03:12.345Z", "-1", "change_calendar_acls", 0)
        == PINNED_GOOGLE
    )
    assert legacy_google_event_key("2025-04-01T07:03:12.345Z", "-1", 2) == PINNED_LEGACY_GOOGLE
    assert calendly_event_key("https://api.calendly.com/activity_log_entries/A1") == (
        PINNED_CALENDLY
    )


PINNED_GOOGLE = "03ec8534adec76c1198cab687523126e"
PINNED_LEGACY_GOOGLE = "6c2eaeb2f7eafc34895fdb672ff2043a"
PINNED_CALENDLY = "7f9b8b91da98526dfad570c7b3af5fff"


def test_ids_are_32_hex_digits() -> None:
    for key in (google_event_key(None, "t", "1", "n"), calendly_event_key("u")):
        assert len(key) == 32
        int(key, 16)


def test_every_input_changes_the_id() -> None:
    time = "2025-04-01T07:03:12.345Z"
    base = google_event_key("C1", time, "1", "create_event", 0)
    assert google_event_key("C2", time, "1", "create_event", 0) != base
    assert google_event_key(None, time, "1", "create_event", 0) != base
    assert google_event_key("C1", "2025-04-01T07:03:12.346Z", "1", "create_event", 0) != base
    assert google_event_key("C1", time, "-1", "create_event", 0) != base
    assert google_event_key("C1", time, "1", "delete_event", 0) != base
    assert google_event_key("C1", time, "1", "create_event", 1) != base
    assert calendly_event_key("a") != calendly_event_key("b")


def test_parts_cannot_run_into_each_other() -> None:
    # A naive "time|qualifier" join would make these collide.
    assert google_event_key(None, "a|1", "2", "n") != google_event_key(None, "a", "1|2", "n")
    assert google_event_key("", "t", "1", "n") != google_event_key(None, "t", "1", "n")
    assert google_event_key(None, "t", "12", "3") != google_event_key(None, "t", "1", "23")


def test_providers_never_collide() -> None:
    assert calendly_event_key("x") != google_event_key(None, "x", "", "")
    # Old and new Google ids are arrays of different lengths: they can never be equal.
    assert legacy_google_event_key("t", "1", 0) != google_event_key(None, "t", "1", "0")


def test_malformed_record_error_shape() -> None:
    error = MalformedRecordError("missing_field", "id.time is missing")
    assert isinstance(error, ValueError)
    assert (error.reason, error.detail) == ("missing_field", "id.time is missing")
    assert "id.time is missing" in str(error)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.reason, copy.detail) == (error.reason, error.detail)
