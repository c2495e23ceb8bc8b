"""What the simulated Google Calendar audit log contains: activities built from a seed.

Event names and their parameters come from the catalog; every parameter is typed the way
the Reports API types it (``value`` for strings, ``intValue`` *as a string* for
integers, ``boolValue`` for booleans). Activity ``i`` is a pure function of (seed, i,
its time), drawn from its own generator; its visibility lag comes from a separate
generator so that changing lag settings never changes the content.
"""

from __future__ import annotations

import base64
import ipaddress
import random
import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from forwarder.schema.google_calendar_catalog import (
    ACCESS_LEVELS,
    API_KINDS,
    CALENDAR_EVENTS,
)
from forwarder.schema.times import CALENDAR_SECONDS_TO_UNIX_OFFSET
from forwarder.simulators.people import build_people

ACTIVITY_KIND = "admin#reports#activity"
APPLICATION_NAME = "calendar"

# How often each event type happens, relative to the others (event changes dominate real
# Calendar audit logs); split evenly between the events of a type.
TYPE_WEIGHTS = {
    "event_change": 50.0,
    "calendar_change": 12.0,
    "notification": 12.0,
    "subscription_change": 8.0,
    "appointment_schedule_change": 8.0,
    "interop": 6.0,
}

EVENT_TITLES = (
    "Weekly sync", "Quarterly review", "1:1", "Customer call", "Sprint planning",
    "Interview - backend", "Board meeting", "Offsite prep", "Lunch & learn",
)  # fmt: skip
USER_AGENTS = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/130.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) Mobile/15E148",
    "Google-Calendar-Android/2024.45.0",
    "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17928)",
)
INTEROP_ERRORS = ("ErrorNonExistentMailbox", "ErrorProxyRequestNotAllowed", "Timeout")
PARTNER_EWS_URL = "https://mail.partner.example/EWS/Exchange.asmx"
UNDOCUMENTED_PARAMETER = "secs_in_advance"


@dataclass(frozen=True, slots=True)
class GoogleUser:
    """A Workspace user, as an activity actor."""

    email: str
    profile_id: str


def build_google_users(seed: str, domain: str, size: int = 16) -> tuple[GoogleUser, ...]:
    rng = random.Random(f"{seed}:google-users")
    return tuple(
        GoogleUser(person.email, str(rng.randrange(10**20, 10**21)))
        for person in build_people(f"{seed}:google", domain, size)
    )


def _weights() -> tuple[tuple[str, ...], tuple[float, ...]]:
    per_type: dict[str, int] = {}
    for spec in CALENDAR_EVENTS.values():
        per_type[spec.type] = per_type.get(spec.type, 0) + 1
    names = tuple(CALENDAR_EVENTS)
    weights = tuple(
        TYPE_WEIGHTS.get(CALENDAR_EVENTS[name].type, 1.0) / per_type[CALENDAR_EVENTS[name].type]
        for name in names
    )
    return names, weights


EVENT_NAMES, EVENT_WEIGHTS = _weights()


def _random_id(rng: random.Random, length: int, alphabet: str = string.ascii_lowercase) -> str:
    return "".join(rng.choices(alphabet + string.digits, k=length))


def _ip_address(rng: random.Random) -> str:
    if rng.random() < 0.2:
        return str(ipaddress.IPv6Address(0x20010DB8 << 96 | rng.getrandbits(64)))
    return str(
        ipaddress.IPv4Address(
            rng.choice((0xC6336400, 0xCB007100, 0xC0000200)) | rng.randrange(1, 255)
        )
    )


def _etag(rng: random.Random) -> str:
    def part() -> str:
        return base64.urlsafe_b64encode(rng.randbytes(20)).decode().rstrip("=")[:27]

    return f'"{part()}/{part()}"'


@dataclass
class _Context:
    """Values shared by the events of one activity (same meeting, same calendar...)."""

    rng: random.Random
    unix: int
    actor: GoogleUser
    users: tuple[GoogleUser, ...]
    domain: str
    event_id: str
    title: str
    meeting_start: int
    duration: int

    def other_email(self) -> str:
        return self.rng.choice(self.users).email


