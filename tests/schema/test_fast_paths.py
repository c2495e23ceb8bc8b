"""The hot-path shortcuts give exactly what the straightforward computation gives.

Event times, whole-second times and IP checks have fast paths (integer arithmetic, minute
caches, regular expressions); each is compared here with the standard library's answer
over the whole range of inputs, including the edges where a shortcut could round or
accept differently.
"""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from forwarder.schema.errors import MalformedRecordError
from forwarder.schema.fields import is_ip
from forwarder.schema.times import event_time, format_unix_seconds
from forwarder.timeutil import parse_rfc3339

from .strategies import PROPERTY_SETTINGS

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FIRST = datetime(1, 1, 1, tzinfo=UTC)
_LAST = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
# Around 2**32 seconds the fast path of event_time stops (float precision, see times.py).
_FAST_PATH_END = 2**32


def _expected(text: str) -> tuple[float, str]:
    """event_time's contract: the shared RFC 3339 parser, then datetime's formatting."""
    unix = parse_rfc3339(text)
    moment = datetime.fromtimestamp(unix, UTC)
    return unix, moment.isoformat(timespec="milliseconds")[:-6] + "Z"


_MOMENTS = st.one_of(
    st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9999, 12, 31)),
    st.integers(min_value=-86400, max_value=2**32 + 86400).map(
        lambda seconds: (_EPOCH + timedelta(seconds=seconds)).replace(tzinfo=None)
    ),
    st.integers(min_value=_FAST_PATH_END - 120, max_value=_FAST_PATH_END + 120).map(
        lambda seconds: (_EPOCH + timedelta(seconds=seconds)).replace(tzinfo=None)
    ),
)


@PROPERTY_SETTINGS
@given(_MOMENTS, st.integers(min_value=0, max_value=999_999), st.sampled_from([0, 3, 6]))
def test_event_time_fast_path_matches_datetime(moment: datetime, micros: int, digits: int) -> None:
    text = moment.replace(microsecond=0).isoformat()
    if digits:
        text += "." + f"{micros:06d}"[:digits]
    text += "Z"
    expected = _expected(text)
    # The first call may take the slow path and remember the minute; the second then
    # takes the fast path. Both must agree with datetime, to the last bit of the float.
    assert event_time(text, "t") == expected
    assert event_time(text, "t") == expected
    # Another second of the same minute, now surely on the fast path.
    other = text[:17] + f"{(moment.second + 1) % 60:02d}" + text[19:]
    assert event_time(other, "t") == _expected(other)


@pytest.mark.parametrize("seconds", [2**34 + 10, 2**35 + 10, 2**37 + 10])
def test_event_time_where_floats_round_microseconds(seconds: int) -> None:
    # Far enough from 1970, a float cannot hold every microsecond: datetime reads
    # xx.999999 back as the next second. The fast path copies digits, so it must not
    # take these times (it stops at 2**32 seconds, year 2106).
    moment = (_EPOCH + timedelta(seconds=seconds)).replace(tzinfo=None)
    text = moment.isoformat() + ".999999Z"
    assert _expected(text)[1].endswith(".000Z")
    assert event_time(text, "t") == _expected(text)
    assert event_time(text, "t") == _expected(text)


@pytest.mark.parametrize(
    "text",
    [
        "2027-01-15T07:26:60.000Z",  # no leap seconds in datetime
        "2027-01-15T07:26:4\u0663.000Z",  # a non-ASCII digit
        "2027-01-15T07:26:45.9\u06634Z",
        "2027-01-15T07:26:45.-04Z",
        "2027-01-15T07:26:45,904Z",  # datetime takes a decimal comma
        "2027-01-15T07:26:45.904 ",
        "2027-01-15T07:26:45.904z",
        "2027-01-15 07:26:45.904Z",
    ],
)
def test_event_time_odd_texts_in_a_known_minute(text: str) -> None:
    # Warm the minute, so that the text is looked at by the fast path first.
    event_time("2027-01-15T07:26:00.000Z", "t")
    try:
        expected = _expected(text)
    except ValueError:
        with pytest.raises(MalformedRecordError) as caught:
            event_time(text, "t")
        assert caught.value.reason == "invalid_timestamp"
    else:
        assert event_time(text, "t") == expected


_MIN_UNIX = int((_FIRST - _EPOCH).total_seconds())
_MAX_UNIX = int((_LAST - _EPOCH).total_seconds())


@PROPERTY_SETTINGS
@given(
    st.one_of(
        st.integers(min_value=_MIN_UNIX - 10, max_value=_MAX_UNIX + 10),
        st.sampled_from([_MIN_UNIX - 1, _MIN_UNIX, -1, 0, 59, 60, 86399, _MAX_UNIX, _MAX_UNIX + 1]),
    )
)
def test_whole_seconds_format_matches_datetime(unix: int) -> None:
    if not _MIN_UNIX <= unix <= _MAX_UNIX:
        assert format_unix_seconds(unix) is None
        return
    moment = _EPOCH + timedelta(seconds=unix)
    assert format_unix_seconds(unix) == (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
        f"T{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}Z"
    )


def _library_is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


# Near-addresses: hextets and octets of every length, "::" anywhere, dots, scopes.
_HEXTET = st.text(alphabet="0123456789abcdefABCDEF", max_size=5)
_NEAR_IPV6 = st.builds(
    lambda parts, cut, joiner: (lambda text: text[:cut] + joiner + text[cut:])(":".join(parts)),
    st.lists(_HEXTET, max_size=10),
    st.integers(min_value=0, max_value=40),
    st.sampled_from(["", "::", ":", "%eth0", "1.2.3.4"]),
)
_NEAR_IPV4 = st.lists(
    st.one_of(st.integers(min_value=0, max_value=300).map(str), st.text("0123456789", max_size=4)),
    min_size=1,
    max_size=5,
).map(".".join)


@PROPERTY_SETTINGS
@given(
    st.one_of(
        st.ip_addresses().map(str),
        st.ip_addresses(v=6).map(lambda address: address.exploded),
        st.ip_addresses(v=6).map(lambda address: str(address).upper()),
        _NEAR_IPV6,
        _NEAR_IPV4,
        st.text(max_size=45),
    )
)
def test_is_ip_matches_ipaddress(text: str) -> None:
    assert is_ip(text) == _library_is_ip(text)


@pytest.mark.parametrize(
    "text",
    [
        "::",
        "1::",
        "::1",
        "1:2:3:4:5:6:7::",
        "::2:3:4:5:6:7:8",
        "1:2:3:4:5:6:7:8",
        "1:2:3:4:5:6:7:8::",
        "1::3:4:5:6:7:8:9",
        "1::2::3",
        ":1::",
        "1:2:3:4:5:6:7:8:9",
        "12345::",
        "::ffff:192.0.2.1",
        "fe80::1%eth0",
        "192.0.2.1",
        "192.0.2.01",
        "256.0.0.1",
        "0.0.0.0",
        "1.2.3",
        "",
    ],
)
def test_is_ip_edge_cases(text: str) -> None:
    assert is_ip(text) == _library_is_ip(text)
