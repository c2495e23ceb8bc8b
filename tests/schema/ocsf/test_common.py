"""The shared converters: times and addresses as OCSF types want them."""

from __future__ import annotations

import pytest

from forwarder.schema.ocsf.common import EMAIL_ADDRESS, millis, person, rfc3339_millis


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (1743491000.345, 1743491000345),  # * 1000 is ...344.9998 in binary floating point
        (1774001472.123456, 1774001472123),  # microseconds truncated, like @timestamp
        (1774001472.999999, 1774001472999),
        (0.0, 0),
    ],
)
def test_millis(seconds: float, expected: int) -> None:
    assert millis(seconds) == expected


def test_rfc3339_millis() -> None:
    assert rfc3339_millis("2025-04-01T08:00:00.000Z") == 1743494400000
    assert rfc3339_millis("2025-04-01T10:00:00.5+02:00") == 1743494400500
    assert rfc3339_millis("2025-04-01T08:00:00") is None  # no zone
    assert rfc3339_millis("yesterday") is None
    assert rfc3339_millis("") is None
    assert rfc3339_millis(1743494400) is None


@pytest.mark.parametrize(
    ("address", "valid"),
    [
        ("bob@y.com", True),
        ("first.last+tag@sub.example.co.uk", True),
        ("bob@y.com\n", False),
        ("josé@example.com", False),
        ("bob@localhost", False),
        ("x.com", False),
    ],
)
def test_email_addresses_follow_ocsf_email_t(address: str, valid: bool) -> None:
    assert bool(EMAIL_ADDRESS.fullmatch(address)) is valid
    assert person(address) == (
        {"name": address, "email_addr": address} if valid else {"name": address}
    )
