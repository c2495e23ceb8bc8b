"""What the CEF and LEEF payloads carry, read in one place: the vendor/product of each
provider, the severity scale, and which ECS field fills which CEF extension key or LEEF
attribute.

A row's getter returns ``None`` when the event has no such field: that key is left out.
ECS lists (``event.category``, ``event.type``) are joined with ``,``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from forwarder import __version__
from forwarder.events import Event

Getter = Callable[[Event], str | None]


@dataclass(frozen=True, slots=True)
class Product:
    """CEF Device Vendor / Device Product / Device Version, LEEF Vendor / Product / Version."""

    vendor: str
    product: str
    version: str

    def fields(self) -> tuple[str, str, str]:
        return self.vendor, self.product, self.version


PRODUCTS: Mapping[str, Product] = {
    "google_calendar": Product("Google", "Workspace Calendar", "reports_v1"),
    "calendly": Product("Calendly", "Activity Log", "v2"),
}


def product(provider: str) -> Product:
    """The product of ``provider``; a provider this table does not know is named as is."""
    return PRODUCTS.get(provider) or Product("forwarder", provider, __version__)


# Syslog severity (0 emerg .. 7 debug) -> CEF severity (0..10) and LEEF sev (1..10).
CEF_SEVERITY: tuple[int, ...] = (10, 9, 8, 7, 6, 4, 3, 1)
LEEF_SEVERITY: tuple[int, ...] = (10, 9, 8, 7, 6, 4, 3, 1)


def _text(value: Any) -> str | None:
    if type(value) is str:
        return value or None
    if value is None or value == []:
        return None
    if isinstance(value, list):
        return ",".join(str(item) for item in value)
    return str(value)


def ecs(*paths: str) -> Getter:
    """The first of the dotted ECS ``paths`` the document has."""
    split = tuple(tuple(path.split(".")) for path in paths)

    def get(event: Event) -> str | None:
        for keys in split:
            value: Any = event.document
            for key in keys:
                value = value.get(key) if type(value) is dict else None
            if value is not None:
                text = _text(value)
                if text is not None:
                    return text
        return None

    return get


def ip(path: str, version: int) -> Getter:
    """``path`` when it is an address of IP ``version`` (CEF has separate keys for v6)."""
    get = ecs(path)

    def only(event: Event) -> str | None:
        value = get(event)
        if value is None or (":" in value) != (version == 6):
            return None
        return value

    return only


def epoch_ms(event: Event) -> str:
    return str(round(event.timestamp * 1000))


def iso_ms(event: Event) -> str:
    millis = round(event.timestamp * 1000)
    seconds, millis = divmod(millis, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def forwarder_source(event: Event) -> str | None:
    return event.source or None


# CEF: (extension key, label for a custom cs*/c6a* key or None, value). Order of output.
CEF_EXTENSIONS: tuple[tuple[str, str | None, Getter], ...] = (
    ("rt", None, epoch_ms),  # event time, epoch milliseconds
    ("externalId", None, ecs("event.id")),
    ("act", None, ecs("event.action")),
    ("cat", None, ecs("event.category")),
    ("outcome", None, ecs("event.outcome")),
    ("suser", None, ecs("user.email", "user.name")),
    ("suid", None, ecs("user.id")),
    ("duser", None, ecs("user.target.email", "user.target.name")),
    ("duid", None, ecs("user.target.id")),
    ("src", None, ip("source.ip", 4)),
    ("c6a2", "Source IPv6 Address", ip("source.ip", 6)),
    ("requestClientApplication", None, ecs("user_agent.original")),
    ("request", None, ecs("url.original")),
    ("msg", None, ecs("message")),
    ("cs1", "dataset", ecs("event.dataset")),
    ("cs2", "organization", ecs("organization.id")),
    ("cs3", "forwarderSource", forwarder_source),
    ("cs4", "eventType", ecs("event.type")),
)

# LEEF 2.0: (attribute, value). devTime comes with devTimeFormat; sev from the severity.
LEEF_DEV_TIME_FORMAT = "yyyy-MM-dd'T'HH:mm:ss.SSSX"
LEEF_ATTRIBUTES: tuple[tuple[str, Getter], ...] = (
    ("devTime", iso_ms),
    ("externalId", ecs("event.id")),
    ("action", ecs("event.action")),
    ("cat", ecs("event.category")),
    ("eventType", ecs("event.type")),
    ("outcome", ecs("event.outcome")),
    ("usrName", ecs("user.email", "user.name")),
    ("userId", ecs("user.id")),
    ("targetUsrName", ecs("user.target.email", "user.target.name")),
    ("targetUserId", ecs("user.target.id")),
    ("src", ecs("source.ip")),
    ("userAgent", ecs("user_agent.original")),
    ("url", ecs("url.original")),
    ("msg", ecs("message")),
    ("dataset", ecs("event.dataset")),
    ("organization", ecs("organization.id")),
    ("forwarderSource", forwarder_source),
)
