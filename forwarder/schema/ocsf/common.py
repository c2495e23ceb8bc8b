"""Small builders shared by the Google and Calendly OCSF mappers.

Every value written to a typed OCSF attribute is type-checked here first: the ECS
documents keep mistyped source values (as decode problems), and an OCSF consumer would
reject a whole event for one string where an integer belongs. What does not fit stays
in ``unmapped``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any

from forwarder.events import Event
from forwarder.schema.fields import AGENT_TYPE, AGENT_VERSION
from forwarder.schema.ocsf.classes import OCSF_VERSION
from forwarder.schema.tenant import TENANT_LABEL

# OCSF ``email_t`` (schema 1.7.0 dictionary types), without its anchors: used with
# fullmatch so that "a@b.c\n" is not taken for an address. An address that does not
# match stays in ``user.name`` only, never in ``email_addr``.
EMAIL_ADDRESS = re.compile(r"[a-zA-Z0-9!#$%&'*+-/=?^_`{|}~.]+@[a-zA-Z0-9-]+\.[a-zA-Z0-9-.]+")
# OCSF ``ip_t`` max_len. Addresses were already checked by the normalizer (ipaddress).
IP_MAX_LENGTH = 40

EMPTY: Mapping[str, Any] = MappingProxyType({})


def as_object(value: Any) -> Mapping[str, Any]:
    """``value`` when it is a JSON object, else an empty mapping (never raises)."""
    return value if type(value) is dict or isinstance(value, Mapping) else EMPTY


def text(source: Mapping[str, Any], key: str) -> str | None:
    """A non-empty string field, else None."""
    value = source.get(key)
    return value if type(value) is str and value else None


def take_text(rest: dict[str, Any], key: str | None) -> str | None:
    """Pop ``key`` from ``rest`` when it is a non-empty string (mapped), else leave it."""
    if key is None:
        return None
    value = rest.get(key)
    if type(value) is str and value:
        del rest[key]
        return value
    return None


def person(address: str) -> dict[str, Any]:
    """An OCSF ``user`` named by an address (grantee, guest...): email only if valid."""
    user: dict[str, Any] = {"name": address}
    if EMAIL_ADDRESS.fullmatch(address):
        user["email_addr"] = address
    return user


def millis(timestamp: float) -> int:
    """Unix seconds -> OCSF ``timestamp_t`` (integer milliseconds).

    Truncated like the ECS ``@timestamp`` (so both outputs name the same millisecond),
    but not with a bare floor: ``1743491000.345 * 1000`` is ``1743491000344.9998``. The
    source times have at most microseconds, so half a microsecond absorbs the float error
    without ever reaching the next millisecond.
    """
    return math.floor(timestamp * 1000 + 0.0005)


def rfc3339_millis(value: Any) -> int | None:
    """An RFC 3339 string (``...Z`` or offset) as integer milliseconds, None if not one."""
    if type(value) is not str:
        return None
    try:
        moment = datetime.fromisoformat(value[:-1] + "+00:00" if value[-1:] == "Z" else value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return millis(moment.timestamp())


def source_ip(document: Mapping[str, Any]) -> str | None:
    """ECS ``source.ip`` when it fits OCSF ``ip_t``."""
    ip = text(as_object(document.get("source")), "ip")
    return ip if ip is not None and len(ip) <= IP_MAX_LENGTH else None


def put(target: dict[str, Any], key: str, value: Any) -> None:
    """``target[key] = value`` unless value is None or empty (keeps ``unmapped`` small)."""
    if value is not None and value != {} and value != []:
        target[key] = value


def metadata(
    event: Event,
    document: Mapping[str, Any],
    *,
    product: Mapping[str, str],
    log_provider: str,
    log_name: str,
    event_code: str,
    original: Mapping[str, Any],
    tenant_uid: str | None,
) -> dict[str, Any]:
    """OCSF ``metadata`` as both providers fill it: ``original`` holds the provider's own
    keys (``original_time``, ...), in order, between the common ones."""
    out: dict[str, Any] = {
        "version": OCSF_VERSION,
        "product": dict(product),
        "log_provider": log_provider,
        "log_name": log_name,
        "uid": event.id,
        "event_code": event_code,
    }
    out.update(original)
    if tenant_uid is not None:
        out["tenant_uid"] = tenant_uid
    # The forwarder's tenant (ECS labels.tenant), not the provider's (tenant_uid above).
    labels = as_object(document.get("labels"))
    tenant = labels.get(TENANT_LABEL)
    if type(tenant) is str:
        out["tags"] = [{"name": TENANT_LABEL, "value": tenant}]
    logged = rfc3339_millis(as_object(document.get("event")).get("ingested"))
    if logged is not None:
        out["logged_time"] = logged
    # The shipper, like ECS agent.*: which forwarder (and version) produced the event.
    logger: dict[str, Any] = {
        "name": AGENT_TYPE,
        "product": {"name": AGENT_TYPE, "version": AGENT_VERSION},
        "version": AGENT_VERSION,
    }
    if logged is not None:
        logger["logged_time"] = logged
    out["loggers"] = [logger]
    return out