def _choice(options: tuple[str, ...]) -> Callable[[_Context], str]:
    return lambda ctx: ctx.rng.choice(options)


def _constant(value: str) -> Callable[[_Context], str]:
    return lambda ctx: value


# How each string parameter gets its value. Built once: a page of a thousand activities
# builds some ten thousand parameters, and the draws (so the data) stay what they were.
_STRING_VALUES: dict[str, Callable[[_Context], str]] = {
    "api_kind": _choice(API_KINDS),
    "access_level": _choice(ACCESS_LEVELS),
    "calendar_id": lambda ctx: ctx.actor.email,
    "organizer_calendar_id": lambda ctx: ctx.actor.email,
    "event_id": lambda ctx: ctx.event_id,
    "event_title": lambda ctx: ctx.title,
    "old_event_title": lambda ctx: ctx.rng.choice(EVENT_TITLES) + " (draft)",
    "appointment_schedule_title": _choice(("Office hours", "Support booking")),
    "user_agent": _choice(USER_AGENTS),
    "recipient_email": _Context.other_email,
    "event_guest": _Context.other_email,
    "grantee_email": _Context.other_email,
    "subscriber_calendar_id": _Context.other_email,
    "notification_message_id": lambda ctx: _random_id(ctx.rng, 32) + "@google.com",
    "notification_method": _choice(("email", "alert", "default")),
    "notification_type": _choice(
        ("calendar_event_reminder", "new_event", "changed_event", "canceled_event")
    ),
    "event_response_status": _choice(("accepted", "declined", "tentative", "needsAction")),
    "recurring": _choice(("true", "false")),
    "client_side_encrypted": _choice(("false", "false", "true")),
    "interop_error_code": _choice(INTEROP_ERRORS),
    "remote_ews_url": _constant(PARTNER_EWS_URL),
    "calendar_country": _choice(("FR", "US", "DE", "JP")),
    "calendar_timezone": _choice(("Europe/Paris", "America/New_York", "UTC")),
    "calendar_title": _choice(("Team", "On-call", "Holidays")),
    "calendar_description": _constant("Shared team calendar"),
    "calendar_location": _choice(("Paris", "New York", "Remote")),
}


def _string_value(name: str, ctx: _Context) -> str:
    make = _STRING_VALUES.get(name)
    return make(ctx) if make else f"{name}-{_random_id(ctx.rng, 8)}"


def calendar_seconds(unix: int) -> int:
    """Unix seconds as Calendar's ``start_time``/``end_time`` count them (Rata Die epoch)."""
    return unix + CALENDAR_SECONDS_TO_UNIX_OFFSET


def _int_value(name: str, ctx: _Context) -> int:
    if name == "start_time":
        return calendar_seconds(ctx.meeting_start)
    if name == "end_time":
        return calendar_seconds(ctx.meeting_start + ctx.duration)
    if name == "requested_period_start":
        return ctx.unix
    if name == "requested_period_end":
        return ctx.unix + 7 * 86400
    return ctx.rng.randrange(0, 100_000)


def parameter(name: str, kind: str, ctx: _Context) -> dict[str, Any]:
    """One parameter typed like the API: ``value``, ``intValue`` (a string) or ``boolValue``."""
    if kind == "integer":
        return {"name": name, "intValue": str(_int_value(name, ctx))}
    if kind == "boolean":
        return {"name": name, "boolValue": ctx.rng.random() < 0.3}
    return {"name": name, "value": _string_value(name, ctx)}


# Parameters real activities often leave out (no notification sent, nobody to tell).
_OPTIONAL = frozenset({"notification_message_id", "recipient_email"})


def build_event(name: str, ctx: _Context, event_type: str | None = None) -> dict[str, Any]:
    """One ``events[]`` item; unknown names get a couple of generic parameters."""
    spec = CALENDAR_EVENTS.get(name)
    kinds = spec.parameters if spec else {"api_kind": "string", "calendar_id": "string"}
    parameters = [
        parameter(param, kind, ctx)
        for param, kind in kinds.items()
        if param not in _OPTIONAL or ctx.rng.random() < 0.7
    ]
    undocumented = 0.5 if spec is not None and spec.type == "subscription_change" else 0.03
    if ctx.rng.random() < undocumented:
        seconds = ctx.rng.choice((300, 600, 1800, 86400))
        parameters.append({"name": UNDOCUMENTED_PARAMETER, "intValue": str(seconds)})
    kind = event_type or (spec.type if spec else "event_change")
    return {"type": kind, "name": name, "parameters": parameters}


def _event_names(rng: random.Random, event_name: str | None) -> list[str]:
    if event_name is not None:
        return [event_name]
    if rng.random() < 0.1:
        # One activity, several audit events: a meeting created with its guests, or a
        # meeting moved. Consumers must forward every one of them.
        if rng.random() < 0.7:
            return ["create_event"] + ["add_event_guest"] * rng.randint(1, 2)
        return ["change_event", "change_event_start_time"]
    return [rng.choices(EVENT_NAMES, EVENT_WEIGHTS)[0]]


def build_activity(
    rng: random.Random,
    *,
    time_ms: int,
    time_text: str,
    customer_id: str,
    domain: str,
    users: tuple[GoogleUser, ...],
    event_name: str | None = None,
    event_type: str | None = None,
    extra_event_names: tuple[str, ...] = (),
    actor_email: str | None = None,
    ip_address: str | None = None,
) -> dict[str, Any]:
    """One ``admin#reports#activity`` (``rng`` is the activity's own generator)."""
    unique_qualifier = rng.getrandbits(64) - 2**63
    actor_user = rng.choice(users)
    if actor_email is not None:
        actor_user = next((u for u in users if u.email == actor_email), None) or GoogleUser(
            actor_email, str(rng.randrange(10**20, 10**21))
        )
    unix = time_ms // 1000
    ctx = _Context(
        rng=rng,
        unix=unix,
        actor=actor_user,
        users=users,
        domain=domain,
        event_id=_random_id(rng, 26, "abcdefghijklmnopqrstuv"),
        title=rng.choice(EVENT_TITLES),
        # Meetings start on a quarter hour, from minutes to a few days after the change.
        meeting_start=(unix + rng.randint(600, 3 * 86400)) // 900 * 900,
        duration=rng.choice((1800, 2700, 3600)),
    )
    names = _event_names(rng, event_name) + list(extra_event_names)
    events = [
        build_event(name, ctx, event_type if i == 0 else None) for i, name in enumerate(names)
    ]
    actor: dict[str, Any] = {
        "callerType": "USER",
        "email": actor_user.email,
        "profileId": actor_user.profile_id,
    }
    if rng.random() < 0.05:
        actor["applicationInfo"] = {
            "applicationName": "Calendar sync",
            "oauthClientId": f"{rng.randrange(10**11, 10**12)}-{_random_id(rng, 32)}"
            ".apps.googleusercontent.com",
            "impersonation": False,
        }
    return {
        "kind": ACTIVITY_KIND,
        "id": {
            "time": time_text,
            "uniqueQualifier": str(unique_qualifier),
            "applicationName": APPLICATION_NAME,
            "customerId": customer_id,
        },
        "etag": _etag(rng),
        "actor": actor,
        "ownerDomain": domain,
        "ipAddress": ip_address if ip_address is not None else _ip_address(rng),
        "events": events,
    }


@dataclass(frozen=True, slots=True)
class LagModel:
    """How long after it happened an activity becomes visible in the API.

    Most activities lag uniformly in ``[min_lag, max_lag]`` seconds; ``late_fraction`` of
    them lag ``late_lag`` seconds (Calendar audit data can show up hours late), or, with
    ``late_min_lag`` set, uniformly in ``[late_min_lag, late_lag]``.
    """

    min_lag: float = 0.0
    max_lag: float = 0.0
    late_fraction: float = 0.0
    late_lag: float = 5400.0
    late_min_lag: float | None = None

    def lag(self, rng: random.Random) -> float:
        late = rng.random() < self.late_fraction
        spread = rng.uniform(self.min_lag, self.max_lag)
        if not late:
            return spread
        if self.late_min_lag is None:
            return self.late_lag
        # Drawn last: the lags of a fixed late_lag stay what they were.
        return rng.uniform(self.late_min_lag, self.late_lag)
